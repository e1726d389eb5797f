package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwark-sec/bulwark/severity"
	"github.com/bulwark-sec/bulwark/store"
)

// jsonByValue compares JSON by value: PostgreSQL's JSONB re-spaces it.
var jsonByValue = cmp.Transformer("json", func(b json.RawMessage) any {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return string(b)
	}
	return v
})

func testHardeningResults(t *testing.T, s store.Store) {
	ctx := context.Background()
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	res := func(key, ns, id, field string, sev severity.Level) store.HardeningResult {
		return store.HardeningResult{ClusterID: "c1", ObjectKey: key, Kind: "Pod", Namespace: ns, Name: "p", CheckID: id,
			Container: "app", Field: field, Severity: sev, Title: "t " + id, Message: "m", Fix: "f",
			Detail: []byte(`{"checkId":"` + id + `"}`), UpdatedAt: at}
	}
	a1 := res("Pod/a/p", "a", "pss-baseline-privileged", "spec.containers[0].securityContext.privileged", severity.Critical)
	a2 := res("Pod/a/p", "a", "def-readonly-rootfs", "spec.containers[0].securityContext.readOnlyRootFilesystem", severity.Low)
	b1 := res("Pod/b/p", "b", "def-resource-limits", "spec.containers[0].resources.limits", severity.Medium)
	if err := s.ReplaceHardeningResults(ctx, "c1", "Pod/a/p", []store.HardeningResult{a2, a1}); err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceHardeningResults(ctx, "c1", "Pod/b/p", []store.HardeningResult{b1}); err != nil {
		t.Fatal(err)
	}
	got, err := s.HardeningResults(ctx, store.HardeningQuery{ClusterID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]store.HardeningResult{a1, b1, a2}, got, jsonByValue); d != "" {
		t.Errorf("results (-want +got):\n%s", d)
	}
	// Replacing an object's results removes those it no longer has.
	if err := s.ReplaceHardeningResults(ctx, "c1", "Pod/a/p", []store.HardeningResult{a2}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.HardeningResults(ctx, store.HardeningQuery{ClusterID: "c1", MinSeverity: severity.Low})
	if d := cmp.Diff([]store.HardeningResult{b1, a2}, got, jsonByValue); d != "" {
		t.Errorf("after replace (-want +got):\n%s", d)
	}
	got, _ = s.HardeningResults(ctx, store.HardeningQuery{Namespace: "b"})
	if len(got) != 1 || got[0].CheckID != "def-resource-limits" {
		t.Errorf("namespace filter: %+v", got)
	}
	if err := s.ReplaceHardeningResults(ctx, "c1", "Pod/a/p", nil); err != nil {
		t.Fatal(err)
	}
	got, _ = s.HardeningResults(ctx, store.HardeningQuery{ClusterID: "c1", Limit: 10})
	if len(got) != 1 {
		t.Errorf("after removal: %+v", got)
	}
	// A result for another object is refused and changes nothing.
	if err := s.ReplaceHardeningResults(ctx, "c1", "Pod/b/p", []store.HardeningResult{a1}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("mismatched object: %v", err)
	}
	bad := b1
	bad.Detail = []byte("{not json")
	if err := s.ReplaceHardeningResults(ctx, "c1", "Pod/b/p", []store.HardeningResult{bad}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("bad detail: %v", err)
	}
	got, _ = s.HardeningResults(ctx, store.HardeningQuery{ClusterID: "c1"})
	if len(got) != 1 {
		t.Errorf("a refused replace changed results: %+v", got)
	}
}
