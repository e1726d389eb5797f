package advisory

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwark-sec/bulwark/advisory/osv"
)

// writeRecords writes records (written for the test) into a new folder.
func writeRecords(t *testing.T, recs map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range recs {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// lodashV2 is a written npm record replacing the npm records of
// testdata/written.
const lodashV2 = `{"id":"GHSA-29mw-wpgm-hmr9","aliases":["CVE-2020-28500"],"summary":"ReDoS in lodash",
"affected":[{"package":{"ecosystem":"npm","name":"lodash"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"4.0.0"},{"fixed":"4.17.21"}]}]}],
"database_specific":{"severity":"MODERATE"}}`

func TestImportReplacesOnlyItsEcosystems(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	if _, err := Import(ctx, ImportConfig{Dir: dir, Sources: []Source{{Path: "testdata/written"}}}); err != nil {
		t.Fatal(err)
	}
	old, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()

	res, err := Import(ctx, ImportConfig{Dir: dir, Sources: []Source{{Path: writeRecords(t, map[string]string{"a.json": lodashV2})}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Kept != 7 || res.Records != 8 {
		t.Errorf("kept %d records, total %d; want the 7 non-npm records kept and 8 in all", res.Kept, res.Records)
	}
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	lodash := Package{Ecosystem: "npm", Name: "lodash", Version: "4.17.15"}
	newMs, _ := db.Query(lodash)
	if diff := cmp.Diff([]string{"GHSA-29mw-wpgm-hmr9"}, ids(newMs)); diff != "" {
		t.Errorf("new index, npm (-want +got):\n%s", diff)
	}
	deb, _ := db.Query(Package{Ecosystem: "Debian:12", Name: "openssl", Version: "3.0.9-1"})
	if len(deb) != 2 {
		t.Errorf("Debian records not kept: %v", ids(deb))
	}
	// A DB opened before the update still reads the old file.
	oldMs, err := old.Query(lodash)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"GHSA-35jh-r3h4-6jhm", "GHSA-p6mc-m468-83gw"}, ids(oldMs)); diff != "" {
		t.Errorf("old DB after update (-want +got):\n%s", diff)
	}
	// A named ecosystem with an empty source drops that ecosystem.
	res, err = Import(ctx, ImportConfig{Dir: dir, Sources: []Source{{Path: t.TempDir(), Ecosystem: "npm"}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 7 {
		t.Errorf("after empty npm export: %d records, want 7", res.Records)
	}
}

func TestImportFailureKeepsOldIndex(t *testing.T) {
	dir := t.TempDir()
	if _, err := Import(context.Background(), ImportConfig{Dir: dir, Sources: []Source{{Path: "testdata/written"}}}); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(IndexPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	// A crashed writer leaves its temporary file behind.
	if err := os.WriteFile(filepath.Join(dir, ".osv.idx.tmp-123"), []byte("half an index"), 0o600); err != nil {
		t.Fatal(err)
	}
	// An import cancelled half-way, and one of a broken zip, both fail ...
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	_, err = Import(ctx, ImportConfig{Dir: dir, Sources: []Source{{Path: "testdata/written"}}, Progress: func(string, string, int) {
		if n++; n == 1 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled import: %v, want context.Canceled", err)
	}
	bad := filepath.Join(t.TempDir(), "all.zip")
	os.WriteFile(bad, []byte("PK\x03\x04 not really a zip"), 0o600)
	if _, err := Import(context.Background(), ImportConfig{Dir: dir, Sources: []Source{{Path: bad}}}); !errors.Is(err, ErrSource) {
		t.Errorf("broken zip: %v, want ErrSource", err)
	}
	// ... and the index is the old one, byte for byte, and opens.
	after, err := os.ReadFile(IndexPath(dir))
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("index changed by failed imports (err %v)", err)
	}
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
}

func TestOpenCorrupt(t *testing.T) {
	if _, err := Open(t.TempDir()); !errors.Is(err, ErrNoIndex) {
		t.Errorf("empty dir: %v, want ErrNoIndex", err)
	}
	dir := t.TempDir()
	if _, err := Import(context.Background(), ImportConfig{Dir: dir, Sources: []Source{{Path: "testdata/written"}}}); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(IndexPath(dir))
	cases := map[string][]byte{
		"truncated":    good[:len(good)-100],
		"empty":        nil,
		"not an index": []byte(strings.Repeat("x", 200)),
		"bad footer":   append(append([]byte{}, good[:len(good)-3]...), "XXX"...),
	}
	// Offsets pointing past the end.
	far := append([]byte{}, good...)
	for i := len(far) - footerLen; i < len(far)-footerLen+8; i++ {
		far[i] = 0xff
	}
	cases["offsets out of range"] = far
	for name, b := range cases {
		d := t.TempDir()
		os.WriteFile(IndexPath(d), b, 0o600)
		if db, err := Open(d); !errors.Is(err, ErrCorrupt) {
			if db != nil {
				db.Close()
			}
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

func TestHostileSources(t *testing.T) {
	dir := t.TempDir()
	zpath := filepath.Join(t.TempDir(), "all.zip")
	f, _ := os.Create(zpath)
	zw := zip.NewWriter(f)
	w, _ := zw.Create("BOMB.json") // 32 MiB of spaces, a few KB compressed
	chunk := bytes.Repeat([]byte(" "), 1<<20)
	for range 32 {
		w.Write(chunk)
	}
	w, _ = zw.Create("../../escape.json")
	w.Write([]byte(lodashV2))
	w, _ = zw.Create("garbage.json")
	w.Write([]byte("{\"id\": 3"))
	zw.Close()
	f.Close()
	res, err := Import(context.Background(), ImportConfig{Dir: dir, Sources: []Source{{Path: zpath}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 1 || len(res.Skipped) != 2 {
		t.Errorf("records %d, skipped %+v; want 1 record, the bomb and the garbage skipped", res.Records, res.Skipped)
	}
	for _, s := range res.Skipped {
		if strings.Contains(s.Origin, "BOMB") && !strings.Contains(s.Err, osv.ErrTooLarge.Error()) {
			t.Errorf("bomb skipped for %q, want too large", s.Err)
		}
	}
	// Nothing was written outside the database directory.
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escape.json")); err == nil {
		t.Error("a zip entry escaped")
	}
	if _, err := Import(context.Background(), ImportConfig{Dir: dir, Sources: []Source{{Path: "/does/not/exist"}}}); !errors.Is(err, ErrSource) {
		t.Errorf("missing source: %v, want ErrSource", err)
	}
}

func TestEntriesRoundTrip(t *testing.T) {
	es := []entry{{Adv: 7, Eco: "Debian:12", Name: "openssl", HasGit: true, Rating: "low",
		Ranges:   []osv.Range{{Type: "ECOSYSTEM", Events: []osv.Event{{Introduced: "0"}, {Fixed: "1.0"}, {LastAffected: "0.9"}, {Limit: "2.0"}}}},
		Versions: []string{"0.1", "0.2"}, Severity: []osv.Severity{{Type: "CVSS_V3", Score: "CVSS:3.1/AV:N"}}},
		{Adv: 0, Eco: "npm", Name: "x"}}
	back, err := decodeEntries(encodeEntries(es))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(es, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func FuzzDecodeEntries(f *testing.F) {
	f.Add(encodeEntries([]entry{{Adv: 1, Eco: "Go", Name: "stdlib", Ranges: []osv.Range{{Type: "SEMVER", Events: []osv.Event{{Introduced: "0"}, {Fixed: "1.21.1"}}}}}}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := decodeEntries(b)
		if err != nil {
			return
		}
		if _, err := decodeEntries(encodeEntries(es)); err != nil {
			t.Fatalf("re-encoded entries do not decode: %v", err)
		}
	})
}

// FuzzRange checks that range evaluation never panics on any events and
// any version, in the orderings with the strictest parsers.
func FuzzRange(f *testing.F) {
	f.Add("Debian:12", "0", "3.0.11-1~deb12u2", "", "3.0.11-1~deb12u1")
	f.Add("PyPI", "3.2", "3.2.16", "", "3.2.0")
	f.Add("Go", "0", "", "1.21.1", "go1.21.0")
	db := &DB{}
	f.Fuzz(func(t *testing.T, eco, intro, fixed, last, ver string) {
		v, err := db.parse(eco, ver)
		if err != nil {
			return
		}
		r := osv.Range{Type: "ECOSYSTEM", Events: []osv.Event{{Introduced: intro}, {Fixed: fixed}, {LastAffected: last}}}
		db.inRange(eco, r, v)
	})
}

func TestSummaryRoundTrip(t *testing.T) {
	v, err := osv.Unmarshal([]byte(`{"id":"GHSA-jfh8-c2jp-5v3q","aliases":["CVE-2021-44228"],"related":["X"],"upstream":["Y"],"summary":"s",
"published":"2021-12-10T00:40:56Z","withdrawn":"2022-01-01T00:00:00Z",
"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"}],
"affected":[{"package":{"ecosystem":"Maven","name":"a:b"}}],"database_specific":{"severity":"CRITICAL"}}`))
	if err != nil {
		t.Fatal(err)
	}
	s := summarize(v)
	back, err := decodeSummary(encodeSummary(&s))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&s, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	for i := range len(encodeSummary(&s)) {
		decodeSummary(encodeSummary(&s)[:i]) // truncated: an error, never a panic
	}
}

func TestConcurrentImports(t *testing.T) {
	dir := t.TempDir()
	npm := writeRecords(t, map[string]string{"a.json": lodashV2})
	errs := make(chan error, 2)
	for _, src := range []string{"testdata/written", npm} {
		go func() {
			_, err := Import(context.Background(), ImportConfig{Dir: dir, Sources: []Source{{Path: src}}})
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Whichever ran second merged with the first: Debian is there either way.
	if ms, _ := db.Query(Package{Ecosystem: "Debian:12", Name: "openssl", Version: "3.0.9-1"}); len(ms) != 2 {
		t.Errorf("Debian after concurrent imports: %v", ids(ms))
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, ".osv.idx.tmp-*")); len(tmps) != 0 {
		t.Errorf("temporary files left: %v", tmps)
	}
}
