// Package testenv starts real components for tests, each with one call, on
// 127.0.0.1 and free ports, stopped by t.Cleanup:
//
//   - KubeAPIServer: a real kube-apiserver and etcd (built from the Go module
//     proxy by hack/testenv-bins.sh into a cache keyed by version), with
//     admin credentials, per-user credentials, and options for audit logging
//     (file and webhook) and admission webhooks;
//   - Postgres: a PostgreSQL server in its own temporary directory, started
//     with the machine's initdb and postgres.
//
// Nothing here is a fake: tests that use testenv talk to the same programs a
// cluster runs. When a prerequisite is missing, the test is skipped with the
// reason, except under CI (CI=true), where it fails with the reason, so a
// missing install never passes silently.
//
// The logs of every component are printed when the test fails; set
// BULWARK_TESTENV_KEEP=1 to keep their directories as well.
package testenv
