package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// benchLayers builds a realistic image once: 5 layers, 200 MiB of files in
// all, as a distribution base and application layers look: mostly small
// text-like files (config, scripts, docs, package metadata) that compress
// about 3:1, some shared libraries and binaries that compress about 1.5:1,
// nested directories, symlinks, a dpkg status file.
var benchLayers = sync.OnceValues(func() ([][]byte, [][]byte) {
	r := rand.New(rand.NewSource(42))
	words := strings.Fields("the of and to in is for on that with as by this it be from are at or an which package version depends usr lib share doc license copyright debian python node module function return import const var")
	text := func(n int) []byte {
		var b bytes.Buffer
		for b.Len() < n {
			b.WriteString(words[r.Intn(len(words))])
			if r.Intn(12) == 0 {
				b.WriteByte('\n')
			} else {
				b.WriteByte(' ')
			}
		}
		return b.Bytes()[:n]
	}
	binary := func(n int) []byte {
		b := make([]byte, n)
		r.Read(b)
		// Half the bytes zeroed in runs: code and data sections compress some.
		for i := 0; i < n; i += 4096 {
			if r.Intn(2) == 0 {
				clear(b[i:min(i+2048, n)])
			}
		}
		return b
	}
	const perLayer = 40 << 20
	var raws, gzs [][]byte
	for li := 0; li < 5; li++ {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		size := 0
		for i := 0; size < perLayer; i++ {
			dir := fmt.Sprintf("usr/share/l%d/d%03d", li, i%300)
			var body []byte
			var name string
			if i%200 == 0 {
				body, name = binary(1<<20+r.Intn(1<<20)), fmt.Sprintf("usr/lib/x86_64-linux-gnu/lib%d_%d.so", li, i)
			} else {
				body, name = text(500+r.Intn(12000)), fmt.Sprintf("%s/f%d.txt", dir, i)
			}
			_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg, ModTime: epoch})
			_, _ = tw.Write(body)
			size += len(body)
			if i%500 == 0 {
				_ = tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("%s/link%d", dir, i), Typeflag: tar.TypeSymlink, Linkname: fmt.Sprintf("f%d.txt", i+1), ModTime: epoch})
			}
		}
		status := text(200 << 10)
		_ = tw.WriteHeader(&tar.Header{Name: "var/lib/dpkg/status", Mode: 0o644, Size: int64(len(status)), Typeflag: tar.TypeReg, ModTime: epoch})
		_, _ = tw.Write(status)
		_ = tw.Close()
		raws = append(raws, buf.Bytes())
		var z bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&z, gzip.DefaultCompression)
		_, _ = zw.Write(buf.Bytes())
		_ = zw.Close()
		gzs = append(gzs, z.Bytes())
	}
	return raws, gzs
})

// BenchmarkFlatten flattens a 5-layer, 200 MiB image held in memory (so
// the figure is the flattener's, not the disk's or the network's).
// MB/s is of uncompressed layer bytes.
//
//	go test ./image -run '^$' -bench Flatten -benchtime 5x -benchmem
func BenchmarkFlatten(b *testing.B) {
	raws, gzs := benchLayers()
	var total, stored int64
	for i := range raws {
		total += int64(len(raws[i]))
		stored += int64(len(gzs[i]))
	}
	for _, bc := range []struct {
		name   string
		gz     bool
		want   Want
		serial bool
	}{
		{"gzip", true, nil, false},
		{"gzip/serial", true, nil, true},
		{"gzip+want-status", true, func(e *Entry) bool { return e.Path == "var/lib/dpkg/status" }, false},
		{"uncompressed", false, nil, false},
		{"uncompressed/serial", false, nil, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			readAhead = !bc.serial
			defer func() { readAhead = true }()
			var layers []memLayer
			for i := range raws {
				l := memLayer{stored: raws[i], diffID: sha(raws[i])}
				if bc.gz {
					l.stored = gzs[i]
				}
				layers = append(layers, l)
			}
			img, _ := memImageRaw(Limits{}, layers...)
			b.SetBytes(total)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				f, err := img.Flatten(context.Background(), FlattenOptions{Want: bc.want, Dir: b.TempDir()})
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(f.Len()), "entries")
				f.Close()
			}
			b.ReportMetric(float64(stored)/float64(1<<20), "gzMiB")
		})
	}
}
