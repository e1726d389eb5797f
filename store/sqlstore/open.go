package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "modernc.org/sqlite"             // registers "sqlite"
)

// Open connects to the database named by dsn and applies pending migrations.
//
//	postgres://user:pass@host:5432/db?sslmode=disable   PostgreSQL (also postgresql://)
//	sqlite:///var/lib/bulwark/bulwark.db               SQLite (also a plain file path)
func Open(ctx context.Context, dsn string) (*Store, error) {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return OpenPostgres(ctx, dsn)
	case strings.HasPrefix(dsn, "sqlite://"):
		return OpenSQLite(ctx, strings.TrimPrefix(dsn, "sqlite://"))
	case strings.HasPrefix(dsn, "sqlite:"):
		return OpenSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"))
	case strings.Contains(dsn, "://"):
		return nil, fmt.Errorf("open store: unsupported database URL scheme in %q (want postgres:// or sqlite://)", redact(dsn))
	case dsn == "":
		return nil, fmt.Errorf("open store: empty database name")
	default:
		return OpenSQLite(ctx, dsn)
	}
}

// OpenSQLite opens (creating if needed) the SQLite database file at path.
func OpenSQLite(ctx context.Context, path string) (*Store, error) {
	if path == "" || path == ":memory:" {
		return nil, fmt.Errorf("open sqlite: a file path is required (an in-memory database is private to one connection)")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	q := url.Values{}
	for _, p := range []string{
		"busy_timeout(15000)", // wait for other writers instead of failing with SQLITE_BUSY
		"journal_mode(WAL)",   // readers never block the writer
		"synchronous(NORMAL)", // durable at checkpoints; safe with WAL
		"foreign_keys(1)",
	} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate") // take the write lock at BEGIN: no deadlocked upgrades
	q.Set("_time_format", "sqlite")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return open(ctx, db, sqliteDialect, path)
}

// OpenPostgres connects to PostgreSQL.
func OpenPostgres(ctx context.Context, dsn string) (*Store, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres %s: %w", redact(dsn), err)
	}
	db.SetMaxOpenConns(16)
	return open(ctx, db, postgresDialect, redact(dsn))
}

func open(ctx context.Context, db *sql.DB, d dialect, where string) (*Store, error) {
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s store at %s: %w", d.name, where, err)
	}
	n, err := migrate(ctx, db, d)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s store at %s: %w", d.name, where, err)
	}
	if n > 0 {
		slog.Info("store migrated", "dialect", d.name, "applied", n)
	}
	return &Store{db: db, d: d}, nil
}

// redact hides a password in a database URL for logs and errors.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
