package report_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwark-sec/bulwark/check"
	"github.com/bulwark-sec/bulwark/check/report"
	"github.com/bulwark-sec/bulwark/check/source"
	"github.com/bulwark-sec/bulwark/manifest"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestWriteGolden(t *testing.T) {
	objs, err := source.Files([]string{"../testdata/cluster.yaml"}, nil, manifest.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := check.NewEngine(check.Config{AllowedRegistries: []string{"registry.example.com/"}}, check.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	rep := report.New(e.Assess(objs), e.Checks(), len(objs), nil)
	for _, f := range report.Formats {
		var buf bytes.Buffer
		if err := report.Write(&buf, f, rep); err != nil {
			t.Fatal(err)
		}
		// Every machine format must parse.
		switch f {
		case "json", "sarif":
			var v map[string]any
			if err := json.Unmarshal(buf.Bytes(), &v); err != nil {
				t.Errorf("%s does not parse: %v", f, err)
			}
		case "junit":
			var v struct{}
			if err := xml.Unmarshal(buf.Bytes(), &v); err != nil {
				t.Errorf("junit does not parse: %v", err)
			}
		}
		path := filepath.Join("testdata", "cluster."+f)
		if *update {
			os.WriteFile(path, buf.Bytes(), 0o644)
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update)", err)
		}
		if d := cmp.Diff(string(want), buf.String()); d != "" {
			t.Errorf("%s (-want +got):\n%s", f, d)
		}
	}
	if rep.Summary.ByFramework[check.FrameworkPSSBaseline].Total == 0 || rep.Summary.ByNamespace["shop"].Total == 0 {
		t.Errorf("summary misses frameworks or namespaces: %+v", rep.Summary)
	}
	if err := report.Write(&bytes.Buffer{}, "yaml", rep); err == nil {
		t.Error("unknown format accepted")
	}
}
