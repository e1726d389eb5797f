package audit

import (
	"embed"
	"fmt"

	"github.com/bulwark-sec/bulwark/detect"
)

//go:embed rules/*.yaml
var builtinFS embed.FS

// BuiltinRules returns the embedded audit rules and their lists.
func BuiltinRules() (*detect.RuleSet, error) {
	rs, err := detect.LoadRuleFS(builtinFS, "rules")
	if err != nil {
		return nil, fmt.Errorf("built-in audit rules: %w", err)
	}
	return rs, nil
}

// RulesConfig says which rules to run.
type RulesConfig struct {
	// Files are user rule files or directories, loaded after the built-in
	// rules; they add rules, lists, and overrides of built-in rules.
	Files []string
	// NoBuiltin leaves the built-in rules out.
	NoBuiltin bool
	// Lists maps list names to files (threat intelligence: one IP, CIDR or
	// string a line), added to the lists the rule files define.
	Lists map[string]string
	// Baselines is the file where baseline rules keep what they learned;
	// empty keeps it in memory.
	Baselines string
	// Cluster names the cluster in alerts.
	Cluster string
}

// NewEngine compiles the built-in rules and the user's into an engine for
// audit events. The returned Baselines must be saved (Save) now and then
// and at exit; it is nil when cfg.Baselines is empty.
func NewEngine(cfg RulesConfig) (*detect.Engine, *detect.Baselines, error) {
	rs := &detect.RuleSet{Lists: map[string][]string{}}
	if !cfg.NoBuiltin {
		b, err := BuiltinRules()
		if err != nil {
			return nil, nil, err
		}
		rs.Merge(b)
	}
	rs, err := detect.LoadRuleFiles(rs, cfg.Files...)
	if err != nil {
		return nil, nil, err
	}
	lists := map[string][]string{}
	for name, file := range cfg.Lists {
		items, err := detect.ReadListFile(file)
		if err != nil {
			return nil, nil, fmt.Errorf("list %s: %w", name, err)
		}
		lists[name] = items
	}
	opts := detect.Options{Cluster: cfg.Cluster, Lists: lists}
	var base *detect.Baselines
	if cfg.Baselines != "" {
		if base, err = detect.OpenBaselines(cfg.Baselines); err != nil {
			return nil, nil, err
		}
		opts.Baselines = base
	}
	e, err := detect.Compile(Schema(), rs, opts)
	if err != nil {
		return nil, nil, err
	}
	return e, base, nil
}
