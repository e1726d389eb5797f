// Package detect is the threat-detection core shared by the audit-log
// detector (package audit) and the node sensor: the alert model, the rule
// format, the rule engine, named lists (threat intelligence), learned
// baselines, and in-memory de-duplication.
//
// A rule is declarative YAML: metadata (id, title, severity, MITRE ATT&CK
// tactic and technique, Microsoft Kubernetes threat-matrix id), a match block
// over the facets an event source declares (for audit events: verb,
// resource, subresource, ...), a CEL condition over the typed variables the
// source declares, exceptions, and optionally a threshold (N matches in a
// window) or a baseline (alert on a value never seen for a key once a learning
// period is over). A RuleSet is compiled once against a Schema; evaluation
// picks candidate rules through an index on the first two facets before any
// CEL runs, so that the common events (get, list, watch) cost a map lookup.
//
// What it is not: it reads no input (sources live in audit and sensor), it
// writes no reports, and it does not persist alerts (store.AlertStore does;
// Alert.Record converts). The CEL language and its type checker come from
// github.com/google/cel-go, the same library Kubernetes uses for its
// admission policies; only the glue (rule loading with line numbers, the
// index, thresholds and baselines) is written here, because no library does
// rule metadata and pre-filtering for CEL.
package detect
