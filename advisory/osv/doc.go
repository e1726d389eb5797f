// Package osv holds the OSV schema (https://ossf.github.io/osv-schema/) as
// plain Go types, and a tolerant, bounded decoder for one record.
//
// It is the one advisory format of Bulwark: every source (osv.dev exports,
// folders of JSON, records written in tests) is read into Vulnerability.
//
// Why not the official bindings: github.com/ossf/osv-schema/bindings/go is
// generated protobuf (osvschema.Vulnerability). Decoding it needs protojson,
// which rejects the real-data quirks this package must accept (the PyPI
// records re-encoded from YAML carry timestamps that are not RFC 3339 in
// every case; the Go database copy has zero times), and costs an extra
// protobuf runtime on the hot import path. Plain structs with encoding/json
// keep unknown fields out of the way and keep database_specific and
// ecosystem_specific as raw JSON.
//
// What it is not: it does not evaluate version ranges (package
// advisory/version and advisory do), and it does not fetch anything.
package osv
