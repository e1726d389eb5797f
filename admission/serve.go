package admission

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CertReloader serves the certificate in CertFile/KeyFile and loads it
// again when either file's content changes (read at most once a second, on
// a handshake). A broken new pair is logged and the old one kept.
type CertReloader struct {
	CertFile, KeyFile string
	Log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string
	checked time.Time
}

// NewCertReloader loads the pair once; it fails if it cannot.
func NewCertReloader(certFile, keyFile string, log *slog.Logger) (*CertReloader, error) {
	if log == nil {
		log = slog.Default()
	}
	r := &CertReloader{CertFile: certFile, KeyFile: keyFile, Log: log}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

// fileStamp is a digest of both files' contents: modification times can
// be equal for two writes in quick succession, contents cannot.
func (r *CertReloader) fileStamp() string {
	h := sha256.New()
	for _, f := range []string{r.CertFile, r.KeyFile} {
		b, err := os.ReadFile(f)
		if err != nil {
			return ""
		}
		h.Write(b)
		h.Write([]byte{0})
	}
	return string(h.Sum(nil))
}

func (r *CertReloader) load() error {
	stamp := r.fileStamp()
	c, err := tls.LoadX509KeyPair(r.CertFile, r.KeyFile)
	if err != nil {
		return fmt.Errorf("admission: load certificate: %w", err)
	}
	r.cert, r.stamp = &c, stamp
	return nil
}

// GetCertificate is for tls.Config.GetCertificate.
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) >= time.Second {
		r.checked = time.Now()
		if s := r.fileStamp(); s != "" && s != r.stamp {
			if err := r.load(); err != nil {
				r.Log.Warn("admission: new certificate not loaded; keeping the old one", "err", err)
				r.stamp = s // do not retry a broken pair on every handshake
			} else {
				r.Log.Info("admission: certificate reloaded", "cert", r.CertFile)
			}
		}
	}
	return r.cert, nil
}

// ServeConfig is how Serve listens.
type ServeConfig struct {
	Addr              string // ":8443"
	CertFile, KeyFile string
	// Listener, when set, is used instead of Addr.
	Listener net.Listener
	// Ready is called with the address once listening.
	Ready func(net.Addr)
	// Metrics, when set, is served at /metrics.
	Metrics http.Handler
}

// Serve runs h over TLS at /validate (and /healthz) until ctx ends.
func Serve(ctx context.Context, sc ServeConfig, h *Handler) error {
	certs, err := NewCertReloader(sc.CertFile, sc.KeyFile, h.log)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/validate", h)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })
	if sc.Metrics != nil {
		mux.Handle("/metrics", sc.Metrics)
	}
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.GetCertificate},
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(h.log.Handler(), slog.LevelDebug),
	}
	ln := sc.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", sc.Addr); err != nil {
			return fmt.Errorf("admission: listen: %w", err)
		}
	}
	if sc.Ready != nil {
		sc.Ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := srv.Shutdown(shut)
		if e := <-errc; e != nil && !errors.Is(e, http.ErrServerClosed) {
			return e
		}
		return err
	}
}

// InstallOptions describe the ValidatingWebhookConfiguration to write.
type InstallOptions struct {
	Name string // default "bulwark"
	// Either URL, or Service in Namespace (port 443, path /validate).
	URL                string
	Service, Namespace string
	CABundle           []byte
	// FailurePolicy is the apiserver's: "Ignore" (default) or "Fail".
	FailurePolicy string
	// TimeoutSeconds (default 5; 1..30).
	TimeoutSeconds int32
	// ExemptNamespaces are not sent to the webhook at all (default kube-system).
	ExemptNamespaces []string
}

// WebhookConfiguration builds the ValidatingWebhookConfiguration for the
// kinds the checks look at.
func WebhookConfiguration(o InstallOptions) (*admissionregistrationv1.ValidatingWebhookConfiguration, error) {
	if o.Name == "" {
		o.Name = "bulwark"
	}
	fp := admissionregistrationv1.Ignore
	switch o.FailurePolicy {
	case "", "Ignore", "ignore":
	case "Fail", "fail":
		fp = admissionregistrationv1.Fail
	default:
		return nil, fmt.Errorf("%w: failure policy %q: want Ignore or Fail", ErrConfig, o.FailurePolicy)
	}
	if o.TimeoutSeconds == 0 {
		o.TimeoutSeconds = 5
	}
	if o.ExemptNamespaces == nil {
		o.ExemptNamespaces = []string{"kube-system"}
	}
	cc := admissionregistrationv1.WebhookClientConfig{CABundle: o.CABundle}
	switch {
	case o.URL != "":
		cc.URL = &o.URL
	case o.Service != "" && o.Namespace != "":
		p := "/validate"
		cc.Service = &admissionregistrationv1.ServiceReference{Name: o.Service, Namespace: o.Namespace, Path: &p}
	default:
		return nil, fmt.Errorf("%w: give a URL or a service and namespace", ErrConfig)
	}
	ops := []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}
	rule := func(group string, resources ...string) admissionregistrationv1.RuleWithOperations {
		return admissionregistrationv1.RuleWithOperations{Operations: ops, Rule: admissionregistrationv1.Rule{
			APIGroups: []string{group}, APIVersions: []string{"*"}, Resources: resources}}
	}
	none := admissionregistrationv1.SideEffectClassNone
	var nsSel *metav1.LabelSelector
	if len(o.ExemptNamespaces) > 0 {
		nsSel = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: o.ExemptNamespaces}}}
	}
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: o.Name},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:         o.Name + ".bulwark.dev",
			ClientConfig: cc,
			Rules: []admissionregistrationv1.RuleWithOperations{
				rule("", "pods", "pods/ephemeralcontainers", "replicationcontrollers", "services", "serviceaccounts"),
				rule("apps", "deployments", "statefulsets", "daemonsets", "replicasets"),
				rule("batch", "jobs", "cronjobs"),
				rule("networking.k8s.io", "ingresses"),
				rule("rbac.authorization.k8s.io", "roles", "clusterroles", "rolebindings", "clusterrolebindings"),
			},
			FailurePolicy:           &fp,
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          &o.TimeoutSeconds,
			NamespaceSelector:       nsSel,
		}},
	}, nil
}
