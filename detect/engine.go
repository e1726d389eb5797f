package detect

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
	"github.com/google/cel-go/interpreter"

	"github.com/bulwark-sec/bulwark/detect/mitre"
	"github.com/bulwark-sec/bulwark/severity"
)

// Options tunes an Engine.
type Options struct {
	// Cluster is written into every alert.
	Cluster string
	// Baselines keeps what baseline rules learned; nil keeps it in memory.
	Baselines BaselineStore
	// Lists are extra named lists (threat intelligence files), added to
	// those the rule files define.
	Lists map[string][]string
	// MaxKeys bounds the keys a threshold rule tracks (default 65536).
	MaxKeys int
}

// Engine evaluates compiled rules against events. It is safe for
// concurrent use.
type Engine struct {
	schema Schema
	rules  []*compiled
	index  map[[2]string][]*compiled
	opts   Options
	stats  Stats
}

// Stats counts what the engine did; read with Engine.Stats.
type Stats struct {
	Events     atomic.Int64
	Candidates atomic.Int64 // rule evaluations after the index
	Matches    atomic.Int64
	Suppressed atomic.Int64 // matches an exception removed
	EvalErrors atomic.Int64 // CEL runtime errors (treated as no match)
}

// RuleInfo describes a loaded rule, for listings.
type RuleInfo struct {
	ID        string         `json:"id"`
	Title     string         `json:"title"`
	Source    string         `json:"source"`
	Severity  severity.Level `json:"severity"`
	Tactic    string         `json:"tactic"`
	Technique string         `json:"technique"`
	MSMatrix  string         `json:"msMatrix,omitempty"`
	Enabled   bool           `json:"enabled"`
	// Inactive says why an enabled rule does not run.
	Inactive string `json:"inactive,omitempty"`
}

type compiled struct {
	Rule
	order         int
	tacticName    string
	techniqueName string
	match         [][]string // per facet: allowed values (nil = any)
	cond          cel.Program
	msg           cel.Program
	group         cel.Program
	exceptions    []compiledException
	thr           *thresholdState
	baseKey       cel.Program
	baseValue     cel.Program
	enabled       bool
	inactive      string
}

type compiledException struct {
	name  string
	match [][]string
	cond  cel.Program
}

// Compile builds an engine from the rules of rs whose source is
// schema.Source, after applying rs's overrides. Every rule is checked
// (metadata, MITRE ids, match facets, CEL type-checking); the first
// problem is returned as a *RuleError.
func Compile(schema Schema, rs *RuleSet, opts Options) (*Engine, error) {
	if opts.MaxKeys <= 0 {
		opts.MaxKeys = 65536
	}
	if opts.Baselines == nil {
		opts.Baselines = NewMemoryBaselines()
	}
	lists := map[string]*list{}
	all := map[string][]string{}
	for k, v := range rs.Lists {
		all[k] = append(all[k], v...)
	}
	for k, v := range opts.Lists {
		all[k] = append(all[k], v...)
	}
	for k, v := range all {
		lists[k] = compileList(v)
	}
	envOpts := append([]cel.EnvOption{
		cel.OptionalTypes(), ext.Strings(), ext.Sets(), ext.Lists(), ext.Regex(),
		cel.CrossTypeNumericComparisons(true),
	}, schema.Variables...)
	envOpts = append(envOpts, listFuncs(lists)...)
	env, err := cel.NewEnv(envOpts...)
	if err != nil {
		return nil, fmt.Errorf("detect: CEL environment: %w", err)
	}
	facetIdx := map[string]int{}
	for i, f := range schema.Facets {
		facetIdx[f] = i
	}

	// Overrides apply to rules of any source; unknown ids are refused.
	byID := map[string]*Rule{}
	for i := range rs.Rules {
		r := &rs.Rules[i]
		if prev, dup := byID[r.ID]; dup && r.ID != "" {
			return nil, &RuleError{File: r.file, Line: r.line, Rule: r.ID, Reason: fmt.Sprintf("id already used at %s:%d", prev.file, prev.line), Err: ErrInvalidRule}
		}
		byID[r.ID] = r
	}
	rules := make([]Rule, len(rs.Rules))
	copy(rules, rs.Rules)
	pos := map[string]int{}
	for i := range rules {
		pos[rules[i].ID] = i
	}
	for _, o := range rs.Overrides {
		i, ok := pos[o.ID]
		if !ok {
			return nil, &RuleError{File: o.file, Line: o.line, Rule: o.ID, Reason: "override names a rule that is not defined", Err: ErrUnknownRule}
		}
		r := &rules[i]
		if o.Enabled != nil {
			r.Enabled = o.Enabled
		}
		if o.Severity != severity.Unknown {
			r.Severity = o.Severity
		}
		r.Exceptions = append(slices.Clip(r.Exceptions), o.Exceptions...)
	}

	e := &Engine{schema: schema, index: map[[2]string][]*compiled{}, opts: opts}
	for i := range rules {
		r := &rules[i]
		if r.Source != schema.Source {
			if r.Source == "" {
				return nil, r.errf("", "source is required (%s, ...)", schema.Source)
			}
			continue
		}
		c, err := compileRule(env, schema, facetIdx, r)
		if err != nil {
			return nil, err
		}
		c.order = len(e.rules)
		e.rules = append(e.rules, c)
		if len(r.NeedsLists) > 0 {
			empty := true
			for _, l := range r.NeedsLists {
				if len(all[l]) > 0 {
					empty = false
				}
			}
			if empty {
				c.inactive = "lists " + strings.Join(r.NeedsLists, ", ") + " are empty"
			}
		}
		if !c.enabled || c.inactive != "" {
			continue
		}
		k0, k1 := indexValues(c.match, 0), indexValues(c.match, 1)
		for _, a := range k0 {
			for _, b := range k1 {
				key := [2]string{a, b}
				e.index[key] = append(e.index[key], c)
			}
		}
	}
	return e, nil
}

// indexValues returns the index keys of facet i: its values, or "" (any)
// when the rule does not restrict it or uses a wildcard.
func indexValues(match [][]string, i int) []string {
	if i >= len(match) || match[i] == nil {
		return []string{""}
	}
	for _, v := range match[i] {
		if strings.ContainsAny(v, "*?[") {
			return []string{""}
		}
	}
	return match[i]
}

func (r *Rule) errf(field string, format string, args ...any) *RuleError {
	line := r.line
	if l, ok := r.lines[field]; ok {
		line = l
	}
	return &RuleError{File: r.file, Line: line, Rule: r.ID, Reason: fmt.Sprintf(format, args...), Err: ErrInvalidRule}
}

var (
	idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	msPattern = regexp.MustCompile(`^MS-TA9\d{3}$`)
)

func compileRule(env *cel.Env, schema Schema, facetIdx map[string]int, r *Rule) (*compiled, error) {
	switch {
	case !idPattern.MatchString(r.ID):
		return nil, r.errf("id", "id %q: want letters, digits, '.', '_' or '-'", r.ID)
	case r.Title == "":
		return nil, r.errf("", "title is required")
	case r.Severity == severity.Unknown:
		return nil, r.errf("", "severity is required (info, low, medium, high, critical)")
	}
	c := &compiled{Rule: *r, enabled: r.Enabled == nil || *r.Enabled}
	ta, ok := mitre.LookupTactic(r.MITRE.Tactic)
	if !ok {
		return nil, r.errf("", "mitre.tactic %q is not an ATT&CK tactic of the catalogue", r.MITRE.Tactic)
	}
	te, ok := mitre.LookupTechnique(r.MITRE.Technique)
	if !ok {
		return nil, r.errf("", "mitre.technique %q is not in the ATT&CK catalogue", r.MITRE.Technique)
	}
	if !te.HasTactic(ta.ID) {
		return nil, r.errf("", "mitre.technique %s (%s) is not a technique of tactic %s (%s)", te.ID, te.Name, ta.ID, ta.Name)
	}
	c.tacticName, c.techniqueName = ta.Name, te.Name
	if r.MSMatrix != "" && !msPattern.MatchString(r.MSMatrix) {
		return nil, r.errf("", "msMatrix %q: want MS-TA9nnn", r.MSMatrix)
	}
	var err error
	if c.match, err = compileMatch(r.Match, facetIdx, schema); err != nil {
		return nil, r.errf("", "match: %v", err)
	}
	if c.cond, err = compileExpr(env, r, "condition", r.Condition, cel.BoolType, "true"); err != nil {
		return nil, err
	}
	if r.Message != "" {
		if c.msg, err = compileExpr(env, r, "message", r.Message, cel.StringType, ""); err != nil {
			return nil, err
		}
	}
	if r.GroupBy != "" {
		if c.group, err = compileExpr(env, r, "groupBy", r.GroupBy, cel.StringType, ""); err != nil {
			return nil, err
		}
	}
	for _, ex := range r.Exceptions {
		ce := compiledException{name: ex.Name}
		if ce.match, err = compileMatch(ex.Match, facetIdx, schema); err != nil {
			return nil, &RuleError{File: r.file, Line: ex.line, Rule: r.ID, Reason: fmt.Sprintf("exception %q: match: %v", ex.Name, err), Err: ErrInvalidRule}
		}
		if ex.Condition == "" && len(ex.Match) == 0 {
			return nil, &RuleError{File: r.file, Line: ex.line, Rule: r.ID, Reason: fmt.Sprintf("exception %q has neither match nor condition", ex.Name), Err: ErrInvalidRule}
		}
		if ex.Condition != "" {
			rr := *r
			rr.lines = map[string]int{"exception": ex.line}
			if ce.cond, err = compileExpr(env, &rr, "exception", ex.Condition, cel.BoolType, ""); err != nil {
				return nil, err
			}
		}
		c.exceptions = append(c.exceptions, ce)
	}
	if t := r.Threshold; t != nil {
		if t.Count < 2 || t.Window <= 0 || t.By == "" {
			return nil, r.errf("", "threshold needs count >= 2, a window and by")
		}
		by, err := compileExpr(env, r, "threshold.by", t.By, cel.StringType, "")
		if err != nil {
			return nil, err
		}
		c.thr = &thresholdState{by: by, count: t.Count, window: t.Window, keys: map[string][]time.Time{}}
	}
	if b := r.Baseline; b != nil {
		if b.Key == "" || b.Value == "" || b.Learning <= 0 {
			return nil, r.errf("", "baseline needs key, value and a learning period")
		}
		if c.thr != nil {
			return nil, r.errf("", "a rule has a threshold or a baseline, not both")
		}
		if c.baseKey, err = compileExpr(env, r, "baseline.key", b.Key, cel.StringType, ""); err != nil {
			return nil, err
		}
		if c.baseValue, err = compileExpr(env, r, "baseline.value", b.Value, cel.StringType, ""); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func compileMatch(m map[string][]string, facetIdx map[string]int, schema Schema) ([][]string, error) {
	if len(m) == 0 {
		return nil, nil
	}
	out := make([][]string, len(schema.Facets))
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		i, ok := facetIdx[k]
		if !ok {
			return nil, fmt.Errorf("unknown key %q (want one of %s)", k, strings.Join(schema.Facets, ", "))
		}
		if len(m[k]) == 0 {
			return nil, fmt.Errorf("%s: empty list", k)
		}
		for _, v := range m[k] {
			if _, err := path.Match(v, ""); err != nil {
				return nil, fmt.Errorf("%s: bad pattern %q", k, v)
			}
		}
		out[i] = m[k]
	}
	return out, nil
}

// compileExpr type-checks one CEL expression of a rule; errors carry the
// line of the expression in the rule file.
func compileExpr(env *cel.Env, r *Rule, field, expr string, want *cel.Type, def string) (cel.Program, error) {
	if strings.TrimSpace(expr) == "" {
		expr = def
	}
	if len(expr) > 16<<10 {
		return nil, r.errf(field, "%s is longer than 16 KiB", field)
	}
	ast, iss := env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		line := r.line
		if l, ok := r.lines[field]; ok {
			line = l
		}
		var msgs []string
		for _, e := range iss.Errors() {
			msgs = append(msgs, fmt.Sprintf("column %d: %s", e.Location.Column()+1, e.Message))
			if e.Location.Line() > 1 {
				line += e.Location.Line() - 1
			}
			break
		}
		return nil, &RuleError{File: r.file, Line: line, Rule: r.ID, Reason: fmt.Sprintf("%s does not compile: %s", field, strings.Join(msgs, "; ")), Err: ErrInvalidRule}
	}
	if !ast.OutputType().IsExactType(want) && !ast.OutputType().IsExactType(cel.DynType) {
		return nil, r.errf(field, "%s must be %s, is %s", field, want, ast.OutputType())
	}
	// No cost limit: cost tracking doubles evaluation time, and the inputs
	// are bounded by their sources (event size limits).
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, r.errf(field, "%s: %v", field, err)
	}
	return prg, nil
}

// Rules describes every rule the engine loaded, enabled or not.
func (e *Engine) Rules() []RuleInfo {
	out := make([]RuleInfo, 0, len(e.rules))
	for _, c := range e.rules {
		out = append(out, RuleInfo{ID: c.ID, Title: c.Title, Source: c.Source, Severity: c.Severity,
			Tactic: c.MITRE.Tactic, Technique: c.MITRE.Technique, MSMatrix: c.MSMatrix, Enabled: c.enabled, Inactive: c.inactive})
	}
	return out
}

// Stats returns the engine's counters.
func (e *Engine) Stats() *Stats { return &e.stats }

// Evaluate runs the rules against one event and returns the alerts it
// fires, in rule order. Runtime errors in a rule's CEL count as no match
// (and in Stats.EvalErrors).
func (e *Engine) Evaluate(ev Event) []Alert {
	e.stats.Events.Add(1)
	var f0, f1 string
	if len(e.schema.Facets) > 0 {
		f0 = ev.Facet(0)
	}
	if len(e.schema.Facets) > 1 {
		f1 = ev.Facet(1)
	}
	var out []Alert
	var act interpreter.Activation
	var matched []*compiled
	keys := [4][2]string{{f0, f1}, {f0, ""}, {"", f1}, {"", ""}}
	for k, key := range keys {
		if slices.Contains(keys[:k], key) {
			continue // f0 or f1 empty: combinations collapse
		}
		for _, c := range e.index[key] {
			if !facetsMatch(c.match, ev, 2) {
				continue
			}
			e.stats.Candidates.Add(1)
			if act == nil {
				act = ev.Activation()
			}
			if !evalBool(c.cond, act, &e.stats) {
				continue
			}
			matched = append(matched, c)
		}
	}
	if len(matched) > 1 {
		sort.Slice(matched, func(i, j int) bool { return matched[i].order < matched[j].order })
	}
	for _, c := range matched {
		e.stats.Matches.Add(1)
		if c.excepted(ev, act, &e.stats) {
			e.stats.Suppressed.Add(1)
			continue
		}
		sub := ev.Subject()
		if c.thr != nil && !c.thr.hit(evalString(c.thr.by, act, &e.stats), sub.Time, e.opts.MaxKeys) {
			continue
		}
		if c.baseKey != nil {
			key := evalString(c.baseKey, act, &e.stats)
			val := evalString(c.baseValue, act, &e.stats)
			if !e.opts.Baselines.Observe(c.ID, key, val, sub.Time, c.Baseline.Learning) {
				continue
			}
		}
		out = append(out, e.alert(c, ev, act, sub))
	}
	return out
}

// facetsMatch checks the facets from index from on (the index checked the
// ones before).
func facetsMatch(match [][]string, ev Event, from int) bool {
	for i := from; i < len(match); i++ {
		if match[i] == nil {
			continue
		}
		if !valueMatches(match[i], ev.Facet(i)) {
			return false
		}
	}
	// The indexed facets may have been wildcards: check them too.
	for i := 0; i < from && i < len(match); i++ {
		if match[i] != nil && !valueMatches(match[i], ev.Facet(i)) {
			return false
		}
	}
	return true
}

func valueMatches(allowed []string, v string) bool {
	for _, a := range allowed {
		if a == v {
			return true
		}
		if strings.ContainsAny(a, "*?[") {
			if ok, _ := path.Match(a, v); ok {
				return true
			}
		}
	}
	return false
}

func (c *compiled) excepted(ev Event, act interpreter.Activation, st *Stats) bool {
	for _, ex := range c.exceptions {
		if ex.match != nil && !facetsMatch(ex.match, ev, 0) {
			continue
		}
		if ex.cond != nil && !evalBool(ex.cond, act, st) {
			continue
		}
		return true
	}
	return false
}

func evalBool(p cel.Program, act interpreter.Activation, st *Stats) bool {
	v, _, err := p.Eval(act)
	if err != nil {
		st.EvalErrors.Add(1)
		return false
	}
	return v == types.True
}

func evalString(p cel.Program, act interpreter.Activation, st *Stats) string {
	v, _, err := p.Eval(act)
	if err != nil {
		st.EvalErrors.Add(1)
		return ""
	}
	if s, ok := v.(types.String); ok {
		return string(s)
	}
	return fmt.Sprint(v.Value())
}

func (e *Engine) alert(c *compiled, ev Event, act interpreter.Activation, sub Subject) Alert {
	cluster := sub.Cluster
	if cluster == "" {
		cluster = e.opts.Cluster
	}
	a := Alert{
		RuleID: c.ID, Title: c.Title, Source: c.Source, Severity: c.Severity,
		Tactic: c.MITRE.Tactic, Technique: c.MITRE.Technique, TacticName: c.tacticName, TechniqueName: c.techniqueName,
		MSMatrix: c.MSMatrix, Tags: c.Tags, Cluster: cluster, Namespace: sub.Namespace, Resource: sub.Resource,
		Actor: sub.Actor, Remediation: c.Remediation,
		FirstSeen: sub.Time, LastSeen: sub.Time, Count: 1,
	}
	if c.msg != nil {
		a.Message = evalString(c.msg, act, &e.stats)
	}
	group := sub.Namespace + "\x00" + sub.Resource + "\x00" + sub.Actor.User
	if sub.Actor.Workload != nil {
		group += "\x00" + sub.Actor.Workload.ContainerID
	}
	if c.group != nil {
		group = evalString(c.group, act, &e.stats)
	}
	a.DedupeKey = dedupeKey(c.ID, cluster, group)
	if ev := ev.Evidence(); ev != nil {
		a.Evidence = []json.RawMessage{ev}
	}
	return a
}

// thresholdState counts matches per key in a sliding window.
type thresholdState struct {
	by     cel.Program
	count  int
	window time.Duration
	mu     sync.Mutex
	keys   map[string][]time.Time
}

// hit records a match at t and reports whether the key reached the count
// within the window; the key then starts over.
func (t *thresholdState) hit(key string, at time.Time, maxKeys int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	ts := t.keys[key]
	if ts == nil && len(t.keys) >= maxKeys {
		t.sweep(at)
		if len(t.keys) >= maxKeys {
			return false // full of live keys: drop rather than grow
		}
	}
	cut := at.Add(-t.window)
	i := 0
	for i < len(ts) && ts[i].Before(cut) {
		i++
	}
	ts = append(ts[i:], at)
	if len(ts) >= t.count {
		delete(t.keys, key)
		return true
	}
	t.keys[key] = ts
	return false
}

func (t *thresholdState) sweep(at time.Time) {
	cut := at.Add(-t.window)
	for k, ts := range t.keys {
		if len(ts) == 0 || ts[len(ts)-1].Before(cut) {
			delete(t.keys, k)
		}
	}
}
