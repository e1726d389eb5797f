// Package posture is continuous hardening assessment of a live cluster:
// client-go informers watch the kinds the checks look at, and each change
// re-evaluates only the object that changed (object checks) and, debounced,
// the snapshot checks (RBAC, NetworkPolicy coverage, exposure) over the
// informers' caches. Results go to the store (store.HardeningStore), keyed
// by object, replaced atomically per object; nothing is written to the
// cluster.
//
// Objects a controller owns (a Deployment's ReplicaSets and Pods, a
// CronJob's Jobs) are not assessed: their owner carries the same template.
//
// What it is not: it serves no API and enforces nothing (see admission).
package posture
