// Package report formats hardening results: a table for people, JSON for
// scripts, SARIF 2.1.0 for code-scanning tools and JUnit XML for CI test
// views, with a summary per framework, namespace and severity.
//
// What it is not: it runs no checks. SARIF and JUnit are written with
// encoding/json and encoding/xml from the small subset of each schema we
// fill; no library for either is well kept and dependency-free.
package report
