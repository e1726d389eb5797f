// Package cvss computes CVSS base scores from vector strings (v2.0, v3.0,
// v3.1 and v4.0) and maps them to severity.Level.
//
// The scoring itself is github.com/pandatix/go-cvss, a maintained
// implementation of the FIRST specifications tested against FIRST's own
// calculators; this package only recognises the version from the vector's
// prefix, bounds the input and maps the score onto Bulwark's one scale.
//
// What it is not: it does not pick which of a record's vectors to trust
// (package advisory does) and computes no temporal or environmental score.
package cvss
