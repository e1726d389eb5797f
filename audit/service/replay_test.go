package service

import (
	"bytes"
	"context"
	"flag"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwark-sec/bulwark/audit"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

func TestReplayGolden(t *testing.T) {
	res, err := Replay(context.Background(), ReplayConfig{Path: "testdata/replay.log", Rules: audit.RulesConfig{Cluster: "lab"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != 5 || res.Rejected != 1 {
		t.Errorf("events %d rejected %d, want 5 and 1", res.Events, res.Rejected)
	}
	var table, js bytes.Buffer
	if err := WriteTable(&table, res); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(&js, res); err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/replay.table.golden", table.Bytes())
	golden(t, "testdata/replay.json.golden", js.Bytes())
}

func TestReplayRefusesBadRuleFile(t *testing.T) {
	bad := t.TempDir() + "/bad.yaml"
	if err := os.WriteFile(bad, []byte("rules:\n- id: X\n  title: x\n  source: audit\n  severity: high\n  mitre: {tactic: TA0002, technique: T1609}\n  condition: verb = 'get'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Replay(context.Background(), ReplayConfig{Path: "testdata/replay.log", Rules: audit.RulesConfig{Files: []string{bad}}})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("bad.yaml:7: rule X: condition does not compile")) {
		t.Fatalf("err = %v", err)
	}
}
