package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-sec/bulwark/audit"
)

// floodBatch is an EventList of n events of the common kinds, about 1 KiB each.
func floodBatch(n, seq int) []byte {
	items := make([]map[string]any, n)
	for i := range items {
		items[i] = map[string]any{
			"level": "RequestResponse", "auditID": fmt.Sprintf("%d-%d", seq, i), "stage": "ResponseComplete",
			"requestURI": "/api/v1/namespaces/web/pods", "verb": []string{"get", "list", "update", "create"}[i%4],
			"user":      map[string]any{"username": "system:serviceaccount:web:api", "groups": []string{"system:serviceaccounts"}},
			"sourceIPs": []string{"10.0.0.7"}, "userAgent": "api/1.0",
			"objectRef":      map[string]any{"resource": "pods", "namespace": "web", "name": fmt.Sprintf("p-%d", i)},
			"responseStatus": map[string]any{"code": 200}, "annotations": map[string]string{"authorization.k8s.io/decision": "allow"},
			"requestObject":  map[string]any{"kind": "Pod", "spec": map[string]any{"containers": []any{map[string]any{"name": "c", "image": "registry.example/api:1"}}}},
			"stageTimestamp": "2026-11-25T10:00:00.000000Z",
		}
	}
	b, _ := json.Marshal(map[string]any{"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items})
	return b
}

// BenchmarkFlood floods the receiver from 8 senders (far faster than one
// core evaluates) and reports the events evaluated per second, the share
// of batches refused with 429, and the peak heap: the heap must stay
// near the queue budget however long the flood lasts.
//
//	go test -run XXX -bench Flood -benchtime 10s ./audit/webhook/
func BenchmarkFlood(b *testing.B) {
	e, _, err := audit.NewEngine(audit.RulesConfig{})
	if err != nil {
		b.Fatal(err)
	}
	p := &audit.Pipeline{Engine: e}
	const budget = 64 << 20
	r, err := New(Config{Insecure: true, MaxQueuedBytes: budget}, p)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { r.Run(ctx); close(runDone) }()

	batches := make([][]byte, 16)
	for i := range batches {
		batches[i] = floodBatch(400, i)
	}
	var ok, busy atomic.Int64
	var peak atomic.Uint64
	stopSample := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-stopSample:
				return
			case <-time.After(20 * time.Millisecond):
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
			}
		}
	}()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				w := httptest.NewRecorder()
				r.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(batches[i%int64(len(batches))])))
				switch w.Code {
				case http.StatusOK:
					ok.Add(1)
				case http.StatusTooManyRequests:
					busy.Add(1)
					time.Sleep(time.Millisecond)
				default:
					b.Errorf("status %d", w.Code)
					return
				}
			}
		}()
	}
	wg.Wait()
	cancel()
	<-runDone // drains what was accepted
	elapsed := time.Since(start)
	close(stopSample)
	b.ReportMetric(float64(ok.Load()*400)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(busy.Load())/float64(b.N)*100, "%429")
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
}
