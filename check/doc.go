// Package check is Bulwark's hardening engine: checks over Kubernetes
// objects written once and used by three callers, the CLI on manifests
// (bulwark scan k8s), continuous assessment of a live cluster (posture) and
// the admission webhook (admission). The same object gives the same results
// whichever caller asks.
//
// A check is a value (Check): an ID, a title, a description, a severity, the
// framework controls it implements, the MITRE ATT&CK / Microsoft Kubernetes
// threat-matrix techniques it guards against, the fix as the exact field to
// set, and a pure function. Object checks see one typed object from
// k8s.io/api (workloads are reduced to their pod template, so Pod,
// Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job
// and CronJob are all covered by the same function); inventory checks see a
// snapshot of many objects (RBAC, NetworkPolicy coverage, exposure of
// sensitive applications). Every Result names the object, the container and
// the field path.
//
// The catalogue (Builtin) holds:
//   - Pod Security Standards baseline and restricted. The check functions are
//     those of k8s.io/pod-security-admission's policy package, the code of
//     Kubernetes' own Pod Security Admission, so the verdict is the same for
//     every pod and every version of the standard; this package only adds
//     the metadata, container attribution and field paths.
//   - the data-plane recommendations of a managed "defender for containers",
//     with their parameters taken from Config;
//   - CIS Kubernetes Benchmark section 5 object checks and control-plane
//     flags read from static pods;
//   - exposure of sensitive applications through LoadBalancer/NodePort.
//
// User checks are CEL expressions with the variables of Kubernetes'
// ValidatingAdmissionPolicy (object, oldObject, params, request), loaded
// from files (LoadCEL); they are compiled with cel-go once and evaluated on
// the object's unstructured form.
//
// What it is not: it does no I/O, talks to no cluster, and formats nothing
// (package check/report writes results; check/source gathers objects; check/k8sscan wires both for the CLI). Parsing manifests is package manifest.
package check
