package image_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bulwark-sec/bulwark/image"
)

// The inventory step opens an image, flattens it once while keeping only
// the files its extractors want, then reads them and asks which layer
// brought each one.
func Example() {
	dir, _ := os.MkdirTemp("", "example-")
	defer os.RemoveAll(dir)
	writeLayout(filepath.Join(dir, "layout")) // an OCI layout with two layers

	ctx := context.Background()
	img, err := image.Open(ctx, "oci:"+filepath.Join(dir, "layout"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer img.Close()
	fsys, err := img.Flatten(ctx, image.FlattenOptions{
		Want: func(e *image.Entry) bool { return e.Path == "etc/os-release" || e.Path == "var/lib/dpkg/status" },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer fsys.Close()

	status, _ := fsys.ReadFile("var/lib/dpkg/status")
	e, _ := fsys.Resolve("etc/os-release")
	fmt.Printf("status: %q from layer %d\n", status, mustLookup(fsys, "var/lib/dpkg/status").Layer)
	fmt.Printf("etc/os-release resolves to %s, from layer %d\n", e.Path, e.Layer)
	// Output:
	// status: "Package: zlib1g\nVersion: 1:1.2.13.dfsg-1\n" from layer 1
	// etc/os-release resolves to usr/lib/os-release, from layer 0
}

func mustLookup(f *image.FS, p string) *image.Entry {
	e, err := f.Lookup(p)
	if err != nil {
		panic(err)
	}
	return e
}

func writeLayout(dir string) {
	layer := func(files ...[3]string) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, f := range files {
			h := &tar.Header{Name: f[0], Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(f[1]))}
			if f[2] != "" {
				h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, f[2], 0
			}
			_ = tw.WriteHeader(h)
			_, _ = io.WriteString(tw, f[1])
		}
		_ = tw.Close()
		return buf.Bytes()
	}
	var adds []mutate.Addendum
	for _, b := range [][]byte{
		layer([3]string{"usr/lib/os-release", "ID=debian\n", ""}, [3]string{"etc/os-release", "", "../usr/lib/os-release"},
			[3]string{"var/lib/dpkg/status", "Package: base-files\n", ""}),
		layer([3]string{"var/lib/dpkg/status", "Package: zlib1g\nVersion: 1:1.2.13.dfsg-1\n", ""}),
	} {
		b := b
		l, _ := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
		adds = append(adds, mutate.Addendum{Layer: l})
	}
	img, _ := mutate.Append(empty.Image, adds...)
	p, _ := layout.Write(dir, empty.Index)
	_ = p.AppendImage(img)
}
