package version

import "testing"

// fuzzOrdering checks, for any two strings, that parsing never panics and
// that the ordering is reflexive and antisymmetric.
func fuzzOrdering(f *testing.F, eco string) {
	for _, p := range pairs {
		if Base(p.eco) == Base(eco) {
			f.Add(p.a, p.b)
		}
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		va, errA := Parse(eco, a)
		vb, errB := Parse(eco, b)
		if errA != nil || errB != nil {
			return
		}
		if c := va.Compare(va); c != 0 {
			t.Fatalf("%s: Compare(%q, itself) = %d", eco, a, c)
		}
		if ab, ba := va.Compare(vb), vb.Compare(va); ab != -ba {
			t.Fatalf("%s: Compare(%q, %q) = %d but reverse = %d", eco, a, b, ab, ba)
		}
	})
}

func FuzzDpkg(f *testing.F)   { fuzzOrdering(f, "Debian:12") }
func FuzzAPK(f *testing.F)    { fuzzOrdering(f, "Alpine:v3.19") }
func FuzzRPM(f *testing.F)    { fuzzOrdering(f, "AlmaLinux:9") }
func FuzzPEP440(f *testing.F) { fuzzOrdering(f, "PyPI") }
func FuzzMaven(f *testing.F)  { fuzzOrdering(f, "Maven") }
func FuzzSemver(f *testing.F) { fuzzOrdering(f, "npm") }
func FuzzGo(f *testing.F)     { fuzzOrdering(f, "Go") }
