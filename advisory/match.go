package advisory

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/bulwark-sec/bulwark/advisory/osv"
	"github.com/bulwark-sec/bulwark/advisory/version"
)

// Package is one installed package to look up.
type Package struct {
	// Ecosystem is the OSV ecosystem, with the release suffix for
	// distributions: "Go", "PyPI", "npm", "Maven", "crates.io",
	// "Debian:12", "Ubuntu:22.04:LTS", "Alpine:v3.19", "AlmaLinux:9".
	Ecosystem string `json:"ecosystem"`
	// Name is the package name as the ecosystem writes it: the module path
	// for Go, "group:artifact" for Maven, the binary package for dpkg,
	// apk and rpm.
	Name string `json:"name"`
	// Version is the installed version. Go versions may keep their "v" and
	// the Go toolchain may be given as "go1.21.0"; rpm versions carry the
	// epoch when it is not zero ("1:3.0.7-27.el9").
	Version string `json:"version"`
	// SourceName is the distribution's source package (dpkg "Source:",
	// apk origin). Debian, Ubuntu, Alpine, Wolfi and Chainguard publish
	// advisories per source package, so it is the name looked up there
	// when set.
	SourceName string `json:"source_name,omitempty"`
	// SourceVersion is the source package's version when it differs from
	// Version (a Debian binNMU "+b1"); used with SourceName.
	SourceVersion string `json:"source_version,omitempty"`
}

// bySource lists the ecosystems whose advisories name source packages.
var bySource = map[string]bool{
	"Debian": true, "Ubuntu": true, "Alpine": true, "Wolfi": true, "Chainguard": true,
	"Alpaquita": true, "BellSoft Hardened Containers": true, "MinimOS": true,
}

// lookup returns the name and version to look up for p.
func (p Package) lookup() (name, ver string) {
	name, ver = p.Name, p.Version
	if name == "go" && osv.BaseEcosystem(p.Ecosystem) == "Go" {
		// The Go toolchain as some inventories name it; the Go
		// vulnerability database calls it stdlib.
		name = "stdlib"
	}
	if bySource[osv.BaseEcosystem(p.Ecosystem)] && p.SourceName != "" {
		name = p.SourceName
		if p.SourceVersion != "" {
			ver = p.SourceVersion
		}
	}
	return name, ver
}

// Match is one advisory affecting one package.
type Match struct {
	Package Package `json:"package"`
	// ID is the advisory id ("GO-2022-0969", "DSA-5532-1", "ALSA-2024:0001").
	ID string `json:"id"`
	// Aliases are other ids of the same issue (CVE, GHSA).
	Aliases []string `json:"aliases,omitempty"`
	// Related and Upstream are the CVEs a distribution advisory fixes
	// (Debian DSAs list them as related or upstream, not as aliases).
	Related  []string `json:"related,omitempty"`
	Upstream []string `json:"upstream,omitempty"`
	Summary  string   `json:"summary,omitempty"`
	// Ecosystem and Name are the affected package as the record writes it.
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name"`
	// Fixed lists the versions that fix the installed version, lowest
	// first; empty means no fix yet.
	Fixed []string `json:"fixed,omitempty"`
	// LastAffected lists last_affected events of the ranges that matched
	// (no fix known, but the issue ends there).
	LastAffected []string `json:"last_affected,omitempty"`
	// VersionUnknown is set when the package has no version: it is
	// reported as affected, as osv-scanner does.
	VersionUnknown bool      `json:"version_unknown,omitempty"`
	Severity       Severity  `json:"severity"`
	Published      time.Time `json:"published,omitzero"`
	Modified       time.Time `json:"modified,omitzero"`
}

// HasFix reports whether a fixed version is known.
func (m Match) HasFix() bool { return len(m.Fixed) > 0 }

// Query returns the advisories affecting p, ordered by id. Withdrawn
// advisories are left out. GIT ranges are not evaluated (a package with
// a version has no commit to place on them); ECOSYSTEM and SEMVER ranges
// and explicit versions lists are.
func (db *DB) Query(p Package) ([]Match, error) {
	name, ver := p.lookup()
	if name == "" {
		return nil, nil
	}
	es, err := db.entries(packageKey(p.Ecosystem, name))
	if err != nil || len(es) == 0 {
		return nil, err
	}
	base := osv.BaseEcosystem(p.Ecosystem)
	var installed version.Version
	parsedOK := false
	if ver != "" {
		if v, err := db.parse(base, ver); err == nil {
			installed, parsedOK = v, true
		}
	}
	byAdv := map[uint32]*Match{}
	var order []uint32
	for i := range es {
		e := &es[i]
		if !sameEcosystem(p.Ecosystem, e.Eco) {
			continue
		}
		hit, fixed, last := false, []string(nil), []string(nil)
		switch {
		case ver == "":
			hit = len(e.Ranges) > 0 || len(e.Versions) > 0
		default:
			if inVersions(base, e.Versions, ver) {
				hit = true
			}
			if parsedOK {
				for _, r := range e.Ranges {
					if in, f, l := db.inRange(base, r, installed); in {
						hit = true
						fixed = append(fixed, f...)
						last = append(last, l...)
					}
				}
			}
		}
		if !hit {
			continue
		}
		m, ok := byAdv[e.Adv]
		if !ok {
			s, err := db.summary(e.Adv)
			if err != nil {
				return nil, err
			}
			if !s.Withdrawn.IsZero() {
				continue
			}
			m = &Match{
				Package: p, ID: s.ID, Aliases: s.Aliases, Related: s.Related, Upstream: s.Upstream,
				Summary: s.Summary, Ecosystem: e.Eco, Name: e.Name, Severity: s.Severity,
				Published: s.Published, Modified: s.Modified, VersionUnknown: ver == "",
			}
			if e.Rating != "" {
				// The package's own rating (Debian's per-package urgency).
				m.Severity = choose(s.Severity.CVSS, e.Rating, IsDistro(base))
			}
			byAdv[e.Adv] = m
			order = append(order, e.Adv)
		}
		m.Fixed = append(m.Fixed, fixed...)
		m.LastAffected = append(m.LastAffected, last...)
	}
	out := make([]Match, 0, len(order))
	for _, a := range order {
		m := byAdv[a]
		m.Fixed = db.sortVersions(base, m.Fixed)
		m.LastAffected = db.sortVersions(base, m.LastAffected)
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Match looks up every package and returns all matches, in the order of
// pkgs and by id within a package. Packages that share ecosystem, name and
// version (binary packages of one source) are looked up once.
func (db *DB) Match(ctx context.Context, pkgs []Package) ([]Match, error) {
	type key struct{ eco, name, ver string }
	done := map[key][]Match{}
	var out []Match
	for i, p := range pkgs {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		name, ver := p.lookup()
		k := key{p.Ecosystem, name, ver}
		ms, ok := done[k]
		if !ok {
			var err error
			if ms, err = db.Query(p); err != nil {
				return nil, fmt.Errorf("advisory: match %s %s %s: %w", p.Ecosystem, p.Name, p.Version, err)
			}
			done[k] = ms
		}
		for _, m := range ms {
			m.Package = p
			out = append(out, m)
		}
	}
	return out, nil
}

// sameEcosystem compares a package's ecosystem with a record's: the bases
// must be equal, and the release suffixes too when both have one
// ("Debian:12" matches "Debian:12" and "Debian", not "Debian:11").
// Ubuntu's ":LTS" mark and Alpine's "v" are not significant.
func sameEcosystem(pkg, rec string) bool {
	pb, ps, _ := strings.Cut(pkg, ":")
	rb, rs, _ := strings.Cut(rec, ":")
	if pb != rb {
		return false
	}
	if ps == "" || rs == "" {
		return true
	}
	return normSuffix(pb, ps) == normSuffix(rb, rs)
}

func normSuffix(base, s string) string {
	switch base {
	case "Ubuntu":
		// "22.04" and "22.04:LTS" are one release; "Pro:18.04:LTS"
		// (Ubuntu Pro's ESM) stays distinct, as osv-scanner keeps it.
		s = strings.TrimSuffix(s, ":LTS")
	case "Alpine":
		s = strings.TrimPrefix(s, "v")
	}
	return s
}

func inVersions(base string, versions []string, ver string) bool {
	if len(versions) == 0 {
		return false
	}
	want := version.Normalize(base, ver)
	for _, v := range versions {
		if v == ver || version.Normalize(base, v) == want {
			return true
		}
	}
	return false
}

type event struct {
	kind string // introduced, fixed, last_affected, limit
	raw  string
	v    version.Version
	zero bool // introduced "0"
}

// inRange evaluates one ECOSYSTEM or SEMVER range as the OSV schema
// specifies: events sorted by version, affected from an introduced event
// until a fixed (exclusive) or last_affected (inclusive) event; a limit
// event bounds the whole range. It returns the fixed and last_affected
// versions that end the span containing v.
func (db *DB) inRange(base string, r osv.Range, v version.Version) (bool, []string, []string) {
	evs := make([]event, 0, len(r.Events))
	for _, e := range r.Events {
		var ev event
		switch {
		case e.Introduced != "":
			ev = event{kind: "introduced", raw: e.Introduced, zero: e.Introduced == "0"}
		case e.Fixed != "":
			ev = event{kind: "fixed", raw: e.Fixed}
		case e.LastAffected != "":
			ev = event{kind: "last_affected", raw: e.LastAffected}
		case e.Limit != "":
			if e.Limit == "*" {
				continue
			}
			ev = event{kind: "limit", raw: e.Limit}
		default:
			continue
		}
		if !ev.zero {
			pv, err := db.parse(base, ev.raw)
			if err != nil {
				continue // an event that does not parse cannot be placed
			}
			ev.v = pv
		}
		evs = append(evs, ev)
	}
	sort.SliceStable(evs, func(i, j int) bool {
		if evs[i].zero != evs[j].zero {
			return evs[i].zero
		}
		if evs[i].zero {
			return false
		}
		return evs[i].v.Compare(evs[j].v) < 0
	})
	for _, e := range evs {
		if e.kind == "limit" && v.Compare(e.v) >= 0 {
			return false, nil, nil
		}
	}
	affected := false
	for _, e := range evs {
		switch e.kind {
		case "introduced":
			if e.zero || v.Compare(e.v) >= 0 {
				affected = true
			}
		case "fixed":
			if v.Compare(e.v) >= 0 {
				affected = false
			}
		case "last_affected":
			if v.Compare(e.v) > 0 {
				affected = false
			}
		}
	}
	if !affected {
		return false, nil, nil
	}
	// The span containing v ends at the first fixed or last_affected event
	// above it.
	for _, e := range evs {
		if e.kind == "fixed" && v.Compare(e.v) < 0 {
			return true, []string{e.raw}, nil
		}
		if e.kind == "last_affected" && v.Compare(e.v) <= 0 {
			return true, nil, []string{e.raw}
		}
	}
	return true, nil, nil
}

func (db *DB) sortVersions(base string, vs []string) []string {
	if len(vs) < 2 {
		return vs
	}
	slices.Sort(vs)
	vs = slices.Compact(vs)
	sort.SliceStable(vs, func(i, j int) bool {
		a, errA := db.parse(base, vs[i])
		b, errB := db.parse(base, vs[j])
		if errA != nil || errB != nil {
			return vs[i] < vs[j]
		}
		return a.Compare(b) < 0
	})
	return vs
}

// maxCached bounds the parsed-version cache of one DB.
const maxCached = 1 << 20

// parse parses a version, with a cache: each distinct event version is
// parsed once per open DB.
func (db *DB) parse(base, s string) (version.Version, error) {
	k := base + "\x00" + s
	db.mu.Lock()
	if v, ok := db.cache[k]; ok {
		db.mu.Unlock()
		return v, nil
	}
	db.mu.Unlock()
	v, err := version.Parse(base, s)
	if err != nil {
		return v, err
	}
	db.mu.Lock()
	if db.cache == nil || len(db.cache) >= maxCached {
		db.cache = map[string]version.Version{}
	}
	db.cache[k] = v
	db.mu.Unlock()
	return v, nil
}
