package admission

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bulwark-sec/bulwark/check"
	"github.com/bulwark-sec/bulwark/check/k8sscan"
	"github.com/bulwark-sec/bulwark/testenv"
)

const privPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"team","labels":{"tier":"web"}},
"spec":{"containers":[{"name":"c","image":"docker.io/library/nginx:1","securityContext":{"privileged":true}}]}}`

func request(obj string, mut ...func(*admissionv1.AdmissionRequest)) *admissionv1.AdmissionRequest {
	r := &admissionv1.AdmissionRequest{UID: types.UID("u1"), Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, Namespace: "team", Name: "p",
		Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: []byte(obj)},
		UserInfo: authnv1.UserInfo{Username: "alice", Groups: []string{"dev"}}}
	for _, m := range mut {
		m(r)
	}
	return r
}

func newHandler(t *testing.T, cfg Config, reg prometheus.Registerer) *Handler {
	t.Helper()
	e, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(cfg, e, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestReviewModesAndExemptions(t *testing.T) {
	base := Config{Policies: []Policy{{Name: "p", Checks: []string{"pss-baseline-privileged"}, Mode: Deny}}, DefaultMode: Off}
	cases := []struct {
		name    string
		cfg     func(*Config)
		req     func(*admissionv1.AdmissionRequest)
		allowed bool
	}{
		{"denied", nil, nil, false},
		{"kube-system exempt by default", nil, func(r *admissionv1.AdmissionRequest) { r.Namespace = "kube-system" }, true},
		{"namespace exemption replaced", func(c *Config) { c.Exemptions.Namespaces = []string{"team*"} }, nil, true},
		{"image exemption", func(c *Config) { c.Exemptions.Images = []string{"docker.io/library/*"} }, nil, true},
		{"image exemption not matching", func(c *Config) { c.Exemptions.Images = []string{"quay.io/*"} }, nil, false},
		{"user exemption", func(c *Config) { c.Exemptions.Users = []string{"alice"} }, nil, true},
		{"group exemption", func(c *Config) { c.Exemptions.Groups = []string{"dev"} }, nil, true},
		{"label exemption", func(c *Config) { c.Exemptions.Labels = []string{"tier in (web)"} }, nil, true},
		{"delete skipped", nil, func(r *admissionv1.AdmissionRequest) { r.Operation = admissionv1.Delete }, true},
		{"status subresource skipped", nil, func(r *admissionv1.AdmissionRequest) { r.SubResource = "status" }, true},
		{"mode off", func(c *Config) { c.Policies[0].Mode = Off }, nil, true},
		{"mode warn", func(c *Config) { c.Policies[0].Mode = Warn }, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := base
			cfg.Policies = []Policy{base.Policies[0]}
			if c.cfg != nil {
				c.cfg(&cfg)
			}
			h := newHandler(t, cfg, nil)
			var muts []func(*admissionv1.AdmissionRequest)
			if c.req != nil {
				muts = append(muts, c.req)
			}
			resp := h.Review(context.Background(), request(privPod, muts...))
			if resp.Allowed != c.allowed || resp.UID != "u1" {
				t.Fatalf("allowed=%v uid=%q, want %v: %+v", resp.Allowed, resp.UID, c.allowed, resp.Result)
			}
			if !resp.Allowed && !strings.Contains(resp.Result.Message, "[pss-baseline-privileged]") {
				t.Errorf("denial does not name the check: %s", resp.Result.Message)
			}
			if cfg.Policies[0].Mode == Warn && (len(resp.Warnings) != 1 || !strings.HasPrefix(resp.Warnings[0], "[pss-baseline-privileged]")) {
				t.Errorf("warnings %q", resp.Warnings)
			}
		})
	}
}

// TestBudget makes evaluation slower than the budget and wants the
// failure policy applied, counted and the answer on time.
func TestBudget(t *testing.T) {
	for _, policy := range []string{"ignore", "fail"} {
		reg := prometheus.NewRegistry()
		h := newHandler(t, Config{Budget: metav1.Duration{Duration: 50 * time.Millisecond}, FailurePolicy: policy}, reg)
		release := make(chan struct{})
		h.evaluate = func(o *check.Object) []check.Result { <-release; return nil }
		resp := h.Review(context.Background(), request(privPod))
		close(release)
		if resp.Allowed != (policy == "ignore") {
			t.Errorf("%s: allowed=%v", policy, resp.Allowed)
		}
		if n := testutil.ToFloat64(h.m.failures.WithLabelValues("budget", policy)); n != 1 {
			t.Errorf("%s: budget failures counted %v", policy, n)
		}
	}
	// An object that does not decode is an error, answered the same way.
	h := newHandler(t, Config{FailurePolicy: "fail"}, nil)
	if resp := h.Review(context.Background(), request(`{"apiVersion":"v1","kind":"Pod","spec":{"containers":7}}`)); resp.Allowed {
		t.Error("undecodable object admitted under fail closed")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	e, _ := check.NewEngine(check.Config{}, nil)
	for name, cfg := range map[string]Config{
		"mode":    {Policies: []Policy{{Name: "x", Checks: []string{"a"}, Mode: "block"}}},
		"pattern": {Policies: []Policy{{Name: "x", Checks: []string{"["}, Mode: Deny}}},
		"failure": {FailurePolicy: "maybe"},
		"label":   {Exemptions: Exemptions{Labels: []string{"a in ("}}},
	} {
		if _, err := New(cfg, e, nil, nil); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := LoadConfig([]byte("policies: [{name: a, mode: deny, checks: [x]}]\nbudget: 500ms\nbogus: 1\n")); !errors.Is(err, ErrConfig) {
		t.Errorf("unknown field accepted: %v", err)
	}
	c, err := LoadConfig([]byte("policies: [{name: a, mode: deny, checks: [x]}]\nbudget: 500ms\n"))
	if err != nil || c.Budget.Duration != 500*time.Millisecond {
		t.Errorf("LoadConfig: %+v %v", c, err)
	}
}

func TestServeHTTPHostile(t *testing.T) {
	h := newHandler(t, Config{}, nil)
	srv := testServer(t, h)
	deep := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","object":` + strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000) + "}}"
	cases := map[string]struct {
		body string
		code int
	}{
		"not JSON":     {"hello", 400},
		"wrong kind":   {`{"apiVersion":"v1","kind":"Pod"}`, 400},
		"no request":   {`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, 400},
		"too large":    {`{"x":"` + strings.Repeat("a", maxBody+10) + `"}`, 413},
		"deep nesting": {deep, 200},
	}
	for name, c := range cases {
		resp, err := srv.Client().Post(srv.URL, "application/json", strings.NewReader(c.body))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.code {
			t.Errorf("%s: status %d, want %d", name, resp.StatusCode, c.code)
		}
	}
}

func testServer(t *testing.T, h http.Handler) *struct {
	URL    string
	Client func() *http.Client
} {
	pki := testenv.NewPKI(t)
	kp := pki.ServingCert(t, "w", "127.0.0.1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		Serve(ctx, ServeConfig{Listener: ln, CertFile: kp.CertFile, KeyFile: kp.KeyFile}, h.(*Handler))
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.CertPool()}}, Timeout: 10 * time.Second}
	return &struct {
		URL    string
		Client func() *http.Client
	}{"https://" + ln.Addr().String() + "/validate", func() *http.Client { return client }}
}

// TestCertificateReload rotates the serving certificate on disk and wants
// new connections to get the new one without a restart.
func TestCertificateReload(t *testing.T) {
	pki := testenv.NewPKI(t)
	first := pki.ServingCert(t, "first", "127.0.0.1")
	second := pki.ServingCert(t, "second", "127.0.0.1")
	dir := t.TempDir()
	certFile, keyFile := dir+"/tls.crt", dir+"/tls.key"
	write := func(kp testenv.KeyPair) {
		os.WriteFile(certFile+".tmp", kp.CertPEM, 0o600)
		os.WriteFile(keyFile+".tmp", kp.KeyPEM, 0o600)
		os.Rename(keyFile+".tmp", keyFile)
		os.Rename(certFile+".tmp", certFile)
	}
	write(first)
	r, err := NewCertReloader(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: r.GetCertificate})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	served := func() string {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pki.CertPool()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "first" {
		t.Fatalf("served %q", got)
	}
	write(second)
	var got string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if got = served(); got == "second" {
			break
		}
	}
	if got != "second" {
		t.Fatalf("after rotation served %q", got)
	}
	// A broken pair is refused and the good one kept.
	os.WriteFile(certFile, []byte("garbage"), 0o600)
	time.Sleep(1100 * time.Millisecond)
	if got := served(); got != "second" {
		t.Fatalf("after a broken rotation served %q", got)
	}
}

// TestSameFindingsAsScan sends every object of a manifest to the webhook
// over HTTPS with every check in warn mode, and wants exactly the object
// findings that `bulwark scan k8s` reports for the same manifest.
func TestSameFindingsAsScan(t *testing.T) {
	const file = "../check/testdata/cluster.yaml"
	cfg := Config{DefaultMode: Warn, Policies: []Policy{}, Exemptions: Exemptions{Namespaces: []string{}},
		Checks: check.Config{AllowedRegistries: []string{"registry.example.com/"}}, UserChecks: []string{"../check/testdata/user-checks.yaml"}}
	rep, err := k8sscan.Scan(context.Background(), k8sscan.Options{Files: []string{file}, Config: cfg.Checks, UserChecks: cfg.UserChecks})
	if err != nil {
		t.Fatal(err)
	}
	e, _ := NewEngine(cfg)
	inventory := map[string]bool{}
	for _, c := range e.Checks() {
		inventory[c.ID] = c.Inventory != nil
	}
	var want []string
	for _, r := range rep.Results {
		if !inventory[r.CheckID] {
			want = append(want, fmt.Sprintf("%s [%s] %s", r.Object, r.CheckID, describe(r)))
		}
	}
	h := newHandler(t, cfg, nil)
	srv := testServer(t, h)
	objs, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	_ = objs
	scanned, _ := k8sscanObjects(file)
	var got []string
	for i, o := range scanned {
		raw, err := json.Marshal(o.Typed)
		if err != nil {
			t.Fatal(err)
		}
		req := request(string(raw), func(r *admissionv1.AdmissionRequest) {
			r.UID = types.UID(fmt.Sprint(i))
			r.Namespace, r.Name = o.Ref.Namespace, o.Ref.Name
			r.Kind = metav1.GroupVersionKind{Kind: o.Ref.Kind}
		})
		body, _ := json.Marshal(admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Request: req})
		resp, err := srv.Client().Post(srv.URL, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var review admissionv1.AdmissionReview
		json.NewDecoder(resp.Body).Decode(&review)
		resp.Body.Close()
		if review.Response == nil || !review.Response.Allowed || string(review.Response.UID) != fmt.Sprint(i) {
			t.Fatalf("%s: response %+v", o.Ref, review.Response)
		}
		for _, w := range review.Response.Warnings {
			got = append(got, o.Ref.String()+" "+w)
		}
	}
	sort.Strings(want)
	sort.Strings(got)
	if len(want) < 30 {
		t.Fatalf("only %d findings: fixture too weak", len(want))
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("webhook and scan differ (-scan +webhook):\n%s", d)
	}
}

func FuzzDecodeReview(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","operation":"CREATE","namespace":"a","object":` + privPod + `}}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","object":{"apiVersion":"apps/v1","kind":"Deployment","spec":{"template":{"spec":{"containers":[{}]}}}}}}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","object":{"apiVersion":"v1","kind":"Service"}}}`))
	e, err := NewEngine(Config{})
	if err != nil {
		f.Fatal(err)
	}
	h, err := New(Config{FailurePolicy: "fail"}, e, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		review, err := DecodeReview(body)
		if err != nil {
			if !errors.Is(err, ErrBadReview) {
				t.Fatalf("unwrapped error %v", err)
			}
			return
		}
		resp := h.Review(context.Background(), review.Request)
		if resp == nil || resp.UID != review.Request.UID {
			t.Fatalf("response %+v", resp)
		}
	})
}

func k8sscanObjects(file string) ([]*check.Object, error) {
	return sourceFiles(file)
}

// TestHostileObjects: a huge pod, a kind no check knows and a wrong kind
// in the review all get a verdict, never a crash.
func TestHostileObjects(t *testing.T) {
	h := newHandler(t, Config{DefaultMode: Deny}, nil)
	var cs []string
	for i := 0; i < 3000; i++ {
		cs = append(cs, fmt.Sprintf(`{"name":"c%d","image":"x","securityContext":{"privileged":true}}`, i))
	}
	huge := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"h"},"spec":{"containers":[` + strings.Join(cs, ",") + `]}}`
	resp := h.Review(context.Background(), request(huge))
	if resp.Allowed || !strings.Contains(resp.Result.Message, "c2999") {
		t.Errorf("huge privileged pod: allowed=%v", resp.Allowed)
	}
	for name, obj := range map[string]string{
		"CRD":        `{"apiVersion":"x.io/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"a":[1,2,3]}}`,
		"Secret":     `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},"data":{"k":"dg=="}}`,
		"no kind":    `{"metadata":{"name":"s"}}`,
		"not object": `[1,2,3]`,
	} {
		resp := h.Review(context.Background(), request(obj))
		if resp == nil || resp.UID != "u1" {
			t.Errorf("%s: %+v", name, resp)
		}
	}
}
