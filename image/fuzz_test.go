package image

import (
	"archive/tar"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

var updateSeeds = flag.Bool("update", false, "rewrite the fuzz seed corpus under testdata/fuzz")

var fuzzLimits = Limits{MaxEntries: 2000, MaxFileSize: 256 << 10, MaxExpandedBytes: 2 << 20, MaxRatio: 50,
	RatioFloor: 64 << 10, MaxExtractBytes: 1 << 20, MaxLayers: 8}

// checkTree walks a flattened tree and checks the invariants every tree
// keeps, whatever the input: clean relative paths, resolvable or refused
// symlinks, readable extracted files.
func checkTree(t *testing.T, f *FS) {
	err := f.Walk(func(e *Entry) error {
		if e.Path == "" || path.Clean(e.Path) != e.Path || strings.HasPrefix(e.Path, "/") || e.Path == ".." || strings.HasPrefix(e.Path, "../") {
			t.Fatalf("unclean path %q", e.Path)
		}
		if _, err := f.Resolve(e.Path); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, ErrSymlinkLoop) {
			t.Fatalf("resolve %q: %v", e.Path, err)
		}
		if e.Mode.IsRegular() && fs.ValidPath(e.Path) {
			if b, err := f.ReadFile(e.Path); err == nil && int64(len(b)) != e.Size {
				t.Fatalf("%s: read %d bytes, header says %d", e.Path, len(b), e.Size)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func fuzzSeedLayers(t testing.TB) [][]byte {
	seeds := threeLayers(t)
	seeds = append(seeds, gzipOf(t, seeds[0]),
		tarOf(t, te{name: "a", typ: tar.TypeSymlink, link: "b"}, te{name: "b", typ: tar.TypeSymlink, link: "a/c"}, te{name: "a/x", body: "loop"}),
		tarOf(t, te{name: "d/.wh..wh..opq"}, te{name: "d/f", body: "f"}, te{name: "h", typ: tar.TypeLink, link: "d/f"}),
		tarOf(t, te{name: "../escape", body: "x"}),
	)
	return seeds
}

// FuzzFlattenLayer feeds arbitrary bytes as one layer (raw, gzip or zstd
// by their magic) to the flattener: it must refuse or succeed, never panic,
// and keep the tree's invariants.
func FuzzFlattenLayer(f *testing.F) {
	for _, s := range fuzzSeedLayers(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				panic("flatten hung:\n" + string(buf[:n]))
			}
		}()
		img, _ := memImageRaw(fuzzLimits, memLayer{stored: data})
		fsys, err := img.Flatten(context.Background(), FlattenOptions{Want: func(e *Entry) bool { return e.Size < 4096 }})
		if err != nil {
			return
		}
		defer fsys.Close()
		checkTree(t, fsys)
	})
}

// FuzzOpenArchive feeds arbitrary bytes as an image archive (docker save or
// OCI layout in a tar): open, then flatten, within the limits.
func FuzzOpenArchive(f *testing.F) {
	dir := f.TempDir()
	img := ggcrImage(f, "amd64")
	p := filepath.Join(dir, "seed.tar")
	writeUncompressedDockerArchive(f, p, img)
	if b, err := os.ReadFile(p); err == nil {
		f.Add(b)
	}
	f.Add([]byte("not an archive"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "a.tar")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		img, err := OpenArchive(context.Background(), p, WithLimits(fuzzLimits))
		if err != nil {
			return
		}
		defer img.Close()
		fsys, err := img.Flatten(context.Background(), FlattenOptions{})
		if err != nil {
			return
		}
		defer fsys.Close()
		checkTree(t, fsys)
	})
}

// TestWriteFuzzSeeds keeps the seed corpus under testdata/fuzz in step with
// the seeds above: go test ./image -run WriteFuzzSeeds -update.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*updateSeeds {
		t.Skip("run with -update to rewrite testdata/fuzz")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzFlattenLayer")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range fuzzSeedLayers(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir = filepath.Join("testdata", "fuzz", "FuzzOpenArchive")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "seed.tar")
	writeUncompressedDockerArchive(t, p, ggcrImage(t, "amd64"))
	b, _ := os.ReadFile(p)
	for name, s := range map[string][]byte{"seed-docker": b, "seed-junk": []byte("not an archive")} {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
