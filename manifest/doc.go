// Package manifest reads Kubernetes manifests into typed objects: multi-
// document YAML, JSON (one or several documents, or an array), List kinds
// (v1 List, PodList, ...) and Helm-rendered output, whose "# Source:"
// comments become each object's source.
//
// Objects of kinds the client-go scheme knows decode into their k8s.io/api
// types; others (CRDs) stay *unstructured.Unstructured. Input is hostile:
// sizes, document count and nesting depth are bounded (Limits), a bad
// document yields an error naming it and the other documents are kept.
//
// What it is not: it does not talk to a cluster, validate against OpenAPI
// or render Helm charts (pipe `helm template` into it).
//
// The document splitter and YAML-to-JSON conversion are apimachinery's and
// sigs.k8s.io/yaml's; only the bounds, List expansion and source naming are
// written here.
package manifest
