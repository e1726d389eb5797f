package version

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/osv-scalibr/semantic"
)

// MaxLen bounds a version string. Real versions are far shorter (the
// longest in the bundled data is under 80 bytes).
const MaxLen = 256

// Sentinel errors.
var (
	// ErrUnsupportedEcosystem: no ordering is known for the ecosystem.
	ErrUnsupportedEcosystem = errors.New("version: unsupported ecosystem")
	// ErrInvalid: the string is not a version of the ecosystem.
	ErrInvalid = errors.New("version: invalid version")
)

// Version is a parsed version of one ecosystem.
type Version struct {
	eco string // base ecosystem
	raw string // normalised string
	v   semantic.Version
}

// Parse reads s as a version of ecosystem (which may carry a suffix such
// as "Debian:12"). s is normalised first (see Normalize).
func Parse(ecosystem, s string) (Version, error) {
	base := Base(ecosystem)
	if len(s) > MaxLen {
		return Version{}, fmt.Errorf("%w: %d bytes, longer than %d", ErrInvalid, len(s), MaxLen)
	}
	s = Normalize(base, s)
	if s == "" {
		return Version{}, fmt.Errorf("%w: empty", ErrInvalid)
	}
	v, err := semantic.Parse(s, base)
	if err != nil {
		if errors.Is(err, semantic.ErrUnsupportedEcosystem) {
			return Version{}, fmt.Errorf("%w: %q", ErrUnsupportedEcosystem, ecosystem)
		}
		return Version{}, fmt.Errorf("%w: %s %q: %w", ErrInvalid, base, s, err)
	}
	return Version{eco: base, raw: s, v: v}, nil
}

// String returns the normalised version.
func (v Version) String() string { return v.raw }

// Compare returns -1, 0 or +1 as v is less than, equal to or greater than
// w. Versions of different ecosystems, or a zero Version, compare by
// their strings: callers compare versions of one ecosystem.
func (v Version) Compare(w Version) int {
	if v.v == nil || w.v == nil || v.eco != w.eco {
		return strings.Compare(v.raw, w.raw)
	}
	c, err := v.v.Compare(w.v)
	if err != nil {
		return strings.Compare(v.raw, w.raw)
	}
	return sign(c)
}

// Compare parses a and b as versions of ecosystem and compares them.
func Compare(ecosystem, a, b string) (int, error) {
	va, err := Parse(ecosystem, a)
	if err != nil {
		return 0, err
	}
	vb, err := Parse(ecosystem, b)
	if err != nil {
		return 0, err
	}
	return va.Compare(vb), nil
}

// Supported reports whether ecosystem has an ordering here.
func Supported(ecosystem string) bool {
	_, err := semantic.Parse("0", Base(ecosystem))
	return !errors.Is(err, semantic.ErrUnsupportedEcosystem)
}

// Base returns the ecosystem without its suffix.
func Base(ecosystem string) string {
	b, _, _ := strings.Cut(ecosystem, ":")
	return b
}

// Normalize rewrites s into the form the ecosystem's advisories use. Only
// Go needs it: module versions lose their "v" ("v0.3.5" -> "0.3.5") and Go
// toolchain tags become semver ("go1.21.0" -> "1.21.0", "go1.21" ->
// "1.21.0", "go1.22rc1" -> "1.22.0-rc.1"), as in the Go vulnerability
// database. Surrounding space is trimmed for every ecosystem.
func Normalize(ecosystem, s string) string {
	s = strings.TrimSpace(s)
	if Base(ecosystem) != "Go" {
		return s
	}
	if strings.HasPrefix(s, "go1") {
		return goTagToSemver(s)
	}
	return strings.TrimPrefix(s, "v")
}

// goTagToSemver follows the Go vulnerability database's conversion of
// toolchain tags (golang.org/x/vuln's semver.GoTagToSemver).
func goTagToSemver(tag string) string {
	s := strings.TrimPrefix(tag, "go")
	pre := ""
	for _, p := range []string{"rc", "beta", "alpha"} {
		if i := strings.Index(s, p); i > 0 {
			pre = "-" + p + "." + s[i+len(p):]
			s = s[:i]
			break
		}
	}
	// Drop anything after a space or a '-' (e.g. "go1.21.0 X:boringcrypto").
	if i := strings.IndexAny(s, " -+"); i >= 0 {
		s = s[:i]
	}
	switch strings.Count(s, ".") {
	case 0:
		s += ".0.0"
	case 1:
		s += ".0"
	}
	return s + pre
}

func sign(c int) int {
	switch {
	case c < 0:
		return -1
	case c > 0:
		return 1
	}
	return 0
}
