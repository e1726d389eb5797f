package cvss

import (
	"errors"
	"fmt"
	"strings"

	gocvss20 "github.com/pandatix/go-cvss/20"
	gocvss30 "github.com/pandatix/go-cvss/30"
	gocvss31 "github.com/pandatix/go-cvss/31"
	gocvss40 "github.com/pandatix/go-cvss/40"

	"github.com/bulwark-sec/bulwark/severity"
)

// MaxLen bounds a vector string; the longest valid v4.0 vector with every
// metric set is under 400 bytes.
const MaxLen = 1024

// ErrInvalid is returned for a vector that does not parse.
var ErrInvalid = errors.New("cvss: invalid vector")

// Score is a scored vector.
type Score struct {
	Version string         `json:"version"` // "2.0", "3.0", "3.1" or "4.0"
	Vector  string         `json:"vector"`
	Base    float64        `json:"base_score"`
	Level   severity.Level `json:"level"`
}

// Parse scores a vector. v3 and v4 vectors carry their version prefix
// ("CVSS:3.1/AV:N/..."); a vector without a prefix is read as v2.0, as the
// OSV schema specifies for CVSS_V2.
func Parse(vector string) (Score, error) {
	vector = strings.TrimSpace(vector)
	if len(vector) > MaxLen {
		return Score{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalid, MaxLen)
	}
	var (
		s   = Score{Vector: vector}
		err error
	)
	switch {
	case strings.HasPrefix(vector, "CVSS:4.0/"):
		var v *gocvss40.CVSS40
		if v, err = gocvss40.ParseVector(vector); err == nil {
			s.Version, s.Base = "4.0", v.Score()
		}
	case strings.HasPrefix(vector, "CVSS:3.1/"):
		var v *gocvss31.CVSS31
		if v, err = gocvss31.ParseVector(vector); err == nil {
			s.Version, s.Base = "3.1", v.BaseScore()
		}
	case strings.HasPrefix(vector, "CVSS:3.0/"):
		var v *gocvss30.CVSS30
		if v, err = gocvss30.ParseVector(vector); err == nil {
			s.Version, s.Base = "3.0", v.BaseScore()
		}
	default:
		var v *gocvss20.CVSS20
		if v, err = gocvss20.ParseVector(strings.TrimPrefix(vector, "CVSS:2.0/")); err == nil {
			s.Version, s.Base = "2.0", v.BaseScore()
		}
	}
	if err != nil {
		return Score{}, fmt.Errorf("%w %q: %w", ErrInvalid, vector, err)
	}
	s.Level = Level(s.Version, s.Base)
	return s, nil
}

// Level maps a base score to a level. v3 and v4 use the specification's
// qualitative scale (severity.FromCVSS); v2 has no Critical, and NVD's v2
// scale (Low < 4.0, Medium < 7.0, High) applies.
func Level(version string, base float64) severity.Level {
	if version == "2.0" {
		switch {
		case base < 4.0:
			return severity.Low
		case base < 7.0:
			return severity.Medium
		default:
			return severity.High
		}
	}
	if base == 0 {
		return severity.Info
	}
	return severity.FromCVSS(base)
}
