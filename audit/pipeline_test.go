package audit

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bulwark-sec/bulwark/detect"
	"github.com/bulwark-sec/bulwark/store"
	"github.com/bulwark-sec/bulwark/store/sqlstore"
)

// TestPipelineStoresDeduplicated sends the same exec twice through the
// pipeline into a real SQLite store: one open alert, count 2.
func TestPipelineStoresDeduplicated(t *testing.T) {
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.UpsertCluster(ctx, store.Cluster{ID: "c1", Name: "c1"}); err != nil {
		t.Fatal(err)
	}
	e, _, err := NewEngine(RulesConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var lines bytes.Buffer
	reg := prometheus.NewRegistry()
	p := &Pipeline{Engine: e, Cluster: "c1", Metrics: NewMetrics(reg), Sinks: []Sink{&StoreSink{Store: st, Cluster: "c1"}, &JSONSink{W: &lines}}}
	exec := map[string]any{"verb": "create", "objectRef": map[string]any{"resource": "pods", "namespace": "dev", "name": "web", "subresource": "exec"}}
	for i := range 2 {
		if err := p.Handle(ctx, "test", []*Event{fixtureEvent(t, exec, t0.Add(time.Duration(i)*time.Minute), i)}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.Alerts(ctx, store.AlertQuery{ClusterID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].RuleID != "AUD-EXEC" || got[0].Count != 2 || got[0].Technique != "T1609" ||
		!got[0].FirstSeen.Equal(t0) || !got[0].LastSeen.Equal(t0.Add(time.Minute)) {
		t.Fatalf("stored alerts = %+v", got)
	}
	if n := bytes.Count(lines.Bytes(), []byte("\n")); n != 2 {
		t.Errorf("%d JSON lines, want 2", n)
	}
	if v := testutil.ToFloat64(p.Metrics.Events.WithLabelValues("test")); v != 2 {
		t.Errorf("events metric %v", v)
	}
}

// TestPipelineHealth raises alerts for a source that falls silent and for
// rejected input, and counts them.
func TestPipelineHealth(t *testing.T) {
	e, _, err := NewEngine(RulesConfig{})
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	var alerts []detect.Alert
	p := &Pipeline{Engine: e, Cluster: "c1", Now: func() time.Time { return now },
		Sinks: []Sink{SinkFunc(func(_ context.Context, a detect.Alert) error { alerts = append(alerts, a); return nil })}}
	ctx := context.Background()
	for range 5 { // a batch every 2 seconds
		if err := p.Handle(ctx, "webhook", nil); err != nil {
			t.Fatal(err)
		}
		now = now.Add(2 * time.Second)
	}
	p.CheckGaps(ctx, time.Minute)
	if len(alerts) != 0 {
		t.Fatalf("gap alert too early: %+v", alerts)
	}
	now = now.Add(2 * time.Minute)
	p.CheckGaps(ctx, time.Minute)
	p.CheckGaps(ctx, time.Minute) // once per silence
	p.Rejected(ctx, "webhook", "malformed", 3)
	p.LagAlert = time.Minute
	late := fixtureEvent(t, map[string]any{"verb": "get"}, now.Add(-10*time.Minute), 1)
	if err := p.Handle(ctx, "webhook", []*Event{late}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range alerts {
		ids = append(ids, a.RuleID+" "+a.Technique)
	}
	if diff := cmp.Diff([]string{"AUD-PIPELINE-GAP T1562", "AUD-PIPELINE-REJECTED T1562", "AUD-PIPELINE-LAG T1562"}, ids); diff != "" {
		t.Errorf("health alerts (-want +got):\n%s", diff)
	}
	if v := testutil.ToFloat64(p.Metrics.Rejected.WithLabelValues("webhook", "malformed")); v != 3 {
		t.Errorf("rejected metric %v", v)
	}
}
