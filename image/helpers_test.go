package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
)

// te is one tar entry of a test layer.
type te struct {
	name string
	typ  byte   // tar.TypeReg when 0
	body string // content of a regular file
	link string // symlink or hard link target
	mode int64
	size int64 // header size when not len(body) (lying headers)
}

var epoch = time.Unix(1700000000, 0)

// tarOf writes entries as an uncompressed tar layer.
func tarOf(t testing.TB, entries ...te) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, ModTime: epoch, Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar header %s: %v", e.name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.WriteString(tw, e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipOf(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sha(b []byte) v1.Hash {
	s := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

// memLayer is a layer held in memory; opens counts its reads.
type memLayer struct {
	stored []byte // as stored (compressed or not)
	diffID v1.Hash
}

// reads counts layer opens, per layer index.
type reads struct {
	mu sync.Mutex
	n  map[int]int
}

func (r *reads) get(i int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[i]
}

// memImage builds an Image straight from layer tars (gzip-compressed when
// gz), with correct DiffIDs, counting how often each layer is opened.
func memImage(t testing.TB, gz bool, lim Limits, layers ...[]byte) (*Image, *reads) {
	t.Helper()
	var ml []memLayer
	for _, l := range layers {
		m := memLayer{stored: l, diffID: sha(l)}
		if gz {
			m.stored = gzipOf(t, l)
		}
		ml = append(ml, m)
	}
	return memImageRaw(lim, ml...)
}

func memImageRaw(lim Limits, layers ...memLayer) (*Image, *reads) {
	rd := &reads{n: map[int]int{}}
	img := &Image{Source: "memory", Config: &v1.ConfigFile{}, limits: lim.withDefaults()}
	for i, l := range layers {
		i, l := i, l
		img.Config.RootFS.DiffIDs = append(img.Config.RootFS.DiffIDs, l.diffID)
		img.Layers = append(img.Layers, Layer{DiffID: l.diffID, Digest: sha(l.stored), Size: int64(len(l.stored)),
			open: func(context.Context) (io.ReadCloser, error) {
				rd.mu.Lock()
				rd.n[i]++
				rd.mu.Unlock()
				return io.NopCloser(bytes.NewReader(l.stored)), nil
			}})
	}
	return img, rd
}

// row is one entry of a flattened tree, for comparisons.
type row struct {
	Path  string
	Type  string
	Layer int
	Link  string
	Size  int64
}

func typeOf(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "dir"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m.IsRegular():
		return "file"
	default:
		return m.Type().String()
	}
}

func listing(t testing.TB, f *FS) []row {
	t.Helper()
	var out []row
	if err := f.Walk(func(e *Entry) error {
		out = append(out, row{Path: e.Path, Type: typeOf(e.Mode), Layer: e.Layer, Link: e.Linkname, Size: e.Size})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}
