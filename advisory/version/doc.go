// Package version orders version strings the way each ecosystem does:
// dpkg (Debian, Ubuntu), apk (Alpine, Wolfi, Chainguard), rpm (Red Hat,
// AlmaLinux, Rocky, openSUSE, with epochs), PEP 440 (PyPI), Maven, NuGet,
// RubyGems, Packagist, Pub, CRAN, Hackage and semver (Go, npm, crates.io).
//
// The orderings themselves come from github.com/google/osv-scalibr/semantic,
// the package osv-scanner v2 uses to match OSV ranges. It was evaluated
// first and kept: it agrees with every real version pair in this package's
// tables (dpkg tildes and epochs, rpm epochs and tildes, apk suffixes and
// -r revisions, PEP 440 epochs, pre/post/dev/local releases, Maven
// qualifiers, Go pseudo-versions), so Bulwark and osv-scanner give the same
// answer on the same data. It is not fast (math/big components, string
// building: BenchmarkCompare measured 5.5 µs per parse-parse-compare on a
// loaded 2-core machine), but fast enough where it is used: package
// advisory parses each distinct version once per open index and caches it,
// and range evaluation is about a tenth of a 500-package match
// (advisory.BenchmarkMatch500 profile). A hand-written ordering would save
// a few milliseconds per image and lose the guarantee of agreeing with
// osv-scanner, so none was written.
//
// What this package adds on top:
//   - Normalize: the Go "v" prefix ("v1.2.3" -> "1.2.3") and Go toolchain
//     tags ("go1.21.0" -> "1.21.0", "go1.22rc1" -> "1.22.0-rc.1"), which
//     the Go vulnerability database writes as plain semver;
//   - bounds: versions longer than MaxLen are refused with ErrInvalid
//     (some orderings are quadratic in the length of hostile input);
//   - ecosystems with a suffix ("Debian:12", "AlmaLinux:9") map to their base.
//
// What it is not: it does not evaluate OSV ranges (package advisory does).
package version
