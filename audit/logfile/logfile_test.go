package logfile

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwark-sec/bulwark/audit"
)

type recorder struct {
	mu       sync.Mutex
	ids      []string
	rejected map[string]int
}

func (r *recorder) Handle(_ context.Context, _ string, evs []*audit.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range evs {
		r.ids = append(r.ids, string(e.AuditID))
	}
	return nil
}

func (r *recorder) Rejected(_ context.Context, _, reason string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rejected == nil {
		r.rejected = map[string]int{}
	}
	r.rejected[reason] += n
}

func (r *recorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids...)
}

func line(id string) string {
	return fmt.Sprintf(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":%q,"stage":"ResponseComplete","requestURI":"/api","verb":"get","user":{"username":"u"}}`+"\n", id)
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func waitFor(t *testing.T, r *recorder, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(r.snapshot()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("got %v, want %d events", r.snapshot(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFollowRotationAndRestart writes, rotates, stops and restarts the
// follower, and checks that every event is handed over exactly once.
func TestFollowRotationAndRestart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	cfg := Config{Path: path, StatePath: filepath.Join(dir, "state.json"), Poll: 5 * time.Millisecond}
	rec := &recorder{}
	start := func() (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- Follow(ctx, cfg, rec) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Follow: %v", err)
			}
		}
	}
	appendTo(t, path, line("1")+line("2"))
	stop := start()
	waitFor(t, rec, 2)
	// A partial line waits for its end.
	appendTo(t, path, line("3")[:20])
	time.Sleep(30 * time.Millisecond)
	appendTo(t, path, line("3")[20:]+"garbage\n"+line("4"))
	waitFor(t, rec, 4)
	// Rotation while running: rename and start a new file.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path+".1", line("5")) // written by the apiserver before it reopened
	appendTo(t, path, line("6"))
	waitFor(t, rec, 6)
	stop()

	// Written while stopped, including a rotation: a restart resumes.
	appendTo(t, path, line("7"))
	if err := os.Rename(path, path+".2"); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path, line("8"))
	stop = start()
	waitFor(t, rec, 8)
	stop()
	// Restart with nothing new: nothing repeats.
	stop = start()
	time.Sleep(50 * time.Millisecond)
	stop()
	if diff := cmp.Diff([]string{"1", "2", "3", "4", "5", "6", "7", "8"}, rec.snapshot()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if rec.rejected["malformed"] != 1 {
		t.Errorf("rejected = %v", rec.rejected)
	}
}

func TestOnceAndTruncation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	appendTo(t, path, line("a")+line("b"))
	cfg := Config{Path: path, StatePath: filepath.Join(dir, "s"), Once: true}
	rec := &recorder{}
	if err := Follow(context.Background(), cfg, rec); err != nil {
		t.Fatal(err)
	}
	// Truncated and rewritten in place: read from the start.
	if err := os.WriteFile(path, []byte(line("c")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Follow(context.Background(), cfg, rec); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a", "b", "c"}, rec.snapshot()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if err := Follow(context.Background(), Config{Path: path}, rec); err != ErrNoState {
		t.Errorf("no state path: %v", err)
	}
}
