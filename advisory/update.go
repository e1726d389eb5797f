package advisory

import (
	"context"
	"crypto/md5" //nolint:gosec // verifies the server's own MD5, not a security boundary alone
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// DefaultBaseURL is where osv.dev publishes its per-ecosystem exports
// (<base>/<Ecosystem>/all.zip).
const DefaultBaseURL = "https://osv-vulnerabilities.storage.googleapis.com"

// DefaultEcosystems are downloaded when none are asked for and the index
// holds none yet: the ecosystems found in container images.
var DefaultEcosystems = []string{
	"AlmaLinux", "Alpine", "Chainguard", "Debian", "Red Hat", "Rocky Linux", "Ubuntu", "Wolfi",
	"Go", "Maven", "NuGet", "Packagist", "PyPI", "RubyGems", "crates.io", "npm",
}

// MaxDownload bounds one export. osv.dev's largest is under 1 GiB.
const MaxDownload = 4 << 30

// Errors of Update.
var (
	// ErrVerify: a download does not match the checksum or size the
	// server announced; the partial file is removed.
	ErrVerify = errors.New("advisory: download verification failed")
	// ErrDownload: the server refused or broke off a download; the
	// partial file is kept and the next update resumes it.
	ErrDownload = errors.New("advisory: download failed")
)

// UpdateConfig configures Update.
type UpdateConfig struct {
	// Dir is the database directory; downloads are kept in Dir/downloads.
	Dir string
	// BaseURL is the export location, osv.dev's or a mirror with the same
	// layout; DefaultBaseURL when empty.
	BaseURL string
	// Ecosystems to download (base names: "Debian", not "Debian:12"); when
	// empty, those the index holds, else DefaultEcosystems.
	Ecosystems []string
	// Client is the HTTP client; http.DefaultClient when nil.
	Client *http.Client
	// Progress, if set, is told about downloaded bytes (stage "download",
	// n bytes so far) and import progress.
	Progress ProgressFunc
}

// UpdateResult says what an update did.
type UpdateResult struct {
	Downloads []Download    `json:"downloads"`
	Import    *ImportResult `json:"import,omitempty"`
}

// Download is one ecosystem's export.
type Download struct {
	Ecosystem string `json:"ecosystem"`
	URL       string `json:"url"`
	Path      string `json:"path"`
	Bytes     int64  `json:"bytes"`
	SHA256    string `json:"sha256"`
	// Unchanged: the server said the copy we hold is current (304).
	Unchanged bool `json:"unchanged,omitempty"`
	// Resumed: the download went on from a partial file.
	Resumed bool `json:"resumed,omitempty"`
	// Verified names what the download was checked against: "md5",
	// "crc32c", "size" (when the server gives no checksum).
	Verified []string `json:"verified,omitempty"`
}

// state is kept next to a download to resume it and to ask whether it
// changed.
type state struct {
	URL          string `json:"url"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	Size         int64  `json:"size,omitempty"`
	MD5          string `json:"md5,omitempty"`
	CRC32C       string `json:"crc32c,omitempty"`
}

// Update downloads each ecosystem's all.zip (resuming partial downloads,
// skipping unchanged ones, verifying each against the checksums and size
// the server announces) and imports the changed ones into the index in
// one atomic step. An ecosystem that fails to download fails the update
// and leaves the index as it was.
func Update(ctx context.Context, cfg UpdateConfig) (*UpdateResult, error) {
	base := strings.TrimRight(cfg.BaseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	}
	client := cfg.Client
	if client == nil {
		client = http.DefaultClient
	}
	ecos := cfg.Ecosystems
	if len(ecos) == 0 {
		if db, err := Open(cfg.Dir); err == nil {
			for e := range db.Meta().Ecosystems {
				ecos = append(ecos, e)
			}
			db.Close()
		}
		if len(ecos) == 0 {
			ecos = DefaultEcosystems
		}
	}
	progress := cfg.Progress
	if progress == nil {
		progress = func(string, string, int) {}
	}
	res := &UpdateResult{}
	indexed := map[string]EcosystemMeta{}
	if db, err := Open(cfg.Dir); err == nil {
		indexed = db.Meta().Ecosystems
		db.Close()
	}
	var sources []Source
	for _, eco := range ecos {
		if strings.ContainsAny(eco, "/\\:") || eco == "" || eco == "." || eco == ".." {
			return nil, fmt.Errorf("advisory: bad ecosystem name %q (want a base name such as Debian)", eco)
		}
		d, err := download(ctx, client, base, cfg.Dir, eco, progress)
		if err != nil {
			return nil, err
		}
		res.Downloads = append(res.Downloads, *d)
		// An unchanged download is imported again only if the index does
		// not hold it (a new or damaged index).
		if !d.Unchanged || indexed[eco].SHA256 != d.SHA256 {
			sources = append(sources, Source{Path: d.Path, Ecosystem: eco, Name: d.URL, SHA256: d.SHA256})
		}
	}
	if len(sources) == 0 {
		return res, nil
	}
	imp, err := Import(ctx, ImportConfig{Dir: cfg.Dir, Sources: sources, Progress: cfg.Progress})
	if err != nil {
		return nil, err
	}
	res.Import = imp
	return res, nil
}

func download(ctx context.Context, client *http.Client, base, dir, eco string, progress ProgressFunc) (*Download, error) {
	u := base + "/" + url.PathEscape(eco) + "/all.zip"
	ddir := filepath.Join(dir, "downloads", eco)
	if err := os.MkdirAll(ddir, 0o750); err != nil {
		return nil, fmt.Errorf("advisory: download dir: %w", err)
	}
	final := filepath.Join(ddir, "all.zip")
	part := final + ".part"
	d := &Download{Ecosystem: eco, URL: u, Path: final}

	var have, partSt state
	readJSON(final+".json", &have)
	readJSON(part+".json", &partSt)
	var offset int64
	if fi, err := os.Stat(part); err == nil && partSt.URL == u && (partSt.ETag != "" || partSt.LastModified != "") {
		offset = fi.Size()
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrDownload, u, err)
	}
	if _, err := os.Stat(final); err == nil && have.URL == u && have.ETag != "" && offset == 0 {
		req.Header.Set("If-None-Match", have.ETag)
	}
	if offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
		if partSt.ETag != "" {
			req.Header.Set("If-Range", partSt.ETag)
		} else {
			req.Header.Set("If-Range", partSt.LastModified)
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrDownload, u, err)
	}
	defer resp.Body.Close()

	var f *os.File
	switch resp.StatusCode {
	case http.StatusNotModified:
		d.Unchanged = true
		d.Bytes, d.SHA256 = fileSize(final), have.sha256(final)
		return d, nil
	case http.StatusPartialContent:
		if offset == 0 {
			return nil, fmt.Errorf("%w: %s: unasked-for partial content", ErrDownload, u)
		}
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != offset {
			return nil, fmt.Errorf("%w: %s: bad Content-Range %q", ErrDownload, u, resp.Header.Get("Content-Range"))
		}
		f, err = os.OpenFile(part, os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrDownload, err)
		}
		d.Resumed = true
		partSt.Size = total
	case http.StatusOK:
		offset = 0
		f, err = os.Create(part)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrDownload, err)
		}
		partSt = state{URL: u, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified"), Size: resp.ContentLength}
		partSt.MD5, partSt.CRC32C = googHash(resp.Header)
		writeJSON(part+".json", partSt)
	case http.StatusRequestedRangeNotSatisfiable:
		os.Remove(part)
		os.Remove(part + ".json")
		return nil, fmt.Errorf("%w: %s: %s (partial file dropped, run again)", ErrDownload, u, resp.Status)
	default:
		return nil, fmt.Errorf("%w: %s: %s", ErrDownload, u, resp.Status)
	}
	if partSt.Size > MaxDownload {
		f.Close()
		return nil, fmt.Errorf("%w: %s: %d bytes, more than %d", ErrDownload, u, partSt.Size, MaxDownload)
	}
	n, err := copyProgress(f, io.LimitReader(resp.Body, MaxDownload-offset+1), offset, func(done int64) {
		progress("download", eco, int(done))
	})
	cerr := f.Close()
	if err != nil {
		return nil, fmt.Errorf("%w: %s after %d bytes (run again to resume): %w", ErrDownload, u, offset+n, err)
	}
	if cerr != nil {
		return nil, fmt.Errorf("%w: %w", ErrDownload, cerr)
	}

	// Verify the whole file.
	size, sums, err := checksums(part)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDownload, err)
	}
	fail := func(what string) (*Download, error) {
		os.Remove(part)
		os.Remove(part + ".json")
		return nil, fmt.Errorf("%w: %s: %s", ErrVerify, u, what)
	}
	if size > MaxDownload {
		return fail(fmt.Sprintf("more than %d bytes", MaxDownload))
	}
	if partSt.Size > 0 {
		if size != partSt.Size {
			return fail(fmt.Sprintf("%d bytes, server announced %d", size, partSt.Size))
		}
		d.Verified = append(d.Verified, "size")
	}
	if partSt.MD5 != "" {
		if partSt.MD5 != sums["md5"] {
			return fail("md5 mismatch")
		}
		d.Verified = append(d.Verified, "md5")
	}
	if partSt.CRC32C != "" {
		if partSt.CRC32C != sums["crc32c"] {
			return fail("crc32c mismatch")
		}
		d.Verified = append(d.Verified, "crc32c")
	}
	if err := os.Rename(part, final); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDownload, err)
	}
	partSt.Size = size
	writeJSON(final+".json", partSt)
	os.Remove(part + ".json")
	d.Bytes, d.SHA256 = size, sums["sha256"]
	return d, nil
}

func (s state) sha256(path string) string {
	_, sums, err := checksums(path)
	if err != nil {
		return ""
	}
	return sums["sha256"]
}

// googHash reads the X-Goog-Hash headers of Google Cloud Storage (which
// serves osv.dev's exports): "crc32c=<base64>", "md5=<base64>".
func googHash(h http.Header) (md5sum, crc string) {
	for _, v := range h.Values("X-Goog-Hash") {
		for _, part := range strings.Split(v, ",") {
			k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok {
				continue
			}
			raw, err := base64.StdEncoding.DecodeString(val)
			if err != nil {
				continue
			}
			switch k {
			case "md5":
				md5sum = hex.EncodeToString(raw)
			case "crc32c":
				crc = hex.EncodeToString(raw)
			}
		}
	}
	return md5sum, crc
}

func checksums(path string) (int64, map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	hs := map[string]hash.Hash{
		"md5":    md5.New(), //nolint:gosec // see import
		"sha256": sha256.New(),
		"crc32c": crc32.New(crc32.MakeTable(crc32.Castagnoli)),
	}
	ws := make([]io.Writer, 0, len(hs))
	for _, h := range hs {
		ws = append(ws, h)
	}
	n, err := io.Copy(io.MultiWriter(ws...), f)
	if err != nil {
		return 0, nil, err
	}
	out := map[string]string{}
	for k, h := range hs {
		out[k] = hex.EncodeToString(h.Sum(nil))
	}
	return n, out, nil
}

func copyProgress(w io.Writer, r io.Reader, offset int64, report func(int64)) (int64, error) {
	buf := make([]byte, 256<<10)
	var n int64
	last := time.Now()
	for {
		m, err := r.Read(buf)
		if m > 0 {
			if _, werr := w.Write(buf[:m]); werr != nil {
				return n, werr
			}
			n += int64(m)
			if time.Since(last) > 500*time.Millisecond {
				report(offset + n)
				last = time.Now()
			}
		}
		if err == io.EOF {
			report(offset + n)
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// parseContentRange reads "bytes START-END/TOTAL".
func parseContentRange(s string) (start, total int64, ok bool) {
	s, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(s, "/")
	if !found {
		return 0, 0, false
	}
	a, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	total, err2 := strconv.ParseInt(tot, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || total < start {
		return 0, 0, false
	}
	return start, total, true
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func readJSON(p string, v any) {
	b, err := os.ReadFile(p)
	if err != nil || len(b) > 1<<20 {
		return
	}
	_ = json.Unmarshal(b, v)
}

func writeJSON(p string, v any) {
	b, _ := json.Marshal(v)
	tmp := p + ".tmp"
	if os.WriteFile(tmp, b, 0o640) == nil {
		_ = os.Rename(tmp, p)
	}
}
