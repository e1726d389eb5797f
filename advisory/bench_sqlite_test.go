package advisory

import (
	"context"
	"database/sql"
	"encoding/binary"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"
)

// BenchmarkSQLiteAlternative measures the format this package did not
// take: the same package blobs and advisory summaries in SQLite (modernc,
// the driver the store uses), keyed the same way. Each iteration opens
// the database and looks up the packages of BenchmarkMatch500 (blobs and
// the summaries of their entries), without evaluating ranges: compare
// with BenchmarkOpen + BenchmarkLookup500.
func BenchmarkSQLiteAlternative(b *testing.B) {
	db := realIndex(b)
	pkgs := image500(b, db)
	path := filepath.Join(b.TempDir(), "osv.sqlite")
	sdb, err := sql.Open("sqlite", path)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	tx, _ := sdb.BeginTx(ctx, nil)
	tx.Exec(`CREATE TABLE pkg (key TEXT PRIMARY KEY, blob BLOB) WITHOUT ROWID`)
	tx.Exec(`CREATE TABLE adv (i INTEGER PRIMARY KEY, summary BLOB)`)
	for i := range db.pkg.n {
		row := db.pkg.rows[i*pkgRowLen:]
		blob, _ := db.readBlob(binary.LittleEndian.Uint64(row[8:]), binary.LittleEndian.Uint32(row[16:]))
		tx.Exec(`INSERT INTO pkg VALUES (?, ?)`, string(db.pkg.key(i)), blob)
	}
	for i := range db.adv.n {
		row := db.adv.rows[i*advRowLen:]
		blob, _ := db.readBlob(binary.LittleEndian.Uint64(row[8:]), binary.LittleEndian.Uint32(row[16:]))
		tx.Exec(`INSERT INTO adv VALUES (?, ?)`, i, blob)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	sdb.Close()
	for b.Loop() {
		sdb, err := sql.Open("sqlite", path+"?mode=ro")
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range pkgs {
			var blob []byte
			err := sdb.QueryRow(`SELECT blob FROM pkg WHERE key = ?`, packageKey(p.Ecosystem, p.Name)).Scan(&blob)
			if err != nil {
				continue
			}
			es, _ := decodeEntries(blob)
			for _, e := range es {
				var s []byte
				sdb.QueryRow(`SELECT summary FROM adv WHERE i = ?`, e.Adv).Scan(&s)
			}
		}
		sdb.Close()
	}
}

// BenchmarkLookup500 is BenchmarkSQLiteAlternative's work on this
// package's own format: open, then read the blobs and summaries.
func BenchmarkLookup500(b *testing.B) {
	db := realIndex(b)
	pkgs := image500(b, db)
	for b.Loop() {
		d, err := Open(realDir)
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range pkgs {
			es, _ := d.entries(packageKey(p.Ecosystem, p.Name))
			for _, e := range es {
				d.summary(e.Adv)
			}
		}
		d.Close()
	}
}
