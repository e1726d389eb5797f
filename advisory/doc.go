// Package advisory is Bulwark's vulnerability database: OSV records
// (package advisory/osv) read from osv.dev's per-ecosystem exports
// (<Ecosystem>/all.zip) or folders of OSV JSON, kept in a local index, and
// matched against installed packages.
//
// Entry points:
//   - Import (bulwark db import) and Update (bulwark db update: download,
//     resume, verify, import) write a new index next to the old one, fsync
//     it and rename it into place, so a crash at any point leaves the old
//     index whole; a lock file serialises writers.
//   - Open opens the index; DB.Match (a whole inventory) and DB.Query (one
//     package) return the advisories affecting each package with the fixed
//     versions (none: no fix yet), ids, aliases and related CVEs, and the
//     severity (advisory/cvss base scores, the distribution's own rating).
//     DB.Get returns a whole record.
//
// The on-disk format was chosen by measurement: one file with the records
// deflated, a compact binary blob per package and per advisory summary
// (entry.go) and two sorted tables (packages, advisory ids) read at open.
// Opening reads only the tables; a query is one binary search in memory
// plus one pread per package and one per matching advisory. Measured with
// all 14,293 real records of ../shared/vulndb (22 MB index) on a 2-core
// machine under a load average of 5 to 7 (go test -run XXX -bench
// 'Import|Open$|Match500|Lookup500|SQLite' -benchtime 5x ./advisory/):
//
//	BenchmarkOpen                1.3 ms
//	BenchmarkMatch500           30 ms, 500 packages that all have advisories, 1,682 matches, fresh index
//	BenchmarkImport              2.9 s, all four ecosystems into a new index
//	BenchmarkLookup500          40 ms  } the same reads (every entry and summary of
//	BenchmarkSQLiteAlternative 225 ms  } the 500 packages) from this file and from SQLite
//
// SQLite (modernc, the store's driver) was the alternative: 5.6 times
// slower for the same lookups, an update must still write a new file and
// rename it to stay atomic, and the scan needs no ad hoc queries (lookups
// are always by ecosystem and package). JSON package blobs and summaries
// were tried first and were most of the match time; binary replaced them.

// Matching follows the OSV schema and osv-scanner: the ecosystems' bases
// must be equal and their release suffixes too when both have one
// ("Debian:12" never matches a "Debian:11" record); Debian, Ubuntu,
// Alpine, Wolfi and Chainguard are looked up by source package
// (Package.SourceName) since they publish advisories that way; PyPI names
// are compared PEP 503-normalised; ECOSYSTEM and SEMVER ranges and
// explicit versions lists are evaluated with the ecosystem's ordering
// (advisory/version), GIT ranges are not (an installed package has no
// commit); withdrawn records are never returned. One difference from
// osv-scanner v2.6 is deliberate: it stops at a GIT range listed before an
// ECOSYSTEM range, so it misses e.g. PYSEC-2022-304 for django 3.2.0
// (fixed in 3.2.16, so 3.2.0 is affected); Bulwark evaluates every range.
//
// What it is not: it does not find installed packages (package inventory)
// nor decide what a finding shows (package scan).
package advisory
