package advisory

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/bulwark-sec/bulwark/advisory/osv"
)

// Source is one thing to import.
type Source struct {
	// Path is a zip (osv.dev's <Ecosystem>/all.zip) or a folder of OSV
	// JSON files (searched recursively).
	Path string
	// Ecosystem, when set, says the source is the whole export of this
	// base ecosystem: the index keeps none of its older records of that
	// ecosystem, even if the source holds none.
	Ecosystem string
	// Name is recorded as where the records came from (a URL for
	// downloads); Path when empty.
	Name string
	// SHA256 of the source file, recorded when known.
	SHA256 string
}

// ProgressFunc is told how far a long step got: stage is "read" or
// "write", n the records so far, and source the path being read.
type ProgressFunc func(stage, source string, n int)

// ImportConfig configures Import.
type ImportConfig struct {
	// Dir is the database directory; it is created if missing.
	Dir     string
	Sources []Source
	// Progress, if set, is called every few thousand records.
	Progress ProgressFunc
}

// ImportResult says what an import did.
type ImportResult struct {
	Dir        string            `json:"db_dir"`
	Index      string            `json:"index"`
	Records    int               `json:"records"`
	Packages   int               `json:"packages"`
	Ecosystems []EcosystemResult `json:"ecosystems"`
	Kept       int               `json:"kept"`
	Skipped    []BadRecord       `json:"skipped,omitempty"`
	Duration   time.Duration     `json:"duration_ns"`
}

// EcosystemResult is one imported ecosystem.
type EcosystemResult struct {
	Ecosystem string `json:"ecosystem"`
	Records   int    `json:"records"`
	Withdrawn int    `json:"withdrawn"`
	Source    string `json:"source"`
}

// ErrEmptyImport is returned when the sources hold no record and name no
// ecosystem to replace.
var ErrEmptyImport = errors.New("advisory: nothing to import")

// Import reads the sources and writes a new index holding them plus the
// records of every other ecosystem the old index held. Records of an
// ecosystem the sources hold (or name in Source.Ecosystem) replace the old
// ones of that ecosystem: an osv.dev export is a whole snapshot, and an
// advisory it no longer holds was deleted upstream. Records with the same
// id: the last source wins.
//
// The new index replaces the old one by rename: a crash or an error at
// any point leaves the old index whole and usable, and concurrent imports
// into one directory are serialised by a lock file.
func Import(ctx context.Context, cfg ImportConfig) (*ImportResult, error) {
	start := time.Now()
	if len(cfg.Sources) == 0 {
		return nil, ErrEmptyImport
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("advisory: db dir: %w", err)
	}
	unlock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	progress := cfg.Progress
	if progress == nil {
		progress = func(string, string, int) {}
	}

	res := &ImportResult{Dir: cfg.Dir, Index: IndexPath(cfg.Dir)}
	byID := map[string]record{}
	perEco := map[string]*EcosystemResult{}
	covered := map[string]bool{}
	n := 0
	for _, src := range cfg.Sources {
		name := src.Name
		if name == "" {
			name = src.Path
		}
		if src.Ecosystem != "" {
			covered[src.Ecosystem] = true
			if perEco[src.Ecosystem] == nil {
				perEco[src.Ecosystem] = &EcosystemResult{Ecosystem: src.Ecosystem, Source: name}
			}
		}
		err := ReadSource(ctx, src.Path, func(r Record) error {
			rec, err := newRecord(r.Vuln, r.Raw)
			if err != nil {
				return err
			}
			byID[rec.id] = rec
			for _, b := range rec.ecos {
				covered[b] = true
				if perEco[b] == nil {
					perEco[b] = &EcosystemResult{Ecosystem: b, Source: name}
				}
			}
			if n++; n%5000 == 0 {
				progress("read", src.Path, n)
			}
			return nil
		}, func(b BadRecord) { res.Skipped = append(res.Skipped, b) })
		if err != nil {
			return nil, fmt.Errorf("advisory: import %s: %w", src.Path, err)
		}
		progress("read", src.Path, n)
	}
	if len(byID) == 0 && len(covered) == 0 {
		return nil, ErrEmptyImport
	}

	meta := Meta{Built: time.Now().UTC(), Ecosystems: map[string]EcosystemMeta{}}
	if old, err := Open(cfg.Dir); err == nil {
		for k, v := range old.Meta().Ecosystems {
			if !covered[k] {
				meta.Ecosystems[k] = v
			}
		}
		err := old.all(func(v *osv.Vulnerability, raw []byte) error {
			if _, dup := byID[v.ID]; dup {
				return nil
			}
			for _, b := range baseEcosystems(v) {
				if covered[b] {
					return nil
				}
			}
			r, err := newRecord(v, raw)
			if err != nil {
				return err
			}
			byID[r.id] = r
			res.Kept++
			return nil
		})
		old.Close()
		if err != nil {
			return nil, fmt.Errorf("advisory: read old index: %w", err)
		}
	} else if !errors.Is(err, ErrNoIndex) {
		// A damaged old index is replaced, not merged; say so.
		res.Skipped = append(res.Skipped, BadRecord{Origin: IndexPath(cfg.Dir), Err: err.Error()})
	}

	recs := make([]record, 0, len(byID))
	for _, r := range byID {
		recs = append(recs, r)
		for _, b := range r.ecos {
			if e := perEco[b]; e != nil {
				e.Records++
				if r.withdrawn {
					e.Withdrawn++
				}
			}
		}
	}
	for _, src := range cfg.Sources {
		if src.Ecosystem != "" && src.SHA256 != "" {
			if e := perEco[src.Ecosystem]; e != nil {
				meta.Ecosystems[src.Ecosystem] = EcosystemMeta{SHA256: src.SHA256}
			}
		}
	}
	for b, e := range perEco {
		m := meta.Ecosystems[b]
		m.Records, m.Source, m.Imported = e.Records, e.Source, meta.Built
		meta.Ecosystems[b] = m
		res.Ecosystems = append(res.Ecosystems, *e)
	}
	sort.Slice(res.Ecosystems, func(i, j int) bool { return res.Ecosystems[i].Ecosystem < res.Ecosystems[j].Ecosystem })
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	progress("write", res.Index, len(recs))
	if err := writeIndex(cfg.Dir, recs, meta); err != nil {
		return nil, err
	}
	res.Records = len(recs)
	if db, err := Open(cfg.Dir); err == nil {
		res.Packages = db.Meta().Packages
		db.Close()
	}
	res.Duration = time.Since(start)
	return res, nil
}

// baseEcosystems lists the base ecosystems a record affects.
func baseEcosystems(v *osv.Vulnerability) []string {
	var out []string
	for _, a := range v.Affected {
		b := osv.BaseEcosystem(a.Package.Ecosystem)
		if b != "" && !contains(out, b) {
			out = append(out, b)
		}
	}
	return out
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// lockPath is the lock file that serialises writers of one directory.
func lockPath(dir string) string { return filepath.Join(dir, ".lock") }
