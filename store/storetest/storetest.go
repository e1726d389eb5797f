// Package storetest is the conformance suite for store.Store: every
// implementation runs Run and must pass all of it. It checks behaviour that
// callers rely on (upsert semantics, atomic scan results, alert
// de-duplication, ordering, errors) and concurrency across goroutines.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwark-sec/bulwark/severity"
	"github.com/bulwark-sec/bulwark/store"
)

// Factory returns a new, empty store for one subtest; the suite closes it.
type Factory func(t *testing.T) store.Store

// Run runs the whole suite against stores made by newStore.
func Run(t *testing.T, newStore Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Clusters", testClusters},
		{"Images", testImages},
		{"ScanLifecycle", testScanLifecycle},
		{"FindingsLatestScanOnly", testFindingsLatestScanOnly},
		{"FailedScan", testFailedScan},
		{"ManyFindings", testManyFindings},
		{"AlertDedupe", testAlertDedupe},
		{"AlertQueryAndStatus", testAlertQueryAndStatus},
		{"ConcurrentAlerts", testConcurrentAlerts},
		{"InvalidInput", testInvalidInput},
		{"HardeningResults", testHardeningResults},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { s.Close() })
			defer func() {
				if r := recover(); r != nil {
					if e, ok := r.(mustErr); ok {
						t.Fatalf("unexpected error: %v", e.err)
					}
					panic(r)
				}
			}()
			if err := s.Ping(context.Background()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			tt.fn(t, s)
		})
	}
}

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 123456000, time.UTC)

const (
	digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digestB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// mustErr carries a failed call from must to the subtest, which fails on it.
type mustErr struct{ err error }

// must returns v, or stops the subtest when err is set. Only for the
// subtest's own goroutine.
func must[T any](v T, err error) T {
	if err != nil {
		panic(mustErr{err})
	}
	return v
}

func testClusters(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.Cluster(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Cluster(missing) error = %v, want ErrNotFound", err)
	}
	c := must(s.UpsertCluster(ctx, store.Cluster{ID: "prod-eu", Name: "prod", Provider: "aks",
		Labels: map[string]string{"env": "prod"}, CreatedAt: t0, LastSeen: t0}))
	want := store.Cluster{ID: "prod-eu", Name: "prod", Provider: "aks", Labels: map[string]string{"env": "prod"}, CreatedAt: t0, LastSeen: t0}
	if d := cmp.Diff(want, c); d != "" {
		t.Fatalf("UpsertCluster (-want +got):\n%s", d)
	}
	// An update renames and moves LastSeen but keeps CreatedAt.
	later := t0.Add(time.Hour)
	must(s.UpsertCluster(ctx, store.Cluster{ID: "prod-eu", Name: "prod-2", Provider: "aks", CreatedAt: later, LastSeen: later}))
	// An older report does not move LastSeen back.
	must(s.UpsertCluster(ctx, store.Cluster{ID: "prod-eu", Name: "prod-2", Provider: "aks", LastSeen: t0}))
	must(s.UpsertCluster(ctx, store.Cluster{ID: "dev", LastSeen: t0}))
	got := must(s.Cluster(ctx, "prod-eu"))
	want = store.Cluster{ID: "prod-eu", Name: "prod-2", Provider: "aks", CreatedAt: t0, LastSeen: later}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("after updates (-want +got):\n%s", d)
	}
	all := must(s.Clusters(ctx))
	if len(all) != 2 || all[0].ID != "dev" || all[0].Name != "dev" || all[1].ID != "prod-eu" {
		t.Fatalf("Clusters = %+v, want dev (named after its id) then prod-eu", all)
	}
}

func testImages(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(s.UpsertImage(ctx, store.Image{Digest: digestA, Name: "reg/app:1", LastSeen: t0}))
	must(s.UpsertImage(ctx, store.Image{Digest: digestB, Name: "reg/db:15", LastSeen: t0.Add(time.Minute)}))
	img := must(s.UpsertImage(ctx, store.Image{Digest: digestA, LastSeen: t0.Add(2 * time.Minute)}))
	want := store.Image{Digest: digestA, Name: "reg/app:1", FirstSeen: t0, LastSeen: t0.Add(2 * time.Minute)}
	if d := cmp.Diff(want, img); d != "" {
		t.Fatalf("re-seen image keeps its name and first sighting (-want +got):\n%s", d)
	}
	all := must(s.Images(ctx))
	if len(all) != 2 || all[0].Digest != digestA || all[1].Digest != digestB {
		t.Fatalf("Images not most-recent first: %+v", all)
	}
	if _, err := s.Image(ctx, "sha256:"+fmt.Sprintf("%064d", 0)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Image(missing) error = %v, want ErrNotFound", err)
	}
}

func findings(scan int64, digest string) []store.Finding {
	return []store.Finding{
		{ScanID: scan, ImageDigest: digest, AdvisoryID: "DSA-5500-1", Aliases: []string{"CVE-2023-4807"}, Ecosystem: "Debian:12",
			Package: "openssl", Version: "3.0.11-1~deb12u1", FixedVersion: "3.0.11-1~deb12u2", Severity: severity.High, Score: 7.8,
			Layer: "sha256:1111", Path: "var/lib/dpkg/status", Remediation: "upgrade openssl 3.0.11-1~deb12u1 → 3.0.11-1~deb12u2"},
		{ScanID: scan, ImageDigest: digest, AdvisoryID: "GO-2024-2687", Ecosystem: "Go", Package: "golang.org/x/net",
			Version: "v0.20.0", Severity: severity.Medium, Path: "usr/bin/app"},
		{ScanID: scan, ImageDigest: digest, AdvisoryID: "GHSA-xxxx", Ecosystem: "npm", Package: "lodash",
			Version: "4.17.20", FixedVersion: "4.17.21", Severity: severity.Critical, Score: 9.1},
	}
}

func testScanLifecycle(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.StartScan(ctx, digestA); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("StartScan of unknown image error = %v, want ErrNotFound", err)
	}
	must(s.UpsertImage(ctx, store.Image{Digest: digestA, Name: "reg/app:1"}))
	sc := must(s.StartScan(ctx, digestA))
	if sc.ID == 0 || sc.Status != store.ScanRunning || sc.ImageDigest != digestA || sc.StartedAt.IsZero() {
		t.Fatalf("StartScan = %+v", sc)
	}
	if _, err := s.LatestScan(ctx, digestA); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a running scan is not the latest result: %v", err)
	}
	inv := json.RawMessage(`{"packages":[{"name":"openssl","version":"3.0.11-1~deb12u1"}]}`)
	done := must(s.FinishScan(ctx, sc.ID, store.ScanResult{Inventory: inv, Findings: findings(sc.ID, digestA)}))
	if done.Status != store.ScanSucceeded || done.Findings != 3 || done.FinishedAt.IsZero() {
		t.Fatalf("FinishScan = %+v", done)
	}
	var gotInv, wantInv any
	_ = json.Unmarshal(done.Inventory, &gotInv)
	_ = json.Unmarshal(inv, &wantInv)
	if d := cmp.Diff(wantInv, gotInv); d != "" {
		t.Fatalf("inventory round trip (-want +got):\n%s", d)
	}
	if _, err := s.FinishScan(ctx, sc.ID, store.ScanResult{}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("finishing twice error = %v, want ErrInvalid", err)
	}
	if _, err := s.FinishScan(ctx, sc.ID+1000, store.ScanResult{}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("finishing unknown scan error = %v, want ErrNotFound", err)
	}
	latest := must(s.LatestScan(ctx, digestA))
	if latest.ID != sc.ID {
		t.Fatalf("LatestScan = %d, want %d", latest.ID, sc.ID)
	}
	got := must(s.Findings(ctx, store.FindingQuery{ImageDigest: digestA}))
	all := findings(sc.ID, digestA)
	want := []store.Finding{all[2], all[0], all[1]} // critical, high, medium
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("Findings (-want +got):\n%s", d)
	}
	high := must(s.Findings(ctx, store.FindingQuery{MinSeverity: severity.High, Limit: 1}))
	if len(high) != 1 || high[0].AdvisoryID != "GHSA-xxxx" {
		t.Fatalf("Findings(min high, limit 1) = %+v", high)
	}
}

func testFindingsLatestScanOnly(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, d := range []string{digestA, digestB} {
		must(s.UpsertImage(ctx, store.Image{Digest: d}))
	}
	old := must(s.StartScan(ctx, digestA))
	must(s.FinishScan(ctx, old.ID, store.ScanResult{Findings: findings(old.ID, digestA)}))
	newer := must(s.StartScan(ctx, digestA))
	must(s.FinishScan(ctx, newer.ID, store.ScanResult{Findings: findings(newer.ID, digestA)[:1]}))
	b := must(s.StartScan(ctx, digestB))
	must(s.FinishScan(ctx, b.ID, store.ScanResult{Findings: findings(b.ID, digestB)[1:2]}))
	// A scan still running does not hide the finished one.
	must(s.StartScan(ctx, digestA))

	got := must(s.Findings(ctx, store.FindingQuery{}))
	if len(got) != 2 {
		t.Fatalf("Findings over all images = %d rows, want 2 (latest scan of each): %+v", len(got), got)
	}
	for _, f := range got {
		if f.ScanID != newer.ID && f.ScanID != b.ID {
			t.Errorf("finding from superseded scan %d: %+v", f.ScanID, f)
		}
	}
	old3 := must(s.Findings(ctx, store.FindingQuery{ScanID: old.ID}))
	if len(old3) != 3 {
		t.Fatalf("Findings of an older scan by id = %d, want 3", len(old3))
	}
}

func testFailedScan(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(s.UpsertImage(ctx, store.Image{Digest: digestA}))
	sc := must(s.StartScan(ctx, digestA))
	done := must(s.FinishScan(ctx, sc.ID, store.ScanResult{Err: errors.New("pull: unauthorized"), Findings: findings(sc.ID, digestA)}))
	if done.Status != store.ScanFailed || done.Error != "pull: unauthorized" || done.Findings != 0 {
		t.Fatalf("failed scan = %+v", done)
	}
	if got := must(s.Findings(ctx, store.FindingQuery{ScanID: sc.ID})); len(got) != 0 {
		t.Fatalf("a failed scan stored %d findings", len(got))
	}
	// A finding without an advisory id fails the whole result: nothing half-written.
	sc2 := must(s.StartScan(ctx, digestA))
	bad := findings(sc2.ID, digestA)
	bad[2].AdvisoryID = ""
	if _, err := s.FinishScan(ctx, sc2.ID, store.ScanResult{Findings: bad}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bad finding error = %v, want ErrInvalid", err)
	}
	if got := must(s.Findings(ctx, store.FindingQuery{ScanID: sc2.ID})); len(got) != 0 {
		t.Fatalf("rejected result left %d findings behind", len(got))
	}
}

func testManyFindings(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(s.UpsertImage(ctx, store.Image{Digest: digestA}))
	sc := must(s.StartScan(ctx, digestA))
	const n = 2500
	fs := make([]store.Finding, n)
	for i := range fs {
		fs[i] = store.Finding{AdvisoryID: fmt.Sprintf("CVE-2026-%05d", i), Ecosystem: "Debian:12", Package: "pkg", Version: "1", Severity: severity.Level(i % 6)}
	}
	done := must(s.FinishScan(ctx, sc.ID, store.ScanResult{Findings: fs}))
	if done.Findings != n {
		t.Fatalf("Findings count = %d, want %d", done.Findings, n)
	}
	got := must(s.Findings(ctx, store.FindingQuery{ImageDigest: digestA}))
	if len(got) != n {
		t.Fatalf("read back %d findings, want %d", len(got), n)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Severity > got[i-1].Severity {
			t.Fatalf("findings not ordered by severity at %d", i)
		}
	}
}

func alert(key string, at time.Time) store.Alert {
	return store.Alert{ClusterID: "c1", DedupeKey: key, Source: "audit", RuleID: "k8s.clusterrolebinding.cluster-admin",
		Title: "New cluster-admin binding", Severity: severity.High, Tactic: "Privilege Escalation", Technique: "T1078",
		Namespace: "", Resource: "clusterrolebindings/evil", Actor: json.RawMessage(`{"user":"mallory"}`),
		Evidence: json.RawMessage(fmt.Sprintf(`{"at":%q}`, at.Format(time.RFC3339))), FirstSeen: at, LastSeen: at}
}

func testAlertDedupe(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, created, err := s.RecordAlert(ctx, alert("k1", t0))
	if err != nil || !created || a.ID == 0 || a.Count != 1 || a.Status != store.AlertOpen {
		t.Fatalf("first RecordAlert = %+v, created=%v, err=%v", a, created, err)
	}
	later := alert("k1", t0.Add(time.Minute))
	later.Severity = severity.Critical
	later.Count = 3
	b, created, err := s.RecordAlert(ctx, later)
	if err != nil || created {
		t.Fatalf("repeat RecordAlert created=%v err=%v", created, err)
	}
	if b.ID != a.ID || b.Count != 4 || !b.FirstSeen.Equal(t0) || !b.LastSeen.Equal(t0.Add(time.Minute)) || b.Severity != severity.Critical {
		t.Fatalf("repeat folded wrongly: %+v", b)
	}
	if string(b.Evidence) != string(later.Evidence) && !jsonEqual(b.Evidence, later.Evidence) {
		t.Fatalf("evidence not the newest: %s", b.Evidence)
	}
	// A late, older event counts but does not replace newer evidence.
	c, _, err := s.RecordAlert(ctx, alert("k1", t0.Add(-time.Minute)))
	if err != nil || c.Count != 5 || !c.FirstSeen.Equal(t0.Add(-time.Minute)) || !jsonEqual(c.Evidence, later.Evidence) {
		t.Fatalf("older event folded wrongly: %+v err=%v", c, err)
	}
	// Another cluster with the same key is another alert.
	other := alert("k1", t0)
	other.ClusterID = "c2"
	if _, created, _ := s.RecordAlert(ctx, other); !created {
		t.Fatal("same key in another cluster was folded")
	}
	// Once resolved, the key opens a new alert.
	if err := s.SetAlertStatus(ctx, a.ID, store.AlertResolved); err != nil {
		t.Fatal(err)
	}
	d, created, err := s.RecordAlert(ctx, alert("k1", t0.Add(time.Hour)))
	if err != nil || !created || d.ID == a.ID {
		t.Fatalf("after resolve: %+v created=%v err=%v", d, created, err)
	}
	if err := s.SetAlertStatus(ctx, a.ID, store.AlertOpen); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("reopening beside an open twin error = %v, want ErrInvalid", err)
	}
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && cmp.Equal(x, y)
}

func testAlertQueryAndStatus(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i, sev := range []severity.Level{severity.Low, severity.High, severity.Critical} {
		a := alert(fmt.Sprintf("k%d", i), t0.Add(time.Duration(i)*time.Minute))
		a.Severity = sev
		must3(s.RecordAlert(ctx, a))
	}
	all := must(s.Alerts(ctx, store.AlertQuery{}))
	if len(all) != 3 || all[0].DedupeKey != "k2" || all[2].DedupeKey != "k0" {
		t.Fatalf("Alerts not newest first: %+v", keys(all))
	}
	high := must(s.Alerts(ctx, store.AlertQuery{MinSeverity: severity.High}))
	if len(high) != 2 {
		t.Fatalf("MinSeverity high gave %v", keys(high))
	}
	since := must(s.Alerts(ctx, store.AlertQuery{Since: t0.Add(time.Minute), Limit: 1}))
	if len(since) != 1 || since[0].DedupeKey != "k2" {
		t.Fatalf("Since+Limit gave %v", keys(since))
	}
	if err := s.SetAlertStatus(ctx, all[0].ID, store.AlertDismissed); err != nil {
		t.Fatal(err)
	}
	open := must(s.Alerts(ctx, store.AlertQuery{Status: store.AlertOpen, ClusterID: "c1"}))
	if len(open) != 2 {
		t.Fatalf("open alerts %v", keys(open))
	}
	if err := s.SetAlertStatus(ctx, 999999, store.AlertResolved); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown alert error = %v", err)
	}
	if err := s.SetAlertStatus(ctx, all[0].ID, "maybe"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bad status error = %v", err)
	}
}

func must3(a store.Alert, _ bool, err error) store.Alert { return must(a, err) }

func keys(as []store.Alert) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.DedupeKey)
	}
	return out
}

// testConcurrentAlerts records the same alerts from many goroutines: every
// event must be counted exactly once and each key must stay one alert.
func testConcurrentAlerts(t *testing.T, s store.Store) {
	ctx := context.Background()
	const workers, each, nkeys = 8, 25, 5
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				key := fmt.Sprintf("key-%d", (w+i)%nkeys)
				if _, _, err := s.RecordAlert(ctx, alert(key, t0.Add(time.Duration(i)*time.Second))); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent RecordAlert: %v", err)
	}
	all := must(s.Alerts(ctx, store.AlertQuery{}))
	if len(all) != nkeys {
		t.Fatalf("%d alerts for %d keys", len(all), nkeys)
	}
	var total int64
	for _, a := range all {
		total += a.Count
	}
	if total != workers*each {
		t.Fatalf("counted %d events, want %d", total, workers*each)
	}
}

func testInvalidInput(t *testing.T, s store.Store) {
	ctx := context.Background()
	checks := []struct {
		name string
		err  error
	}{
		{"cluster without id", func() error { _, err := s.UpsertCluster(ctx, store.Cluster{Name: "x"}); return err }()},
		{"image with bad digest", func() error { _, err := s.UpsertImage(ctx, store.Image{Digest: "latest"}); return err }()},
		{"image with injection", func() error {
			_, err := s.UpsertImage(ctx, store.Image{Digest: "sha256:'; DROP TABLE images; --"})
			return err
		}()},
		{"alert without rule", func() error { _, _, err := s.RecordAlert(ctx, store.Alert{DedupeKey: "k"}); return err }()},
		{"alert with bad evidence", func() error {
			a := alert("k", t0)
			a.Evidence = json.RawMessage(`{not json`)
			_, _, err := s.RecordAlert(ctx, a)
			return err
		}()},
	}
	for _, c := range checks {
		if !errors.Is(c.err, store.ErrInvalid) {
			t.Errorf("%s: error = %v, want ErrInvalid", c.name, c.err)
		}
	}
	// Hostile text is data, never SQL.
	name := `x'); DELETE FROM clusters; --`
	must(s.UpsertCluster(ctx, store.Cluster{ID: name}))
	if got := must(s.Cluster(ctx, name)); got.Name != name {
		t.Fatalf("hostile name stored as %q", got.Name)
	}
}
