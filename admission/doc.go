// Package admission is Bulwark's validating admission webhook: an
// http.Handler that reads AdmissionReview v1, runs the same object checks
// as `bulwark scan k8s` and posture (package check) on the object, and
// answers per policy: deny (Allowed=false with a message naming the checks
// and their fixes), warn (AdmissionResponse warnings), audit (audit
// annotations the apiserver writes into its audit log) or off.
//
// Exemptions: namespaces (kube-system by default), image patterns, users,
// groups and labels. Every request has a time budget (Config.Budget,
// default 2s, well inside the apiserver's default 10s webhook timeout);
// past it, or on an internal error, the request is answered by
// Config.FailurePolicy: "ignore" (fail open: allowed, with a warning) or
// "fail" (fail closed: denied). Both are counted (bulwark_admission_*
// metrics) and logged. The apiserver's own failurePolicy in the
// ValidatingWebhookConfiguration (WebhookConfiguration; Ignore by default)
// decides what happens when the webhook cannot be reached at all.
//
// Serve runs the handler over TLS and reloads the certificate and key from
// their files when they change (rotation by cert-manager or a Secret
// update), without a restart.
//
// What it is not: it does not mutate objects, call the network on the hot
// path, or run inventory checks (those need a snapshot; posture runs them).
package admission
