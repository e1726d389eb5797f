package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// ggcrImage assembles threeLayers into a real image with go-containerregistry.
func ggcrImage(t testing.TB, arch string) v1.Image {
	t.Helper()
	img := empty.Image
	var adds []mutate.Addendum
	for i, b := range threeLayers(t) {
		b := b
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
		if err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.Addendum{Layer: l, History: v1.History{CreatedBy: fmt.Sprintf("RUN step %d", i)}})
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", arch
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// wantListing is the flattened tree of threeLayers, from the in-memory image.
func wantListing(t *testing.T) []row {
	img, _ := memImage(t, true, Limits{}, threeLayers(t)...)
	f, err := img.Flatten(context.Background(), FlattenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return listing(t, f)
}

// writeUncompressedDockerArchive writes docker save's classic format by hand:
// manifest.json, the config, and uncompressed layer tars.
func writeUncompressedDockerArchive(t testing.TB, path string, img v1.Image) {
	t.Helper()
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	tw := tar.NewWriter(out)
	add := func(name string, b []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Size: int64(len(b)), Mode: 0o644, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write(b)
	}
	rawCfg, _ := img.RawConfigFile()
	id, _ := img.ConfigName()
	add(id.Hex+".json", rawCfg)
	layers, _ := img.Layers()
	var paths []string
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		p := fmt.Sprintf("%d/layer.tar", i)
		add(p, b)
		paths = append(paths, p)
	}
	m, _ := json.Marshal(tarball.Manifest{{Config: id.Hex + ".json", RepoTags: []string{"app:1"}, Layers: paths}})
	add("manifest.json", m)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// tarDir writes the files under dir into a tar (an OCI archive of a layout).
func tarDir(t *testing.T, dir, path string) {
	t.Helper()
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	tw := tar.NewWriter(out)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if err := tw.WriteHeader(&tar.Header{Name: filepath.ToSlash(rel), Size: int64(len(b)), Mode: 0o644, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenSources(t *testing.T) {
	ctx := context.Background()
	img := ggcrImage(t, "amd64")
	id, _ := img.ConfigName()
	digest, _ := img.Digest()
	cfg, _ := img.ConfigFile()
	dir := t.TempDir()

	layoutDir := filepath.Join(dir, "layout")
	p, err := layout.Write(layoutDir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{refNameAnnotation: "v1"})); err != nil {
		t.Fatal(err)
	}
	dockerGz := filepath.Join(dir, "docker-gz.tar")
	tag, _ := name.NewTag("example.com/app:1")
	if err := tarball.WriteToFile(dockerGz, tag, img); err != nil {
		t.Fatal(err)
	}
	dockerRaw := filepath.Join(dir, "docker-raw.tar")
	writeUncompressedDockerArchive(t, dockerRaw, img)
	ociArchive := filepath.Join(dir, "oci.tar")
	tarDir(t, layoutDir, ociArchive)

	want := wantListing(t)
	for _, tc := range []struct {
		ref        string
		source     Source
		wantDigest bool
	}{
		{layoutDir, SourceLayout, true},
		{"oci:" + layoutDir + ":v1", SourceLayout, true},
		{dockerGz, SourceArchive, false},
		{"docker-archive:" + dockerRaw, SourceArchive, false},
		{ociArchive, SourceOCIArchve, true},
	} {
		t.Run(string(tc.source)+"/"+filepath.Base(tc.ref), func(t *testing.T) {
			got, err := Open(ctx, tc.ref)
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			if got.Source != tc.source || got.ID != id {
				t.Errorf("source %s id %s, want %s %s", got.Source, got.ID, tc.source, id)
			}
			if tc.wantDigest && got.Digest != digest {
				t.Errorf("digest %s, want %s", got.Digest, digest)
			}
			var diffIDs []v1.Hash
			for _, l := range got.Layers {
				diffIDs = append(diffIDs, l.DiffID)
			}
			if diff := cmp.Diff(cfg.RootFS.DiffIDs, diffIDs); diff != "" {
				t.Errorf("diff_ids (-want +got):\n%s", diff)
			}
			if got.Layers[2].CreatedBy != "RUN step 2" {
				t.Errorf("layer 2 created by %q", got.Layers[2].CreatedBy)
			}
			f, err := got.Flatten(ctx, FlattenOptions{Want: func(e *Entry) bool { return e.Path == "etc/os-release" }})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if diff := cmp.Diff(want, listing(t, f)); diff != "" {
				t.Errorf("flattened tree (-want +got):\n%s", diff)
			}
			if b, err := fs.ReadFile(f, "etc/os-release"); err != nil || !strings.Contains(string(b), "12.1") {
				t.Errorf("etc/os-release = %q, %v", b, err)
			}
		})
	}
}

func TestOpenArchiveHostile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, files map[string]string) string {
		p := filepath.Join(dir, name)
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for n, b := range files {
			_ = tw.WriteHeader(&tar.Header{Name: n, Size: int64(len(b)), Mode: 0o644, Typeflag: tar.TypeReg})
			_, _ = tw.Write([]byte(b))
		}
		_ = tw.Close()
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name string
		path string
		want error
	}{
		{"not a tar", func() string {
			p := filepath.Join(dir, "junk")
			_ = os.WriteFile(p, bytes.Repeat([]byte{1}, 2000), 0o644)
			return p
		}(), ErrCorrupt},
		{"no manifest", write("empty.tar", map[string]string{"x": "y"}), ErrUnsupported},
		{"bad manifest json", write("badjson.tar", map[string]string{"manifest.json": "[{"}), ErrCorrupt},
		{"two images", write("two.tar", map[string]string{"manifest.json": `[{"Config":"a"},{"Config":"b"}]`}), ErrAmbiguous},
		{"missing config", write("nocfg.tar", map[string]string{"manifest.json": `[{"Config":"c.json","Layers":[]}]`}), ErrCorrupt},
		{"huge manifest", write("huge.tar", map[string]string{"manifest.json": strings.Repeat(" ", 9<<20)}), ErrMetadataTooLarge},
		{"config digest mismatch in OCI archive", write("oci-bad.tar", map[string]string{
			"index.json": `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":2}]}`,
			"blobs/sha256/" + strings.Repeat("a", 64): "{}",
		}), ErrDigestMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err := OpenArchive(context.Background(), tc.path)
			if err == nil {
				img.Close()
				t.Fatalf("opened, want %v", tc.want)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

type failRoundTripper struct{ t *testing.T }

func (f failRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	f.t.Errorf("request to %s went through the guard", r.URL)
	return nil, errors.New("unexpected")
}

type okRoundTripper struct{}

func (okRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
}

func TestSchemeGuard(t *testing.T) {
	// No request leaves the process: the guard decides before any dial.
	refuse := &schemeGuard{next: failRoundTripper{t}}
	for _, u := range []string{"http://10.1.2.3:5000/v2/", "http://registry.example.com/v2/", "http://192.168.1.10/v2/"} {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if _, err := refuse.RoundTrip(req); !errors.Is(err, ErrInsecureRegistry) {
			t.Errorf("%s: %v, want ErrInsecureRegistry", u, err)
		}
	}
	allow := &schemeGuard{next: okRoundTripper{}}
	for _, u := range []string{"http://127.0.0.1:5000/v2/", "http://localhost:5000/v2/", "http://[::1]:5000/v2/", "https://registry.example.com/v2/"} {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if _, err := allow.RoundTrip(req); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	insecure := &schemeGuard{next: okRoundTripper{}, insecure: true}
	req, _ := http.NewRequest(http.MethodGet, "http://registry.example.com/v2/", nil)
	if _, err := insecure.RoundTrip(req); err != nil {
		t.Errorf("insecure: %v", err)
	}
}

func TestOpenLayoutChoosesByTag(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]v1.Hash{}
	for tag, arch := range map[string]string{"v1": "amd64", "v2": "arm64"} {
		img := ggcrImage(t, arch)
		ids[tag], _ = img.ConfigName()
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{refNameAnnotation: tag})); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Open(ctx, dir); !errors.Is(err, ErrAmbiguous) {
		t.Errorf("open a layout of two images without a tag: %v, want ErrAmbiguous", err)
	}
	if _, err := Open(ctx, "oci:"+dir+":v3"); !errors.Is(err, ErrNoMatchingImage) {
		t.Errorf("open an absent tag: %v, want ErrNoMatchingImage", err)
	}
	got, err := Open(ctx, "oci:"+dir+":v2")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != ids["v2"] {
		t.Errorf("oci:dir:v2 opened %s, want %s", got.ID, ids["v2"])
	}
}
