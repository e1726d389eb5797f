package advisory

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/bulwark-sec/bulwark/advisory/osv"
)

// Limits on what a source may hold; a source past them is refused.
const (
	// MaxRecords bounds the records of one import (osv.dev's largest
	// ecosystem export holds a few hundred thousand).
	MaxRecords = 4_000_000
	// MaxZipEntries bounds the entries of one zip.
	MaxZipEntries = 4_000_000
)

// ErrSource is returned for a source that cannot be read as OSV records.
var ErrSource = errors.New("advisory: bad source")

// Record is one decoded record and its original JSON.
type Record struct {
	Vuln *osv.Vulnerability
	Raw  []byte
	// Origin names where it came from: "all.zip:GO-2022-0969.json".
	Origin string
}

// BadRecord is a file of a source that is not an OSV record. Import skips
// it and reports it; it never fails the whole source.
type BadRecord struct {
	Origin string `json:"origin"`
	Err    string `json:"error"`
}

// ReadSource calls fn for every OSV record in path: a zip (osv.dev's
// <Ecosystem>/all.zip) or a folder searched recursively for *.json files.
// Files that are not OSV records are passed to bad (which may be nil) and
// skipped. It stops at the first error fn returns, or when ctx is done.
func ReadSource(ctx context.Context, path string, fn func(Record) error, bad func(BadRecord)) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSource, err)
	}
	if bad == nil {
		bad = func(BadRecord) {}
	}
	if fi.IsDir() {
		return readDir(ctx, path, fn, bad)
	}
	return readZip(ctx, path, fn, bad)
}

func readZip(ctx context.Context, path string, fn func(Record) error, bad func(BadRecord)) error {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return fmt.Errorf("%w: open zip %s: %w", ErrSource, path, err)
	}
	defer zr.Close()
	if len(zr.File) > MaxZipEntries {
		return fmt.Errorf("%w: zip %s: %d entries, more than %d", ErrSource, path, len(zr.File), MaxZipEntries)
	}
	base := filepath.Base(path)
	n := 0
	for _, f := range zr.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		if f.FileInfo().IsDir() || !strings.HasSuffix(f.Name, ".json") {
			continue
		}
		origin := base + ":" + f.Name
		if f.UncompressedSize64 > osv.MaxRecordSize {
			bad(BadRecord{Origin: origin, Err: osv.ErrTooLarge.Error()})
			continue
		}
		b, err := readZipFile(f)
		if err != nil {
			if errors.Is(err, zip.ErrChecksum) || errors.Is(err, zip.ErrFormat) || errors.Is(err, zip.ErrAlgorithm) {
				return fmt.Errorf("%w: zip %s: %s: %w", ErrSource, path, f.Name, err)
			}
			bad(BadRecord{Origin: origin, Err: err.Error()})
			continue
		}
		if n++; n > MaxRecords {
			return fmt.Errorf("%w: %s: more than %d records", ErrSource, path, MaxRecords)
		}
		if err := emit(b, origin, fn, bad); err != nil {
			return err
		}
	}
	return nil
}

func readZipFile(f *zip.File) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	// The header's size can lie; the limit holds whatever it says.
	b, err := io.ReadAll(io.LimitReader(rc, osv.MaxRecordSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > osv.MaxRecordSize {
		return nil, osv.ErrTooLarge
	}
	return b, nil
}

func readDir(ctx context.Context, root string, fn func(Record) error, bad func(BadRecord)) error {
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.Type().IsRegular() && strings.HasSuffix(d.Name(), ".json") {
			if len(files) >= MaxRecords {
				return fmt.Errorf("%w: %s: more than %d records", ErrSource, root, MaxRecords)
			}
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: walk %s: %w", ErrSource, root, err)
	}
	sort.Strings(files)
	for _, p := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		b, err := readFileBounded(p)
		if err != nil {
			bad(BadRecord{Origin: rel, Err: err.Error()})
			continue
		}
		if err := emit(b, rel, fn, bad); err != nil {
			return err
		}
	}
	return nil
}

func readFileBounded(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > osv.MaxRecordSize {
		return nil, osv.ErrTooLarge
	}
	// Read what Stat says plus one byte: a file that grows meanwhile is
	// still bounded.
	b := make([]byte, 0, fi.Size()+1)
	b, err = readAllInto(io.LimitReader(f, osv.MaxRecordSize+1), b)
	if err != nil {
		return nil, err
	}
	if len(b) > osv.MaxRecordSize {
		return nil, osv.ErrTooLarge
	}
	return b, nil
}

func readAllInto(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

func emit(b []byte, origin string, fn func(Record) error, bad func(BadRecord)) error {
	v, err := osv.Unmarshal(b)
	if err != nil {
		bad(BadRecord{Origin: origin, Err: err.Error()})
		return nil
	}
	return fn(Record{Vuln: v, Raw: b, Origin: origin})
}
