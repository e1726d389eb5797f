package advisory

import (
	"encoding/json"
	"strings"

	"github.com/bulwark-sec/bulwark/advisory/cvss"
	"github.com/bulwark-sec/bulwark/advisory/osv"
	"github.com/bulwark-sec/bulwark/severity"
)

// Severity is how bad an advisory is, with where that came from.
type Severity struct {
	// Level is the one level a finding shows: for a distribution's own
	// advisory (Debian, Ubuntu, Alpine, the Red Hat family) its rating when
	// it gives one, since it judges the package as the distribution builds
	// it; else the base score of the newest CVSS version the record carries
	// (v4.0, then v3.x, then v2.0); else the database's own rating (the
	// GitHub advisory database's database_specific.severity); else Unknown.
	Level severity.Level `json:"level"`
	// Source names what Level came from: "cvss", "distro" or "database".
	Source string `json:"source,omitempty"`
	// Score is the CVSS base score Level came from (Source "cvss").
	Score float64 `json:"score,omitempty"`
	// CVSS lists every vector of the record, scored.
	CVSS []cvss.Score `json:"cvss,omitempty"`
	// Rating is the distribution's or database's own word ("Important",
	// "medium", "HIGH"), as written.
	Rating string `json:"rating,omitempty"`
}

// distroEcosystems rate their own advisories.
var distroEcosystems = map[string]bool{
	"Debian": true, "Ubuntu": true, "Alpine": true, "AlmaLinux": true, "Rocky Linux": true,
	"Red Hat": true, "SUSE": true, "openSUSE": true, "Wolfi": true, "Chainguard": true,
	"Mageia": true, "openEuler": true, "Azure Linux": true, "Photon OS": true,
}

// IsDistro reports whether the ecosystem is a Linux distribution's.
func IsDistro(ecosystem string) bool { return distroEcosystems[osv.BaseEcosystem(ecosystem)] }

// rhPrefixes are the ratings Red Hat, AlmaLinux and Rocky put at the head
// of an advisory's summary ("Important: kernel security update").
var rhPrefixes = []string{"Critical", "Important", "Moderate", "Low"}

// recordRating finds a record-level rating: an Ubuntu severity entry,
// database_specific.severity (GitHub, several distributions), or the Red
// Hat family's summary prefix.
func recordRating(v *osv.Vulnerability) string {
	for _, s := range v.Severity {
		if s.Type == osv.SeverityUbuntu && s.Score != "" {
			return s.Score
		}
	}
	if r := ratingIn(v.DatabaseSpecific); r != "" {
		return r
	}
	if i := strings.Index(v.Summary, ":"); i > 0 {
		head := v.Summary[:i]
		for _, p := range rhPrefixes {
			if head == p {
				return p
			}
		}
	}
	return ""
}

// distroRating is the rating of one affected entry, else of the record.
func distroRating(v *osv.Vulnerability, a *osv.Affected) string {
	for _, s := range a.Severity {
		if s.Type == osv.SeverityUbuntu && s.Score != "" {
			return s.Score
		}
	}
	if r := ratingIn(a.EcosystemSpecific); r != "" {
		return r
	}
	return ratingIn(a.DatabaseSpecific)
}

// ratingIn reads "severity" or Debian's "urgency" from a
// database_specific / ecosystem_specific object.
func ratingIn(raw json.RawMessage) string {
	if len(raw) == 0 || raw[0] != '{' {
		return ""
	}
	var m struct {
		Severity json.RawMessage `json:"severity"`
		Urgency  string          `json:"urgency"`
	}
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	var s string
	if len(m.Severity) > 0 && json.Unmarshal(m.Severity, &s) == nil && s != "" {
		return s
	}
	return m.Urgency
}

// ratingLevel maps a rating word to a level; Debian's "unimportant" is Info,
// "not yet assigned" and unknown words are Unknown.
func ratingLevel(r string) severity.Level {
	r = strings.ToLower(strings.TrimSpace(r))
	r = strings.TrimSuffix(r, "*") // Debian marks unverified urgencies "low*"
	switch r {
	case "unimportant":
		return severity.Info
	}
	l, err := severity.Parse(r)
	if err != nil {
		return severity.Unknown
	}
	return l
}

// scoreAll scores the CVSS vectors among sevs, skipping duplicates and
// vectors that do not parse.
func scoreAll(sevs []osv.Severity) []cvss.Score {
	var out []cvss.Score
	seen := map[string]bool{}
	for _, sv := range sevs {
		switch sv.Type {
		case osv.SeverityCVSSv2, osv.SeverityCVSSv3, osv.SeverityCVSSv4:
		default:
			continue
		}
		if seen[sv.Score] {
			continue
		}
		seen[sv.Score] = true
		if sc, err := cvss.Parse(sv.Score); err == nil {
			out = append(out, sc)
		}
	}
	return out
}

// choose picks the level (see Severity.Level).
func choose(scores []cvss.Score, rating string, distro bool) Severity {
	s := Severity{CVSS: scores, Rating: rating}
	rank := map[string]int{"2.0": 0, "3.0": 1, "3.1": 2, "4.0": 3}
	best := -1
	for i, sc := range scores {
		if best < 0 || rank[sc.Version] > rank[scores[best].Version] {
			best = i
		}
	}
	rl := ratingLevel(rating)
	switch {
	case distro && rl != severity.Unknown:
		s.Level, s.Source = rl, "distro"
	case best >= 0:
		s.Level, s.Source, s.Score = scores[best].Level, "cvss", scores[best].Base
	case rl != severity.Unknown:
		s.Level, s.Source = rl, "database"
	}
	return s
}

func summarize(v *osv.Vulnerability) summary {
	s := summary{
		ID: v.ID, Aliases: v.Aliases, Related: v.Related, Upstream: v.Upstream, Summary: v.Summary,
		Published: v.Published.Time, Modified: v.Modified.Time, Withdrawn: v.Withdrawn.Time,
	}
	distro := false
	seen := map[string]bool{}
	for _, a := range v.Affected {
		b := osv.BaseEcosystem(a.Package.Ecosystem)
		if b != "" && !seen[b] {
			seen[b] = true
			s.Ecosystems = append(s.Ecosystems, b)
		}
		distro = distro || IsDistro(b)
	}
	var sevs []osv.Severity
	sevs = append(sevs, v.Severity...)
	for _, a := range v.Affected {
		sevs = append(sevs, a.Severity...)
	}
	s.Severity = choose(scoreAll(sevs), recordRating(v), distro)
	return s
}
