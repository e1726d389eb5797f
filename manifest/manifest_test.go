package manifest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

func kinds(objs []Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, fmt.Sprintf("%T %s", o.Object, o.Source))
	}
	return out
}

func TestParse(t *testing.T) {
	cases := []struct {
		name, in string
		want     []string
		wantErr  error
	}{
		{"multi-doc YAML with Helm sources", `---
# Source: chart/templates/pod.yaml
apiVersion: v1
kind: Pod
metadata: {name: a}
---
# Source: chart/templates/empty.yaml
# nothing rendered
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: b}
`, []string{"*v1.Pod in#1 (chart/templates/pod.yaml)", "*v1.Deployment in#3"}, nil},
		{"JSON stream", `{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"}}
{"apiVersion":"batch/v1","kind":"CronJob","metadata":{"name":"c"}}`,
			[]string{"*v1.Service in#1", "*v1.CronJob in#2"}, nil},
		{"JSON array", `[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}}]`, []string{"*v1.Pod in#1[0]"}, nil},
		{"List", `apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Pod, metadata: {name: a}}
- {apiVersion: v1, kind: PodList, items: [{apiVersion: v1, kind: Pod, metadata: {name: b}}]}
`, []string{"*v1.Pod in#1.items[0]", "*v1.Pod in#1.items[1].items[0]"}, nil},
		{"CRD stays unstructured", "apiVersion: x.io/v1\nkind: Widget\nmetadata: {name: w}\n", []string{"*unstructured.Unstructured in#1"}, nil},
		{"bad document among good ones", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\njust a string\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\n",
			[]string{"*v1.Pod in#1", "*v1.Pod in#3"}, ErrInvalid},
		{"no kind", "metadata: {name: a}\n", nil, ErrInvalid},
		{"wrong field type", "apiVersion: v1\nkind: Pod\nspec: {containers: 3}\n", nil, ErrInvalid},
		{"deep JSON", strings.Repeat("[", 100) + strings.Repeat("]", 100), nil, ErrTooDeep},
		{"deep YAML", "apiVersion: v1\nkind: ConfigMap\ndata: " + strings.Repeat("{a: ", 100) + "1" + strings.Repeat("}", 100) + "\n", nil, ErrTooDeep},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			objs, err := Parse(strings.NewReader(c.in), "in", Limits{})
			if d := cmp.Diff(c.want, kinds(objs)); d != "" {
				t.Errorf("objects (-want +got):\n%s", d)
			}
			if c.wantErr == nil && err != nil || c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Errorf("err = %v, want %v", err, c.wantErr)
			}
		})
	}
}

func TestParseLimits(t *testing.T) {
	big := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: " + strings.Repeat("x", 2000) + "}\n"
	if _, err := Parse(strings.NewReader(big), "in", Limits{MaxBytes: 1000}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("input limit: %v", err)
	}
	objs, err := Parse(strings.NewReader(big+"---\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\n"), "in", Limits{MaxDocBytes: 1000})
	if !errors.Is(err, ErrTooLarge) || len(objs) != 1 {
		t.Errorf("document limit: %d objects, %v", len(objs), err)
	}
	many := strings.Repeat("---\napiVersion: v1\nkind: Pod\nmetadata: {name: a}\n", 10)
	if objs, err := Parse(strings.NewReader(many), "in", Limits{MaxObjects: 3}); !errors.Is(err, ErrTooLarge) || len(objs) != 3 {
		t.Errorf("object limit: %d objects, %v", len(objs), err)
	}
	// A billion-laughs alias bomb is refused by the YAML parser.
	bomb := "apiVersion: v1\nkind: ConfigMap\na: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
	if _, err := Parse(strings.NewReader(bomb), "in", Limits{}); err == nil {
		t.Error("alias bomb accepted")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, image: x}]}\n"))
	f.Add([]byte(`{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Pod"}]}`))
	f.Add([]byte("---\n# Source: x\n---\napiVersion: x/v1\nkind: Y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, _ := Parse(strings.NewReader(string(data)), "fuzz", Limits{MaxBytes: 1 << 20})
		for _, o := range objs {
			if o.Object == nil {
				t.Fatal("nil object without error")
			}
			var _ runtime.Object = o.Object
			if u, ok := o.Object.(*unstructured.Unstructured); ok && u.GetKind() == "" {
				t.Fatal("object without kind")
			}
		}
	})
}
