package remotetest

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/bulwark-sec/bulwark/image"
	"github.com/bulwark-sec/bulwark/testenv"
)

type file struct {
	name, body, link string
	typ              byte
}

func layer(t *testing.T, files ...file) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Typeflag: f.typ, Linkname: f.link, Mode: 0o644, Size: int64(len(f.body))}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		} else {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(tw, f.body)
	}
	_ = tw.Close()
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// testImage is a small Debian-like image: an os-release behind a symlink,
// a dpkg status file, and a second layer that deletes and replaces files.
func testImage(t *testing.T, arch string) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image,
		layer(t,
			file{name: "etc/os-release", typ: tar.TypeSymlink, link: "../usr/lib/os-release"},
			file{name: "usr/lib/os-release", body: "ID=debian\nVERSION_ID=\"12\"\n"},
			file{name: "var/lib/dpkg/status", body: "Package: base-files\nVersion: 12.4\n"},
			file{name: "tmp/secret", body: "x"},
		),
		layer(t,
			file{name: "tmp/.wh.secret"},
			file{name: "var/lib/dpkg/status", body: "Package: base-files\nVersion: 12.4+deb12u1\n"},
		),
	)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := img.ConfigFile()
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", arch
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

type row struct {
	Path   string
	Mode   fs.FileMode
	DiffID v1.Hash
}

// flatten opens ref, flattens it keeping dpkg's status, and returns the tree.
func flatten(t *testing.T, ref string, opts ...image.Option) ([]row, string) {
	t.Helper()
	ctx := context.Background()
	img, err := image.Open(ctx, ref, opts...)
	if err != nil {
		t.Fatalf("open %s: %v", ref, err)
	}
	defer img.Close()
	f, err := img.Flatten(ctx, image.FlattenOptions{Want: func(e *image.Entry) bool { return e.Path == "var/lib/dpkg/status" }})
	if err != nil {
		t.Fatalf("flatten %s: %v", ref, err)
	}
	defer f.Close()
	var rows []row
	_ = f.Walk(func(e *image.Entry) error {
		rows = append(rows, row{e.Path, e.Mode, e.DiffID})
		return nil
	})
	b, err := f.ReadFile("var/lib/dpkg/status")
	if err != nil {
		t.Fatal(err)
	}
	return rows, string(b)
}

// The same image gives the same tree from the registry as from a layout.
func TestRegistryMatchesLayout(t *testing.T) {
	img := testImage(t, "amd64")
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	reg := testenv.Registry(t)
	digest := reg.Push(t, reg.Ref("debianish", "12"), img)

	want, wantStatus := flatten(t, dir)
	if len(want) == 0 || !strings.Contains(wantStatus, "deb12u1") {
		t.Fatalf("layout tree %v, status %q", want, wantStatus)
	}
	for _, ref := range []string{reg.Ref("debianish", "12"), reg.Ref("debianish", digest.String()), "registry:" + reg.Ref("debianish", "12")} {
		got, status := flatten(t, ref)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: tree (-layout +registry):\n%s", ref, diff)
		}
		if status != wantStatus {
			t.Errorf("%s: status %q", ref, status)
		}
	}
}

func TestRegistryAuth(t *testing.T) {
	ctx := context.Background()
	img := testImage(t, "amd64")
	id, _ := img.ConfigName()
	emptyConfig := t.TempDir()

	t.Run("htpasswd via docker config.json", func(t *testing.T) {
		reg := testenv.Registry(t, testenv.WithRegistryHtpasswd("alice", "s3cret"))
		ref := reg.Ref("private/app", "1")
		reg.Push(t, ref, img)
		t.Setenv("DOCKER_CONFIG", emptyConfig)
		_, err := image.OpenRemote(ctx, ref)
		var terr *transport.Error
		if !errors.As(err, &terr) || terr.StatusCode != 401 {
			t.Errorf("anonymous open: %v, want 401", err)
		}
		t.Setenv("DOCKER_CONFIG", reg.DockerConfig(t, false))
		got, _ := flatten(t, ref)
		if len(got) == 0 {
			t.Error("empty tree")
		}
		img2, err := image.OpenRemote(ctx, ref)
		if err != nil || img2.ID != id {
			t.Errorf("open with config.json: %v, id %v want %s", err, img2, id)
		}
	})
	t.Run("token auth: identity token, registry token", func(t *testing.T) {
		reg := testenv.Registry(t, testenv.WithRegistryTokenAuth("bob", "builder"))
		ref := reg.Ref("tok/app", "1")
		reg.Push(t, ref, img)
		t.Setenv("DOCKER_CONFIG", reg.DockerConfig(t, true))
		flatten(t, ref)
		t.Setenv("DOCKER_CONFIG", emptyConfig)
		flatten(t, ref, image.WithAuth(&authn.Bearer{Token: reg.Token(t, "repository:tok/app:pull")}))
		if _, err := image.OpenRemote(ctx, ref, image.WithAuth(&authn.Bearer{Token: reg.Token(t, "repository:other:pull")})); err == nil {
			t.Error("a token for another repository opened the image")
		}
		if _, err := image.OpenRemote(ctx, ref, image.WithAuth(&authn.Basic{Username: "bob", Password: "wrong"})); err == nil {
			t.Error("a wrong password opened the image")
		}
	})
	t.Run("https with a private CA", func(t *testing.T) {
		reg := testenv.Registry(t, testenv.WithRegistryTLS(nil), testenv.WithRegistryHtpasswd("carol", "pw"))
		ref := reg.Ref("tls/app", "1")
		reg.Push(t, ref, img)
		flatten(t, ref, image.WithTransport(reg.Transport()), image.WithAuth(reg.Authenticator()))
	})
	t.Run("platform from an index", func(t *testing.T) {
		reg := testenv.Registry(t)
		arm := testImage(t, "arm64")
		armID, _ := arm.ConfigName()
		idx := mutate.AppendManifests(empty.Index,
			mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
			mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		)
		idx = mutate.IndexMediaType(idx, types.OCIImageIndex)
		ref := reg.Ref("multi/app", "1")
		reg.PushIndex(t, ref, idx)
		for arch, want := range map[string]v1.Hash{"arm64": armID, "amd64": id} {
			got, err := image.OpenRemote(ctx, ref, image.WithPlatform(v1.Platform{OS: "linux", Architecture: arch}))
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != want || got.Config.Architecture != arch {
				t.Errorf("%s: picked %s (%s), want %s", arch, got.ID, got.Config.Architecture, want)
			}
		}
	})
}
