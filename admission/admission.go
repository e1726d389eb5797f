package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/bulwark-sec/bulwark/check"
	"github.com/bulwark-sec/bulwark/manifest"
)

// Errors; test with errors.Is.
var (
	// ErrBadReview: the request body is not a usable AdmissionReview v1.
	ErrBadReview = errors.New("admission: bad AdmissionReview")
	// ErrConfig: the configuration is invalid.
	ErrConfig = errors.New("admission: invalid configuration")
)

// Mode is what a policy does with a failed check.
type Mode string

const (
	Deny  Mode = "deny"
	Warn  Mode = "warn"
	Audit Mode = "audit"
	Off   Mode = "off"
)

// DefaultPolicies are used when a Config has none: the Pod Security
// Standards baseline (what Kubernetes' own PSA would enforce) and the
// checks that mean host takeover are denied; the rest warns.
var DefaultPolicies = []Policy{{Name: "host-takeover", Mode: Deny, Checks: []string{
	"pss-baseline-*", "def-privileged", "def-no-sys-admin", "def-host-pid-ipc"}}}

// Policy gives a mode to the checks whose IDs match one of Checks
// (path.Match patterns: "pss-baseline-*"). The first matching policy wins.
type Policy struct {
	Name   string   `json:"name"`
	Checks []string `json:"checks"`
	Mode   Mode     `json:"mode"`
}

// Exemptions are requests the webhook admits without checking.
type Exemptions struct {
	// Namespaces are exempt (path.Match patterns). nil means ["kube-system"];
	// an empty list exempts none.
	Namespaces []string `json:"namespaces"`
	// Images: a workload whose every container image matches is exempt.
	Images []string `json:"images,omitempty"`
	Users  []string `json:"users,omitempty"`
	Groups []string `json:"groups,omitempty"`
	// Labels are label selectors ("team=platform", "bulwark.dev/exempt");
	// an object matching any is exempt.
	Labels []string `json:"labels,omitempty"`
}

// Config is the webhook's behaviour.
type Config struct {
	Policies []Policy `json:"policies,omitempty"`
	// DefaultMode applies to checks no policy matches (default warn).
	DefaultMode Mode       `json:"defaultMode,omitempty"`
	Exemptions  Exemptions `json:"exemptions"`
	// Budget is the time one request may take (default 2s).
	Budget metav1.Duration `json:"budget,omitempty"`
	// FailurePolicy: "ignore" (default; admit) or "fail" (deny) when the
	// budget runs out or the object cannot be evaluated.
	FailurePolicy string `json:"failurePolicy,omitempty"`
	// Checks parameterises the built-in checks; UserChecks are CEL files.
	Checks     check.Config `json:"checks,omitempty"`
	UserChecks []string     `json:"userChecks,omitempty"`
}

// LoadConfig reads a Config from YAML or JSON.
func LoadConfig(data []byte) (Config, error) {
	var c Config
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return c, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return c, nil
}

// maxBody bounds a request: the apiserver's object limit (3 MiB) twice
// (object and oldObject) plus the envelope.
const maxBody = 7 << 20

// Handler answers AdmissionReviews. Build it with New.
type Handler struct {
	cfg       Config
	engine    *check.Engine
	selectors []labels.Selector
	log       *slog.Logger
	m         metrics
	modeOf    map[string]Mode
	// evaluate is the evaluation step; tests replace it to exceed the budget.
	evaluate func(o *check.Object) []check.Result
}

type metrics struct {
	requests *prometheus.CounterVec // by verdict
	failures *prometheus.CounterVec // by reason: budget, error
	latency  prometheus.Histogram
}

// New builds a handler. reg may be nil (metrics are then not registered).
func New(cfg Config, engine *check.Engine, reg prometheus.Registerer, log *slog.Logger) (*Handler, error) {
	if cfg.DefaultMode == "" {
		cfg.DefaultMode = Warn
	}
	if cfg.Policies == nil {
		cfg.Policies = DefaultPolicies
	}
	if cfg.Exemptions.Namespaces == nil {
		cfg.Exemptions.Namespaces = []string{"kube-system"}
	}
	if cfg.Budget.Duration <= 0 {
		cfg.Budget.Duration = 2 * time.Second
	}
	switch strings.ToLower(cfg.FailurePolicy) {
	case "", "ignore":
		cfg.FailurePolicy = "ignore"
	case "fail":
		cfg.FailurePolicy = "fail"
	default:
		return nil, fmt.Errorf("%w: failurePolicy %q: want ignore or fail", ErrConfig, cfg.FailurePolicy)
	}
	if log == nil {
		log = slog.Default()
	}
	h := &Handler{cfg: cfg, engine: engine, log: log, modeOf: map[string]Mode{}}
	valid := func(m Mode) bool { return m == Deny || m == Warn || m == Audit || m == Off }
	if !valid(cfg.DefaultMode) {
		return nil, fmt.Errorf("%w: defaultMode %q", ErrConfig, cfg.DefaultMode)
	}
	for _, p := range cfg.Policies {
		if !valid(p.Mode) {
			return nil, fmt.Errorf("%w: policy %q: mode %q: want deny, warn, audit or off", ErrConfig, p.Name, p.Mode)
		}
		for _, pat := range p.Checks {
			if _, err := path.Match(pat, ""); err != nil {
				return nil, fmt.Errorf("%w: policy %q: pattern %q: %w", ErrConfig, p.Name, pat, err)
			}
		}
	}
	for _, c := range engine.Checks() {
		h.modeOf[c.ID] = h.mode(c.ID)
	}
	for _, s := range cfg.Exemptions.Labels {
		sel, err := labels.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("%w: label exemption %q: %w", ErrConfig, s, err)
		}
		h.selectors = append(h.selectors, sel)
	}
	h.evaluate = engine.Object
	h.m = metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bulwark_admission_requests_total", Help: "AdmissionReviews answered, by verdict."}, []string{"verdict"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bulwark_admission_failures_total", Help: "Requests answered by the failure policy, by reason."}, []string{"reason", "policy"}),
		latency:  prometheus.NewHistogram(prometheus.HistogramOpts{Name: "bulwark_admission_duration_seconds", Help: "Time to answer one AdmissionReview.", Buckets: []float64{.0005, .001, .002, .005, .01, .05, .1, .5, 1, 2, 5}}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{h.m.requests, h.m.failures, h.m.latency} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("admission: register metrics: %w", err)
			}
		}
	}
	return h, nil
}

func (h *Handler) mode(id string) Mode {
	for _, p := range h.cfg.Policies {
		for _, pat := range p.Checks {
			if ok, _ := path.Match(pat, id); ok {
				return p.Mode
			}
		}
	}
	return h.cfg.DefaultMode
}

// ServeHTTP implements the webhook endpoint.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { h.m.latency.Observe(time.Since(start).Seconds()) }()
	if r.Method != http.MethodPost {
		http.Error(w, "POST an AdmissionReview", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		h.m.requests.WithLabelValues("bad-request").Inc()
		http.Error(w, fmt.Sprintf("read body: %v", err), http.StatusRequestEntityTooLarge)
		return
	}
	review, err := DecodeReview(body)
	if err != nil {
		h.m.requests.WithLabelValues("bad-request").Inc()
		h.log.Warn("admission: bad request", "err", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	resp := h.Review(r.Context(), review.Request)
	out := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(&out); err != nil {
		h.log.Warn("admission: write response", "err", err)
	}
}

// DecodeReview parses and validates an AdmissionReview v1 request body.
func DecodeReview(body []byte) (*admissionv1.AdmissionReview, error) {
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadReview, err)
	}
	if review.APIVersion != "admission.k8s.io/v1" || review.Kind != "AdmissionReview" {
		return nil, fmt.Errorf("%w: apiVersion %q kind %q, want admission.k8s.io/v1 AdmissionReview", ErrBadReview, review.APIVersion, review.Kind)
	}
	if review.Request == nil || review.Request.UID == "" {
		return nil, fmt.Errorf("%w: no request or no request uid", ErrBadReview)
	}
	return &review, nil
}

// Review decides one request within the budget (or ctx's deadline, if sooner).
func (h *Handler) Review(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Budget.Duration)
	defer cancel()
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	if req.Operation == admissionv1.Delete || req.Operation == admissionv1.Connect ||
		(req.SubResource != "" && req.SubResource != "ephemeralcontainers") || len(req.Object.Raw) == 0 {
		h.m.requests.WithLabelValues("skipped").Inc()
		return resp
	}
	if h.exemptRequest(req) {
		h.m.requests.WithLabelValues("exempt").Inc()
		return resp
	}
	type outcome struct {
		o   *check.Object
		res []check.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- outcome{err: fmt.Errorf("check panicked: %v", p)}
			}
		}()
		o, err := objectOf(req)
		if err != nil {
			done <- outcome{err: err}
			return
		}
		if h.exemptObject(o) {
			done <- outcome{o: o}
			return
		}
		done <- outcome{o: o, res: h.evaluate(o)}
	}()
	var out outcome
	select {
	case out = <-done:
	case <-ctx.Done():
		return h.failure(req, resp, "budget", fmt.Errorf("no verdict within %s", h.cfg.Budget.Duration))
	}
	if out.err != nil {
		return h.failure(req, resp, "error", out.err)
	}
	if out.res == nil {
		h.m.requests.WithLabelValues("allowed").Inc()
		return resp
	}
	return h.verdict(resp, out.o, out.res)
}

// failure answers by the failure policy, counting and logging the case.
func (h *Handler) failure(req *admissionv1.AdmissionRequest, resp *admissionv1.AdmissionResponse, reason string, err error) *admissionv1.AdmissionResponse {
	h.m.failures.WithLabelValues(reason, h.cfg.FailurePolicy).Inc()
	h.log.Warn("admission: answered by failure policy", "reason", reason, "policy", h.cfg.FailurePolicy,
		"kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name, "uid", req.UID, "err", err)
	if h.cfg.FailurePolicy == "fail" {
		h.m.requests.WithLabelValues("denied").Inc()
		resp.Allowed = false
		resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden,
			Message: fmt.Sprintf("bulwark could not evaluate the object (%s: %v) and fails closed", reason, err)}
		return resp
	}
	h.m.requests.WithLabelValues("allowed").Inc()
	resp.Warnings = []string{fmt.Sprintf("bulwark could not evaluate the object (%s: %v); admitted (fail open)", reason, err)}
	return resp
}

func (h *Handler) verdict(resp *admissionv1.AdmissionResponse, o *check.Object, res []check.Result) *admissionv1.AdmissionResponse {
	var denied []string
	audit := map[string][]string{}
	for _, r := range res {
		line := fmt.Sprintf("[%s] %s", r.CheckID, describe(r))
		switch h.modeOf[r.CheckID] {
		case Deny:
			denied = append(denied, line)
		case Warn:
			resp.Warnings = append(resp.Warnings, line)
		case Audit:
			audit[r.CheckID] = append(audit[r.CheckID], describe(r))
		}
	}
	if len(audit) > 0 {
		resp.AuditAnnotations = map[string]string{}
		for id, lines := range audit {
			resp.AuditAnnotations[id] = strings.Join(lines, "; ")
		}
	}
	if len(denied) > 0 {
		h.m.requests.WithLabelValues("denied").Inc()
		resp.Allowed = false
		resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden,
			Message: fmt.Sprintf("bulwark denied %s: %s", o.Ref, strings.Join(denied, "; "))}
		return resp
	}
	h.m.requests.WithLabelValues("allowed").Inc()
	return resp
}

// describe is one result in words: where, what and the fix.
func describe(r check.Result) string {
	where := r.Field
	if r.Container != "" {
		where = fmt.Sprintf("container %q %s", r.Container, r.Field)
	}
	return fmt.Sprintf("%s: %s (fix: %s)", strings.TrimSpace(where), r.Message, r.Fix.Text)
}

// ParseLine splits a warning or denial line "[id] field...: message" into
// its check ID; used by tests and tools reading warnings.
func ParseLine(line string) (id, rest string, ok bool) {
	if !strings.HasPrefix(line, "[") {
		return "", "", false
	}
	id, rest, ok = strings.Cut(line[1:], "] ")
	return id, rest, ok
}

func objectOf(req *admissionv1.AdmissionRequest) (*check.Object, error) {
	obj, err := manifest.Decode(req.Object.Raw)
	if err != nil {
		return nil, fmt.Errorf("decode object: %w", err)
	}
	o, err := check.NewObject(obj)
	if err != nil {
		return nil, err
	}
	if o.Ref.Namespace == "" {
		o.Ref.Namespace = req.Namespace // a create request carries the namespace outside the object
	}
	if o.Ref.Name == "" {
		o.Ref.Name = req.Name
	}
	if len(req.OldObject.Raw) > 0 {
		var old map[string]any
		if err := json.Unmarshal(req.OldObject.Raw, &old); err == nil {
			o.OldObject = old
		}
	}
	o.Request = map[string]any{
		"uid": string(req.UID), "operation": string(req.Operation), "namespace": req.Namespace, "name": req.Name,
		"kind":        map[string]any{"group": req.Kind.Group, "version": req.Kind.Version, "kind": req.Kind.Kind},
		"resource":    map[string]any{"group": req.Resource.Group, "version": req.Resource.Version, "resource": req.Resource.Resource},
		"subResource": req.SubResource,
		"userInfo":    map[string]any{"username": req.UserInfo.Username, "groups": toAny(req.UserInfo.Groups)},
		"dryRun":      req.DryRun != nil && *req.DryRun,
	}
	return o, nil
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func (h *Handler) exemptRequest(req *admissionv1.AdmissionRequest) bool {
	e := h.cfg.Exemptions
	if req.Namespace != "" && matchAny(e.Namespaces, req.Namespace) {
		return true
	}
	if matchAny(e.Users, req.UserInfo.Username) {
		return true
	}
	for _, g := range req.UserInfo.Groups {
		if matchAny(e.Groups, g) {
			return true
		}
	}
	return false
}

func (h *Handler) exemptObject(o *check.Object) bool {
	if o.Ref.Namespace != "" && matchAny(h.cfg.Exemptions.Namespaces, o.Ref.Namespace) {
		return true
	}
	set := labels.Set(o.Meta.GetLabels())
	for _, s := range h.selectors {
		if s.Matches(set) {
			return true
		}
	}
	if len(h.cfg.Exemptions.Images) > 0 && o.Pod != nil {
		all := true
		for _, c := range allContainers(o) {
			if !matchAny(h.cfg.Exemptions.Images, c) {
				all = false
			}
		}
		return all
	}
	return false
}

func allContainers(o *check.Object) []string {
	var out []string
	for _, c := range o.Pod.Spec.InitContainers {
		out = append(out, c.Image)
	}
	for _, c := range o.Pod.Spec.Containers {
		out = append(out, c.Image)
	}
	for _, c := range o.Pod.Spec.EphemeralContainers {
		out = append(out, c.Image)
	}
	return out
}

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, s); ok || p == s {
			return true
		}
		// A trailing "*" also matches across "/" (image repositories).
		if prefix, found := strings.CutSuffix(p, "*"); found && strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// Modes returns each check's mode, for display.
func (h *Handler) Modes() map[string]Mode {
	out := make(map[string]Mode, len(h.modeOf))
	for k, v := range h.modeOf {
		out[k] = v
	}
	return out
}

// NewEngine builds the check engine a Config describes: every built-in
// check and the user checks.
func NewEngine(cfg Config) (*check.Engine, error) {
	user, err := check.LoadCEL(cfg.UserChecks...)
	if err != nil {
		return nil, err
	}
	return check.NewEngine(cfg.Checks, append(check.Builtin(), user...))
}
