package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bulwark-sec/bulwark/testenv"
)

// buildBulwark compiles the real binary once per test run.
var buildBulwark = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "bulwark-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "bulwark")
	cmd := exec.Command("go", "build", "-ldflags",
		"-X github.com/bulwark-sec/bulwark/version.Version=v0.0.0-test -X github.com/bulwark-sec/bulwark/version.Commit=abc123",
		"-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func bulwarkBin(t *testing.T) string {
	t.Helper()
	bin, err := buildBulwark()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// safeBuffer collects a process's output while it runs.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func fetch(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestUpProcess starts `bulwark up` as a process, fetches its endpoints, and
// stops it with SIGTERM; then starts it again on the same data dir, this
// time configured through the environment.
func TestUpProcess(t *testing.T) {
	bin := bulwarkBin(t)
	dataDir := t.TempDir()
	for run, viaEnv := range []bool{false, true} {
		port := testenv.FreePort(t)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		cmd := exec.Command(bin, "up", "--log-format=json")
		cmd.Env = append(os.Environ(), "BULWARK_LOG_LEVEL=debug")
		if viaEnv {
			cmd.Env = append(cmd.Env, "BULWARK_LISTEN="+addr, "BULWARK_DATA_DIR="+dataDir)
		} else {
			cmd.Args = append(cmd.Args, "--listen", addr, "--data-dir", dataDir)
		}
		var logs safeBuffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		start := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		t.Cleanup(func() { _ = cmd.Process.Kill() })

		base := "http://" + addr
		for {
			resp, err := http.Get(base + "/healthz")
			if err == nil {
				resp.Body.Close()
				break
			}
			if time.Since(start) > 30*time.Second {
				t.Fatalf("run %d: not healthy after 30s: %v\nlogs:\n%s", run, err, logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("run %d: bulwark up healthy in %s", run, time.Since(start).Round(time.Millisecond))

		if code, body := fetch(t, base+"/readyz"); code != 200 || !strings.Contains(body, "ready") {
			t.Fatalf("readyz = %d %s", code, body)
		}
		code, body := fetch(t, base+"/api/v1")
		var root struct {
			Name    string `json:"name"`
			Store   string `json:"store"`
			Version struct{ Version, Commit string }
		}
		if err := json.Unmarshal([]byte(body), &root); err != nil || code != 200 {
			t.Fatalf("api root = %d %s (%v)", code, body, err)
		}
		if root.Name != "bulwark" || root.Store != "sqlite" || root.Version.Version != "v0.0.0-test" || root.Version.Commit != "abc123" {
			t.Fatalf("api root = %+v", root)
		}
		code, metrics := fetch(t, base+"/metrics")
		if code != 200 || !strings.Contains(metrics, `bulwark_build_info{commit="abc123"`) ||
			!strings.Contains(metrics, `bulwark_http_requests_total{code="200",method="GET",route="GET /readyz"} 1`) {
			t.Fatalf("metrics = %d:\n%s", code, metrics)
		}
		if _, err := os.Stat(filepath.Join(dataDir, "bulwark.db")); err != nil {
			t.Fatalf("no SQLite database in the data dir: %v", err)
		}

		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("exit after SIGTERM: %v\nlogs:\n%s", err, logs.String())
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("still running 20s after SIGTERM\nlogs:\n%s", logs.String())
		}
		// Every log line is a JSON object with a level and a message.
		var sawStopped, sawRequest bool
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var line map[string]any
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Fatalf("log line is not JSON: %q", sc.Text())
			}
			sawStopped = sawStopped || line["msg"] == "central stopped"
			sawRequest = sawRequest || (line["msg"] == "http request" && line["path"] == "/api/v1")
		}
		if !sawStopped || !sawRequest {
			t.Fatalf("logs lack the shutdown or a debug request line:\n%s", logs.String())
		}
	}
}

func TestVersionCommand(t *testing.T) {
	out, err := exec.Command(bulwarkBin(t), "version", "-o", "json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]string
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("version -o json: %v: %s", err, out)
	}
	if v["version"] != "v0.0.0-test" || v["commit"] != "abc123" || !strings.HasPrefix(v["goVersion"], "go1.") {
		t.Fatalf("version = %v", v)
	}
	text, err := exec.Command(bulwarkBin(t), "version").Output()
	if err != nil || !strings.Contains(string(text), "bulwark v0.0.0-test") {
		t.Fatalf("version: %s %v", text, err)
	}
}

func TestBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"version", "-o", "yaml"}, `--output "yaml"`},
		{[]string{"--log-level", "loud", "version"}, `--log-level "loud"`},
		{[]string{"up", "--listen", "127.0.0.1:99999", "--data-dir", "DATADIR"}, "listen on 127.0.0.1:99999"},
		{[]string{"up", "--database", "mysql://x", "--listen", "127.0.0.1:0"}, "unsupported database URL scheme"},
		{[]string{"frobnicate"}, "unknown command"},
	}
	for _, tt := range tests {
		for i, a := range tt.args {
			if a == "DATADIR" {
				tt.args[i] = t.TempDir()
			}
		}
		out, err := exec.Command(bulwarkBin(t), tt.args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tt.want) {
			t.Errorf("bulwark %v: err=%v output=%s; want failure mentioning %q", tt.args, err, out, tt.want)
		}
	}
}
