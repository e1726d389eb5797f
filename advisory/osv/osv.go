package osv

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// MaxRecordSize bounds one record's JSON. The largest real record seen
// (an AlmaLinux kernel advisory) is under 1 MiB.
const MaxRecordSize = 16 << 20

// Sentinel errors of Decode.
var (
	// ErrTooLarge: the record is larger than MaxRecordSize.
	ErrTooLarge = errors.New("osv: record too large")
	// ErrInvalid: the record is not an OSV record (no id, bad JSON).
	ErrInvalid = errors.New("osv: invalid record")
)

// Range types.
const (
	RangeEcosystem = "ECOSYSTEM"
	RangeSemver    = "SEMVER"
	RangeGit       = "GIT"
)

// Severity types.
const (
	SeverityCVSSv2 = "CVSS_V2"
	SeverityCVSSv3 = "CVSS_V3"
	SeverityCVSSv4 = "CVSS_V4"
	SeverityUbuntu = "Ubuntu"
)

// Vulnerability is one OSV record.
type Vulnerability struct {
	SchemaVersion    string          `json:"schema_version,omitempty"`
	ID               string          `json:"id"`
	Modified         Time            `json:"modified,omitzero"`
	Published        Time            `json:"published,omitzero"`
	Withdrawn        Time            `json:"withdrawn,omitzero"`
	Aliases          []string        `json:"aliases,omitempty"`
	Related          []string        `json:"related,omitempty"`
	Upstream         []string        `json:"upstream,omitempty"`
	Summary          string          `json:"summary,omitempty"`
	Details          string          `json:"details,omitempty"`
	Severity         []Severity      `json:"severity,omitempty"`
	Affected         []Affected      `json:"affected,omitempty"`
	References       []Reference     `json:"references,omitempty"`
	Credits          []Credit        `json:"credits,omitempty"`
	DatabaseSpecific json.RawMessage `json:"database_specific,omitempty"`
}

// Affected is one affected package of a record.
type Affected struct {
	Package           Package         `json:"package"`
	Severity          []Severity      `json:"severity,omitempty"`
	Ranges            []Range         `json:"ranges,omitempty"`
	Versions          []string        `json:"versions,omitempty"`
	EcosystemSpecific json.RawMessage `json:"ecosystem_specific,omitempty"`
	DatabaseSpecific  json.RawMessage `json:"database_specific,omitempty"`
}

// Package names a package in an ecosystem. Ecosystem may carry a suffix
// ("Debian:12", "AlmaLinux:9", "Ubuntu:22.04:LTS").
type Package struct {
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name"`
	PURL      string `json:"purl,omitempty"`
}

// Range is a list of events of one type.
type Range struct {
	Type             string          `json:"type"`
	Repo             string          `json:"repo,omitempty"`
	Events           []Event         `json:"events"`
	DatabaseSpecific json.RawMessage `json:"database_specific,omitempty"`
}

// Event is one of introduced, fixed, last_affected or limit.
type Event struct {
	Introduced   string `json:"introduced,omitempty"`
	Fixed        string `json:"fixed,omitempty"`
	LastAffected string `json:"last_affected,omitempty"`
	Limit        string `json:"limit,omitempty"`
}

// Severity is a scored vector ("CVSS_V3", "CVSS:3.1/AV:N/...") or a
// distribution's rating ("Ubuntu", "medium").
type Severity struct {
	Type  string `json:"type"`
	Score string `json:"score"`
}

// Reference is a link.
type Reference struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

// Credit names who found or fixed the issue.
type Credit struct {
	Name    string   `json:"name"`
	Contact []string `json:"contact,omitempty"`
	Type    string   `json:"type,omitempty"`
}

// Time is an OSV timestamp. It accepts RFC 3339 with or without
// fractional seconds, the zero time of the Go database copy, and the
// "2021-01-01 00:00:00" and date-only forms of records re-encoded from
// YAML; an unreadable time decodes as the zero time rather than failing
// the record, since no decision depends on it.
type Time struct{ time.Time }

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05",
	"2006-01-02",
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		t.Time = time.Time{}
		return nil //nolint:nilerr // tolerant by contract
	}
	s = strings.TrimSpace(s)
	for _, l := range timeLayouts {
		if v, err := time.Parse(l, s); err == nil {
			t.Time = v.UTC()
			return nil
		}
	}
	t.Time = time.Time{}
	return nil
}

// MarshalJSON writes RFC 3339 in UTC.
func (t Time) MarshalJSON() ([]byte, error) {
	return json.Marshal(t.UTC().Format(time.RFC3339Nano))
}

// IsZero reports whether the time is unset (also the 0001-01-01 of the Go
// database copy).
func (t Time) IsZero() bool { return t.Time.IsZero() }

// Decode reads one record from r, at most MaxRecordSize bytes. Unknown
// fields are ignored; a record without an id is ErrInvalid.
func Decode(r io.Reader) (*Vulnerability, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxRecordSize+1))
	if err != nil {
		return nil, fmt.Errorf("osv: read: %w", err)
	}
	return Unmarshal(b)
}

// Unmarshal decodes one record from b (see Decode).
func Unmarshal(b []byte) (*Vulnerability, error) {
	if len(b) > MaxRecordSize {
		return nil, ErrTooLarge
	}
	var v Vulnerability
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if v.ID == "" {
		return nil, fmt.Errorf("%w: no id", ErrInvalid)
	}
	if len(v.ID) > 256 {
		return nil, fmt.Errorf("%w: id longer than 256 bytes", ErrInvalid)
	}
	return &v, nil
}

// BaseEcosystem is the ecosystem without its suffix: "Debian" for
// "Debian:12", "Ubuntu" for "Ubuntu:22.04:LTS".
func BaseEcosystem(eco string) string {
	base, _, _ := strings.Cut(eco, ":")
	return base
}

// IsWithdrawn reports whether the record is withdrawn.
func (v *Vulnerability) IsWithdrawn() bool { return !v.Withdrawn.IsZero() }

// IDs returns the id followed by the aliases, without duplicates.
func (v *Vulnerability) IDs() []string {
	out := []string{v.ID}
	seen := map[string]bool{v.ID: true}
	for _, a := range v.Aliases {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}
