// Package webhook is the receiving end of kube-apiserver's audit webhook
// backend (--audit-webhook-config-file): an http.Handler that accepts
// audit.k8s.io/v1 EventList batches, authenticates the apiserver by bearer
// token or client certificate, and hands batches to the pipeline.
//
// Two ways to acknowledge. With Config.Sync (what `bulwark audit serve`
// uses unless told otherwise) a batch is evaluated in the request and
// answered 200 only once its alerts reached every sink, so an acknowledged
// batch survives even a kill -9; a sink failure answers 503 and the
// apiserver sends the batch again. Without it, a batch is decoded and
// queued and answered at once; queued batches are drained on shutdown, but
// a killed process loses them.
//
// Memory is bounded by a byte budget over the batches held (queued, or
// waiting their turn in Sync mode); when it is full the answer is 429 with
// Retry-After, and the apiserver's batch backend retries with backoff.
// Malformed batches get 400, oversized ones 413, both counted.
//
// What it is not: a TLS server (the caller serves it with the tls.Config
// it wants, e.g. RequireAndVerifyClientCert) or a place for rules.
package webhook
