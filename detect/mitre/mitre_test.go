package mitre

import (
	"strings"
	"testing"
)

func TestCatalogue(t *testing.T) {
	tests := []struct {
		id, name, tactic string
	}{
		{"T1609", "Container Administration Command", "TA0002"},
		{"T1078.003", "Local Accounts", "TA0004"},
		{"T1611", "Escape to Host", "TA0004"},
		{"T1496", "Resource Hijacking", "TA0040"},
	}
	for _, tt := range tests {
		got, ok := LookupTechnique(tt.id)
		if !ok || got.Name != tt.name || !got.HasTactic(tt.tactic) {
			t.Errorf("LookupTechnique(%s) = %+v, %v; want %s in %s", tt.id, got, ok, tt.name, tt.tactic)
		}
	}
	if _, ok := LookupTechnique("T9999"); ok {
		t.Error("unknown technique found")
	}
	if ms, ok := LookupMS("MS-TA9019"); !ok || ms.Name != "Cluster-admin binding" {
		t.Errorf("LookupMS = %+v, %v", ms, ok)
	}
	// Every sub-technique has its parent.
	for _, tech := range Techniques() {
		if i := strings.IndexByte(tech.ID, '.'); i > 0 {
			if _, ok := LookupTechnique(tech.ID[:i]); !ok && !tech.Deprecated {
				t.Errorf("%s has no parent %s", tech.ID, tech.ID[:i])
			}
		}
	}
	var containers int
	for _, tech := range Techniques() {
		if tech.Containers {
			containers++
		}
	}
	if containers < 40 {
		t.Errorf("only %d Containers-matrix techniques", containers)
	}
}

func TestParseRefusesUnknownTactic(t *testing.T) {
	_, err := parse([]byte("tactics: [{id: TA0001, name: x}]\ntechniques: [{id: T1, name: y, tactics: [TA0099]}]\n"))
	if err == nil {
		t.Fatal("want error")
	}
}
