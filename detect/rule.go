package detect

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/bulwark-sec/bulwark/severity"
)

// Errors of rule loading; test with errors.Is. A *RuleError carries the
// file, line and reason.
var (
	// ErrInvalidRule: a rule file does not parse, a rule misses a
	// required field, or its CEL does not compile.
	ErrInvalidRule = errors.New("detect: invalid rule")
	// ErrUnknownRule: an override names a rule that no file defines.
	ErrUnknownRule = errors.New("detect: override of unknown rule")
)

// RuleError is a rule file problem with its position.
type RuleError struct {
	File   string
	Line   int
	Rule   string // rule id, when known
	Reason string
	Err    error // ErrInvalidRule or ErrUnknownRule
}

func (e *RuleError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Rule != "" {
		fmt.Fprintf(&b, ": rule %s", e.Rule)
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

func (e *RuleError) Unwrap() error { return e.Err }

// RuleFile is the YAML document users write:
//
//	rules:       new rules
//	overrides:   changes to rules defined elsewhere (built-in ones)
//	lists:       named lists for inList / containsListed
type RuleFile struct {
	Rules     []Rule             `yaml:"rules"`
	Overrides []Override         `yaml:"overrides"`
	Lists     map[string]ListDef `yaml:"lists"`
}

// Rule is one detection as written in YAML.
type Rule struct {
	ID          string         `yaml:"id"`
	Title       string         `yaml:"title"`
	Description string         `yaml:"description"`
	Source      string         `yaml:"source"` // audit, runtime
	Severity    severity.Level `yaml:"severity"`
	MITRE       MITRE          `yaml:"mitre"`
	MSMatrix    string         `yaml:"msMatrix"`
	Tags        []string       `yaml:"tags"`
	// Match keeps the rule to events whose facets have one of the listed
	// values ("*" wildcards allowed); cheap, checked before the condition.
	Match map[string][]string `yaml:"match"`
	// Condition is a CEL boolean expression; empty means true.
	Condition  string      `yaml:"condition"`
	Exceptions []Exception `yaml:"exceptions"`
	// Message is a CEL string expression for the alert's message.
	Message string `yaml:"message"`
	// GroupBy is a CEL string expression: alerts with the same value
	// share a dedupe key. Empty: namespace, resource and actor.
	GroupBy   string     `yaml:"groupBy"`
	Threshold *Threshold `yaml:"threshold"`
	Baseline  *Baseline  `yaml:"baseline"`
	Enabled   *bool      `yaml:"enabled"` // default true
	// NeedsLists names lists the rule is useless without: when all of
	// them are empty (no threat-intelligence file loaded) the rule is
	// inactive and costs nothing.
	NeedsLists  []string `yaml:"needsLists"`
	Remediation string   `yaml:"remediation"`
	References  []string `yaml:"references"`

	file string
	line int
	// line of each CEL field, for error positions
	lines map[string]int
}

// MITRE is a rule's ATT&CK mapping.
type MITRE struct {
	Tactic    string `yaml:"tactic"`    // TA0004
	Technique string `yaml:"technique"` // T1078 or T1078.003
}

// Exception suppresses a rule for events that match it: every facet listed
// in Match must match, and Condition (CEL), when set, must be true.
type Exception struct {
	Name      string              `yaml:"name"`
	Match     map[string][]string `yaml:"match"`
	Condition string              `yaml:"condition"`
	line      int
}

// Threshold turns a rule into a rate rule: it fires once Count matching
// events with the same By value (a CEL string) arrive within Window.
type Threshold struct {
	Count  int           `yaml:"count"`
	Window time.Duration `yaml:"window"`
	By     string        `yaml:"by"`
}

// Baseline turns a rule into an anomaly rule: for each Key (a CEL string),
// the Values (a CEL string) seen during Learning after the key's first
// sighting are learned; afterwards a value never seen fires, once.
type Baseline struct {
	Key      string        `yaml:"key"`
	Value    string        `yaml:"value"`
	Learning time.Duration `yaml:"learning"`
}

// Override changes a rule defined in another file.
type Override struct {
	ID       string         `yaml:"id"`
	Enabled  *bool          `yaml:"enabled"`
	Severity severity.Level `yaml:"severity"`
	// Exceptions are appended to the rule's own.
	Exceptions []Exception `yaml:"exceptions"`
	file       string
	line       int
}

// ListDef is a named list: inline items, a file (one item a line, '#'
// comments), or both.
type ListDef struct {
	Items []string `yaml:"items"`
	File  string   `yaml:"file"`
}

// RuleSet is rules, overrides and lists gathered from several files,
// before compilation.
type RuleSet struct {
	Rules     []Rule
	Overrides []Override
	Lists     map[string][]string
}

// maxRuleFile bounds a rule file; real ones are a few hundred KiB.
const maxRuleFile = 8 << 20

// ParseRules reads one rule file. name is used in errors; dir resolves
// relative list files ("" for none: list files are refused).
func ParseRules(name string, data []byte, dir string) (*RuleSet, error) {
	if len(data) > maxRuleFile {
		return nil, &RuleError{File: name, Reason: fmt.Sprintf("file is %d bytes, more than %d", len(data), maxRuleFile), Err: ErrInvalidRule}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &RuleError{File: name, Line: yamlErrLine(err), Reason: err.Error(), Err: ErrInvalidRule}
	}
	// Severity names are checked here, where the line is known.
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	for _, sec := range []string{"rules", "overrides"} {
		if sn := mapValue(doc, sec); sn != nil && sn.Kind == yaml.SequenceNode {
			for _, n := range sn.Content {
				if v := mapValue(n, "severity"); v != nil {
					if _, err := severity.Parse(v.Value); err != nil {
						return nil, &RuleError{File: name, Line: v.Line, Reason: err.Error(), Err: ErrInvalidRule}
					}
				}
			}
		}
	}
	var rf RuleFile
	if err := root.Decode(&rf); err != nil {
		return nil, &RuleError{File: name, Line: yamlErrLine(err), Reason: err.Error(), Err: ErrInvalidRule}
	}
	// Positions: walk the nodes next to the decoded values.
	if rn := mapValue(doc, "rules"); rn != nil && rn.Kind == yaml.SequenceNode {
		for i, n := range rn.Content {
			if i >= len(rf.Rules) {
				break
			}
			r := &rf.Rules[i]
			r.file, r.line = name, n.Line
			r.lines = map[string]int{}
			for _, k := range []string{"condition", "message", "groupBy", "id"} {
				if v := mapValue(n, k); v != nil {
					r.lines[k] = exprLine(v)
				}
			}
			for _, k := range []string{"threshold", "baseline"} {
				if v := mapValue(n, k); v != nil {
					for _, kk := range []string{"by", "key", "value"} {
						if vv := mapValue(v, kk); vv != nil {
							r.lines[k+"."+kk] = exprLine(vv)
						}
					}
				}
			}
			if en := mapValue(n, "exceptions"); en != nil {
				for j, e := range en.Content {
					if j < len(r.Exceptions) {
						r.Exceptions[j].line = e.Line
						if c := mapValue(e, "condition"); c != nil {
							r.Exceptions[j].line = exprLine(c)
						}
					}
				}
			}
		}
	}
	if on := mapValue(doc, "overrides"); on != nil {
		for i, n := range on.Content {
			if i < len(rf.Overrides) {
				rf.Overrides[i].file, rf.Overrides[i].line = name, n.Line
			}
		}
	}
	rs := &RuleSet{Rules: rf.Rules, Overrides: rf.Overrides, Lists: map[string][]string{}}
	for ln, def := range rf.Lists {
		items := append([]string(nil), def.Items...)
		if def.File != "" {
			if dir == "" {
				return nil, &RuleError{File: name, Reason: fmt.Sprintf("list %s: files are not allowed here", ln), Err: ErrInvalidRule}
			}
			p := def.File
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			more, err := ReadListFile(p)
			if err != nil {
				return nil, &RuleError{File: name, Reason: fmt.Sprintf("list %s: %v", ln, err), Err: ErrInvalidRule}
			}
			items = append(items, more...)
		}
		rs.Lists[ln] = items
	}
	return rs, nil
}

// LoadRuleFiles reads rule files and directories (every *.yaml and *.yml
// in them, in name order) into one RuleSet appended to base.
func LoadRuleFiles(base *RuleSet, paths ...string) (*RuleSet, error) {
	out := &RuleSet{Lists: map[string][]string{}}
	if base != nil {
		out.Merge(base)
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("rules: %w", err)
		}
		files := []string{p}
		if st.IsDir() {
			files = nil
			ents, err := os.ReadDir(p)
			if err != nil {
				return nil, fmt.Errorf("rules: %w", err)
			}
			for _, e := range ents {
				if !e.IsDir() && (strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
					files = append(files, filepath.Join(p, e.Name()))
				}
			}
			sort.Strings(files)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("rules: %w", err)
			}
			rs, err := ParseRules(f, data, filepath.Dir(f))
			if err != nil {
				return nil, err
			}
			out.Merge(rs)
		}
	}
	return out, nil
}

// LoadRuleFS reads every *.yaml file of an fs.FS (embedded built-in rules).
func LoadRuleFS(fsys fs.FS, dir string) (*RuleSet, error) {
	out := &RuleSet{Lists: map[string][]string{}}
	ents, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		data, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("rules: %w", err)
		}
		rs, err := ParseRules(path.Join(dir, e.Name()), data, "")
		if err != nil {
			return nil, err
		}
		out.Merge(rs)
	}
	return out, nil
}

// Merge appends other's rules and overrides and adds its list items.
func (rs *RuleSet) Merge(other *RuleSet) {
	rs.Rules = append(rs.Rules, other.Rules...)
	rs.Overrides = append(rs.Overrides, other.Overrides...)
	if rs.Lists == nil {
		rs.Lists = map[string][]string{}
	}
	for k, v := range other.Lists {
		rs.Lists[k] = append(rs.Lists[k], v...)
	}
}

// ReadListFile reads a list file: one item a line, blank lines and text
// after '#' ignored.
func ReadListFile(p string) ([]string, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var out []string
	for line := range strings.SplitSeq(string(data), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out, nil
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// exprLine is the line an expression starts on: block scalars ("|", ">")
// start on the line after their indicator.
func exprLine(n *yaml.Node) int {
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return n.Line + 1
	}
	return n.Line
}

// yamlErrLine pulls the line out of a yaml.v3 error ("yaml: line 7: ...")
// for display only: yaml.v3 errors carry no structured position.
func yamlErrLine(err error) int {
	var te *yaml.TypeError
	msg := err.Error()
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	i := strings.Index(msg, "line ")
	if i < 0 {
		return 0
	}
	n := 0
	for _, c := range msg[i+5:] {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}
