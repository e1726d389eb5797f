package check

import (
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
)

// mixedObjects returns n objects cloned from testdata/cluster.yaml (
// workloads of every kind, services, RBAC, an ingress, a static pod, a
// CRD), each copy in its own namespace.
func mixedObjects(b testing.TB, n int) []*Object {
	base := loadObjects(b, "testdata/cluster.yaml")
	out := make([]*Object, 0, n)
	for i := 0; len(out) < n; i++ {
		for _, o := range base {
			if len(out) == n {
				break
			}
			c := o.Typed.DeepCopyObject()
			m, _ := meta.Accessor(c)
			m.SetName(fmt.Sprintf("%s-%d", m.GetName(), i))
			if m.GetNamespace() != "" && m.GetNamespace() != "kube-system" {
				m.SetNamespace(fmt.Sprintf("%s-%d", m.GetNamespace(), i%200))
			}
			obj, err := NewObject(c.(runtime.Object))
			if err != nil {
				b.Fatal(err)
			}
			out = append(out, obj)
		}
	}
	return out
}

// BenchmarkAssess10k assesses 10,000 mixed objects with every built-in
// check (object and inventory checks). Target: <= 1 s per op.
func BenchmarkAssess10k(b *testing.B) {
	objs := mixedObjects(b, 10_000)
	e, err := NewEngine(Config{AllowedRegistries: []string{"registry.example.com/"}}, Builtin())
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var results int
	start := time.Now()
	for i := 0; i < b.N; i++ {
		results = len(e.Assess(objs))
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N), "ms/10k-objects")
	b.ReportMetric(float64(results), "results")
}
