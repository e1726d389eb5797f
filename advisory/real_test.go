package advisory

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"

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
