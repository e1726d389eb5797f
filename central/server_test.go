package central_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-sec/bulwark/central"
	"github.com/bulwark-sec/bulwark/store/sqlstore"
)

func newServer(t *testing.T) (*central.Server, *sqlstore.Store) {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv, err := central.New(central.Config{Store: st, StoreKind: st.Dialect()})
	if err != nil {
		t.Fatal(err)
	}
	return srv, st
}

func get(t *testing.T, h http.Handler, path string) (int, string, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String(), rec.Header()
}

func TestEndpoints(t *testing.T) {
	srv, _ := newServer(t)
	h := srv.Handler()
	tests := []struct {
		path     string
		code     int
		contains string
	}{
		{"/healthz", 200, `"ok"`},
		{"/readyz", 200, `"ready"`},
		{"/api/v1", 200, `"store": "sqlite"`},
		{"/api/v1/nothing-here", 404, `"no such API resource: /api/v1/nothing-here"`},
		{"/", 302, ""},
	}
	for _, tt := range tests {
		code, body, hdr := get(t, h, tt.path)
		if code != tt.code || !strings.Contains(body, tt.contains) {
			t.Errorf("GET %s = %d %q, want %d containing %q", tt.path, code, body, tt.code, tt.contains)
		}
		if code == 200 && hdr.Get("Content-Type") != "application/json" {
			t.Errorf("GET %s content type %q", tt.path, hdr.Get("Content-Type"))
		}
	}
	var root central.APIRoot
	_, body, _ := get(t, h, "/api/v1")
	if err := json.Unmarshal([]byte(body), &root); err != nil || root.Name != "bulwark" || root.Version.GoVersion == "" {
		t.Fatalf("API root %s: %v", body, err)
	}
	// Metrics come after the requests above, so they are counted by route.
	_, metrics, _ := get(t, h, "/metrics")
	for _, want := range []string{
		"bulwark_build_info{",
		`bulwark_http_requests_total{code="200",method="GET",route="GET /healthz"} 1`,
		`bulwark_http_requests_total{code="404",method="GET",route="GET /api/v1/"} 1`,
		"bulwark_store_up 1",
		"go_goroutines",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code, _, _ := get(t, h, "/healthz?x=1"); code != 200 {
		t.Errorf("healthz with query: %d", code)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/healthz", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz = %d, want 405", rec.Code)
	}
}

func TestNotReadyWhenStoreIsGone(t *testing.T) {
	srv, st := newServer(t)
	st.Close()
	if code, body, _ := get(t, srv.Handler(), "/readyz"); code != 503 || !strings.Contains(body, "store unavailable") {
		t.Fatalf("readyz with a closed store = %d %s", code, body)
	}
	if code, _, _ := get(t, srv.Handler(), "/healthz"); code != 200 {
		t.Fatalf("healthz is liveness only, got %d", code)
	}
	_, metrics, _ := get(t, srv.Handler(), "/metrics")
	if !strings.Contains(metrics, "bulwark_store_up 0") {
		t.Fatal("bulwark_store_up does not report the store down")
	}
}

// TestGracefulShutdown: when the context ends, Serve stops accepting and
// returns nil.
func TestGracefulShutdown(t *testing.T) {
	srv, _ := newServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	url := "http://" + ln.Addr().String()
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after cancel: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if _, err := http.Get(url + "/healthz"); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}
