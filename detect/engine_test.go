package detect

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/interpreter"
	"github.com/google/go-cmp/cmp"

	"github.com/bulwark-sec/bulwark/severity"
)

// testEvent is a minimal event kind for engine tests.
type testEvent struct {
	Verb, Resource, User, IP string
	N                        int
	At                       time.Time
}

var testSchema = Schema{
	Source: "test",
	Facets: []string{"verb", "resource", "user"},
	Variables: []cel.EnvOption{
		cel.Variable("verb", cel.StringType), cel.Variable("resource", cel.StringType),
		cel.Variable("user", cel.StringType), cel.Variable("ip", cel.StringType),
		cel.Variable("n", cel.IntType),
	},
}

func (e *testEvent) Facet(i int) string {
	return [...]string{e.Verb, e.Resource, e.User}[i]
}

func (e *testEvent) Activation() interpreter.Activation {
	a, _ := interpreter.NewActivation(map[string]any{"verb": e.Verb, "resource": e.Resource, "user": e.User, "ip": e.IP, "n": e.N})
	return a
}

func (e *testEvent) Subject() Subject {
	return Subject{Time: e.At, Resource: e.Resource, Actor: Actor{User: e.User, SourceIPs: []string{e.IP}}}
}

func (e *testEvent) Evidence() json.RawMessage { b, _ := json.Marshal(e); return b }

func compileYAML(t *testing.T, y string, opts Options) *Engine {
	t.Helper()
	rs, err := ParseRules("rules.yaml", []byte(y), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e, err := Compile(testSchema, rs, opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

const baseRules = `
lists:
  tor: {items: ["198.51.100.0/24", "203.0.113.7"]}
  tools: {items: ["kube-hunter", "peirates"]}
rules:
- id: T-1
  title: delete secrets
  source: test
  severity: high
  mitre: {tactic: TA0040, technique: T1485}
  match: {verb: [delete], resource: [secrets]}
- id: T-2
  title: big n
  source: test
  severity: low
  mitre: {tactic: TA0007, technique: T1613}
  condition: n > 10
  message: "'n is ' + string(n)"
  exceptions:
  - name: robots
    match: {user: ["system:*"]}
  - name: tiny
    condition: n == 11
- id: T-3
  title: from tor
  source: test
  severity: medium
  mitre: {tactic: TA0011, technique: T1090.003}
  condition: inList('tor', ip) || containsListed('tools', user)
- id: T-6
  title: needs an empty list
  source: test
  severity: high
  mitre: {tactic: TA0011, technique: T1090.003}
  needsLists: [empty-feed]
  condition: "true"
- id: T-4
  title: other source
  source: runtime
  severity: medium
  mitre: {tactic: TA0002, technique: T1059.004}
- id: T-5
  title: any create by wildcard
  source: test
  severity: info
  mitre: {tactic: TA0002, technique: T1610}
  match: {verb: ["cre*"]}
  enabled: false
`

func TestEvaluate(t *testing.T) {
	e := compileYAML(t, baseRules, Options{Cluster: "c1"})
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		ev   testEvent
		want []string
	}{
		{"indexed match", testEvent{Verb: "delete", Resource: "secrets", User: "u"}, []string{"T-1"}},
		{"indexed miss", testEvent{Verb: "delete", Resource: "pods", User: "u"}, nil},
		{"condition", testEvent{Verb: "get", Resource: "pods", User: "u", N: 12}, []string{"T-2"}},
		{"two rules in order", testEvent{Verb: "delete", Resource: "secrets", User: "u", N: 12}, []string{"T-1", "T-2"}},
		{"exception by facet glob", testEvent{Verb: "get", User: "system:kube", N: 12}, nil},
		{"exception by condition", testEvent{Verb: "get", User: "u", N: 11}, nil},
		{"list cidr", testEvent{Verb: "get", User: "u", IP: "198.51.100.9"}, []string{"T-3"}},
		{"list exact ip", testEvent{Verb: "get", User: "u", IP: "203.0.113.7"}, []string{"T-3"}},
		{"list ip miss", testEvent{Verb: "get", User: "u", IP: "203.0.113.8"}, nil},
		{"list substring", testEvent{Verb: "get", User: "Kube-Hunter/1.0"}, []string{"T-3"}},
		{"disabled rule", testEvent{Verb: "create", User: "u"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := tt.ev
			ev.At = at
			var got []string
			for _, a := range e.Evaluate(&ev) {
				got = append(got, a.RuleID)
				if a.Cluster != "c1" || a.FirstSeen != at || a.Count != 1 || a.DedupeKey == "" || len(a.Evidence) != 1 {
					t.Errorf("alert fields: %+v", a)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("rules fired (-want +got):\n%s", diff)
			}
		})
	}
	a := e.Evaluate(&testEvent{Verb: "get", User: "u", N: 12, At: at})[0]
	if a.Message != "n is 12" || a.TechniqueName != "Container and Resource Discovery" || a.TacticName != "Discovery" || a.Severity != severity.Low {
		t.Errorf("alert = %+v", a)
	}
	var ids []string
	for _, r := range e.Rules() {
		ids = append(ids, r.ID)
	}
	if r := e.Rules()[3]; r.ID != "T-6" || r.Inactive == "" {
		t.Errorf("rule without its list: %+v", r)
	}
	if diff := cmp.Diff([]string{"T-1", "T-2", "T-3", "T-6", "T-5"}, ids); diff != "" {
		t.Errorf("loaded rules (-want +got):\n%s", diff)
	}
}

func TestOverrides(t *testing.T) {
	rs, err := ParseRules("base.yaml", []byte(baseRules), "")
	if err != nil {
		t.Fatal(err)
	}
	user, err := ParseRules("user.yaml", []byte(`
overrides:
- id: T-1
  enabled: false
- id: T-2
  severity: critical
  exceptions: [{name: u2, match: {user: [u2]}}]
- id: T-5
  enabled: true
`), "")
	if err != nil {
		t.Fatal(err)
	}
	rs.Merge(user)
	e, err := Compile(testSchema, rs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Evaluate(&testEvent{Verb: "delete", Resource: "secrets"}); len(got) != 0 {
		t.Errorf("disabled T-1 fired: %v", got)
	}
	if got := e.Evaluate(&testEvent{Verb: "get", User: "u", N: 20}); len(got) != 1 || got[0].Severity != severity.Critical {
		t.Errorf("T-2 with severity override: %+v", got)
	}
	if got := e.Evaluate(&testEvent{Verb: "get", User: "u2", N: 20}); len(got) != 0 {
		t.Errorf("override exception ignored: %+v", got)
	}
	if got := e.Evaluate(&testEvent{Verb: "create", User: "x"}); len(got) != 1 || got[0].RuleID != "T-5" {
		t.Errorf("enabled T-5 (wildcard facet): %+v", got)
	}

	unknown, _ := ParseRules("u.yaml", []byte("overrides:\n- id: NOPE\n  enabled: false\n"), "")
	rs.Merge(unknown)
	_, err = Compile(testSchema, rs, Options{})
	var re *RuleError
	if !errors.Is(err, ErrUnknownRule) || !errors.As(err, &re) || re.File != "u.yaml" || re.Line != 2 {
		t.Errorf("override of unknown rule: %v", err)
	}
}

func TestCompileErrors(t *testing.T) {
	const head = "rules:\n- id: X-1\n  title: t\n  source: test\n  severity: high\n  mitre: {tactic: TA0002, technique: T1609}\n"
	tests := []struct {
		name     string
		yaml     string
		line     int
		contains string
	}{
		{"yaml syntax", "rules:\n- id: [\n", 2, "yaml"},
		{"cel syntax", head + "  condition: verb ==\n", 7, "condition does not compile: column"},
		{"cel type", head + "  condition: n == 'x'\n", 7, "condition does not compile"},
		{"cel undeclared", head + "  condition: nope == 1\n", 7, "undeclared reference"},
		{"cel block scalar second line", head + "  condition: |\n    verb == 'a' &&\n    bogus(1)\n", 9, "condition does not compile"},
		{"condition not bool", head + "  condition: verb\n", 7, "condition must be bool"},
		{"message not string", head + "  message: n\n", 7, "message must be string"},
		{"unknown facet", head + "  match: {color: [red]}\n", 2, `unknown key "color"`},
		{"unknown technique", strings.Replace(head, "T1609", "T9999", 1), 2, "not in the ATT&CK catalogue"},
		{"technique of other tactic", strings.Replace(head, "TA0002", "TA0040", 1), 2, "is not a technique of tactic"},
		{"missing severity", strings.Replace(head, "  severity: high\n", "", 1), 2, "severity is required"},
		{"bad severity", strings.Replace(head, "high", "extreme", 1), 5, "unknown level"},
		{"missing source", strings.Replace(head, "  source: test\n", "", 1), 2, "source is required"},
		{"bad threshold", head + "  threshold: {count: 1, window: 1m, by: user}\n", 2, "threshold needs"},
		{"bad exception", head + "  exceptions:\n  - name: e\n    condition: n +\n", 9, "exception does not compile"},
		{"empty exception", head + "  exceptions:\n  - name: e\n", 8, "neither match nor condition"},
		{"duplicate id", head + strings.TrimPrefix(head, "rules:\n"), 7, "id already used"},
		{"bad ms id", head + "  msMatrix: TA9\n", 2, "msMatrix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := ParseRules("r.yaml", []byte(tt.yaml), "")
			if err == nil {
				_, err = Compile(testSchema, rs, Options{})
			}
			var re *RuleError
			if !errors.As(err, &re) || !errors.Is(err, ErrInvalidRule) {
				t.Fatalf("error = %v, want a *RuleError", err)
			}
			if re.Line != tt.line || !strings.Contains(re.Reason, tt.contains) || re.File != "r.yaml" {
				t.Errorf("error = %q (line %d), want line %d containing %q", err, re.Line, tt.line, tt.contains)
			}
		})
	}
}

func TestThreshold(t *testing.T) {
	e := compileYAML(t, `
rules:
- id: B-1
  title: burst of deletes
  source: test
  severity: medium
  mitre: {tactic: TA0040, technique: T1485}
  match: {verb: [delete]}
  threshold: {count: 3, window: 10s, by: user}
`, Options{})
	t0 := time.Unix(1000, 0)
	fire := func(user string, sec int) int {
		return len(e.Evaluate(&testEvent{Verb: "delete", User: user, At: t0.Add(time.Duration(sec) * time.Second)}))
	}
	got := []int{fire("a", 0), fire("a", 1), fire("b", 1), fire("a", 20), fire("a", 21), fire("a", 22), fire("a", 23)}
	// a@0,a@1 then a@20 (window lost the first two), a@21, a@22 -> fire; a@23 starts over.
	if diff := cmp.Diff([]int{0, 0, 0, 0, 0, 1, 0}, got); diff != "" {
		t.Errorf("threshold hits (-want +got):\n%s", diff)
	}
}

func TestBaselinePersisted(t *testing.T) {
	const rules = `
rules:
- id: N-1
  title: new verb for user
  source: test
  severity: medium
  mitre: {tactic: TA0007, technique: T1613}
  baseline: {key: user, value: "verb + ' ' + resource", learning: 1h}
`
	path := filepath.Join(t.TempDir(), "baselines.json")
	b, err := OpenBaselines(path)
	if err != nil {
		t.Fatal(err)
	}
	e := compileYAML(t, rules, Options{Baselines: b})
	t0 := time.Unix(0, 0)
	ev := func(verb, res string, after time.Duration) int {
		return len(e.Evaluate(&testEvent{Verb: verb, Resource: res, User: "sa", At: t0.Add(after)}))
	}
	if ev("get", "pods", 0) != 0 || ev("list", "pods", 30*time.Minute) != 0 {
		t.Fatal("alert while learning")
	}
	if ev("get", "pods", 2*time.Hour) != 0 {
		t.Fatal("alert for a learned value")
	}
	if err := b.Save(); err != nil {
		t.Fatal(err)
	}
	// A restart reads what was learned.
	b2, err := OpenBaselines(path)
	if err != nil {
		t.Fatal(err)
	}
	e = compileYAML(t, rules, Options{Baselines: b2})
	if ev("list", "pods", 3*time.Hour) != 0 {
		t.Error("restart forgot a learned value")
	}
	if ev("delete", "secrets", 3*time.Hour) != 1 {
		t.Error("new value after learning: no alert")
	}
	if ev("delete", "secrets", 4*time.Hour) != 0 {
		t.Error("anomaly reported twice")
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}

func TestFolder(t *testing.T) {
	f := NewFolder(time.Minute, 10)
	t0 := time.Unix(0, 0)
	a := func(sec int) Alert {
		at := t0.Add(time.Duration(sec) * time.Second)
		return Alert{DedupeKey: "k", FirstSeen: at, LastSeen: at, Count: 1, Evidence: []json.RawMessage{json.RawMessage(`1`)}}
	}
	var passed []int64
	for _, s := range []int{0, 10, 20, 30, 70, 80} {
		if out, ok := f.Fold(a(s)); ok {
			passed = append(passed, out.Count)
		}
	}
	if diff := cmp.Diff([]int64{1, 4}, passed); diff != "" {
		t.Errorf("folded counts (-want +got):\n%s", diff)
	}
	if rest := f.Flush(); len(rest) != 1 || rest[0].Count != 1 {
		t.Errorf("flush = %+v", rest)
	}
}
