package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Kube is a running kube-apiserver with its etcd.
type Kube struct {
	// Config has cluster-admin rights (user "admin", group system:masters).
	Config *rest.Config
	// Client is a clientset built from Config.
	Client kubernetes.Interface
	// Kubeconfig is the path of a kubeconfig file with the same rights.
	Kubeconfig string
	// AuditLogPath is the audit log file, when WithAuditLog was given.
	AuditLogPath string
	// PKI signed the apiserver's certificates; it also issues certificates
	// for webhooks the apiserver must trust and for users.
	PKI *PKI
	// Version is the apiserver's version, e.g. "v1.37.2".
	Version string
	// StartupTime is how long etcd and the apiserver took to become ready.
	StartupTime time.Duration

	dir string
}

type kubeOptions struct {
	pki              *PKI
	auditPolicy      string
	auditLog         bool
	auditWebhookURL  string
	auditWebhookCA   []byte
	auditWebhookCert *KeyPair
	extraFlags       []string
	serviceAccounts  bool
	webhooks         []*admissionregistrationv1.ValidatingWebhookConfiguration
}

// KubeOption configures KubeAPIServer.
type KubeOption func(*kubeOptions)

// WithPKI uses p as the cluster's CA, so that certificates made before the
// apiserver starts (an audit sink's, say) are trusted by it.
func WithPKI(p *PKI) KubeOption { return func(o *kubeOptions) { o.pki = p } }

// WithAuditPolicy sets the audit policy (an audit.k8s.io/v1 Policy in
// YAML). Without it, DefaultAuditPolicy is used when auditing is on.
func WithAuditPolicy(yaml string) KubeOption { return func(o *kubeOptions) { o.auditPolicy = yaml } }

// WithAuditLog writes audit events as JSON lines to Kube.AuditLogPath.
func WithAuditLog() KubeOption { return func(o *kubeOptions) { o.auditLog = true } }

// WithAuditWebhook sends audit events in batches (at most one second apart)
// to url, trusting caPEM for its certificate (the testenv CA when nil) and,
// when client is set, presenting that client certificate.
// The sink must outlive the apiserver: start it before KubeAPIServer, so
// that cleanup stops the apiserver first.
func WithAuditWebhook(url string, caPEM []byte, client *KeyPair) KubeOption {
	return func(o *kubeOptions) {
		o.auditWebhookURL, o.auditWebhookCA, o.auditWebhookCert = url, caPEM, client
	}
}

// WithValidatingWebhook creates the configuration once the apiserver is
// ready. The apiserver starts calling the webhook within about a second.
func WithValidatingWebhook(cfg *admissionregistrationv1.ValidatingWebhookConfiguration) KubeOption {
	return func(o *kubeOptions) { o.webhooks = append(o.webhooks, cfg) }
}

// WithServiceAccountAdmission keeps the ServiceAccount admission plugin on.
// It is off by default because no controller-manager creates the "default"
// service account of new namespaces, so pods could not be created.
func WithServiceAccountAdmission() KubeOption {
	return func(o *kubeOptions) { o.serviceAccounts = true }
}

// WithAPIServerFlags appends flags ("--name=value") to the apiserver command line.
func WithAPIServerFlags(flags ...string) KubeOption {
	return func(o *kubeOptions) { o.extraFlags = append(o.extraFlags, flags...) }
}

// DefaultAuditPolicy logs request and response bodies of writes, metadata
// of everything else, and never the contents of secrets or configmaps.
const DefaultAuditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: None
  users: ["system:apiserver"]
  verbs: ["get", "list", "watch"]
- level: None
  nonResourceURLs: ["/healthz*", "/readyz*", "/livez*", "/openapi*", "/version"]
- level: Metadata
  resources:
  - group: ""
    resources: ["secrets", "configmaps"]
  - group: "authentication.k8s.io"
    resources: ["tokenreviews"]
- level: RequestResponse
  verbs: ["create", "update", "patch", "delete", "deletecollection"]
- level: Metadata
`

// BinDir returns the directory holding the kube-apiserver and etcd binaries:
// BULWARK_TESTENV_BINDIR, else the version-keyed cache that
// hack/testenv-bins.sh fills.
func BinDir() (string, error) {
	if d := os.Getenv("BULWARK_TESTENV_BINDIR"); d != "" {
		return d, checkBins(d)
	}
	script := filepath.Join(RepoRoot(), "hack", "testenv-bins.sh")
	out, err := exec.Command("bash", script, "--check").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil {
		return dir, fmt.Errorf("kube-apiserver and etcd are not built in %s: run 'bash hack/testenv-bins.sh' (about 15 minutes once, then cached)", dir)
	}
	return dir, checkBins(dir)
}

func checkBins(dir string) error {
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return fmt.Errorf("%s not found in %s: run 'bash hack/testenv-bins.sh'", b, dir)
		}
	}
	return nil
}

// KubeAPIServer starts etcd and kube-apiserver for the test. It returns once
// the apiserver answers /readyz; cleanup stops the apiserver, then etcd.
func KubeAPIServer(t testing.TB, opts ...KubeOption) *Kube {
	t.Helper()
	bin, err := BinDir()
	Require(t, err == nil, "%v", err)
	var o kubeOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.pki == nil {
		o.pki = NewPKI(t)
	}
	var k *Kube
	// A port found free can be taken before we bind it; try again then.
	for attempt := 1; ; attempt++ {
		k, err = startKube(t, bin, o)
		if err == nil || attempt == 3 || !errors.Is(err, errExited) {
			break
		}
		t.Logf("testenv: control plane start attempt %d failed, retrying: %v", attempt, err)
	}
	if err != nil {
		t.Fatalf("testenv: start control plane: %v", err)
	}
	for _, cfg := range o.webhooks {
		if _, err := k.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(
			context.Background(), cfg, metav1.CreateOptions{}); err != nil {
			t.Fatalf("testenv: create webhook configuration %s: %v", cfg.Name, err)
		}
	}
	return k
}

func startKube(t testing.TB, bin string, o kubeOptions) (*Kube, error) {
	dir := workDir(t, "bulwark-kube-")
	start := time.Now()

	// etcd
	clientPort, peerPort := FreePort(t), FreePort(t)
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", clientPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	etcd, err := startProcess("etcd", exec.Command(filepath.Join(bin, "etcd"),
		"--name=testenv", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=testenv="+peerURL, "--unsafe-no-fsync", "--log-level=warn",
	), filepath.Join(dir, "etcd.log"))
	if err != nil {
		return nil, err
	}
	logOnFailure(t, etcd)
	t.Cleanup(func() { etcd.stop(syscall.SIGTERM, 5*time.Second) })

	// kube-apiserver
	pki := o.pki
	serving := pki.ServingCert(t, "kube-apiserver", "127.0.0.1", "localhost", "10.0.0.1", "kubernetes.default.svc")
	saKey, saPub := pki.signingKey(t)
	port := FreePort(t)
	args := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port=" + strconv.Itoa(port),
		"--endpoint-reconciler-type=none",
		"--tls-cert-file=" + serving.CertFile, "--tls-private-key-file=" + serving.KeyFile,
		"--client-ca-file=" + pki.CAFile,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + saPub, "--service-account-signing-key-file=" + saKey,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--authorization-mode=RBAC", "--allow-privileged=true",
	}
	if !o.serviceAccounts {
		args = append(args, "--disable-admission-plugins=ServiceAccount")
	}
	k := &Kube{PKI: pki, dir: dir}
	if o.auditLog || o.auditWebhookURL != "" {
		policy := o.auditPolicy
		if policy == "" {
			policy = DefaultAuditPolicy
		}
		policyFile := filepath.Join(dir, "audit-policy.yaml")
		if err := os.WriteFile(policyFile, []byte(policy), 0o600); err != nil {
			return nil, err
		}
		args = append(args, "--audit-policy-file="+policyFile)
	}
	if o.auditLog {
		k.AuditLogPath = filepath.Join(dir, "audit.log")
		args = append(args, "--audit-log-path="+k.AuditLogPath, "--audit-log-format=json", "--audit-log-mode=blocking")
	}
	if o.auditWebhookURL != "" {
		kc, err := auditWebhookKubeconfig(dir, o.auditWebhookURL, o.auditWebhookCA, pki, o.auditWebhookCert)
		if err != nil {
			return nil, err
		}
		args = append(args, "--audit-webhook-config-file="+kc, "--audit-webhook-mode=batch",
			"--audit-webhook-batch-max-wait=1s", "--audit-webhook-initial-backoff=1s")
	}
	args = append(args, o.extraFlags...)
	api, err := startProcess("kube-apiserver", exec.Command(filepath.Join(bin, "kube-apiserver"), args...),
		filepath.Join(dir, "kube-apiserver.log"))
	if err != nil {
		return nil, err
	}
	logOnFailure(t, api)
	// A short grace: with an audit webhook that is already gone, a graceful
	// stop would retry its last batch for a minute and more.
	t.Cleanup(func() { api.stop(syscall.SIGTERM, 3*time.Second) })

	admin := pki.ClientCert(t, "admin", "system:masters")
	k.Config = &rest.Config{
		Host: fmt.Sprintf("https://127.0.0.1:%d", port),
		TLSClientConfig: rest.TLSClientConfig{
			CAData: pki.CAPEM, CertData: admin.CertPEM, KeyData: admin.KeyPEM,
		},
		QPS: 500, Burst: 1000,
	}
	k.Client, err = kubernetes.NewForConfig(k.Config)
	if err != nil {
		return nil, err
	}
	ready := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := k.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err
	}
	if err := waitFor(api, 90*time.Second, ready); err != nil {
		if etcd.exited() {
			return nil, fmt.Errorf("etcd: %w", errExited)
		}
		return nil, err
	}
	if v, err := k.Client.Discovery().ServerVersion(); err == nil {
		k.Version = v.GitVersion
	}
	k.StartupTime = time.Since(start)
	k.Kubeconfig = filepath.Join(dir, "admin.kubeconfig")
	if err := writeKubeconfig(k.Kubeconfig, k.Config); err != nil {
		return nil, err
	}
	t.Logf("testenv: kube-apiserver %s ready at %s in %s", k.Version, k.Config.Host, k.StartupTime.Round(time.Millisecond))
	return k, nil
}

// ConfigFor returns a rest.Config that authenticates as user in groups,
// with a client certificate from the cluster's CA. RBAC decides what it may do.
func (k *Kube) ConfigFor(t testing.TB, user string, groups ...string) *rest.Config {
	t.Helper()
	kp := k.PKI.ClientCert(t, user, groups...)
	c := rest.CopyConfig(k.Config)
	c.CertData, c.KeyData = kp.CertPEM, kp.KeyPEM
	return c
}

// ClientFor is ConfigFor as a clientset.
func (k *Kube) ClientFor(t testing.TB, user string, groups ...string) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(k.ConfigFor(t, user, groups...))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var kubeconfigMu sync.Mutex

func writeKubeconfig(path string, c *rest.Config) error {
	kubeconfigMu.Lock()
	defer kubeconfigMu.Unlock()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["testenv"] = &clientcmdapi.Cluster{Server: c.Host, CertificateAuthorityData: c.CAData}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: c.CertData, ClientKeyData: c.KeyData}
	cfg.Contexts["testenv"] = &clientcmdapi.Context{Cluster: "testenv", AuthInfo: "admin"}
	cfg.CurrentContext = "testenv"
	return clientcmd.WriteToFile(*cfg, path)
}

func auditWebhookKubeconfig(dir, url string, caPEM []byte, pki *PKI, client *KeyPair) (string, error) {
	if caPEM == nil {
		caPEM = pki.CAPEM
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["sink"] = &clientcmdapi.Cluster{Server: url, CertificateAuthorityData: caPEM}
	user := &clientcmdapi.AuthInfo{}
	if client != nil {
		user.ClientCertificateData, user.ClientKeyData = client.CertPEM, client.KeyPEM
	}
	cfg.AuthInfos["apiserver"] = user
	cfg.Contexts["default"] = &clientcmdapi.Context{Cluster: "sink", AuthInfo: "apiserver"}
	cfg.CurrentContext = "default"
	path := filepath.Join(dir, "audit-webhook.kubeconfig")
	return path, clientcmd.WriteToFile(*cfg, path)
}
