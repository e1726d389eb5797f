// Package central is Bulwark's central server: the HTTP surface that
// clusters, people and monitoring talk to. It serves health (/healthz),
// readiness (/readyz), Prometheus metrics (/metrics) and the JSON API under
// /api/v1, over a store.Store.
//
// Later work hangs agent intake, registry webhooks, schedules, scan workers,
// notifications and the dashboard on the same Server. It is not the place
// for scanning, checks or detection logic: those live in their own packages
// and central only wires them to the network and the store.
package central
