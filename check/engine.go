package check

import (
	"fmt"
	"os"
	"path"
	"slices"

	"sigs.k8s.io/yaml"
)

// Config holds the parameters of the built-in checks. The zero value is a
// sensible default: PSS restricted at the latest version, and the checks
// whose allow-lists are empty (registries, service ports) do not run.
type Config struct {
	// PSSLevel is "baseline" or "restricted" (default). Baseline runs only
	// the baseline controls.
	PSSLevel string `json:"pssLevel,omitempty"`
	// PSSVersion is "latest" (default) or a version such as "v1.25".
	PSSVersion string `json:"pssVersion,omitempty"`
	// AllowedRegistries are image reference prefixes ("registry.example.com/",
	// "docker.io/library/"). Empty: the allowed-registries check does not run.
	AllowedRegistries []string `json:"allowedRegistries,omitempty"`
	// AllowedCapabilities may be added to containers (default NET_BIND_SERVICE).
	AllowedCapabilities []string `json:"allowedCapabilities,omitempty"`
	// AllowedAppArmorProfiles are "runtime/default", "localhost/<name>" or
	// "localhost/*" (default: runtime/default and localhost/*).
	AllowedAppArmorProfiles []string `json:"allowedAppArmorProfiles,omitempty"`
	// AllowedServicePorts: Services may expose only these ports. Empty: not checked.
	AllowedServicePorts []int32 `json:"allowedServicePorts,omitempty"`
	// AllowedHostPorts: containers may use only these host ports (default none).
	AllowedHostPorts []int32 `json:"allowedHostPorts,omitempty"`
	// AllowedHostPaths are path patterns (path.Match, or a prefix ending in
	// "/") that hostPath volumes may mount read-only (default none).
	AllowedHostPaths []string `json:"allowedHostPaths,omitempty"`
	// Disabled lists check IDs (path.Match patterns) that do not run.
	Disabled []string `json:"disabled,omitempty"`

	pss *pssSettings
}

// LoadConfig reads a Config from a YAML or JSON file; unknown fields are errors.
func LoadConfig(file string) (Config, error) {
	var c Config
	b, err := os.ReadFile(file)
	if err != nil {
		return c, fmt.Errorf("check: read config: %w", err)
	}
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return c, fmt.Errorf("check: config %s: %w", file, err)
	}
	return c, nil
}

// Engine runs a set of checks with one configuration. It is immutable and
// safe for concurrent use.
type Engine struct {
	cfg       Config
	object    []*Check
	inventory []*Check
	all       []Check
}

// NewEngine validates the checks and the config. Checks whose ID matches
// cfg.Disabled are left out.
func NewEngine(cfg Config, checks []Check) (*Engine, error) {
	pss, err := resolvePSS(cfg.PSSLevel, cfg.PSSVersion)
	if err != nil {
		return nil, err
	}
	cfg.pss = pss
	if cfg.AllowedCapabilities == nil {
		cfg.AllowedCapabilities = []string{"NET_BIND_SERVICE"}
	}
	if cfg.AllowedAppArmorProfiles == nil {
		cfg.AllowedAppArmorProfiles = []string{"runtime/default", "localhost/*"}
	}
	for _, p := range cfg.Disabled {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("check: disabled pattern %q: %w", p, err)
		}
	}
	e := &Engine{cfg: cfg}
	seen := map[string]bool{}
	for i := range checks {
		c := checks[i]
		if err := c.validate(); err != nil {
			return nil, err
		}
		if seen[c.ID] {
			return nil, fmt.Errorf("%w: %s", ErrDuplicateID, c.ID)
		}
		seen[c.ID] = true
		if matchAny(cfg.Disabled, c.ID) {
			continue
		}
		e.all = append(e.all, c)
	}
	for i := range e.all {
		if e.all[i].Object != nil {
			e.object = append(e.object, &e.all[i])
		} else {
			e.inventory = append(e.inventory, &e.all[i])
		}
	}
	return e, nil
}

// Checks returns the checks the engine runs.
func (e *Engine) Checks() []Check { return slices.Clone(e.all) }

// Check returns the check with the given ID.
func (e *Engine) Check(id string) (Check, bool) {
	for _, c := range e.all {
		if c.ID == id {
			return c, true
		}
	}
	return Check{}, false
}

// Object runs the object checks on one object; this is what admission does.
// Results are sorted (SortResults).
func (e *Engine) Object(o *Object) []Result {
	var out []Result
	for _, c := range e.object {
		if !c.appliesTo(o) {
			continue
		}
		for _, v := range c.Object(o, &e.cfg) {
			out = append(out, resultOf(c, o.Ref, o.Source, v))
		}
	}
	SortResults(out)
	return out
}

// Assess runs the object checks on every object and the inventory checks
// on all of them together; this is what the CLI and posture do.
func (e *Engine) Assess(objs []*Object) []Result {
	var out []Result
	for _, o := range objs {
		out = append(out, e.Object(o)...)
	}
	out = append(out, e.AssessInventory(NewInventory(objs))...)
	SortResults(out)
	return out
}

// AssessInventory runs only the inventory checks.
func (e *Engine) AssessInventory(inv *Inventory) []Result {
	var out []Result
	for _, c := range e.inventory {
		for _, r := range c.Inventory(inv, &e.cfg) {
			r.CheckID, r.Title, r.Severity = c.ID, c.Title, c.Severity
			r.References, r.Techniques = c.References, c.Techniques
			if r.Fix.Text == "" {
				r.Fix = c.Fix
			}
			out = append(out, r)
		}
	}
	SortResults(out)
	return out
}

func resultOf(c *Check, ref ObjectRef, source string, v Violation) Result {
	fix := c.Fix
	if fix.Field == "" {
		fix.Field = v.Field
	}
	msg := v.Message
	if msg == "" {
		msg = c.Title
	}
	return Result{
		CheckID: c.ID, Title: c.Title, Severity: c.Severity, Object: ref,
		Container: v.Container, Field: v.Field, Message: msg, Fix: fix,
		References: c.References, Techniques: c.Techniques, Source: source,
	}
}

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}
