// Package webhook is the receiving end of kube-apiserver's audit webhook
// backend (--audit-webhook-config-file): an http.Handler that accepts
// audit.k8s.io/v1 EventList batches, authenticates the apiserver by bearer
// token or client certificate, and queues batches for the pipeline.
//
// It answers fast: a batch is decoded and queued, never evaluated, in the
// request. Memory is bounded by the queue's byte budget; when it is full
// the answer is 429 with Retry-After, and the apiserver's batch backend
// retries with backoff. Malformed batches get 400, oversized ones 413,
// both counted. Queued batches are drained on shutdown (Run returns only
// when the queue is empty), so an accepted batch is evaluated unless the
// process is killed.
//
// What it is not: a TLS server (the caller serves it with the tls.Config
// it wants, e.g. RequireAndVerifyClientCert) or a place for rules.
package webhook
