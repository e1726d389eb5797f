// Package store is Bulwark's persistence: the records every pillar keeps
// (clusters, images, scans and their findings, alerts) behind one narrow
// interface.
//
// The interface is split by record kind so that a consumer depends only on
// what it uses (a scan worker on ScanStore, the audit intake on AlertStore).
// Implementations live in sub-packages; sqlstore provides SQLite (the
// embedded default) and PostgreSQL (for several central replicas), and
// storetest is the one conformance suite that every implementation must pass.
//
// The store holds data, not policy: it does not match advisories, evaluate
// checks or decide severities. Payloads owned by other packages (an
// inventory, an alert's evidence) are stored as opaque JSON.
package store
