package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwark-sec/bulwark/audit"
	"github.com/bulwark-sec/bulwark/testenv"
)

type recorder struct {
	mu       sync.Mutex
	events   []string
	rejected map[string]int
}

func (r *recorder) Handle(_ context.Context, _ string, evs []*audit.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range evs {
		r.events = append(r.events, string(e.AuditID))
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

func batch(ids ...string) string {
	var items []string
	for _, id := range ids {
		items = append(items, fmt.Sprintf(`{"level":"Metadata","auditID":%q,"stage":"ResponseComplete","requestURI":"/api","verb":"get","user":{"username":"u"}}`, id))
	}
	return `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[` + strings.Join(items, ",") + `]}`
}

func TestReceiverAuthAndErrors(t *testing.T) {
	pki := testenv.NewPKI(t)
	rec := &recorder{}
	r, err := New(Config{Tokens: []string{"s3cret"}, ClientCert: true, MaxBodyBytes: 4096}, rec)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { r.Run(ctx); close(runDone) }()

	srv := httptest.NewUnstartedServer(r)
	srv.TLS = pki.ServerTLS(t)
	srv.TLS.ClientCAs = pki.CertPool()
	srv.TLS.ClientAuth = tls.VerifyClientCertIfGiven
	srv.StartTLS()
	defer srv.Close()

	plain := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.CertPool()}}}
	cert := pki.ClientCert(t, "kube-apiserver").TLSCertificate()
	withCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.CertPool(), Certificates: []tls.Certificate{cert}}}}

	post := func(c *http.Client, token, body string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	tests := []struct {
		name   string
		client *http.Client
		token  string
		body   string
		want   int
	}{
		{"token", plain, "s3cret", batch("a"), 200},
		{"client certificate", withCert, "", batch("b", "c"), 200},
		{"wrong token", plain, "nope", batch("x"), 401},
		{"nothing", plain, "", batch("x"), 401},
		{"malformed json", plain, "s3cret", `{"kind":"EventList",`, 400},
		{"wrong kind", plain, "s3cret", `{"kind":"PodList","apiVersion":"v1","items":[]}`, 400},
		{"event without verb", plain, "s3cret", `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{"auditID":"x","stage":"ResponseComplete"}]}`, 400},
		{"oversized", plain, "s3cret", batch(strings.Repeat("z", 5000)), 413},
	}
	for _, tt := range tests {
		if got := post(tt.client, tt.token, tt.body); got != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, got, tt.want)
		}
	}
	cancel()
	<-runDone
	// After shutdown the receiver refuses new batches with 503.
	if got := post(plain, "s3cret", batch("late")); got != http.StatusServiceUnavailable {
		t.Errorf("after shutdown: %d, want 503", got)
	}
	if diff := cmp.Diff([]string{"a", "b", "c"}, rec.events); diff != "" {
		t.Errorf("events handled (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{"unauthenticated": 2, "malformed": 3, "oversized": 1}, rec.rejected); diff != "" {
		t.Errorf("rejections (-want +got):\n%s", diff)
	}
}

// TestBackpressure fills the queue's byte budget while nothing consumes
// it: further batches get 429, memory stays bounded, and every batch
// accepted is handled once the consumer runs, including at shutdown.
func TestBackpressure(t *testing.T) {
	rec := &recorder{}
	one := batch("0000")
	r, err := New(Config{Insecure: true, MaxQueuedBytes: int64(3 * len(one) * decodedFactor)}, rec)
	if err != nil {
		t.Fatal(err)
	}
	codes := map[int]int{}
	for i := range 10 {
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewBufferString(batch(fmt.Sprintf("%04d", i))))
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		codes[w.Code]++
		if w.Code == http.StatusTooManyRequests && w.Header().Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	if diff := cmp.Diff(map[int]int{200: 3, 429: 7}, codes); diff != "" {
		t.Errorf("status codes (-want +got):\n%s", diff)
	}
	if got := r.QueuedBytes(); got != int64(3*len(one)) {
		t.Errorf("queued bytes %d", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // shut down at once: Run must still drain what was accepted
	r.Run(ctx)
	if diff := cmp.Diff([]string{"0000", "0001", "0002"}, rec.events); diff != "" {
		t.Errorf("drained (-want +got):\n%s", diff)
	}
	if r.QueuedBytes() != 0 {
		t.Errorf("queued bytes after drain: %d", r.QueuedBytes())
	}
}

func TestNoAuthRefused(t *testing.T) {
	if _, err := New(Config{}, &recorder{}); err != ErrNoAuth {
		t.Fatalf("err = %v", err)
	}
}

// failing is a handler whose sink fails until it is told otherwise.
type failing struct {
	recorder
	fail bool
}

func (f *failing) Handle(ctx context.Context, src string, evs []*audit.Event) error {
	if f.fail {
		return fmt.Errorf("%w: store is down", audit.ErrDelivery)
	}
	return f.recorder.Handle(ctx, src, evs)
}

// TestSyncAcknowledgesAfterDelivery: with Sync, a batch is answered only
// after the handler took it (no Run needed), and a delivery failure asks
// the sender to retry with 503 and Retry-After.
func TestSyncAcknowledgesAfterDelivery(t *testing.T) {
	h := &failing{fail: true}
	r, err := New(Config{Insecure: true, Sync: true}, h)
	if err != nil {
		t.Fatal(err)
	}
	post := func(ids ...string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/", bytes.NewBufferString(batch(ids...))))
		return w
	}
	if w := post("a1", "a2"); w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("failed delivery answered %d (Retry-After %q), want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	h.fail = false
	if w := post("a1", "a2"); w.Code != http.StatusOK {
		t.Fatalf("delivered batch answered %d, want 200", w.Code)
	}
	if d := cmp.Diff([]string{"a1", "a2"}, h.events); d != "" {
		t.Fatalf("handled before the answer (-want +got):\n%s", d)
	}
	if r.QueuedBytes() != 0 {
		t.Fatalf("budget not released: %d bytes", r.QueuedBytes())
	}
}
