package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestAuditReplayAndRulesCommands(t *testing.T) {
	var out, errOut bytes.Buffer
	cmd := newRootCmd(&out, &errOut)
	cmd.SetArgs([]string{"audit", "replay", "../../audit/service/testdata/replay.log", "--format", "json", "--cluster", "lab"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("replay: %v (%s)", err, errOut.String())
	}
	var res struct {
		Events int64 `json:"events"`
		Alerts []struct {
			RuleID  string `json:"ruleId"`
			Cluster string `json:"cluster"`
		} `json:"alerts"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("replay output is not JSON: %v\n%s", err, out.String())
	}
	if res.Events != 5 || len(res.Alerts) != 3 || res.Alerts[0].Cluster != "lab" {
		t.Errorf("replay = %+v", res)
	}

	out.Reset()
	cmd = newRootCmd(&out, &errOut)
	cmd.SetArgs([]string{"audit", "rules", "--format", "json"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	var rules []map[string]any
	if err := json.Unmarshal(out.Bytes(), &rules); err != nil || len(rules) < 30 {
		t.Fatalf("rules: %d, %v", len(rules), err)
	}

	cmd = newRootCmd(&out, &errOut)
	cmd.SetArgs([]string{"audit", "replay", "x.log", "--format", "xml"})
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "--format") {
		t.Errorf("bad format: %v", err)
	}
}
