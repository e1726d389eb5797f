package check

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/bulwark-sec/bulwark/manifest"
)

var update = flag.Bool("update", false, "rewrite golden files")

func loadObjects(t testing.TB, file string) []*Object {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	docs, err := manifest.Parse(f, filepath.Base(file), manifest.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var out []*Object
	for _, d := range docs {
		o, err := NewManifestObject(d.Object, d.Source)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	return out
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Errorf("%s differs (-want +got):\n%s", name, d)
	}
}

type brief struct{ Check, Object, Container, Field, Message string }

func briefs(rs []Result) []brief {
	out := make([]brief, 0, len(rs))
	for _, r := range rs {
		out = append(out, brief{r.CheckID, r.Object.String(), r.Container, r.Field, r.Message})
	}
	return out
}

// TestCatalogueGolden runs every built-in and user check over a snapshot
// of workloads, RBAC, services, an ingress, a static pod and a CRD.
func TestCatalogueGolden(t *testing.T) {
	user, err := LoadCEL("testdata/user-checks.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(Config{AllowedRegistries: []string{"registry.example.com/"}}, append(Builtin(), user...))
	if err != nil {
		t.Fatal(err)
	}
	res := e.Assess(loadObjects(t, "testdata/cluster.yaml"))
	b, _ := json.MarshalIndent(briefs(res), "", " ")
	golden(t, "cluster.golden.json", append(b, '\n'))

	// The compliant pod passes everything but its missing team label.
	for _, r := range res {
		if r.Object.Name == "good" && r.CheckID != "user-team-label" && r.CheckID != "cis-5.3.2-network-policy" {
			t.Errorf("compliant pod fails %s: %s", r.CheckID, r.Message)
		}
	}
}

// TestEveryWorkloadKind puts the same privileged container in every kind
// with a pod template and wants the finding at the right field path.
func TestEveryWorkloadKind(t *testing.T) {
	spec := corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x",
		SecurityContext: &corev1.SecurityContext{Privileged: ptr(true)}}}}
	tmpl := corev1.PodTemplateSpec{Spec: spec}
	om := metav1.ObjectMeta{Name: "w", Namespace: "ns"}
	cases := []struct {
		obj  runtime.Object
		want string
	}{
		{&corev1.Pod{ObjectMeta: om, Spec: spec}, "spec.containers[0].securityContext.privileged"},
		{&appsv1.Deployment{ObjectMeta: om, Spec: appsv1.DeploymentSpec{Template: tmpl}}, "spec.template.spec.containers[0].securityContext.privileged"},
		{&appsv1.StatefulSet{ObjectMeta: om, Spec: appsv1.StatefulSetSpec{Template: tmpl}}, "spec.template.spec.containers[0].securityContext.privileged"},
		{&appsv1.DaemonSet{ObjectMeta: om, Spec: appsv1.DaemonSetSpec{Template: tmpl}}, "spec.template.spec.containers[0].securityContext.privileged"},
		{&appsv1.ReplicaSet{ObjectMeta: om, Spec: appsv1.ReplicaSetSpec{Template: tmpl}}, "spec.template.spec.containers[0].securityContext.privileged"},
		{&corev1.ReplicationController{ObjectMeta: om, Spec: corev1.ReplicationControllerSpec{Template: &tmpl}}, "spec.template.spec.containers[0].securityContext.privileged"},
		{&batchv1.Job{ObjectMeta: om, Spec: batchv1.JobSpec{Template: tmpl}}, "spec.template.spec.containers[0].securityContext.privileged"},
		{&batchv1.CronJob{ObjectMeta: om, Spec: batchv1.CronJobSpec{JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: tmpl}}}},
			"spec.jobTemplate.spec.template.spec.containers[0].securityContext.privileged"},
	}
	e, err := NewEngine(Config{}, Builtin())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		o, err := NewObject(c.obj)
		if err != nil {
			t.Fatal(err)
		}
		var got []brief
		for _, r := range e.Object(o) {
			if r.CheckID == "pss-baseline-privileged" || r.CheckID == "def-privileged" {
				got = append(got, brief{r.CheckID, r.Object.String(), r.Container, r.Field, ""})
			}
		}
		want := []brief{
			{"def-privileged", o.Ref.Kind + "/ns/w", "c", c.want, ""},
			{"pss-baseline-privileged", o.Ref.Kind + "/ns/w", "c", c.want, ""},
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", o.Ref.Kind, d)
		}
	}
}

func TestEngineRejectsBadChecks(t *testing.T) {
	ok := Check{ID: "a", Title: "t", Severity: 3, Object: func(*Object, *Config) []Violation { return nil }}
	cases := map[string][]Check{
		"duplicate": {ok, ok},
		"no func":   {{ID: "b", Title: "t", Severity: 3}},
		"bad id":    {{ID: "a b", Title: "t", Severity: 3, Object: ok.Object}},
	}
	for name, cs := range cases {
		if _, err := NewEngine(Config{}, cs); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := NewEngine(Config{PSSVersion: "v2.x"}, nil); err == nil {
		t.Error("bad PSS version accepted")
	}
}

func TestCELErrors(t *testing.T) {
	for name, src := range map[string]string{
		"syntax":   "checks: [{id: x, expression: 'object.spec.'}]",
		"not bool": "checks: [{id: x, expression: '1 + 2'}]",
		"no id":    "checks: [{expression: 'true'}]",
		"unknown":  "checks: [{id: x, expression: 'nosuchvar'}]",
	} {
		if _, err := ParseCEL([]byte(src)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// A runaway expression is stopped by the cost limit and fails the check.
	cs, err := ParseCEL([]byte(`checks: [{id: slow, expression: "[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, [1,2,3,4,5,6,7,8,9,10].all(e, [1,2,3,4,5,6,7,8,9,10].all(f, a+b+c+d+e+f > 0))))))"}]`))
	if err != nil {
		t.Fatal(err)
	}
	e, _ := NewEngine(Config{}, cs)
	o, _ := NewObject(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}})
	res := e.Object(o)
	if len(res) != 1 || !strings.Contains(res[0].Message, "cost") {
		t.Errorf("runaway expression: %+v", res)
	}
}

func ptr[T any](v T) *T { return &v }
