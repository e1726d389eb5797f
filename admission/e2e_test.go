package admission_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/bulwark-sec/bulwark/admission"
	"github.com/bulwark-sec/bulwark/testenv"
)

type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	w.msgs = append(w.msgs, text)
	w.mu.Unlock()
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	return out
}

func ptr[T any](v T) *T { return &v }

// hardened is a pod spec that passes every check the test policies use.
func hardened() corev1.PodSpec {
	return corev1.PodSpec{
		SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr(true), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
		Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/app:1",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")}},
			SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr(false), ReadOnlyRootFilesystem: ptr(true),
				Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}}},
	}
}

func podWith(ns, name string, f func(*corev1.PodSpec)) *corev1.Pod {
	s := hardened()
	if f != nil {
		f(&s)
	}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: s}
}

func privileged(s *corev1.PodSpec) {
	s.Containers[0].SecurityContext.Privileged = ptr(true)
	s.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
}

// TestWebhookAgainstRealAPIServer registers the webhook with a real
// kube-apiserver and creates objects through client-go.
func TestWebhookAgainstRealAPIServer(t *testing.T) {
	pki := testenv.NewPKI(t)
	serving := pki.ServingCert(t, "bulwark-webhook", "127.0.0.1")
	cfg := admission.Config{
		Policies: []admission.Policy{
			{Name: "pss", Checks: []string{"pss-baseline-*", "def-privileged"}, Mode: admission.Deny},
			{Name: "rootfs", Checks: []string{"def-readonly-rootfs"}, Mode: admission.Warn},
			{Name: "limits", Checks: []string{"def-resource-limits"}, Mode: admission.Audit},
		},
		DefaultMode: admission.Off,
	}
	engine, err := admission.NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h, err := admission.New(cfg, engine, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- admission.Serve(ctx, admission.ServeConfig{Listener: ln, CertFile: serving.CertFile, KeyFile: serving.KeyFile}, h)
	}()
	t.Cleanup(stop)
	// No namespace selector: kube-system requests reach the webhook, which
	// must exempt them itself.
	whc, err := admission.WebhookConfiguration(admission.InstallOptions{
		URL: "https://" + ln.Addr().String() + "/validate", CABundle: pki.CAPEM, ExemptNamespaces: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	k := testenv.KubeAPIServer(t, testenv.WithPKI(pki), testenv.WithAuditLog(), testenv.WithValidatingWebhook(whc))
	var warn warnings
	rc := rest.CopyConfig(k.Config)
	rc.WarningHandler = &warn
	c := kubernetes.NewForConfigOrDie(rc)
	bg := context.Background()
	if _, err := c.CoreV1().Namespaces().Create(bg, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// The configuration takes effect within about a second.
	var denyErr error
	for i := 0; i < 100; i++ {
		_, denyErr = c.CoreV1().Pods("team").Create(bg, podWith("team", "priv-pod", privileged), metav1.CreateOptions{})
		if denyErr != nil {
			break
		}
		c.CoreV1().Pods("team").Delete(bg, "priv-pod", metav1.DeleteOptions{})
		time.Sleep(200 * time.Millisecond)
	}
	for _, want := range []string{"bulwark denied", "pss-baseline-privileged", "def-privileged", "securityContext.privileged", "fix:"} {
		if denyErr == nil || !strings.Contains(denyErr.Error(), want) {
			t.Fatalf("privileged pod: error %v, want it to contain %q", denyErr, want)
		}
	}

	tmpl := func(f func(*corev1.PodSpec)) corev1.PodTemplateSpec {
		p := podWith("", "", f)
		return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}}, Spec: p.Spec}
	}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "hostpid", Namespace: "team"}, Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}},
		Template: tmpl(func(s *corev1.PodSpec) { s.HostPID = true })}}
	_, err = c.AppsV1().Deployments("team").Create(bg, dep, metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "pss-baseline-hostnamespaces") || !strings.Contains(err.Error(), "spec.template.spec.hostPID") {
		t.Errorf("hostPID deployment: %v", err)
	}
	cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "priv", Namespace: "team"}, Spec: batchv1.CronJobSpec{Schedule: "0 * * * *",
		JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: tmpl(func(s *corev1.PodSpec) {
			privileged(s)
			s.RestartPolicy = corev1.RestartPolicyNever
		})}}}}
	_, err = c.BatchV1().CronJobs("team").Create(bg, cj, metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "pss-baseline-privileged") || !strings.Contains(err.Error(), "spec.jobTemplate.spec.template.spec.containers[0].securityContext.privileged") {
		t.Errorf("privileged cronjob: %v", err)
	}

	// Compliant: admitted, no warnings.
	warn.take()
	if _, err := c.CoreV1().Pods("team").Create(bg, podWith("team", "good", nil), metav1.CreateOptions{}); err != nil {
		t.Errorf("compliant pod: %v", err)
	}
	if w := warn.take(); len(w) != 0 {
		t.Errorf("compliant pod got warnings %q", w)
	}
	okDep := dep.DeepCopy()
	okDep.Name, okDep.Spec.Template = "good", tmpl(nil)
	if _, err := c.AppsV1().Deployments("team").Create(bg, okDep, metav1.CreateOptions{}); err != nil {
		t.Errorf("compliant deployment: %v", err)
	}

	// Warn mode: admitted with a warning naming the check.
	_, err = c.CoreV1().Pods("team").Create(bg, podWith("team", "writable", func(s *corev1.PodSpec) {
		s.Containers[0].SecurityContext.ReadOnlyRootFilesystem = nil
	}), metav1.CreateOptions{})
	if w := warn.take(); err != nil || len(w) != 1 || !strings.HasPrefix(w[0], "[def-readonly-rootfs]") {
		t.Errorf("warn mode: err %v, warnings %q", err, w)
	}

	// Audit mode: admitted; the annotation lands in the audit log.
	if _, err := c.CoreV1().Pods("team").Create(bg, podWith("team", "nolimits", func(s *corev1.PodSpec) {
		s.Containers[0].Resources = corev1.ResourceRequirements{}
	}), metav1.CreateOptions{}); err != nil {
		t.Errorf("audit mode: %v", err)
	}
	if !auditAnnotated(t, k.AuditLogPath, `"nolimits"`, "bulwark.bulwark.dev/def-resource-limits") {
		t.Error("audit annotation for pod nolimits not in the apiserver audit log")
	}

	// kube-system is exempt by default.
	if _, err := c.CoreV1().Pods("kube-system").Create(bg, podWith("kube-system", "priv-system", privileged), metav1.CreateOptions{}); err != nil {
		t.Errorf("kube-system pod: %v", err)
	}

	// A stopped webhook with failurePolicy Ignore does not block the cluster.
	stop()
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("serve: %v", err)
	}
	if _, err := c.CoreV1().Pods("team").Create(bg, podWith("team", "while-down", privileged), metav1.CreateOptions{}); err != nil {
		t.Errorf("webhook down, fail open: %v", err)
	}
}

// auditAnnotated polls the audit log for an event mentioning name that
// carries the annotation key.
func auditAnnotated(t *testing.T, path, name, key string) bool {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			if line := sc.Text(); strings.Contains(line, name) && strings.Contains(line, `"`+key+`"`) {
				f.Close()
				return true
			}
		}
		f.Close()
	}
	return false
}
