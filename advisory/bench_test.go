package advisory

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkImport imports all of ../shared/vulndb (14,293 real records)
// into a fresh index.
func BenchmarkImport(b *testing.B) {
	src := vulndbDir(b)
	var sources []Source
	for _, eco := range []string{"AlmaLinux", "Go", "PyPI", "crates.io"} {
		sources = append(sources, Source{Path: filepath.Join(src, eco), Ecosystem: eco})
	}
	for b.Loop() {
		if _, err := Import(context.Background(), ImportConfig{Dir: b.TempDir(), Sources: sources}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen opens the index of all of ../shared/vulndb.
func BenchmarkOpen(b *testing.B) {
	realIndex(b)
	for b.Loop() {
		db, err := Open(realDir)
		if err != nil {
			b.Fatal(err)
		}
		db.Close()
	}
}

// image500 is an image-sized inventory: 500 packages of the four real
// ecosystems, every one of them with advisories in the data (the worst
// case: most packages of a real image have none).
func image500(b testing.TB, db *DB) []Package {
	var pkgs []Package
	for i := 0; len(pkgs) < 500 && i < db.pkg.n; i++ {
		k := string(db.pkg.key(i * (db.pkg.n / 500)))
		eco, name, _ := cut0(k)
		ver := map[string]string{"Go": "v0.1.0", "PyPI": "1.0.0", "crates.io": "0.1.0", "AlmaLinux": "1.0-1.el9"}[eco]
		if eco == "AlmaLinux" {
			eco = "AlmaLinux:9"
		}
		pkgs = append(pkgs, Package{Ecosystem: eco, Name: name, Version: ver})
	}
	return pkgs
}

func cut0(k string) (string, string, bool) {
	for i := range len(k) {
		if k[i] == 0 {
			return k[:i], k[i+1:], true
		}
	}
	return k, "", false
}

// BenchmarkMatch500 matches 500 packages against the real index, each
// iteration on a freshly opened index (a CLI run: no warm cache).
func BenchmarkMatch500(b *testing.B) {
	db := realIndex(b)
	pkgs := image500(b, db)
	n := 0
	for b.Loop() {
		db, err := Open(realDir)
		if err != nil {
			b.Fatal(err)
		}
		ms, err := db.Match(context.Background(), pkgs)
		if err != nil {
			b.Fatal(err)
		}
		n = len(ms)
		db.Close()
	}
	b.ReportMetric(float64(n), "matches")
	b.ReportMetric(float64(len(pkgs)), "packages")
}

var _ = fmt.Sprint
