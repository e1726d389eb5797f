package cloudwatch

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"

	"github.com/bulwark-sec/bulwark/audit"
)

// fakeLogs speaks the CloudWatch Logs JSON 1.1 protocol for
// FilterLogEvents over an in-memory log group, two events a page.
type fakeLogs struct {
	mu     sync.Mutex
	events []map[string]any // eventId, timestamp, message, logStreamName
	calls  int
	t      *testing.T
}

func (f *fakeLogs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if r.Method != http.MethodPost || r.Header.Get("X-Amz-Target") != "Logs_20140328.FilterLogEvents" ||
		!strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-amz-json-1.1") ||
		!strings.Contains(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=AKIDTEST/") {
		f.t.Errorf("unexpected request: %s %v", r.Method, r.Header)
		w.WriteHeader(400)
		return
	}
	var in struct {
		LogGroupName        string `json:"logGroupName"`
		LogStreamNamePrefix string `json:"logStreamNamePrefix"`
		StartTime           int64  `json:"startTime"`
		NextToken           string `json:"nextToken"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.LogGroupName != "/aws/eks/prod/cluster" {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(400)
		fmt.Fprint(w, `{"__type":"ResourceNotFoundException","message":"The specified log group does not exist."}`)
		return
	}
	var match []map[string]any
	for _, e := range f.events {
		if e["timestamp"].(int64) >= in.StartTime && strings.HasPrefix(e["logStreamName"].(string), in.LogStreamNamePrefix) {
			match = append(match, e)
		}
	}
	start, _ := strconv.Atoi(in.NextToken)
	end := min(start+2, len(match))
	out := map[string]any{"events": match[start:end], "searchedLogStreams": []any{}}
	if end < len(match) {
		out["nextToken"] = strconv.Itoa(end)
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(out)
}

func (f *fakeLogs) add(id string, ts time.Time, stream string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	msg := fmt.Sprintf(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":%q,"stage":"ResponseComplete","requestURI":"/api","verb":"get","user":{"username":"u"}}`, id)
	if id == "bad" {
		msg = "not an audit event"
	}
	f.events = append(f.events, map[string]any{"eventId": "ev-" + id, "timestamp": ts.UnixMilli(), "ingestionTime": ts.UnixMilli() + 500, "logStreamName": stream, "message": msg})
}

type recorder struct {
	ids      []string
	rejected int
}

func (r *recorder) Handle(_ context.Context, _ string, evs []*audit.Event) error {
	for _, e := range evs {
		r.ids = append(r.ids, string(e.AuditID))
	}
	return nil
}
func (r *recorder) Rejected(_ context.Context, _, _ string, n int) { r.rejected += n }

func TestFollowWithRealSDK(t *testing.T) {
	fake := &fakeLogs{t: t}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	client := NewClient(aws.Config{
		Region: "eu-west-1",
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"}, nil
		}),
	}, srv.URL)

	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for i, id := range []string{"1", "2", "3", "bad", "4"} {
		fake.add(id, t0.Add(time.Duration(i)*time.Second), "kube-apiserver-audit-abc")
	}
	fake.add("scheduler", t0, "kube-scheduler-abc") // another stream: not read
	cfg := Config{Client: client, LogGroup: "/aws/eks/prod/cluster", StatePath: filepath.Join(t.TempDir(), "cw.json"), Start: t0, Once: true, Poll: time.Millisecond}
	rec := &recorder{}
	if err := Follow(context.Background(), cfg, rec); err != nil {
		t.Fatal(err)
	}
	// Late arrivals (older than the newest seen, within the lookback) and
	// new events, read by a restarted follower: each once.
	fake.add("late", t0.Add(2500*time.Millisecond), "kube-apiserver-audit-def")
	fake.add("5", t0.Add(10*time.Second), "kube-apiserver-audit-abc")
	if err := Follow(context.Background(), cfg, rec); err != nil {
		t.Fatal(err)
	}
	if err := Follow(context.Background(), cfg, rec); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"1", "2", "3", "4", "late", "5"}, rec.ids); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if rec.rejected != 1 {
		t.Errorf("rejected %d, want 1", rec.rejected)
	}

	// A missing log group is an error naming it.
	bad := cfg
	bad.LogGroup = "/aws/eks/nope/cluster"
	bad.StatePath = filepath.Join(t.TempDir(), "x.json")
	if err := Follow(context.Background(), bad, rec); err == nil || !strings.Contains(err.Error(), "ResourceNotFoundException") {
		t.Errorf("missing group: %v", err)
	}
}
