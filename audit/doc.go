// Package audit detects threats in Kubernetes audit logs: it turns
// audit.k8s.io/v1 Events (k8s.io/apiserver's own types) into detect events,
// ships the built-in audit rules (rules/*.yaml, embedded), and runs the
// pipeline from sources to alerts with pipeline-health metrics.
//
// Sources live in sub-packages, each turning its input into Events:
// webhook (the apiserver's audit webhook backend), logfile (the JSON-lines
// audit log, followed across rotation), cloudwatch (EKS control-plane logs)
// and envelope (AKS diagnostic-settings records, GKE Cloud Logging entries).
//
// What it is not: it does not store alerts (a Sink does: store.AlertStore
// through StoreSink, or JSON lines), and it holds no rule logic in Go; the
// rules are data, evaluated by package detect.
package audit
