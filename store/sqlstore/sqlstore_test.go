package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bulwark-sec/bulwark/store"
	"github.com/bulwark-sec/bulwark/store/sqlstore"
	"github.com/bulwark-sec/bulwark/store/storetest"
	"github.com/bulwark-sec/bulwark/testenv"
)

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "bulwark.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestPostgres(t *testing.T) {
	pg := testenv.Postgres(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlstore.Open(context.Background(), pg.NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// migratorEnv makes the test binary act as one migrating process.
const migratorEnv = "BULWARK_TEST_MIGRATOR_DSN"

func TestMain(m *testing.M) {
	if dsn := os.Getenv(migratorEnv); dsn != "" {
		s, err := sqlstore.Open(context.Background(), dsn)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		s.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestMigrateConcurrently starts several processes that open the same fresh
// database at once: all must succeed and each migration must be applied once.
func TestMigrateConcurrently(t *testing.T) {
	dsns := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "race.db") },
		"postgres": func(t *testing.T) string { return testenv.Postgres(t).NewDatabase(t) },
	}
	for name, mk := range dsns {
		t.Run(name, func(t *testing.T) {
			dsn := mk(t)
			const procs = 4
			var wg sync.WaitGroup
			errs := make([]error, procs)
			for i := range procs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cmd := exec.Command(os.Args[0], "-test.run=^$")
					cmd.Env = append(os.Environ(), migratorEnv+"="+dsn)
					if out, err := cmd.CombinedOutput(); err != nil {
						errs[i] = fmt.Errorf("%v: %s", err, out)
					}
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("migrator %d: %v", i, err)
				}
			}
			s, err := sqlstore.Open(context.Background(), dsn) // and a fifth time, in-process
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			n, err := s.AppliedMigrations(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if n != s.KnownMigrations() {
				t.Fatalf("schema_migrations has %d rows, want %d (each applied once)", n, s.KnownMigrations())
			}
		})
	}
}

func TestSchemaTooNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	s, err := sqlstore.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RecordFutureMigration(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = sqlstore.Open(context.Background(), path)
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("opening a newer schema: error = %v, want ErrSchemaTooNew", err)
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct{ dsn, want string }{
		{"", "empty database name"},
		{"mysql://root@localhost/db", "unsupported database URL scheme"},
		{":memory:", "file path is required"},
		{"postgres://u:secret@127.0.0.1:1/db?sslmode=disable&connect_timeout=2", "xxxxx"},
	}
	for _, tt := range tests {
		_, err := sqlstore.Open(context.Background(), tt.dsn)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Open(%q) error = %v, want it to mention %q", tt.dsn, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%q) error leaks the password: %v", tt.dsn, err)
		}
	}
}
