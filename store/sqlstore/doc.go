// Package sqlstore implements store.Store on SQL databases: SQLite through
// modernc.org/sqlite (pure Go, WAL mode; the embedded default) and
// PostgreSQL through pgx (for several central replicas sharing one
// database).
//
// Both databases run the same queries through database/sql; what differs is
// kept in a small dialect value: placeholder style, column types in the
// migration files under migrations/<dialect>/, and how concurrent migrators
// are serialised (an advisory lock on PostgreSQL, an immediate write
// transaction on SQLite). Keeping one implementation means one behaviour,
// which the storetest suite checks on both.
//
// Migrations are numbered SQL files embedded in the binary, applied in one
// transaction at Open, recorded in schema_migrations; running them twice, or
// from two processes at once, applies each exactly once.
package sqlstore
