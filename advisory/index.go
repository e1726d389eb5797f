package advisory

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/bulwark-sec/bulwark/advisory/osv"
	"github.com/bulwark-sec/bulwark/advisory/version"
)

// The index file, one file, written once and never changed in place:
//
//	magic "BWOSVIX1"
//	full records, each the original JSON, deflated        (read by Get)
//	advisory summaries, binary (entry.go)                  (read per match)
//	package blobs, entries of one package (entry.go)     (read per query)
//	advisory table: n, then n fixed rows, then the ids     (read at open)
//	package table:  n, then n fixed rows, then the keys    (read at open)
//	meta: JSON                                             (read at open)
//	footer: 7 little-endian uint64 offsets/lengths, magic
//
// Opening reads the footer, the two tables and the meta: a few hundred KB
// for the bundled data, no parsing beyond the meta. A query binary-searches
// the package table in memory and reads one package blob with ReadAt.
const (
	indexFile   = "osv.idx"
	magic       = "BWOSVIX1"
	footerLen   = 7*8 + len(magic)
	advRowLen   = 4 + 4 + 8 + 4 + 8 + 4
	pkgRowLen   = 4 + 4 + 8 + 4
	maxBlobLen  = 256 << 20
	indexFormat = 2
)

// ErrNoIndex is returned by Open when the directory holds no index yet.
var ErrNoIndex = errors.New("advisory: no index (run bulwark db update or db import)")

// ErrCorrupt is returned for an index file that is not well formed.
var ErrCorrupt = errors.New("advisory: corrupt index")

// Meta describes an index.
type Meta struct {
	Format     int                      `json:"format"`
	Built      time.Time                `json:"built"`
	Records    int                      `json:"records"`
	Packages   int                      `json:"packages"`
	Ecosystems map[string]EcosystemMeta `json:"ecosystems"`
}

// EcosystemMeta says where an ecosystem's records came from.
type EcosystemMeta struct {
	Records  int       `json:"records"`
	Source   string    `json:"source"`
	SHA256   string    `json:"sha256,omitempty"`
	Imported time.Time `json:"imported"`
}

// entry is what matching needs of one affected[] element.
type entry struct {
	Adv      uint32         `json:"a"`
	Eco      string         `json:"e"`
	Name     string         `json:"n"`
	Ranges   []osv.Range    `json:"r,omitempty"`
	Versions []string       `json:"v,omitempty"`
	Severity []osv.Severity `json:"s,omitempty"`
	Rating   string         `json:"d,omitempty"`
	HasGit   bool           `json:"g,omitempty"`
}

// summary is what a finding needs of a record.
type summary struct {
	ID         string    `json:"id"`
	Aliases    []string  `json:"aliases,omitempty"`
	Related    []string  `json:"related,omitempty"`
	Upstream   []string  `json:"upstream,omitempty"`
	Summary    string    `json:"summary,omitempty"`
	Severity   Severity  `json:"severity"`
	Published  time.Time `json:"published,omitzero"`
	Modified   time.Time `json:"modified,omitzero"`
	Withdrawn  time.Time `json:"withdrawn,omitzero"`
	Ecosystems []string  `json:"ecosystems,omitempty"`
}

// packageKey is the index key of a package: base ecosystem and the name
// as the ecosystem compares names (PyPI names normalised per PEP 503).
func packageKey(ecosystem, name string) string {
	base := osv.BaseEcosystem(ecosystem)
	return base + "\x00" + NormalizeName(base, name)
}

// NormalizeName returns name as the ecosystem compares it: PyPI names are
// case-insensitive and treat runs of "-", "_" and "." alike (PEP 503);
// other ecosystems compare names exactly.
func NormalizeName(ecosystem, name string) string {
	if osv.BaseEcosystem(ecosystem) != "PyPI" {
		return name
	}
	var b strings.Builder
	sep := false
	for _, r := range strings.ToLower(name) {
		if r == '-' || r == '_' || r == '.' {
			sep = true
			continue
		}
		if sep && b.Len() > 0 {
			b.WriteByte('-')
		}
		sep = false
		b.WriteRune(r)
	}
	return b.String()
}

// record is a record ready to be written, kept compact: an import holds
// every record in memory until the index is written, so it keeps the
// deflated JSON, the encoded summary and the package entries, never the
// decoded record (a third of the memory, measured on ../shared/vulndb).
type record struct {
	id        string
	ecos      []string // base ecosystems
	withdrawn bool
	zraw      []byte
	sum       []byte
	entries   []keyedEntry
}

type keyedEntry struct {
	key string
	e   entry
}

var flatePool = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(io.Discard, flate.BestSpeed)
	return w
}}

// newRecord compacts v (decoded from raw).
func newRecord(v *osv.Vulnerability, raw []byte) (record, error) {
	var zbuf bytes.Buffer
	zw := flatePool.Get().(*flate.Writer) // a new one costs ~1 MB
	defer flatePool.Put(zw)
	zw.Reset(&zbuf)
	if _, err := zw.Write(raw); err != nil {
		return record{}, err
	}
	if err := zw.Close(); err != nil {
		return record{}, err
	}
	s := summarize(v)
	r := record{id: v.ID, ecos: baseEcosystems(v), withdrawn: v.IsWithdrawn(), zraw: zbuf.Bytes(), sum: encodeSummary(&s)}
	for _, a := range v.Affected {
		if a.Package.Name == "" || a.Package.Ecosystem == "" {
			continue
		}
		e := entry{Eco: a.Package.Ecosystem, Name: a.Package.Name, Versions: a.Versions, Severity: a.Severity, Rating: distroRating(v, &a)}
		for _, rg := range a.Ranges {
			if rg.Type == osv.RangeGit {
				e.HasGit = true
				continue
			}
			e.Ranges = append(e.Ranges, osv.Range{Type: rg.Type, Events: rg.Events})
		}
		r.entries = append(r.entries, keyedEntry{packageKey(a.Package.Ecosystem, a.Package.Name), e})
	}
	return r, nil
}

// countingWriter tracks the offset of a buffered file writer.
type countingWriter struct {
	w   *bufio.Writer
	off uint64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.off += uint64(n)
	return n, err
}

// writeIndex writes recs (unique ids) to a new file in dir and renames it
// over the index: readers see the old file or the new one, never a mix,
// and a crash before the rename leaves the old one in place.
func writeIndex(dir string, recs []record, meta Meta) (err error) {
	sort.Slice(recs, func(i, j int) bool { return recs[i].id < recs[j].id })
	tmp, err := os.CreateTemp(dir, ".osv.idx.tmp-*")
	if err != nil {
		return fmt.Errorf("advisory: create index: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	cw := &countingWriter{w: bufio.NewWriterSize(tmp, 1<<20)}
	if _, err := cw.Write([]byte(magic)); err != nil {
		return err
	}

	type span struct{ off, n uint64 }
	full := make([]span, len(recs))
	for i, r := range recs {
		full[i] = span{cw.off, uint64(len(r.zraw))}
		if _, err := cw.Write(r.zraw); err != nil {
			return err
		}
	}

	sums := make([]span, len(recs))
	pkgs := map[string][]entry{}
	for i, r := range recs {
		sums[i] = span{cw.off, uint64(len(r.sum))}
		if _, err := cw.Write(r.sum); err != nil {
			return err
		}
		for _, ke := range r.entries {
			e := ke.e
			e.Adv = uint32(i)
			pkgs[ke.key] = append(pkgs[ke.key], e)
		}
	}

	keys := make([]string, 0, len(pkgs))
	for k := range pkgs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	blobs := make([]span, len(keys))
	for i, k := range keys {
		b := encodeEntries(pkgs[k])
		blobs[i] = span{cw.off, uint64(len(b))}
		if _, err := cw.Write(b); err != nil {
			return err
		}
	}

	// Advisory table.
	advOff := cw.off
	var tab bytes.Buffer
	le := binary.LittleEndian
	tab.Write(le.AppendUint32(nil, uint32(len(recs))))
	var strs bytes.Buffer
	for i, r := range recs {
		row := make([]byte, 0, advRowLen)
		row = le.AppendUint32(row, uint32(strs.Len()))
		row = le.AppendUint32(row, uint32(len(r.id)))
		row = le.AppendUint64(row, sums[i].off)
		row = le.AppendUint32(row, uint32(sums[i].n))
		row = le.AppendUint64(row, full[i].off)
		row = le.AppendUint32(row, uint32(full[i].n))
		tab.Write(row)
		strs.WriteString(r.id)
	}
	tab.Write(strs.Bytes())
	if _, err := cw.Write(tab.Bytes()); err != nil {
		return err
	}
	advLen := cw.off - advOff

	// Package table.
	pkgOff := cw.off
	tab.Reset()
	strs.Reset()
	tab.Write(le.AppendUint32(nil, uint32(len(keys))))
	for i, k := range keys {
		row := make([]byte, 0, pkgRowLen)
		row = le.AppendUint32(row, uint32(strs.Len()))
		row = le.AppendUint32(row, uint32(len(k)))
		row = le.AppendUint64(row, blobs[i].off)
		row = le.AppendUint32(row, uint32(blobs[i].n))
		tab.Write(row)
		strs.WriteString(k)
	}
	tab.Write(strs.Bytes())
	if _, err := cw.Write(tab.Bytes()); err != nil {
		return err
	}
	pkgLen := cw.off - pkgOff

	meta.Format = indexFormat
	meta.Records = len(recs)
	meta.Packages = len(keys)
	mb, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	metaOff := cw.off
	if _, err := cw.Write(mb); err != nil {
		return err
	}
	size := cw.off + uint64(footerLen)
	var foot []byte
	for _, v := range []uint64{advOff, advLen, pkgOff, pkgLen, metaOff, uint64(len(mb)), size} {
		foot = le.AppendUint64(foot, v)
	}
	foot = append(foot, magic...)
	if _, err := cw.Write(foot); err != nil {
		return err
	}
	if err := cw.w.Flush(); err != nil {
		return fmt.Errorf("advisory: write index: %w", err)
	}
	// The index holds public data; readers may run as another user.
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("advisory: chmod index: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("advisory: sync index: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("advisory: close index: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, indexFile)); err != nil {
		return fmt.Errorf("advisory: install index: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("advisory: sync %s: %w", dir, err)
	}
	return nil
}

// DB is an open index. It is safe for concurrent use. It keeps the file
// it opened: an update renames a new file into place and an open DB goes
// on reading the old one until it is closed and opened again.
type DB struct {
	f    *os.File
	path string
	meta Meta
	adv  table
	pkg  table

	mu    sync.Mutex
	cache map[string]version.Version // see parse
}

type table struct {
	n      int
	rowLen int
	rows   []byte
	strs   []byte
}

func (t table) key(i int) []byte {
	row := t.rows[i*t.rowLen:]
	off := binary.LittleEndian.Uint32(row)
	n := binary.LittleEndian.Uint32(row[4:])
	if uint64(off)+uint64(n) > uint64(len(t.strs)) {
		return nil
	}
	return t.strs[off : off+n]
}

func (t table) find(k string) (int, bool) {
	i := sort.Search(t.n, func(i int) bool { return string(t.key(i)) >= k })
	return i, i < t.n && string(t.key(i)) == k
}

func readTable(f *os.File, off, n uint64, rowLen int) (table, error) {
	if n < 4 || n > 1<<31 {
		return table{}, fmt.Errorf("%w: table length %d", ErrCorrupt, n)
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, int64(off)); err != nil {
		return table{}, fmt.Errorf("%w: read table: %w", ErrCorrupt, err)
	}
	cnt := int(binary.LittleEndian.Uint32(b))
	if uint64(cnt)*uint64(rowLen)+4 > n {
		return table{}, fmt.Errorf("%w: table of %d rows in %d bytes", ErrCorrupt, cnt, n)
	}
	return table{n: cnt, rowLen: rowLen, rows: b[4 : 4+cnt*rowLen], strs: b[4+cnt*rowLen:]}, nil
}

// IndexPath is the index file of a database directory.
func IndexPath(dir string) string { return filepath.Join(dir, indexFile) }

// Open opens the index in dir. It reads only the tables and the meta, so
// it takes milliseconds whatever the size of the data (BenchmarkOpen).
// A missing index is ErrNoIndex; a damaged one ErrCorrupt.
func Open(dir string) (*DB, error) {
	p := IndexPath(dir)
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNoIndex, dir)
		}
		return nil, fmt.Errorf("advisory: open index: %w", err)
	}
	db, err := openFile(f, p)
	if err != nil {
		f.Close()
		return nil, err
	}
	return db, nil
}

func openFile(f *os.File, p string) (*DB, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("advisory: stat index: %w", err)
	}
	size := uint64(fi.Size())
	if size < uint64(len(magic)+footerLen) {
		return nil, fmt.Errorf("%w: %s: %d bytes", ErrCorrupt, p, size)
	}
	foot := make([]byte, footerLen)
	if _, err := f.ReadAt(foot, int64(size)-int64(footerLen)); err != nil {
		return nil, fmt.Errorf("%w: read footer: %w", ErrCorrupt, err)
	}
	if string(foot[7*8:]) != magic {
		return nil, fmt.Errorf("%w: %s: not a Bulwark advisory index", ErrCorrupt, p)
	}
	var v [7]uint64
	for i := range v {
		v[i] = binary.LittleEndian.Uint64(foot[i*8:])
	}
	advOff, advLen, pkgOff, pkgLen, metaOff, metaLen, want := v[0], v[1], v[2], v[3], v[4], v[5], v[6]
	if want != size {
		return nil, fmt.Errorf("%w: %s: %d bytes, footer says %d (truncated?)", ErrCorrupt, p, size, want)
	}
	for _, s := range [][2]uint64{{advOff, advLen}, {pkgOff, pkgLen}, {metaOff, metaLen}} {
		if s[0] > size || s[1] > size-s[0] {
			return nil, fmt.Errorf("%w: %s: section out of bounds", ErrCorrupt, p)
		}
	}
	db := &DB{f: f, path: p}
	if db.adv, err = readTable(f, advOff, advLen, advRowLen); err != nil {
		return nil, err
	}
	if db.pkg, err = readTable(f, pkgOff, pkgLen, pkgRowLen); err != nil {
		return nil, err
	}
	mb := make([]byte, metaLen)
	if _, err := f.ReadAt(mb, int64(metaOff)); err != nil {
		return nil, fmt.Errorf("%w: read meta: %w", ErrCorrupt, err)
	}
	if err := json.Unmarshal(mb, &db.meta); err != nil {
		return nil, fmt.Errorf("%w: meta: %w", ErrCorrupt, err)
	}
	if db.meta.Format != indexFormat {
		return nil, fmt.Errorf("%w: format %d, this build reads %d", ErrCorrupt, db.meta.Format, indexFormat)
	}
	return db, nil
}

// Close releases the file.
func (db *DB) Close() error { return db.f.Close() }

// Meta describes the index.
func (db *DB) Meta() Meta { return db.meta }

func (db *DB) readBlob(off uint64, n uint32) ([]byte, error) {
	if n > maxBlobLen {
		return nil, fmt.Errorf("%w: blob of %d bytes", ErrCorrupt, n)
	}
	b := make([]byte, n)
	if _, err := db.f.ReadAt(b, int64(off)); err != nil {
		return nil, fmt.Errorf("%w: read blob: %w", ErrCorrupt, err)
	}
	return b, nil
}

func (db *DB) entries(key string) ([]entry, error) {
	i, ok := db.pkg.find(key)
	if !ok {
		return nil, nil
	}
	row := db.pkg.rows[i*pkgRowLen:]
	b, err := db.readBlob(binary.LittleEndian.Uint64(row[8:]), binary.LittleEndian.Uint32(row[16:]))
	if err != nil {
		return nil, err
	}
	es, err := decodeEntries(b)
	if err != nil {
		return nil, fmt.Errorf("package %q: %w", key, err)
	}
	return es, nil
}

func (db *DB) summary(i uint32) (*summary, error) {
	if int(i) >= db.adv.n {
		return nil, fmt.Errorf("%w: advisory %d of %d", ErrCorrupt, i, db.adv.n)
	}
	row := db.adv.rows[int(i)*advRowLen:]
	b, err := db.readBlob(binary.LittleEndian.Uint64(row[8:]), binary.LittleEndian.Uint32(row[16:]))
	if err != nil {
		return nil, err
	}
	s, err := decodeSummary(b)
	if err != nil {
		return nil, fmt.Errorf("advisory %d: %w", i, err)
	}
	return s, nil
}

func (db *DB) raw(i int) ([]byte, error) {
	row := db.adv.rows[i*advRowLen:]
	b, err := db.readBlob(binary.LittleEndian.Uint64(row[20:]), binary.LittleEndian.Uint32(row[28:]))
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(b)), osv.MaxRecordSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: inflate record %d: %w", ErrCorrupt, i, err)
	}
	return out, nil
}

// ErrNotFound is returned by Get for an id the index does not hold.
var ErrNotFound = errors.New("advisory: not found")

// Get returns the whole record with this id, as imported.
func (db *DB) Get(id string) (*osv.Vulnerability, error) {
	i, ok := db.adv.find(id)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	b, err := db.raw(i)
	if err != nil {
		return nil, err
	}
	return osv.Unmarshal(b)
}

// Len is the number of records.
func (db *DB) Len() int { return db.adv.n }

// all calls fn for every record, in id order.
func (db *DB) all(fn func(*osv.Vulnerability, []byte) error) error {
	for i := range db.adv.n {
		b, err := db.raw(i)
		if err != nil {
			return err
		}
		v, err := osv.Unmarshal(b)
		if err != nil {
			return fmt.Errorf("%w: record %d: %w", ErrCorrupt, i, err)
		}
		if err := fn(v, b); err != nil {
			return err
		}
	}
	return nil
}
