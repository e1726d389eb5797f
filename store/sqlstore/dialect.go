package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// dialect is what differs between the SQL databases we support.
type dialect struct {
	name string // also the folder of its migrations
	// numbered: placeholders are $1, $2, ... instead of ?.
	numbered bool
	// lock serialises migrators across processes on conn and returns the
	// matching unlock. SQLite needs none: its migration transaction is
	// BEGIN IMMEDIATE, which already excludes other writers.
	lock func(ctx context.Context, conn *sql.Conn) (unlock func(), err error)
}

// migrationLockKey is the PostgreSQL advisory lock that migrators take.
// Arbitrary but fixed: "bulwark" in ASCII.
const migrationLockKey = 0x62756c7761726b

var sqliteDialect = dialect{name: "sqlite"}

var postgresDialect = dialect{
	name:     "postgres",
	numbered: true,
	lock: func(ctx context.Context, conn *sql.Conn) (func(), error) {
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrationLockKey); err != nil {
			return nil, fmt.Errorf("take migration lock: %w", err)
		}
		return func() {
			// A fresh context: the caller's may be done, and the lock must
			// be released before the connection goes back to the pool.
			_, _ = conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock($1)", migrationLockKey)
		}, nil
	},
}

// bind rewrites a query written with ? placeholders for the dialect.
// Queries in this package never contain a literal question mark.
func (d dialect) bind(query string) string {
	if !d.numbered {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}
