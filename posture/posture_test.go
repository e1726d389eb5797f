package posture_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bulwark-sec/bulwark/check"
	"github.com/bulwark-sec/bulwark/posture"
	"github.com/bulwark-sec/bulwark/store"
	"github.com/bulwark-sec/bulwark/store/sqlstore"
	"github.com/bulwark-sec/bulwark/testenv"
)

func ptr[T any](v T) *T { return &v }

func deployment(privileged bool) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "team"}, Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx",
				SecurityContext: &corev1.SecurityContext{Privileged: ptr(privileged)}}}}}}}
}

// TestPostureAgainstRealAPIServer watches a real kube-apiserver and wants
// the store to follow each change, re-evaluating only the changed object.
func TestPostureAgainstRealAPIServer(t *testing.T) {
	k := testenv.KubeAPIServer(t)
	st, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "bulwark.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e, err := check.NewEngine(check.Config{}, check.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	a, err := posture.New(k.Client, posture.Config{ClusterID: "test", Engine: e, Store: st, InventoryDelay: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()

	bg := context.Background()
	c := k.Client
	if _, err := c.CoreV1().Namespaces().Create(bg, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	other := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "team"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	if _, err := c.CoreV1().Pods("team").Create(bg, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AppsV1().Deployments("team").Create(bg, deployment(true), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	has := func(key, checkID string) bool {
		rs, err := st.HardeningResults(bg, store.HardeningQuery{ClusterID: "test", CheckID: checkID})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.ObjectKey == key {
				return true
			}
		}
		return false
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if cond() {
				return
			}
		}
		t.Fatalf("timed out waiting for %s", what)
	}
	waitFor("privileged deployment result", func() bool { return has("Deployment/team/web", "pss-baseline-privileged") })
	waitFor("pod result", func() bool { return has("Pod/team/other", "def-run-as-non-root") })
	otherEvals := a.Evaluations("Pod/team/other")

	// The fix removes the result; only the deployment is evaluated again.
	d, err := c.AppsV1().Deployments("team").Get(bg, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Spec.Template.Spec.Containers[0].SecurityContext.Privileged = ptr(false)
	if _, err := c.AppsV1().Deployments("team").Update(bg, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("privileged result gone", func() bool { return !has("Deployment/team/web", "pss-baseline-privileged") })
	if !has("Deployment/team/web", "def-readonly-rootfs") {
		t.Error("the deployment's other results went away with the fixed one")
	}
	if n := a.Evaluations("Pod/team/other"); n != otherEvals {
		t.Errorf("unchanged pod evaluated again: %d -> %d", otherEvals, n)
	}
	if n := a.Evaluations("Deployment/team/web"); n < 2 {
		t.Errorf("deployment evaluated %d times", n)
	}

	// Snapshot checks: binding the default service account shows up, and
	// goes away with the binding.
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "sa-view", Namespace: "team"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "view"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "default", Namespace: "team"}}}
	if _, err := c.RbacV1().RoleBindings("team").Create(bg, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	key := "RoleBinding/team/sa-view" + posture.InventorySuffix
	waitFor("default SA binding result", func() bool { return has(key, "cis-5.1.5-default-sa-bound") })
	if err := c.RbacV1().RoleBindings("team").Delete(bg, "sa-view", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("binding result gone", func() bool { return !has(key, "cis-5.1.5-default-sa-bound") })

	// Deleting the deployment removes its results.
	if err := c.AppsV1().Deployments("team").Delete(bg, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("deployment results gone", func() bool { return !has("Deployment/team/web", "def-readonly-rootfs") })

	// Nothing was written into the cluster: no new kinds of objects in team.
	cms, _ := c.CoreV1().ConfigMaps("team").List(bg, metav1.ListOptions{})
	if len(cms.Items) > 1 { // kube-root-ca.crt needs a controller that does not run here
		t.Errorf("posture wrote %d configmaps into the cluster", len(cms.Items))
	}
}
