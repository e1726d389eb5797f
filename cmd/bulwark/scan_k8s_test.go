package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func runScan(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCmd(&out, &errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append([]string{"scan", "k8s"}, args...))
	err := root.Execute()
	return out.String(), err
}

func TestScanK8sExitCodeAndJSON(t *testing.T) {
	bad := "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: a}\nspec:\n  containers: [{name: c, image: x, securityContext: {privileged: true}}]\n"
	out, err := runScan(t, bad, "-f", "-", "-o", "json", "--exit-code", "3")
	var ec exitCoder
	if !errors.As(err, &ec) || ec.ExitCode() != 3 {
		t.Fatalf("privileged pod: err %v, want exit code 3", err)
	}
	var rep struct {
		Results []struct{ CheckID, Field string }
		Summary struct {
			ByNamespace map[string]struct{ Critical int }
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rep.Results {
		found = found || (r.CheckID == "pss-baseline-privileged" && r.Field == "spec.containers[0].securityContext.privileged")
	}
	if !found || rep.Summary.ByNamespace["a"].Critical == 0 {
		t.Errorf("report lacks the privileged finding: %s", out)
	}
	if _, err := runScan(t, bad, "-f", "-", "--fail-on", "none"); err != nil {
		t.Errorf("--fail-on none: %v", err)
	}
	if _, err := runScan(t, "kind: nothing\n", "-f", "-"); err == nil || errors.As(err, &ec) {
		t.Errorf("unreadable input: %v", err)
	}
}
