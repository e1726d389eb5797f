package testenv_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/bulwark-sec/bulwark/testenv"
)

func pod(ns, name string, privileged bool) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "registry.example/app:1",
			SecurityContext: &corev1.SecurityContext{Privileged: &privileged},
		}}},
	}
}

// TestKubeAPIServerIsReal creates a Namespace, a Pod and a
// ClusterRoleBinding through client-go and reads them back, and checks that
// RBAC is enforced for a user without rights.
func TestKubeAPIServerIsReal(t *testing.T) {
	k := testenv.KubeAPIServer(t)
	ctx := context.Background()
	if !strings.HasPrefix(k.Version, "v1.") {
		t.Fatalf("server version %q", k.Version)
	}
	ns, err := k.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ns.UID == "" {
		t.Fatal("namespace has no UID: not stored by a real apiserver")
	}
	if _, err := k.Client.CoreV1().Pods("demo").Create(ctx, pod("demo", "web", false), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "demo-admin"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "default", Namespace: "demo"}},
	}
	if _, err := k.Client.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	got, err := k.Client.CoreV1().Pods("demo").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.Containers[0].Image != "registry.example/app:1" || got.Status.Phase != corev1.PodPending {
		t.Fatalf("pod read back as image=%q phase=%q", got.Spec.Containers[0].Image, got.Status.Phase)
	}
	if got.Spec.Containers[0].TerminationMessagePath == "" {
		t.Fatal("pod was not defaulted by the apiserver")
	}
	gotCRB, err := k.Client.RbacV1().ClusterRoleBindings().Get(ctx, "demo-admin", metav1.GetOptions{})
	if err != nil || gotCRB.RoleRef.Name != "cluster-admin" || gotCRB.Subjects[0].Namespace != "demo" {
		t.Fatalf("clusterrolebinding read back as %+v, %v", gotCRB, err)
	}
	list, err := k.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) < 4 { // default, kube-system, kube-public, kube-node-lease, demo
		t.Fatalf("namespaces: %d, %v", len(list.Items), err)
	}

	// RBAC is real: a user with no bindings is forbidden.
	_, err = k.ClientFor(t, "mallory", "devs").CoreV1().Secrets("demo").List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("mallory listing secrets: error = %v, want Forbidden", err)
	}

	// The kubeconfig file works for other tools.
	cfg, err := clientcmd.BuildConfigFromFlags("", k.Kubeconfig)
	if err != nil || cfg.Host != k.Config.Host {
		t.Fatalf("kubeconfig: %v (%v)", cfg, err)
	}
	t.Logf("kube-apiserver start time: %s", k.StartupTime)
}

// TestKubeAuditAndWebhook checks the audit options (log file and webhook)
// and a validating admission webhook, all called by the real apiserver.
func TestKubeAuditAndWebhook(t *testing.T) {
	pki := testenv.NewPKI(t)
	var mu sync.Mutex
	var auditBatches []map[string]any
	var reviews int
	mux := http.NewServeMux()
	mux.HandleFunc("/audit", func(w http.ResponseWriter, r *http.Request) {
		var list map[string]any
		if err := json.NewDecoder(r.Body).Decode(&list); err == nil {
			mu.Lock()
			auditBatches = append(auditBatches, list)
			mu.Unlock()
		}
	})
	mux.HandleFunc("/validate", func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		var p corev1.Pod
		_ = json.Unmarshal(review.Request.Object.Raw, &p)
		resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
		for _, c := range p.Spec.Containers {
			if c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged {
				resp.Allowed = false
				resp.Result = &metav1.Status{Code: 403, Message: "privileged container " + c.Name + " denied by test webhook"}
			}
		}
		mu.Lock()
		reviews++
		mu.Unlock()
		review.Response, review.Request = resp, nil
		_ = json.NewEncoder(w).Encode(review)
	})
	l, err := tls.Listen("tcp", "127.0.0.1:0", pki.ServerTLS(t))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	// Registered before KubeAPIServer, so cleanup stops the apiserver first.
	t.Cleanup(func() { srv.Close() })
	base := "https://" + l.Addr().(*net.TCPAddr).String()

	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	k := testenv.KubeAPIServer(t,
		testenv.WithPKI(pki),
		testenv.WithAuditLog(),
		testenv.WithAuditWebhook(base+"/audit", nil, nil),
		testenv.WithValidatingWebhook(&admissionregistrationv1.ValidatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: "deny-privileged"},
			Webhooks: []admissionregistrationv1.ValidatingWebhook{{
				Name:                    "deny-privileged.testenv.local",
				ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: ptr(base + "/validate"), CABundle: pki.CAPEM},
				Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{"CREATE"}, Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}},
				NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "demo"}},
				FailurePolicy:           &fail,
				SideEffects:             &none,
				AdmissionReviewVersions: []string{"v1"},
			}},
		}),
	)
	ctx := context.Background()
	if _, err := k.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The webhook configuration takes effect within about a second.
	var denyErr error
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		_, denyErr = k.Client.CoreV1().Pods("demo").Create(ctx, pod("demo", "priv"+string(rune('a'+i%26)), true), metav1.CreateOptions{})
		if denyErr != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if denyErr == nil || !strings.Contains(denyErr.Error(), "denied by test webhook") {
		t.Fatalf("privileged pod: error = %v, want a denial from the webhook", denyErr)
	}
	if _, err := k.Client.CoreV1().Pods("demo").Create(ctx, pod("demo", "fine", false), metav1.CreateOptions{}); err != nil {
		t.Fatalf("unprivileged pod: %v", err)
	}

	// Both audit backends see the namespace creation.
	deadline = time.Now().Add(20 * time.Second)
	var inLog, inHook bool
	for time.Now().Before(deadline) && !(inLog && inHook) {
		inLog = auditFileHas(t, k.AuditLogPath, "namespaces", "demo")
		mu.Lock()
		for _, b := range auditBatches {
			items, _ := b["items"].([]any)
			for _, it := range items {
				ev, _ := it.(map[string]any)
				ref, _ := ev["objectRef"].(map[string]any)
				if ev["verb"] == "create" && ref["resource"] == "namespaces" && ref["name"] == "demo" {
					inHook = true
				}
			}
		}
		mu.Unlock()
		time.Sleep(250 * time.Millisecond)
	}
	if !inLog || !inHook {
		t.Fatalf("audit event for namespace creation: in log file %v, via webhook %v", inLog, inHook)
	}
	mu.Lock()
	defer mu.Unlock()
	if reviews == 0 {
		t.Fatal("webhook never called")
	}
}

func auditFileHas(t *testing.T, path, resource, name string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev struct {
			Kind      string `json:"kind"`
			Verb      string `json:"verb"`
			ObjectRef struct {
				Resource, Name string
			} `json:"objectRef"`
		}
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Kind == "Event" && ev.Verb == "create" &&
			ev.ObjectRef.Resource == resource && ev.ObjectRef.Name == name {
			return true
		}
	}
	return false
}

func ptr[T any](v T) *T { return &v }
