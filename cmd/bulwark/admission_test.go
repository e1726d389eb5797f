package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/yaml"
)

func TestAdmissionInstall(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"), 0o600)
	var out, errOut bytes.Buffer
	root := newRootCmd(&out, &errOut)
	root.SetArgs([]string{"admission", "install", "--service", "hook", "--namespace", "sec", "--ca-file", ca, "--failure-policy", "Fail"})
	if err := root.Execute(); err != nil {
		t.Fatal(err, errOut.String())
	}
	var cfg admissionregistrationv1.ValidatingWebhookConfiguration
	if err := yaml.UnmarshalStrict(out.Bytes(), &cfg); err != nil {
		t.Fatal(err)
	}
	w := cfg.Webhooks[0]
	if *w.FailurePolicy != admissionregistrationv1.Fail || w.ClientConfig.Service.Name != "hook" || w.ClientConfig.Service.Namespace != "sec" ||
		len(w.ClientConfig.CABundle) == 0 || w.NamespaceSelector.MatchExpressions[0].Values[0] != "kube-system" {
		t.Errorf("configuration: %+v", w)
	}
	root = newRootCmd(&out, &errOut)
	root.SetArgs([]string{"admission", "install", "--failure-policy", "Maybe"})
	if err := root.Execute(); err == nil {
		t.Error("bad failure policy accepted")
	}
}
