package service

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bulwark-sec/bulwark/store"
	"github.com/bulwark-sec/bulwark/store/sqlstore"
	"github.com/bulwark-sec/bulwark/testenv"
)

// serveChildEnv makes the test binary run `audit serve` with the config
// file it names and the SQLite database in serveChildDBEnv.
const (
	serveChildEnv   = "BULWARK_TEST_AUDIT_SERVE_CONFIG"
	serveChildDBEnv = "BULWARK_TEST_AUDIT_SERVE_DB"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(serveChildEnv); path != "" {
		os.Exit(serveChild(path, os.Getenv(serveChildDBEnv)))
	}
	os.Exit(m.Run())
}

func serveChild(cfgPath, dbPath string) int {
	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	st, err := sqlstore.Open(context.Background(), dbPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer st.Close()
	err = Run(context.Background(), cfg, Deps{Store: st, Ready: func(a net.Addr) { fmt.Printf("READY %s\n", a) }})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestAcknowledgedSurvivesKill posts a batch to `audit serve` running as its
// own process, kills the process with SIGKILL the moment the batch is
// acknowledged, and expects every alert of the batch in the database: an
// acknowledged batch is never lost.
func TestAcknowledgedSurvivesKill(t *testing.T) {
	dir := t.TempDir()
	pki := testenv.NewPKI(t)
	serving := pki.ServingCert(t, "bulwark-audit", "127.0.0.1")
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "serve.yaml")
	cfg := fmt.Sprintf("cluster: kill\nstateDir: %s\nwebhook:\n  listen: 127.0.0.1:0\n  certFile: %s\n  keyFile: %s\n  tokenFile: %s\n",
		filepath.Join(dir, "state"), serving.CertFile, serving.KeyFile, token)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(dir, "alerts.db")

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serveChildEnv+"="+cfgPath, serveChildDBEnv+"="+dbPath)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				ready <- addr
			}
		}
	}()
	var addr string
	select {
	case addr = <-ready:
	case <-time.After(30 * time.Second):
		t.Fatalf("audit serve did not start: %s", stderr.String())
	}

	// The batch: every audit event of the replay fixture.
	src, err := os.ReadFile("testdata/replay.log")
	if err != nil {
		t.Fatal(err)
	}
	var items []string
	for _, line := range strings.Split(strings.TrimSpace(string(src)), "\n") {
		if strings.HasPrefix(line, "{") {
			items = append(items, line)
		}
	}
	body := `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[` + strings.Join(items, ",") + `]}`
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.CertPool()}}}
	req, _ := http.NewRequest(http.MethodPost, "https://"+addr+"/audit", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer s3cret")
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// Killed at once: no drain, no graceful stop.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("batch answered %d, want 200\n%s", resp.StatusCode, stderr.String())
	}
	_ = cmd.Wait()

	st, err := sqlstore.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	alerts, err := st.Alerts(context.Background(), store.AlertQuery{ClusterID: "kill"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, a := range alerts {
		got[a.RuleID] = true
	}
	for _, want := range []string{"AUD-PRIVILEGED-CONTAINER", "AUD-EXEC", "AUD-DELETE-EVENTS"} {
		if !got[want] {
			t.Errorf("alert %s of an acknowledged batch is missing after kill -9 (stored: %v)", want, got)
		}
	}
}
