package audit

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/bulwark-sec/bulwark/detect"
)

// ruleFixture is testdata/rules/<RULE-ID>.yaml: events that must fire the
// rule (positive) and events that must not (negative). Each event is a
// partial audit event merged over baseEvent.
type ruleFixture struct {
	Lists    map[string][]string `yaml:"lists"`
	Positive []ruleCase          `yaml:"positive"`
	Negative []ruleCase          `yaml:"negative"`
}

type ruleCase struct {
	Name   string           `yaml:"name"`
	Event  map[string]any   `yaml:"event"`
	Before []map[string]any `yaml:"before"` // evaluated first, at t0
	After  time.Duration    `yaml:"after"`  // the event's time after t0
	Repeat int              `yaml:"repeat"` // send the event this many times, a second apart
}

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func baseEvent() map[string]any {
	return map[string]any{
		"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
		"auditID": "00000000-0000-0000-0000-000000000001", "stage": "ResponseComplete",
		"requestURI": "/apis/x", "verb": "get",
		"user":      map[string]any{"username": "alice", "groups": []any{"system:authenticated"}},
		"sourceIPs": []any{"192.0.2.10"}, "userAgent": "kubectl/v1.37.2 (linux/amd64)",
		"responseStatus": map[string]any{"metadata": map[string]any{}, "code": 200},
		"annotations":    map[string]any{"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},
	}
}

func merge(dst, src map[string]any) map[string]any {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok && len(sm) > 0 {
				dst[k] = merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
	return dst
}

// fixtureEvent builds and decodes an event the way a source would.
func fixtureEvent(t *testing.T, partial map[string]any, at time.Time, n int) *Event {
	t.Helper()
	m := merge(baseEvent(), partial)
	m["auditID"] = fmt.Sprintf("00000000-0000-0000-0000-%012d", n)
	m["requestReceivedTimestamp"] = at.Format("2006-01-02T15:04:05.000000Z07:00")
	m["stageTimestamp"] = at.Format("2006-01-02T15:04:05.000000Z07:00")
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := DecodeEvent(b)
	if err != nil {
		t.Fatalf("fixture does not decode: %v\n%s", err, b)
	}
	return ev
}

func loadFixtures(t *testing.T) map[string]ruleFixture {
	t.Helper()
	files, err := filepath.Glob("testdata/rules/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]ruleFixture{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var fx ruleFixture
		dec := yaml.NewDecoder(strings.NewReader(string(data)))
		dec.KnownFields(true)
		if err := dec.Decode(&fx); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".yaml")] = fx
	}
	return out
}

// runCase evaluates a case on a fresh engine and returns the alerts of ruleID.
func runCase(t *testing.T, ruleID string, fx ruleFixture, c ruleCase) []detect.Alert {
	t.Helper()
	rs, err := BuiltinRules()
	if err != nil {
		t.Fatal(err)
	}
	e, err := detect.Compile(Schema(), rs, detect.Options{Cluster: "test", Lists: fx.Lists})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, b := range c.Before {
		n++
		e.Evaluate(fixtureEvent(t, b, t0, n))
	}
	var got []detect.Alert
	for i := range max(c.Repeat, 1) {
		n++
		for _, a := range e.Evaluate(fixtureEvent(t, c.Event, t0.Add(c.After+time.Duration(i)*time.Second), n)) {
			if a.RuleID == ruleID {
				got = append(got, a)
			}
		}
	}
	return got
}

// TestBuiltinRules runs every built-in rule against its positive and
// negative fixtures, and checks that every rule has both.
func TestBuiltinRules(t *testing.T) {
	e, _, err := NewEngine(RulesConfig{})
	if err != nil {
		t.Fatal(err)
	}
	fixtures := loadFixtures(t)
	rules := e.Rules()
	if len(rules) < 30 {
		t.Errorf("%d built-in rules, want at least 30", len(rules))
	}
	for _, r := range rules {
		fx, ok := fixtures[r.ID]
		if !ok || len(fx.Positive) == 0 || len(fx.Negative) == 0 {
			t.Errorf("rule %s has no positive and negative fixtures in testdata/rules/%s.yaml", r.ID, r.ID)
			continue
		}
		delete(fixtures, r.ID)
		if r.Technique == "" || r.Tactic == "" {
			t.Errorf("rule %s has no MITRE mapping", r.ID)
		}
		t.Run(r.ID, func(t *testing.T) {
			for _, c := range fx.Positive {
				got := runCase(t, r.ID, fx, c)
				if len(got) != 1 {
					t.Errorf("positive %q: %d alerts, want 1", c.Name, len(got))
					continue
				}
				a := got[0]
				if a.Technique != r.Technique || a.Tactic != r.Tactic || a.Cluster != "test" || a.DedupeKey == "" ||
					len(a.Evidence) != 1 || a.Actor.User == "" && r.ID != "AUD-UNAUTHORIZED-BURST" {
					t.Errorf("positive %q: alert %+v", c.Name, a)
				}
				if strings.Contains(a.Message, "<nil>") {
					t.Errorf("positive %q: message %q", c.Name, a.Message)
				}
			}
			for _, c := range fx.Negative {
				if got := runCase(t, r.ID, fx, c); len(got) != 0 {
					t.Errorf("negative %q: %d alerts, want none: %+v", c.Name, len(got), got[0])
				}
			}
		})
	}
	for id := range fixtures {
		t.Errorf("testdata/rules/%s.yaml names no built-in rule", id)
	}
}
