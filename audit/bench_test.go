package audit

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/bulwark-sec/bulwark/detect"
)

// mixEvents builds a realistic audit stream: mostly reads and watches by
// controllers, nodes and service accounts, lease and status updates, some
// workload writes with bodies, a little exec, RBAC and secrets traffic.
func mixEvents(tb testing.TB, n int) [][]byte {
	tb.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	users := []string{"system:node:worker-1", "system:node:worker-2", "system:kube-controller-manager", "system:kube-scheduler",
		"system:serviceaccount:kube-system:replicaset-controller", "system:serviceaccount:web:api", "system:serviceaccount:monitoring:prometheus",
		"alice@example.com", "ci-bot"}
	pod := `{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web-%d","namespace":"web","labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"registry.example/web:1.%d","ports":[{"containerPort":8080}],"resources":{"limits":{"cpu":"500m","memory":"256Mi"}}}],"volumes":[{"name":"cfg","configMap":{"name":"web"}}]}}`
	deploy := `{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"api-%d","namespace":"web"},"spec":{"replicas":3,"template":{"spec":{"containers":[{"name":"api","image":"registry.example/api:2.%d","env":[{"name":"MODE","value":"prod"}]}]}}}}`
	out := make([][]byte, 0, n)
	for i := range n {
		m := map[string]any{
			"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": fmt.Sprintf("id-%d", i),
			"stage": "ResponseComplete", "requestURI": "/api/v1/x",
			"user":      map[string]any{"username": users[r.IntN(len(users))], "groups": []string{"system:authenticated"}},
			"sourceIPs": []string{fmt.Sprintf("10.0.%d.%d", r.IntN(4), r.IntN(250))}, "userAgent": "kube-controller-manager/v1.37.2",
			"responseStatus":           map[string]any{"code": 200},
			"annotations":              map[string]string{"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": "RBAC"},
			"requestReceivedTimestamp": "2026-11-25T10:00:00.000000Z", "stageTimestamp": "2026-11-25T10:00:00.001000Z",
		}
		ns := []string{"web", "kube-system", "monitoring", "default"}[r.IntN(4)]
		switch p := r.IntN(100); {
		case p < 35:
			m["verb"], m["objectRef"] = "get", map[string]any{"resource": []string{"pods", "configmaps", "endpoints", "services", "nodes"}[r.IntN(5)], "namespace": ns, "name": "x"}
		case p < 50:
			m["verb"], m["objectRef"] = "list", map[string]any{"resource": []string{"pods", "services", "replicasets", "secrets"}[r.IntN(4)], "namespace": ns}
		case p < 60:
			m["verb"], m["objectRef"] = "watch", map[string]any{"resource": []string{"pods", "endpointslices", "nodes"}[r.IntN(3)], "apiGroup": ""}
		case p < 78:
			m["verb"], m["objectRef"] = "update", map[string]any{"resource": "leases", "apiGroup": "coordination.k8s.io", "namespace": "kube-node-lease", "name": "worker-1"}
		case p < 88:
			m["verb"], m["objectRef"] = "patch", map[string]any{"resource": "pods", "subresource": "status", "namespace": ns, "name": "web-1"}
		case p < 94:
			m["verb"], m["level"] = "create", "RequestResponse"
			m["objectRef"] = map[string]any{"resource": "pods", "namespace": "web", "name": fmt.Sprintf("web-%d", i)}
			m["requestObject"] = json.RawMessage(fmt.Sprintf(pod, i, i%9))
			m["responseStatus"] = map[string]any{"code": 201}
		case p < 97:
			m["verb"], m["level"] = "update", "RequestResponse"
			m["objectRef"] = map[string]any{"resource": "deployments", "apiGroup": "apps", "namespace": "web", "name": "api"}
			m["requestObject"] = json.RawMessage(fmt.Sprintf(deploy, i, i%9))
		case p < 98:
			m["verb"], m["objectRef"] = "create", map[string]any{"resource": "pods", "subresource": "exec", "namespace": "web", "name": "web-1"}
		case p < 99:
			m["verb"], m["objectRef"] = "create", map[string]any{"resource": "rolebindings", "apiGroup": "rbac.authorization.k8s.io", "namespace": "web", "name": "rb"}
			m["requestObject"] = json.RawMessage(`{"kind":"RoleBinding","roleRef":{"name":"view"},"subjects":[{"kind":"User","name":"bob"}]}`)
		default:
			m["verb"], m["objectRef"] = "get", map[string]any{"resource": "secrets", "namespace": "web", "name": "tls"}
			m["responseStatus"] = map[string]any{"code": 403}
			m["annotations"] = map[string]string{"authorization.k8s.io/decision": "forbid"}
		}
		b, err := json.Marshal(m)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func benchEngine(b *testing.B) *detect.Engine {
	e, _, err := NewEngine(RulesConfig{})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkEvaluateWithFeeds is BenchmarkEvaluate with threat-intel lists
// loaded (1,500 Tor exit addresses and 50 proxy ranges), which makes the
// list rule run on every event.
func BenchmarkEvaluateWithFeeds(b *testing.B) {
	dir := b.TempDir()
	var tor, proxies []byte
	for i := range 1500 {
		tor = fmt.Appendf(tor, "185.%d.%d.%d\n", 100+i%50, i/250, i%250)
	}
	for i := range 50 {
		proxies = fmt.Appendf(proxies, "203.0.%d.0/24\n", i)
	}
	if err := os.WriteFile(dir+"/tor", tor, 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(dir+"/proxies", proxies, 0o600); err != nil {
		b.Fatal(err)
	}
	e, _, err := NewEngine(RulesConfig{Lists: map[string]string{"tor-exit-nodes": dir + "/tor", "proxies": dir + "/proxies"}})
	if err != nil {
		b.Fatal(err)
	}
	runEvaluate(b, e)
}

// BenchmarkEvaluate is the rule engine alone, all built-in rules, on
// decoded events (each iteration evaluates a fresh copy, so request
// objects are decoded again when a rule needs them).
//
//	go test -run XXX -bench Evaluate -cpu 1 ./audit/
func BenchmarkEvaluate(b *testing.B) {
	runEvaluate(b, benchEngine(b))
}

func runEvaluate(b *testing.B, e *detect.Engine) {
	raw := mixEvents(b, 10_000)
	evs := make([]*Event, len(raw))
	for i, r := range raw {
		ev, err := DecodeEvent(r)
		if err != nil {
			b.Fatal(err)
		}
		evs[i] = ev
	}
	b.ReportAllocs()
	start := time.Now()
	b.ResetTimer()
	alerts := 0
	for i := 0; i < b.N; i++ {
		ev := &Event{Event: evs[i%len(evs)].Event}
		alerts += len(e.Evaluate(ev))
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	b.ReportMetric(float64(e.Stats().Candidates.Load())/float64(e.Stats().Events.Load()), "CEL-rules/event")
	_ = alerts
}

// BenchmarkDecodeEvaluate adds JSON decoding of each audit line, as the
// log-file and webhook sources do.
func BenchmarkDecodeEvaluate(b *testing.B) {
	raw := mixEvents(b, 10_000)
	e := benchEngine(b)
	var bytes int64
	for _, r := range raw {
		bytes += int64(len(r))
	}
	b.SetBytes(bytes / int64(len(raw)))
	b.ReportAllocs()
	start := time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ev, err := DecodeEvent(raw[i%len(raw)])
		if err != nil {
			b.Fatal(err)
		}
		e.Evaluate(ev)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}
