package advisory

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwark-sec/bulwark/severity"
	"github.com/bulwark-sec/bulwark/testenv"
)

// vulndbDir is the real OSV data of ../shared/vulndb (Go, PyPI, crates.io,
// AlmaLinux; see its PROVENANCE.md).
func vulndbDir(t testing.TB) string {
	t.Helper()
	for _, d := range []string{"../../shared/vulndb", "../../../shared/vulndb"} {
		if fi, err := os.Stat(filepath.Join(d, "Go")); err == nil && fi.IsDir() {
			abs, _ := filepath.Abs(d)
			return abs
		}
	}
	testenv.Require(t, false, "the real OSV data in ../shared/vulndb is missing")
	return ""
}

var (
	realOnce sync.Once
	realDir  string
	realErr  error
)

// realIndex imports all of ../shared/vulndb once per test binary.
func realIndex(t testing.TB) *DB {
	t.Helper()
	src := vulndbDir(t)
	realOnce.Do(func() {
		realDir, realErr = os.MkdirTemp("", "bulwark-advisory-real-")
		if realErr != nil {
			return
		}
		var sources []Source
		for _, eco := range []string{"AlmaLinux", "Go", "PyPI", "crates.io"} {
			sources = append(sources, Source{Path: filepath.Join(src, eco), Ecosystem: eco})
		}
		_, realErr = Import(context.Background(), ImportConfig{Dir: realDir, Sources: sources})
	})
	if realErr != nil {
		t.Fatal(realErr)
	}
	db, err := Open(realDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestMain(m *testing.M) {
	code := m.Run()
	if realDir != "" {
		os.RemoveAll(realDir)
	}
	os.Exit(code)
}

func ids(ms []Match) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	sort.Strings(out)
	return out
}

// The tests below use only REAL data: all of ../shared/vulndb.

func TestRealGo(t *testing.T) {
	db := realIndex(t)
	tests := []struct {
		pkg       Package
		wantN     int
		wantSome  map[string][]string // id -> fixed
		wantNotID string
	}{
		{
			pkg:   Package{Ecosystem: "Go", Name: "stdlib", Version: "go1.21.0"},
			wantN: 89,
			wantSome: map[string][]string{
				"GO-2023-2041": {"1.21.1"},  // html/template, fixed in 1.21.1
				"GO-2023-2102": {"1.21.3"},  // HTTP/2 rapid reset
				"GO-2024-2887": {"1.21.11"}, // net/netip
			},
		},
		{
			pkg:      Package{Ecosystem: "Go", Name: "golang.org/x/net", Version: "v0.0.0-20210226172049-e18ecbb05110"},
			wantN:    29,
			wantSome: map[string][]string{"GO-2021-0238": {"0.0.0-20210520170846-37e1c6afe023"}, "GO-2022-0288": {"0.0.0-20211209124913-491a49abca63"}},
		},
		{
			pkg:      Package{Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.5"},
			wantN:    4,
			wantSome: map[string][]string{"GO-2021-0113": {"0.3.7"}, "GO-2022-1059": {"0.3.8"}},
		},
		{
			// The toolchain named "go" by some inventories is stdlib.
			pkg:      Package{Ecosystem: "Go", Name: "go", Version: "1.21.0"},
			wantN:    89,
			wantSome: map[string][]string{"GO-2023-2041": {"1.21.1"}},
		},
		{
			// Past every fix of x/text's advisories but one from 2026.
			pkg:       Package{Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.8"},
			wantN:     2,
			wantNotID: "GO-2022-1059",
		},
	}
	for _, tt := range tests {
		ms, err := db.Query(tt.pkg)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != tt.wantN {
			t.Errorf("%s %s: %d advisories %v, want %d", tt.pkg.Name, tt.pkg.Version, len(ms), ids(ms), tt.wantN)
		}
		byID := map[string]Match{}
		for _, m := range ms {
			byID[m.ID] = m
		}
		for id, fixed := range tt.wantSome {
			m, ok := byID[id]
			if !ok {
				t.Errorf("%s %s: %s missing", tt.pkg.Name, tt.pkg.Version, id)
				continue
			}
			if !cmp.Equal(m.Fixed, fixed) {
				t.Errorf("%s %s: %s fixed %v, want %v", tt.pkg.Name, tt.pkg.Version, id, m.Fixed, fixed)
			}
		}
		if _, ok := byID[tt.wantNotID]; tt.wantNotID != "" && ok {
			t.Errorf("%s %s: %s matched, but it is fixed", tt.pkg.Name, tt.pkg.Version, tt.wantNotID)
		}
	}
	// Withdrawn records are never returned: GO-2024-2442 is withdrawn.
	v, err := db.Get("GO-2024-2442")
	if err != nil || !v.IsWithdrawn() {
		t.Fatalf("Get(GO-2024-2442) = %v, %v; want a withdrawn record", v, err)
	}
	for _, a := range v.Affected {
		ms, err := db.Query(Package{Ecosystem: "Go", Name: a.Package.Name, Version: "0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.ID == v.ID {
				t.Errorf("withdrawn %s returned", v.ID)
			}
		}
	}
}

// TestRealPyPI: osv-scanner v2.6 finds 52 advisories for these three
// (../shared/research/vulndata.md); Bulwark finds 53. The one more is
// PYSEC-2022-304 (CVE-2022-41323, django < 3.2.16): osv-scanner stops at
// the record's GIT range, listed before its ECOSYSTEM range, and "3.2.0"
// is not in the versions list (which says "3.2"). Bulwark is right.
func TestRealPyPI(t *testing.T) {
	db := realIndex(t)
	pkgs := []Package{
		{Ecosystem: "PyPI", Name: "Django", Version: "3.2.0"},
		{Ecosystem: "PyPI", Name: "Pillow", Version: "8.0.0"},
		{Ecosystem: "PyPI", Name: "requests", Version: "2.19.0"},
	}
	ms, err := db.Match(context.Background(), pkgs)
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	byID := map[string]Match{}
	for _, m := range ms {
		per[m.Package.Name]++
		byID[m.ID] = m
	}
	if diff := cmp.Diff(map[string]int{"Django": 25, "Pillow": 26, "requests": 2}, per); diff != "" {
		t.Errorf("advisories per package (-want +got):\n%s", diff)
	}
	if m := byID["PYSEC-2022-304"]; !cmp.Equal(m.Fixed, []string{"3.2.16"}) {
		t.Errorf("PYSEC-2022-304 fixed %v, want [3.2.16]", m.Fixed)
	}
	if m := byID["PYSEC-2018-28"]; !cmp.Equal(m.Fixed, []string{"2.20.0"}) || !cmp.Equal(m.Aliases, []string{"CVE-2018-18074", "GHSA-x84v-xcm2-53pg"}) {
		t.Errorf("PYSEC-2018-28 = %+v", m)
	}
}

func TestRealAlmaLinux(t *testing.T) {
	db := realIndex(t)
	// openssl 1:3.0.7-24.el9, as AlmaLinux 9.3 shipped it; the epoch is part
	// of the version, as in the records.
	ms, err := db.Query(Package{Ecosystem: "AlmaLinux:9", Name: "openssl", Version: "1:3.0.7-24.el9"})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]Match{}
	for _, m := range ms {
		byID[m.ID] = m
		if m.Ecosystem != "AlmaLinux:9" {
			t.Errorf("%s: record ecosystem %s matched AlmaLinux:9", m.ID, m.Ecosystem)
		}
	}
	m, ok := byID["ALSA-2024:0310"]
	if !ok {
		t.Fatalf("ALSA-2024:0310 missing from %v", ids(ms))
	}
	if !cmp.Equal(m.Fixed, []string{"1:3.0.7-25.el9_3"}) || m.Severity.Level != severity.Medium || m.Severity.Rating != "Moderate" || m.Severity.Source != "distro" {
		t.Errorf("ALSA-2024:0310 = fixed %v severity %+v; want fixed 1:3.0.7-25.el9_3, Moderate from the distro", m.Fixed, m.Severity)
	}
	// The fixed build is not affected by it.
	ms, err = db.Query(Package{Ecosystem: "AlmaLinux:9", Name: "openssl", Version: "1:3.0.7-25.el9_3"})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.ID == "ALSA-2024:0310" {
			t.Error("ALSA-2024:0310 matched its own fixed version")
		}
	}
	// The same package on AlmaLinux 8 matches only AlmaLinux:8 records.
	ms8, err := db.Query(Package{Ecosystem: "AlmaLinux:8", Name: "openssl", Version: "1:1.1.1k-9.el8_7"})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms8 {
		if m.Ecosystem != "AlmaLinux:8" {
			t.Errorf("%s: record ecosystem %s matched AlmaLinux:8", m.ID, m.Ecosystem)
		}
	}
	if len(ms8) == 0 {
		t.Error("no AlmaLinux:8 advisory for openssl 1:1.1.1k-9.el8_7")
	}
}

func TestRealCratesCVSS(t *testing.T) {
	db := realIndex(t)
	// RUSTSEC records carry CVSS v3.1 vectors; the score is computed.
	n := 0
	for _, id := range []string{"RUSTSEC-2016-0001", "RUSTSEC-2016-0002"} {
		v, err := db.Get(id)
		if err != nil {
			continue
		}
		for _, a := range v.Affected {
			ms, err := db.Query(Package{Ecosystem: "crates.io", Name: a.Package.Name, Version: "0.0.1"})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				if m.ID == id {
					n++
					if m.Severity.Source != "cvss" || m.Severity.Score <= 0 {
						t.Errorf("%s severity %+v, want a computed CVSS score", id, m.Severity)
					}
				}
			}
		}
	}
	if n == 0 {
		t.Error("no RUSTSEC record with a CVSS vector matched")
	}
}
