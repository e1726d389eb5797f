package service

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-sec/bulwark/store"
	"github.com/bulwark-sec/bulwark/store/sqlstore"
)

// TestServeFileToStore runs serve on a followed audit log with a SQLite
// store, restarts it, and checks that alerts are stored once each: the
// offset persisted in the state directory means no event is repeated.
func TestServeFileToStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlstore.Open(ctx, filepath.Join(dir, "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.UpsertCluster(ctx, store.Cluster{ID: "lab", Name: "lab"}); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "audit.log")
	src, err := os.ReadFile("testdata/replay.log")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(src), "\n")
	if err := os.WriteFile(logPath, []byte(strings.Join(lines[:3], "")), 0o600); err != nil { // up to the privileged pod
		t.Fatal(err)
	}
	cfg := Config{Cluster: "lab", StateDir: filepath.Join(dir, "state"), Fold: -1, Files: []FileConfig{{Path: logPath}}}
	serve := func(until func() bool) {
		t.Helper()
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- Run(rctx, cfg, Deps{Store: st}) }()
		deadline := time.Now().Add(10 * time.Second)
		for !until() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	count := func(rule string) int64 {
		as, err := st.Alerts(ctx, store.AlertQuery{ClusterID: "lab"})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if a.RuleID == rule {
				return a.Count
			}
		}
		return 0
	}
	serve(func() bool { return count("AUD-PRIVILEGED-CONTAINER") == 1 })
	// The rest of the log arrives while serve is down.
	f, err := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(strings.Join(lines[3:], ""))
	f.Close()
	serve(func() bool { return count("AUD-DELETE-EVENTS") == 1 })
	if got := []int64{count("AUD-PRIVILEGED-CONTAINER"), count("AUD-EXEC"), count("AUD-DELETE-EVENTS")}; got[0] != 1 || got[1] != 2 || got[2] != 1 {
		t.Errorf("stored counts (privileged, exec, delete events) = %v, want [1 2 1]", got)
	}
}
