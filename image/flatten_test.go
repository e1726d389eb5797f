package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"
)

// threeLayers is a small image whose later layers replace, hide and add
// files the ways real images do (merged /usr, whiteouts, opaque dirs, hard
// links, writes through a symlinked directory).
func threeLayers(t testing.TB) [][]byte {
	base := tarOf(t,
		te{name: "./", typ: tar.TypeDir},
		te{name: "./etc/", typ: tar.TypeDir},
		te{name: "./etc/os-release", typ: tar.TypeSymlink, link: "../usr/lib/os-release"},
		te{name: "./etc/localtime", typ: tar.TypeSymlink, link: "/usr/share/zoneinfo/UTC"},
		te{name: "./usr/lib/os-release", body: "ID=debian\nVERSION_ID=\"12\"\n"},
		te{name: "./usr/lib/libold.so", body: "old"},
		te{name: "./usr/bin/sh", body: "#!sh", mode: 0o755},
		te{name: "./usr/share/zoneinfo/UTC", body: "TZif"},
		te{name: "./bin", typ: tar.TypeSymlink, link: "usr/bin"},
		te{name: "./lib", typ: tar.TypeSymlink, link: "usr/lib"},
		te{name: "./opt/app/a", body: "a"},
		te{name: "./opt/app/sub/b", body: "b"},
		te{name: "./var/lib/dpkg/status", body: "Package: base-files\n"},
	)
	second := tarOf(t,
		te{name: "usr/lib/.wh.libold.so"},
		te{name: "opt/app/c", body: "c"},
		te{name: "opt/app/.wh..wh..opq"},
		te{name: "bin/newtool", body: "new", mode: 0o755}, // lands in usr/bin through the symlink
		te{name: "usr/bin/sh2", typ: tar.TypeLink, link: "usr/bin/sh"},
		te{name: "usr/lib/os-release", body: "ID=debian\nVERSION_ID=\"12.1\"\n"},
	)
	third := tarOf(t,
		te{name: "var/.wh.lib"},
		te{name: "/var/log/x", body: "x"},
		te{name: "usr/bin/.wh.sh"}, // the hard link sh2 keeps its content
	)
	return [][]byte{base, second, third}
}

func TestFlattenLayers(t *testing.T) {
	for _, gz := range []bool{false, true} {
		img, _ := memImage(t, gz, Limits{}, threeLayers(t)...)
		f, err := img.Flatten(context.Background(), FlattenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		want := []row{
			{Path: "bin", Type: "symlink", Layer: 0, Link: "usr/bin"},
			{Path: "etc", Type: "dir", Layer: 0},
			{Path: "etc/localtime", Type: "symlink", Layer: 0, Link: "/usr/share/zoneinfo/UTC"},
			{Path: "etc/os-release", Type: "symlink", Layer: 0, Link: "../usr/lib/os-release"},
			{Path: "lib", Type: "symlink", Layer: 0, Link: "usr/lib"},
			{Path: "opt", Type: "dir", Layer: 0},
			{Path: "opt/app", Type: "dir", Layer: 0},
			{Path: "opt/app/c", Type: "file", Layer: 1, Size: 1},
			{Path: "usr", Type: "dir", Layer: 0},
			{Path: "usr/bin", Type: "dir", Layer: 0},
			{Path: "usr/bin/newtool", Type: "file", Layer: 1, Size: 3},
			{Path: "usr/bin/sh2", Type: "file", Layer: 1, Link: "usr/bin/sh", Size: 4},
			{Path: "usr/lib", Type: "dir", Layer: 0},
			{Path: "usr/lib/os-release", Type: "file", Layer: 1, Size: 28},
			{Path: "usr/share", Type: "dir", Layer: 0},
			{Path: "usr/share/zoneinfo", Type: "dir", Layer: 0},
			{Path: "usr/share/zoneinfo/UTC", Type: "file", Layer: 0, Size: 4},
			{Path: "var", Type: "dir", Layer: 0},
			{Path: "var/log", Type: "dir", Layer: 2},
			{Path: "var/log/x", Type: "file", Layer: 2, Size: 1},
		}
		if diff := cmp.Diff(want, listing(t, f)); diff != "" {
			t.Errorf("gzip=%v: flattened tree (-want +got):\n%s", gz, diff)
		}
		// Symlinks resolve inside the image root; absolute targets from the root.
		for p, wantPath := range map[string]string{
			"etc/os-release":      "usr/lib/os-release",
			"etc/localtime":       "usr/share/zoneinfo/UTC",
			"lib/os-release":      "usr/lib/os-release",
			"bin/newtool":         "usr/bin/newtool",
			"etc/../lib/../bin/.": "usr/bin",
		} {
			e, err := f.Resolve(p)
			if err != nil || e.Path != wantPath {
				t.Errorf("Resolve(%s) = %v, %v; want %s", p, e, err, wantPath)
			}
		}
		if e, _ := f.Resolve("usr/bin/newtool"); e.DiffID != img.Layers[1].DiffID {
			t.Errorf("newtool DiffID %s, want layer 1's %s", e.DiffID, img.Layers[1].DiffID)
		}
		// Reading content: not extracted during the pass, so read again now.
		b, err := fs.ReadFile(f, "etc/os-release")
		if err != nil || string(b) != "ID=debian\nVERSION_ID=\"12.1\"\n" {
			t.Errorf("read etc/os-release = %q, %v", b, err)
		}
		if b, err := fs.ReadFile(f, "usr/bin/sh2"); err != nil || string(b) != "#!sh" {
			t.Errorf("read hard link = %q, %v", b, err)
		}
	}
}

func TestWantReadsEachLayerOnce(t *testing.T) {
	img, rd := memImage(t, true, Limits{}, threeLayers(t)...)
	var asked []string
	f, err := img.Flatten(context.Background(), FlattenOptions{Want: func(e *Entry) bool {
		asked = append(asked, e.Path)
		return e.Path == "etc/os-release" || e.Path == "var/lib/dpkg/status" || e.Path == "usr/bin/newtool"
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// etc/os-release is a symlink met in layer 0 to a file replaced in layer
	// 1: layer 1 is read a second time, up to that file; layer 0 and 2 once.
	if got := []int{rd.get(0), rd.get(1), rd.get(2)}; !cmp.Equal(got, []int{1, 2, 1}) {
		t.Errorf("layer opens = %v, want [1 2 1]", got)
	}
	if !strings.Contains(strings.Join(asked, " "), "opt/app/sub/b") {
		t.Errorf("Want not asked about every file: %v", asked)
	}
	for p, want := range map[string]string{"etc/os-release": "ID=debian\nVERSION_ID=\"12.1\"\n", "usr/bin/newtool": "new"} {
		if b, err := fs.ReadFile(f, p); err != nil || string(b) != want {
			t.Errorf("read %s = %q, %v", p, b, err)
		}
	}
	if got := []int{rd.get(0), rd.get(1), rd.get(2)}; !cmp.Equal(got, []int{1, 2, 1}) {
		t.Errorf("layer opens after reading wanted files = %v, want [1 2 1]", got)
	}
	// A whited-out file is gone, though it was extracted.
	if _, err := f.Open("var/lib/dpkg/status"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("open whited-out file: %v", err)
	}
	// Extract of two files in layer 0 reads layer 0 once more.
	if err := f.Extract(context.Background(), "usr/share/zoneinfo/UTC", "etc/localtime", "usr/bin/sh2"); err != nil {
		t.Fatal(err)
	}
	if rd.get(0) != 2 {
		t.Errorf("layer 0 opens = %d, want 2", rd.get(0))
	}
}

func TestFSConformance(t *testing.T) {
	img, _ := memImage(t, true, Limits{}, threeLayers(t)...)
	f, err := img.Flatten(context.Background(), FlattenOptions{Want: func(*Entry) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := fstest.TestFS(f, "etc/os-release", "usr/bin/newtool", "usr/bin/sh2", "opt/app/c", "var/log/x"); err != nil {
		t.Fatal(err)
	}
}

func zeros(n int) []byte { return make([]byte, n) }

func TestFlattenHostile(t *testing.T) {
	big := strings.Repeat("A", 2<<20)
	bombLim := Limits{MaxFileSize: 1 << 30, MaxExpandedBytes: 8 << 20, RatioFloor: 4 << 20, MaxRatio: 100}
	bombLim2 := Limits{MaxFileSize: 1 << 30, MaxExpandedBytes: 8 << 20, RatioFloor: 64 << 20}
	truncated := tarOf(t, te{name: "etc/passwd", body: strings.Repeat("r", 600)})[:512+300]
	small := Limits{MaxFileSize: 1 << 20, MaxEntries: 50, MaxExpandedBytes: 8 << 20, RatioFloor: 4 << 20, MaxRatio: 100, MaxLayers: 4}
	manyEntries := make([]te, 60)
	for i := range manyEntries {
		manyEntries[i] = te{name: "f/" + strings.Repeat("x", i+1)}
	}
	// A gzip bomb: 64 MiB of zeros in a file, about 64 KiB compressed.
	var bomb bytes.Buffer
	{
		tw := tar.NewWriter(&bomb)
		_ = tw.WriteHeader(&tar.Header{Name: "zero", Size: 64 << 20, Mode: 0o644, Typeflag: tar.TypeReg})
		_, _ = tw.Write(zeros(64 << 20))
		_ = tw.Close()
	}
	zstdBomb := func() []byte {
		var buf bytes.Buffer
		zw, _ := zstd.NewWriter(&buf)
		_, _ = zw.Write(bomb.Bytes())
		_ = zw.Close()
		return buf.Bytes()
	}()
	good := tarOf(t, te{name: "etc/passwd", body: "root:x:0:0"})

	tests := []struct {
		name   string
		layers []memLayer
		lim    Limits
		want   error
	}{
		{"dot-dot in name", []memLayer{raw(t, tarOf(t, te{name: "../../etc/passwd", body: "x"}))}, Limits{}, ErrPathTraversal},
		{"dot-dot after a dir", []memLayer{raw(t, tarOf(t, te{name: "usr/../../x", body: "x"}))}, Limits{}, ErrPathTraversal},
		{"relative symlink out of the root", []memLayer{raw(t, tarOf(t, te{name: "a/b", typ: tar.TypeSymlink, link: "../../../etc/shadow"}))}, Limits{}, ErrSymlinkEscape},
		{"hard link out of the tree", []memLayer{raw(t, tarOf(t, te{name: "a", typ: tar.TypeLink, link: "../../etc/passwd"}))}, Limits{}, ErrHardlinkTarget},
		{"hard link to a missing file", []memLayer{raw(t, tarOf(t, te{name: "a", typ: tar.TypeLink, link: "etc/shadow"}))}, Limits{}, ErrHardlinkTarget},
		{"hard link to a directory", []memLayer{raw(t, tarOf(t, te{name: "d/", typ: tar.TypeDir}, te{name: "a", typ: tar.TypeLink, link: "d"}))}, Limits{}, ErrHardlinkTarget},
		{"whiteout of dot-dot", []memLayer{raw(t, tarOf(t, te{name: "a/.wh..."}))}, Limits{}, ErrPathTraversal},
		{"file over the size limit", []memLayer{raw(t, tarOf(t, te{name: "big", body: big}))}, small, ErrFileTooLarge},
		{"too many entries", []memLayer{raw(t, tarOf(t, manyEntries...))}, small, ErrTooManyEntries},
		{"gzip bomb", []memLayer{{stored: gzipOf(t, bomb.Bytes()), diffID: sha(bomb.Bytes())}}, bombLim, ErrCompressionRatio},
		{"zstd bomb", []memLayer{{stored: zstdBomb, diffID: sha(bomb.Bytes())}}, bombLim, ErrCompressionRatio},
		{"expanded total over the limit", []memLayer{raw(t, bomb.Bytes())}, bombLim2, ErrExpandedTooLarge},
		{"truncated gzip", []memLayer{{stored: gzipOf(t, good)[:40], diffID: sha(good)}}, Limits{}, ErrCorrupt},
		{"garbage", []memLayer{{stored: []byte("this is not a tar archive, not at all, but long enough to look at ..." + strings.Repeat("?", 600)), diffID: sha(good)}}, Limits{}, ErrCorrupt},
		{"diff_id mismatch", []memLayer{{stored: good, diffID: sha([]byte("other"))}}, Limits{}, ErrDigestMismatch},
		{"file shorter than its header", []memLayer{raw(t, truncated)}, Limits{}, ErrCorrupt},
		{"too many layers", []memLayer{raw(t, good), raw(t, good), raw(t, good), raw(t, good), raw(t, good)}, Limits{MaxLayers: 4}, ErrTooManyLayers},
		{"path too long", []memLayer{raw(t, tarOf(t, te{name: strings.Repeat("a/", 3000) + "x", body: "x"}))}, Limits{}, ErrPathTooLong},
		{"xz layer", []memLayer{{stored: append([]byte{0xfd, '7', 'z', 'X', 'Z', 0}, zeros(100)...), diffID: sha(good)}}, Limits{}, ErrUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img, _ := memImageRaw(tc.lim, tc.layers...)
			f, err := flattenChecked(img)
			if err == nil {
				f.Close()
				t.Fatalf("flatten succeeded, want %v", tc.want)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			t.Logf("refused: %v", err)
		})
	}
}

// flattenChecked applies the layer-count limit as Open does, then flattens.
func flattenChecked(img *Image) (*FS, error) {
	if len(img.Layers) > img.limits.MaxLayers {
		return nil, ErrTooManyLayers
	}
	return img.Flatten(context.Background(), FlattenOptions{Want: func(*Entry) bool { return true }})
}

func raw(t testing.TB, b []byte) memLayer { return memLayer{stored: b, diffID: sha(b)} }

func TestSymlinkLoopAndExtractLimit(t *testing.T) {
	layer := tarOf(t,
		te{name: "a", typ: tar.TypeSymlink, link: "b"},
		te{name: "b", typ: tar.TypeSymlink, link: "/a"},
		te{name: "up", typ: tar.TypeSymlink, link: "/../../../../etc/passwd"},
		te{name: "etc/passwd", body: "root:x:0:0\n"},
		te{name: "big1", body: strings.Repeat("x", 600)},
		te{name: "big2", body: strings.Repeat("y", 600)},
	)
	img, _ := memImage(t, false, Limits{}, layer)
	f, err := img.Flatten(context.Background(), FlattenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Open("a"); !errors.Is(err, ErrSymlinkLoop) {
		t.Errorf("open a symlink loop: %v, want ErrSymlinkLoop", err)
	}
	// An absolute target climbing above "/" stays at the image root.
	if b, err := fs.ReadFile(f, "up"); err != nil || string(b) != "root:x:0:0\n" {
		t.Errorf("read up = %q, %v", b, err)
	}

	img2, _ := memImage(t, false, Limits{MaxExtractBytes: 1000}, layer)
	_, err = img2.Flatten(context.Background(), FlattenOptions{Want: func(e *Entry) bool { return strings.HasPrefix(e.Path, "big") }})
	if !errors.Is(err, ErrExtractTooLarge) {
		t.Errorf("extracting over the disk limit: %v, want ErrExtractTooLarge", err)
	}
}

func TestFlattenCancel(t *testing.T) {
	img, _ := memImage(t, true, Limits{}, threeLayers(t)...)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := img.Flatten(ctx, FlattenOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("flatten with a cancelled context: %v", err)
	}
}

func TestLayerChangedBetweenReads(t *testing.T) {
	first := tarOf(t, te{name: "etc/os-release", body: "ID=debian\n"})
	second := tarOf(t, te{name: "etc/os-release", body: "ID=debian-but-longer\n"})
	n := 0
	img, _ := memImageRaw(Limits{}, raw(t, first))
	img.Layers[0].open = func(context.Context) (io.ReadCloser, error) {
		n++
		if n > 1 {
			return io.NopCloser(bytes.NewReader(second)), nil
		}
		return io.NopCloser(bytes.NewReader(first)), nil
	}
	f, err := img.Flatten(context.Background(), FlattenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Open("etc/os-release"); !errors.Is(err, ErrLayerChanged) {
		t.Errorf("open after the layer changed: %v, want ErrLayerChanged", err)
	}
}

// Writes through a symlinked directory land inside the image root, even
// when the link is absolute and climbs above "/".
func TestWritesThroughSymlinksStayInside(t *testing.T) {
	img, _ := memImage(t, false, Limits{},
		tarOf(t, te{name: "evil", typ: tar.TypeSymlink, link: "/../../../../host"}, te{name: "host/", typ: tar.TypeDir}),
		tarOf(t, te{name: "evil/passwd", body: "pwned"}),
	)
	f, err := img.Flatten(context.Background(), FlattenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := []row{
		{Path: "evil", Type: "symlink", Link: "/../../../../host"},
		{Path: "host", Type: "dir"},
		{Path: "host/passwd", Type: "file", Layer: 1, Size: 5},
	}
	if diff := cmp.Diff(want, listing(t, f)); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
}
