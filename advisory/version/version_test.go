package version

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Every pair below is real: versions taken from the distributions' and
// registries' own package lists and advisories, ordered as their tools
// (dpkg --compare-versions, apk version -t, rpmdev-vercmp, packaging's
// Version, Maven's ComparableVersion, semver) order them.
var pairs = []struct {
	eco  string
	a, b string
	want int
}{
	// dpkg: Debian and Ubuntu.
	{"Debian:12", "3.0.11-1~deb12u1", "3.0.11-1~deb12u2", -1},
	{"Debian:12", "3.0.11-1~deb12u2", "3.0.11-1", -1},  // tilde sorts before everything
	{"Debian:12", "1:2.38.1-5+deb12u1", "2.40.1-1", 1}, // epoch wins
	{"Debian:12", "2.36.1-8+deb12u1", "2.36.1-8", 1},
	{"Debian:12", "7.88.1-10+deb12u5", "7.88.1-10+deb12u12", -1},
	{"Debian:12", "1.2.13.dfsg-1", "1.2.13.dfsg-1", 0},
	{"Debian:12", "252.30-1~deb12u2", "252.31-1~deb12u1", -1},
	{"Debian:12", "5.2.15-2+b2", "5.2.15-2", 1},
	{"Debian:12", "1.0~rc1-1", "1.0-1", -1},
	{"Debian:12", "2:9.0.1378-2", "2:9.0.1378-2+deb12u1", -1},
	{"Debian:11", "1.1.1n-0+deb11u5", "1.1.1w-0+deb11u1", -1},
	{"Ubuntu:22.04:LTS", "3.0.2-0ubuntu1.10", "3.0.2-0ubuntu1.15", -1},
	{"Ubuntu:22.04:LTS", "2.35-0ubuntu3.1", "2.35-0ubuntu3", 1},
	{"Ubuntu:24.04:LTS", "1.21.1+dfsg-1ubuntu0.24.04.1", "1.21.1+dfsg-1", 1},
	// apk: Alpine, Wolfi.
	{"Alpine:v3.18", "3.1.4-r0", "3.1.4-r1", -1},
	{"Alpine:v3.18", "3.1.4-r5", "3.1.5-r0", -1},
	{"Alpine:v3.19", "1.36.1-r15", "1.36.1-r5", 1},
	{"Alpine:v3.19", "2.5.0_rc1-r0", "2.5.0-r0", -1},
	{"Alpine:v3.19", "1.2.3_p1-r0", "1.2.3-r0", 1},
	{"Alpine:v3.20", "8.7.1-r0", "8.9.0-r0", -1},
	{"Alpine:v3.20", "1.1.1w-r1", "1.1.1v-r0", 1},
	{"Wolfi", "3.3.2-r0", "3.3.2-r1", -1},
	// rpm: Red Hat family, with epochs.
	{"AlmaLinux:9", "5.14.0-427.13.1.el9_4", "5.14.0-611.54.6.el9_7", -1},
	{"AlmaLinux:9", "1:3.0.7-27.el9", "3.0.7-28.el9", 1},
	{"AlmaLinux:9", "1:3.0.7-27.el9", "1:3.0.7-27.el9_4", -1},
	{"AlmaLinux:8", "2.28-225.el8_8.6", "2.28-225.el8", 1},
	{"AlmaLinux:8", "1:0.1.15-2.git2d0b8a3.module_el8.4.0+2496+12421f43", "1:0.1.15-2.git2d0b8a3.module_el8.5.0+119+9a9ec082", -1},
	{"Rocky Linux:9", "7.76.1-26.el9", "7.76.1-26.el9_3.2", -1},
	{"Red Hat", "2.9.13-6.el9_4", "2.9.13-6.el9_4", 0},
	{"AlmaLinux:9", "1.0~rc1-1.el9", "1.0-1.el9", -1},
	// PEP 440: PyPI.
	{"PyPI", "3.2.0", "3.2.19", -1},
	{"PyPI", "3.2", "3.2.0", 0},
	{"PyPI", "2.19.0", "2.20.0", -1},
	{"PyPI", "8.0.0", "8.1.1", -1},
	{"PyPI", "4.0a1", "4.0", -1},
	{"PyPI", "4.0rc1", "4.0", -1},
	{"PyPI", "4.0b2", "4.0rc1", -1},
	{"PyPI", "1.0.post1", "1.0", 1},
	{"PyPI", "1.0.dev0", "1.0a1", -1},
	{"PyPI", "1!1.0", "2.0", 1},
	{"PyPI", "1.0+local.1", "1.0", 1},
	{"PyPI", "2.0.0", "10.0.0", -1},
	{"PyPI", "1.0-1", "1.0.post1", 0},
	// Maven.
	{"Maven", "2.14.0", "2.14.0-rc1", 1},
	{"Maven", "1.0-alpha-1", "1.0-beta-1", -1},
	{"Maven", "1.0-SNAPSHOT", "1.0", -1},
	{"Maven", "2.17.1", "2.17.10", -1},
	{"Maven", "5.3.18", "5.3.20", -1},
	{"Maven", "1.0.RELEASE", "1.0", 0},
	{"Maven", "1.0-sp1", "1.0", 1},
	{"Maven", "31.1-jre", "32.0.0-android", -1},
	// semver: npm, crates.io, Go (with the "v" prefix and pseudo-versions).
	{"npm", "4.17.20", "4.17.21", -1},
	{"npm", "1.0.0-alpha", "1.0.0-alpha.1", -1},
	{"npm", "1.0.0-alpha.beta", "1.0.0-beta", -1},
	{"npm", "1.0.0-beta.2", "1.0.0-beta.11", -1},
	{"npm", "1.0.0-rc.1", "1.0.0", -1},
	{"npm", "1.0.0+build.1", "1.0.0", 0},
	{"crates.io", "0.10.55", "0.10.6", 1},
	{"crates.io", "1.0.0-pre.1", "1.0.0", -1},
	{"Go", "v0.3.5", "0.3.8", -1},
	{"Go", "v0.0.0-20210226172049-e18ecbb05110", "0.0.0-20210520170846-37e1c6afe023", -1},
	{"Go", "v0.0.0-20210226172049-e18ecbb05110", "0.7.0", -1},
	{"Go", "v1.2.4-0.20230101000000-abcdef123456", "1.2.3", 1}, // pseudo-version after v1.2.3
	{"Go", "v1.2.4-0.20230101000000-abcdef123456", "1.2.4", -1},
	{"Go", "go1.21.0", "1.21.11", -1},
	{"Go", "go1.21", "1.21.0", 0},
	{"Go", "go1.22rc1", "1.22.0", -1},
	{"Go", "go1.22rc1", "1.22.0-rc.2", -1},
	{"Go", "v2.0.0+incompatible", "2.0.0", 0},
	// Others osv.dev publishes.
	{"RubyGems", "6.1.7.3", "6.1.7.10", -1},
	{"RubyGems", "1.0.0.pre", "1.0.0", -1},
	{"NuGet", "13.0.1", "13.0.3", -1},
	{"Packagist", "5.4.40", "5.4.8", 1},
}

func TestCompare(t *testing.T) {
	for _, p := range pairs {
		got, err := Compare(p.eco, p.a, p.b)
		if err != nil {
			t.Errorf("Compare(%s, %q, %q): %v", p.eco, p.a, p.b, err)
			continue
		}
		if got != p.want {
			t.Errorf("Compare(%s, %q, %q) = %d, want %d", p.eco, p.a, p.b, got, p.want)
		}
		back, _ := Compare(p.eco, p.b, p.a)
		if back != -p.want {
			t.Errorf("Compare(%s, %q, %q) = %d, want %d (antisymmetry)", p.eco, p.b, p.a, back, -p.want)
		}
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct{ eco, in, want string }{
		{"Go", "v0.3.5", "0.3.5"},
		{"Go", "go1.21.0", "1.21.0"},
		{"Go", "go1.21", "1.21.0"},
		{"Go", "go1.9", "1.9.0"},
		{"Go", "go1.22rc1", "1.22.0-rc.1"},
		{"Go", "go1.20beta1", "1.20.0-beta.1"},
		{"Go", "go1.21.0 X:boringcrypto", "1.21.0"},
		{"Go", "v0.0.0-20210226172049-e18ecbb05110", "0.0.0-20210226172049-e18ecbb05110"},
		{"npm", "v1.2.3", "v1.2.3"},
		{"PyPI", " 1.0 ", "1.0"},
	}
	for _, tt := range tests {
		if got := Normalize(tt.eco, tt.in); got != tt.want {
			t.Errorf("Normalize(%s, %q) = %q, want %q", tt.eco, tt.in, got, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		eco, in string
		want    error
	}{
		{"Debian:12", "", ErrInvalid},
		{"Debian:12", "x:1.0", ErrInvalid},
		{"Go", strings.Repeat("1.", 200), ErrInvalid},
		{"Plan9", "1.0", ErrUnsupportedEcosystem},
	}
	for _, tt := range tests {
		_, err := Parse(tt.eco, tt.in)
		if !errors.Is(err, tt.want) {
			t.Errorf("Parse(%s, %q) = %v, want %v", tt.eco, tt.in, err, tt.want)
		}
	}
	if got, want := []bool{Supported("Debian:12"), Supported("GIT"), Supported("Plan9")}, []bool{true, false, false}; !cmp.Equal(got, want) {
		t.Errorf("Supported = %v, want %v", got, want)
	}
}

func BenchmarkCompare(b *testing.B) {
	for b.Loop() {
		for _, p := range pairs {
			_, _ = Compare(p.eco, p.a, p.b)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(pairs)), "ns/compare")
}
