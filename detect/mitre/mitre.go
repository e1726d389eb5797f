package mitre

import (
	_ "embed"
	"fmt"
	"sort"

	"go.yaml.in/yaml/v3"
)

//go:embed attack.yaml
var attackYAML []byte

// Tactic is an ATT&CK tactic.
type Tactic struct {
	ID   string `yaml:"id" json:"id"`
	Name string `yaml:"name" json:"name"`
}

// Technique is an ATT&CK technique or sub-technique (id with a dot).
type Technique struct {
	ID         string   `yaml:"id" json:"id"`
	Name       string   `yaml:"name" json:"name"`
	Tactics    []string `yaml:"tactics" json:"tactics"`
	Containers bool     `yaml:"containers" json:"containers"`
	Deprecated bool     `yaml:"deprecated" json:"deprecated,omitempty"`
}

// MSTechnique is a technique of Microsoft's threat matrix for Kubernetes.
type MSTechnique struct {
	ID   string `yaml:"id" json:"id"`
	Name string `yaml:"name" json:"name"`
}

// Catalogue is the whole data set.
type Catalogue struct {
	Tactics    []Tactic      `yaml:"tactics"`
	Techniques []Technique   `yaml:"techniques"`
	MSMatrix   []MSTechnique `yaml:"msMatrix"`

	tactics    map[string]Tactic
	techniques map[string]Technique
	ms         map[string]MSTechnique
}

var cat = mustLoad()

func mustLoad() *Catalogue {
	c, err := parse(attackYAML)
	if err != nil {
		panic(err) // the embedded data is tested
	}
	return c
}

func parse(data []byte) (*Catalogue, error) {
	var c Catalogue
	if err := yaml.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("mitre: %w", err)
	}
	c.tactics = map[string]Tactic{}
	c.techniques = map[string]Technique{}
	c.ms = map[string]MSTechnique{}
	for _, t := range c.Tactics {
		c.tactics[t.ID] = t
	}
	for _, t := range c.Techniques {
		if _, dup := c.techniques[t.ID]; dup {
			return nil, fmt.Errorf("mitre: technique %s listed twice", t.ID)
		}
		for _, ta := range t.Tactics {
			if _, ok := c.tactics[ta]; !ok {
				return nil, fmt.Errorf("mitre: technique %s: unknown tactic %s", t.ID, ta)
			}
		}
		c.techniques[t.ID] = t
	}
	for _, m := range c.MSMatrix {
		c.ms[m.ID] = m
	}
	return &c, nil
}

// LookupTactic returns a tactic by id (TA0004).
func LookupTactic(id string) (Tactic, bool) { t, ok := cat.tactics[id]; return t, ok }

// LookupTechnique returns a technique or sub-technique by id (T1078.003).
func LookupTechnique(id string) (Technique, bool) { t, ok := cat.techniques[id]; return t, ok }

// LookupMS returns a Microsoft threat-matrix technique by id (MS-TA9019).
func LookupMS(id string) (MSTechnique, bool) { t, ok := cat.ms[id]; return t, ok }

// Techniques lists every technique, ordered by id.
func Techniques() []Technique {
	out := append([]Technique(nil), cat.Techniques...)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Tactics lists the tactics in matrix order.
func Tactics() []Tactic { return append([]Tactic(nil), cat.Tactics...) }

// HasTactic reports whether technique id belongs to tactic.
func (t Technique) HasTactic(tactic string) bool {
	for _, x := range t.Tactics {
		if x == tactic {
			return true
		}
	}
	return false
}
