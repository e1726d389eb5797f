// Package k8sscan is `bulwark scan k8s` as a library: gather objects from
// manifests or a live cluster (package source), run the check engine with
// the built-in and user checks, and build a report (package report).
//
// What it is not: it formats nothing and does not watch; posture watches.
package k8sscan
