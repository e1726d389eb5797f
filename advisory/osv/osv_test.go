package osv

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwark-sec/bulwark/testenv"
)

func TestUnmarshalQuirks(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want func(*Vulnerability) string // "" when right
	}{
		{
			// The Go database copy: zero times (REAL shape, GO-2020-0001).
			name: "zero modified",
			in:   `{"schema_version":"1.3.1","id":"GO-2020-0001","modified":"0001-01-01T00:00:00Z","published":"0001-01-01T00:00:00Z","affected":[{"package":{"name":"github.com/gin-gonic/gin","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.6.0"}]}]}]}`,
			want: func(v *Vulnerability) string {
				if !v.Modified.IsZero() || v.Affected[0].Ranges[0].Events[1].Fixed != "1.6.0" {
					return "zero time or events lost"
				}
				return ""
			},
		},
		{
			// PyPI records re-encoded from YAML: no schema_version, space-separated times, GIT range.
			name: "yaml times, no schema_version",
			in:   `{"id":"PYSEC-2021-7","modified":"2021-05-06 16:15:00.123456","published":"2021-05-04 00:00:00","affected":[{"package":{"name":"django","ecosystem":"PyPI"},"ranges":[{"type":"GIT","repo":"https://github.com/django/django","events":[{"introduced":"0"}]}],"versions":["3.2"]}]}`,
			want: func(v *Vulnerability) string {
				if v.SchemaVersion != "" || v.Published.Time != time.Date(2021, 5, 4, 0, 0, 0, 0, time.UTC) || v.Affected[0].Ranges[0].Repo == "" {
					return "times or GIT range wrong"
				}
				return ""
			},
		},
		{
			name: "withdrawn, unknown fields, bad time",
			in:   `{"id":"GO-2024-2442","withdrawn":"2024-01-11T19:40:00Z","modified":"soon","x-extra":{"a":1},"affected":[]}`,
			want: func(v *Vulnerability) string {
				if !v.IsWithdrawn() || !v.Modified.IsZero() {
					return "withdrawn or tolerant time wrong"
				}
				return ""
			},
		},
	}
	for _, tt := range tests {
		v, err := Unmarshal([]byte(tt.in))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if msg := tt.want(v); msg != "" {
			t.Errorf("%s: %s: %+v", tt.name, msg, v)
		}
	}
}

func TestUnmarshalErrors(t *testing.T) {
	for _, in := range []string{``, `[]`, `{}`, `{"id":""}`, `{"id":3}`, `{"id":"` + strings.Repeat("x", 300) + `"}`} {
		if _, err := Unmarshal([]byte(in)); !errors.Is(err, ErrInvalid) {
			t.Errorf("Unmarshal(%.30q) = %v, want ErrInvalid", in, err)
		}
	}
	if _, err := Decode(strings.NewReader(`{"id":"A","details":"` + strings.Repeat("x", MaxRecordSize) + `"}`)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("huge record: %v, want ErrTooLarge", err)
	}
}

func TestHelpers(t *testing.T) {
	if got := BaseEcosystem("Ubuntu:22.04:LTS"); got != "Ubuntu" {
		t.Errorf("BaseEcosystem = %q", got)
	}
	v := &Vulnerability{ID: "A", Aliases: []string{"CVE-1", "A", "CVE-1"}}
	if diff := cmp.Diff([]string{"A", "CVE-1"}, v.IDs()); diff != "" {
		t.Error(diff)
	}
}

// TestRealRecords decodes every REAL record of ../shared/vulndb.
func TestRealRecords(t *testing.T) {
	root := "../../../shared/vulndb"
	_, err := os.Stat(root)
	testenv.Require(t, err == nil, "the real OSV data in ../shared/vulndb is missing")
	n := 0
	for _, eco := range []string{"Go", "PyPI", "crates.io", "AlmaLinux"} {
		files, _ := filepath.Glob(filepath.Join(root, eco, "*.json"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			v, err := Unmarshal(b)
			if err != nil {
				t.Errorf("%s: %v", f, err)
				continue
			}
			if strings.TrimSuffix(filepath.Base(f), ".json") != v.ID {
				t.Errorf("%s: id %s", f, v.ID)
			}
			n++
		}
	}
	if n != 14293 {
		t.Errorf("decoded %d records, want 14293", n)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"id":"GO-2020-0001","modified":"0001-01-01T00:00:00Z","affected":[{"package":{"name":"x","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.6.0"}]}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Unmarshal(b)
		if err != nil {
			return
		}
		if v.ID == "" {
			t.Fatal("record without id accepted")
		}
		_ = v.IDs()
		_ = v.IsWithdrawn()
	})
}
