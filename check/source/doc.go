// Package source gathers the objects that hardening checks run on: from
// manifest files or standard input (through package manifest), or from a
// live cluster through client-go. Objects that a controller owns (a
// Deployment's ReplicaSets and their Pods, a CronJob's Jobs) are left out
// of a live snapshot because their owner carries the same pod template and
// is the place to fix it; static pods (owned by a Node) are kept.
//
// What it is not: it runs no checks and keeps no state; posture watches.
package source
