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
// The on-disk format was chosen by measurement (BenchmarkOpen,
// BenchmarkMatch500, BenchmarkImport): one file with the records deflated,
// a compact binary blob per package (entry.go) and two sorted tables
// (packages, advisory ids) read at open. Opening reads only the tables,
// well under a millisecond for the 14,293 bundled records, and a query is
// one binary search in memory plus one pread. SQLite (modernc) was the
// alternative: its open is fast too, but every query goes through the SQL
// layer and a pure-Go B-tree, an update must rewrite or copy a database
// file to stay atomic, and it adds nothing the scan needs (no ad hoc
// queries: lookups are always by ecosystem and package name). JSON
// package blobs were tried first and cost most of the match time; the
// binary blobs replaced them.
//
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
