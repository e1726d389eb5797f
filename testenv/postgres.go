package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver for readiness and CREATE DATABASE
)

// PostgresServer is a running PostgreSQL server owned by one test.
type PostgresServer struct {
	// DSN connects to the server's "postgres" database as superuser.
	DSN  string
	Port int
	Dir  string
	dbs  atomic.Int64
}

// postgresBinDir finds the directory holding initdb and postgres:
// BULWARK_PG_BINDIR, else the newest /usr/lib/postgresql/*/bin, else PATH.
func postgresBinDir() (string, error) {
	if d := os.Getenv("BULWARK_PG_BINDIR"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("initdb not found in /usr/lib/postgresql/*/bin or PATH: install PostgreSQL (apt-get install postgresql) or set BULWARK_PG_BINDIR")
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Postgres starts a PostgreSQL server for the test and stops it at cleanup.
// As root it runs the server as the "postgres" user, since PostgreSQL
// refuses to run as root.
func Postgres(t testing.TB) *PostgresServer {
	t.Helper()
	bin, err := postgresBinDir()
	Require(t, err == nil, "%v", err)

	var cred *syscall.Credential
	dir := workDir(t, "bulwark-pg-")
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		Require(t, err == nil, "running as root needs a 'postgres' user to run PostgreSQL as (%v)", err)
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(dir, "data")
	run := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
		if cred != nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		return cmd
	}
	start := time.Now()
	if out, err := run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	port := FreePort(t)
	cmd := run("postgres", "-D", data, "-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=200")
	p, err := startProcess("postgres", cmd, filepath.Join(dir, "postgres.log"))
	if err != nil {
		t.Fatal(err)
	}
	logOnFailure(t, p)
	t.Cleanup(func() { p.stop(syscall.SIGINT, 10*time.Second) }) // SIGINT: fast shutdown

	s := &PostgresServer{DSN: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port), Port: port, Dir: dir}
	db, err := sql.Open("pgx", s.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := waitFor(p, 30*time.Second, func() error { return db.Ping() }); err != nil {
		t.Fatalf("postgres: %v", err)
	}
	t.Logf("testenv: postgres ready on 127.0.0.1:%d in %s", port, time.Since(start).Round(time.Millisecond))
	return s
}

// NewDatabase creates an empty database on the server and returns its DSN.
func (s *PostgresServer) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("db%d", s.dbs.Add(1))
	db, err := sql.Open("pgx", s.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, name)
}
