package advisory

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/md5" //nolint:gosec // the server's checksum, as GCS sends it
	"encoding/base64"
	"errors"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// zipFolder builds an osv.dev-style all.zip from a folder of real records.
func zipFolder(t testing.TB, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		w, _ := zw.Create(e.Name())
		w.Write(b)
	}
	zw.Close()
	return buf.Bytes()
}

// osvServer serves <eco>/all.zip like Google Cloud Storage does for
// osv.dev: ETag, Range and If-None-Match through http.ServeContent, and
// X-Goog-Hash with the object's crc32c and md5.
type osvServer struct {
	mu       sync.Mutex
	zips     map[string][]byte
	cutFirst bool // break off the first full download half-way
	badMD5   bool
	ranges   []string
}

func (s *osvServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	eco := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/all.zip")
	body, ok := s.zips[eco]
	cut := s.cutFirst && r.Header.Get("Range") == ""
	if cut {
		s.cutFirst = false
	}
	if rg := r.Header.Get("Range"); rg != "" {
		s.ranges = append(s.ranges, rg)
	}
	bad := s.badMD5
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	sum := md5.Sum(body) //nolint:gosec
	if bad {
		sum[0] ^= 0xff
	}
	crc := crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli))
	crcb := []byte{byte(crc >> 24), byte(crc >> 16), byte(crc >> 8), byte(crc)}
	w.Header().Add("X-Goog-Hash", "crc32c="+base64.StdEncoding.EncodeToString(crcb))
	w.Header().Add("X-Goog-Hash", "md5="+base64.StdEncoding.EncodeToString(sum[:]))
	w.Header().Set("ETag", `"`+base64.RawURLEncoding.EncodeToString(sum[:8])+`"`)
	if cut {
		w.Header().Set("Content-Length", itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the connection drops
	}
	http.ServeContent(w, r, "all.zip", time.Unix(1700000000, 0), bytes.NewReader(body))
}

func itoa(n int) string {
	var b []byte
	for n > 0 || len(b) == 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

// TestUpdate downloads REAL records (Go and crates.io from
// ../shared/vulndb, zipped in the test) from a local server.
func TestUpdate(t *testing.T) {
	src := vulndbDir(t)
	srv := &osvServer{zips: map[string][]byte{
		"Go":        zipFolder(t, filepath.Join(src, "Go")),
		"crates.io": zipFolder(t, filepath.Join(src, "crates.io")),
	}}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	dir := t.TempDir()
	ctx := context.Background()
	cfg := UpdateConfig{Dir: dir, BaseURL: hs.URL, Ecosystems: []string{"Go", "crates.io"}, Client: hs.Client()}

	// 1. The first download of Go breaks off half-way: the update fails and
	// leaves no index.
	srv.cutFirst = true
	if _, err := Update(ctx, cfg); !errors.Is(err, ErrDownload) {
		t.Fatalf("broken download: %v, want ErrDownload", err)
	}
	if _, err := Open(dir); !errors.Is(err, ErrNoIndex) {
		t.Fatalf("index after failed update: %v, want none", err)
	}

	// 2. The next update resumes it with a Range request and verifies it.
	res, err := Update(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(srv.ranges) != 1 || !strings.HasPrefix(srv.ranges[0], "bytes=") {
		t.Errorf("range requests %v, want one resume", srv.ranges)
	}
	got := map[string]Download{}
	for _, d := range res.Downloads {
		got[d.Ecosystem] = d
	}
	if d := got["Go"]; !d.Resumed || strings.Join(d.Verified, ",") != "size,md5,crc32c" || d.Bytes != int64(len(srv.zips["Go"])) {
		t.Errorf("Go download %+v, want resumed and verified by size, md5, crc32c", d)
	}
	if res.Import == nil || res.Import.Records != 4789+1206 {
		t.Fatalf("import %+v, want 5995 records", res.Import)
	}
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := db.Query(Package{Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.5"})
	db.Close()
	if err != nil || len(ms) != 4 {
		t.Errorf("x/text v0.3.5 after update: %d matches, %v; want 4", len(ms), err)
	}

	// 3. Nothing changed: both are 304, nothing is imported.
	res, err = Update(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Import != nil || !res.Downloads[0].Unchanged || !res.Downloads[1].Unchanged {
		t.Errorf("unchanged update: %+v", res)
	}

	// 4. crates.io changes upstream but arrives damaged (wrong md5): the
	// update fails and the index stays as it was.
	before, _ := os.ReadFile(IndexPath(dir))
	srv.mu.Lock()
	srv.zips["crates.io"] = zipFolder(t, "testdata/written")
	srv.badMD5 = true
	srv.mu.Unlock()
	if _, err := Update(ctx, cfg); !errors.Is(err, ErrVerify) {
		t.Fatalf("damaged download: %v, want ErrVerify", err)
	}
	after, _ := os.ReadFile(IndexPath(dir))
	if !bytes.Equal(before, after) {
		t.Error("index changed by a failed update")
	}

	// 5. An ecosystem the server does not have fails clearly.
	cfg.Ecosystems = []string{"Nope"}
	if _, err := Update(ctx, cfg); !errors.Is(err, ErrDownload) {
		t.Errorf("missing ecosystem: %v, want ErrDownload", err)
	}
	cfg.Ecosystems = []string{"../etc"}
	if _, err := Update(ctx, cfg); err == nil {
		t.Error("ecosystem name with a path separator accepted")
	}
	_ = io.EOF
}
