// Package severity is the one severity scale shared by every pillar:
// vulnerability findings, hardening results and runtime alerts.
//
// Levels order from Unknown (zero) to Critical, so they compare with < and >.
package severity

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Level is a severity. The zero value is Unknown.
type Level int

const (
	Unknown Level = iota
	Info
	Low
	Medium
	High
	Critical
)

var names = [...]string{"unknown", "info", "low", "medium", "high", "critical"}

// String returns the lower-case name: "high".
func (l Level) String() string {
	if l < 0 || int(l) >= len(names) {
		return fmt.Sprintf("level(%d)", int(l))
	}
	return names[l]
}

// Parse reads a level name, case-insensitively. "moderate" and "important",
// which some distributions use, map to Medium and High.
func Parse(s string) (Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "unknown", "":
		return Unknown, nil
	case "info", "informational", "negligible", "none":
		return Info, nil
	case "low":
		return Low, nil
	case "medium", "moderate":
		return Medium, nil
	case "high", "important":
		return High, nil
	case "critical":
		return Critical, nil
	}
	return Unknown, fmt.Errorf("severity: unknown level %q", s)
}

// FromCVSS maps a CVSS v3/v4 base score to a level using the qualitative
// rating scale of the CVSS specification.
func FromCVSS(score float64) Level {
	switch {
	case score <= 0:
		return Info
	case score < 4.0:
		return Low
	case score < 7.0:
		return Medium
	case score < 9.0:
		return High
	default:
		return Critical
	}
}

// MarshalText implements encoding.TextMarshaler.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (l *Level) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

var _ json.Marshaler = Level(0)

// MarshalJSON writes the level as its name.
func (l Level) MarshalJSON() ([]byte, error) { return json.Marshal(l.String()) }
