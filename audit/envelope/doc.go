// Package envelope unwraps the audit events managed Kubernetes services
// deliver inside their own log formats:
//
//   - AKS diagnostic settings (to Event Hubs, a storage account or Log
//     Analytics): {"records": [{"category": "kube-audit", "properties":
//     {"log": "<the audit event as a JSON string>"}}]}; DecodeAKS.
//   - GKE Cloud Logging: a LogEntry whose protoPayload is a
//     google.cloud.audit.AuditLog describing the Kubernetes request;
//     DecodeGKE maps it back to an audit.k8s.io/v1 Event.
//
// What it is not: a client of Event Hubs, Pub/Sub or the Logging API.
// Records reach it through the logfile source (exports as JSON lines) or
// any consumer that hands it the payloads.
package envelope
