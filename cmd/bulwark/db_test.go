package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runCLI runs the real command tree in-process.
func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCmd(&out, &errb)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errb.String(), err
}

// The records imported here are the WRITTEN ones of advisory/testdata/written
// (Debian, Ubuntu, Alpine, npm, Maven shaped like osv.dev's).
func TestDBImportAndStatus(t *testing.T) {
	dbDir := t.TempDir()
	out, stderr, err := runCLI(t, "db", "import", "--db-dir", dbDir, "-o", "json", "../../advisory/testdata/written")
	if err != nil {
		t.Fatalf("db import: %v\n%s", err, stderr)
	}
	var res struct {
		Records    int `json:"records"`
		Ecosystems []struct {
			Ecosystem string `json:"ecosystem"`
			Records   int    `json:"records"`
		} `json:"ecosystems"`
		Skipped []struct {
			Origin string `json:"origin"`
		} `json:"skipped"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("db import -o json: %v\n%s", err, out)
	}
	if res.Records != 9 || len(res.Ecosystems) != 5 || len(res.Skipped) != 1 {
		t.Errorf("import result %+v, want 9 records of 5 ecosystems and 1 file skipped", res)
	}
	if !strings.Contains(stderr, "read ../../advisory/testdata/written") {
		t.Errorf("no progress on stderr: %q", stderr)
	}
	out, _, err = runCLI(t, "db", "status", "--db-dir", dbDir, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Records    int                       `json:"records"`
		Ecosystems map[string]map[string]any `json:"ecosystems"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Records != 9 || st.Ecosystems["Debian"] == nil {
		t.Errorf("db status: %v %+v\n%s", err, st, out)
	}
	if _, _, err := runCLI(t, "db", "status", "--db-dir", t.TempDir()); err == nil {
		t.Error("db status on an empty dir succeeded")
	}
	if _, _, err := runCLI(t, "db", "import", "--db-dir", dbDir, "-o", "yaml", "x"); err == nil {
		t.Error("-o yaml accepted")
	}
}

func TestDBUpdateFromMirror(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	files, _ := filepath.Glob("../../advisory/testdata/written/GHSA-*.json")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		w, _ := zw.Create(filepath.Base(f))
		w.Write(b)
	}
	zw.Close()
	zipBytes := buf.Bytes()
	var paths []string
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		if r.URL.Path != "/npm/all.zip" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, "all.zip", time.Time{}, bytes.NewReader(zipBytes))
	}))
	defer hs.Close()
	dbDir := t.TempDir()
	out, stderr, err := runCLI(t, "db", "update", "--db-dir", dbDir, "--base-url", hs.URL, "-e", "npm", "-o", "json")
	if err != nil {
		t.Fatalf("db update: %v\n%s", err, stderr)
	}
	var res struct {
		Downloads []struct {
			Ecosystem string   `json:"ecosystem"`
			Verified  []string `json:"verified"`
		} `json:"downloads"`
		Import struct {
			Records int `json:"records"`
		} `json:"import"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// The mirror sends no checksum: the size is what is verified (and
	// every zip entry's CRC when it is read).
	if len(res.Downloads) != 1 || res.Downloads[0].Verified[0] != "size" || res.Import.Records != 3 {
		t.Errorf("update result %+v", res)
	}
	if len(paths) != 1 || paths[0] != "/npm/all.zip" {
		t.Errorf("requests %v", paths)
	}
}
