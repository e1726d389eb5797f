package envelope

import (
	"errors"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwark-sec/bulwark/audit"
)

func TestDecodeAKS(t *testing.T) {
	data, err := os.ReadFile("testdata/aks.json")
	if err != nil {
		t.Fatal(err)
	}
	evs, err := DecodeAKS(data)
	if err != nil {
		t.Fatal(err)
	}
	type got struct{ ID, Verb, Resource, Sub, User string }
	var g []got
	for _, e := range evs {
		g = append(g, got{string(e.AuditID), e.Verb, e.ObjectRef.Resource, e.ObjectRef.Subresource, e.User.Username})
	}
	want := []got{{"a1", "create", "pods", "exec", "alice@example.com"}, {"a2", "deletecollection", "events", "", "alice@example.com"}}
	if diff := cmp.Diff(want, g); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	for _, bad := range []string{`{}`, `{"records":[{"category":"kube-audit","properties":{"log":"nope"}}]}`, `[`} {
		if _, err := DecodeAKS([]byte(bad)); !errors.Is(err, audit.ErrMalformed) {
			t.Errorf("DecodeAKS(%s): %v", bad, err)
		}
	}
}

func TestDecodeGKE(t *testing.T) {
	data, err := os.ReadFile("testdata/gke.json")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := DecodeGKE(data)
	if err != nil {
		t.Fatal(err)
	}
	r := ev.ObjectRef
	if ev.Verb != "create" || r.Resource != "pods" || r.Namespace != "dev" || r.Name != "miner" || r.APIGroup != "" ||
		ev.User.Username != "mallory@example.com" || ev.SourceIPs[0] != "198.51.100.7" || ev.ResponseStatus.Code != 200 ||
		ev.Cluster != "gke-prod" || ev.Annotations["authorization.k8s.io/decision"] != "allow" || string(ev.AuditID) != "op-1" {
		t.Errorf("event = %+v", ev.Event)
	}
	// The unwrapped event goes through the same rules as any other.
	e, _, err := audit.NewEngine(audit.RulesConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range e.Evaluate(ev) {
		ids = append(ids, a.RuleID)
	}
	if diff := cmp.Diff([]string{"AUD-PRIVILEGED-CONTAINER", "AUD-CRYPTO-MINER-IMAGE"}, ids); diff != "" {
		t.Errorf("alerts (-want +got):\n%s", diff)
	}
	if _, err := DecodeGKE([]byte(`{"protoPayload":{"serviceName":"compute.googleapis.com","methodName":"x"}}`)); !errors.Is(err, audit.ErrMalformed) {
		t.Errorf("non-k8s entry: %v", err)
	}
}

func TestParseMethod(t *testing.T) {
	tests := []struct{ method, res, verb, group, ns, resource, name, sub string }{
		{"io.k8s.core.v1.pods.exec.create", "core/v1/namespaces/dev/pods/web/exec", "create", "", "dev", "pods", "web", "exec"},
		{"io.k8s.authorization.rbac.v1.clusterrolebindings.create", "rbac.authorization.k8s.io/v1/clusterrolebindings/pwn", "create", "rbac.authorization.k8s.io", "", "clusterrolebindings", "pwn", ""},
		{"io.k8s.core.v1.secrets.list", "core/v1/namespaces/prod/secrets", "list", "", "prod", "secrets", "", ""},
		{"io.k8s.core.v1.namespaces.get", "core/v1/namespaces/prod", "get", "", "prod", "namespaces", "prod", ""},
	}
	for _, tt := range tests {
		verb, ref := parseMethod(tt.method, tt.res)
		got := []string{verb, ref.APIGroup, ref.Namespace, ref.Resource, ref.Name, ref.Subresource}
		if diff := cmp.Diff([]string{tt.verb, tt.group, tt.ns, tt.resource, tt.name, tt.sub}, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.method, diff)
		}
	}
}

func FuzzDecodeGKE(f *testing.F) {
	data, _ := os.ReadFile("testdata/gke.json")
	f.Add(data)
	f.Add([]byte(`{"protoPayload":{"serviceName":"k8s.io","methodName":"a","resourceName":"/"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := DecodeGKE(b); err != nil && !errors.Is(err, audit.ErrMalformed) && !errors.Is(err, audit.ErrTooLarge) {
			t.Fatal(err)
		}
	})
}

func FuzzDecodeAKS(f *testing.F) {
	data, _ := os.ReadFile("testdata/aks.json")
	f.Add(data)
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := DecodeAKS(b); err != nil && !errors.Is(err, audit.ErrMalformed) && !errors.Is(err, audit.ErrTooLarge) {
			t.Fatal(err)
		}
	})
}
