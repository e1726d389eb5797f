package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Entry is one file of the flattened image, as the topmost layer that has
// it left it.
type Entry struct {
	Path     string      // slash-separated, relative to the image root, cleaned ("usr/bin/ls")
	Mode     fs.FileMode // type bits and permissions
	Size     int64       // bytes of a regular file
	Linkname string      // a symlink's target as stored; for a hard link, the path it links to
	UID, GID int
	ModTime  time.Time
	Layer    int     // index in Image.Layers of the layer that put this file here
	DiffID   v1.Hash // that layer's DiffID

	data dataRef // where a regular file's bytes are in the layer streams
}

// dataRef locates a regular file's bytes: the entry number in a layer.
type dataRef struct{ layer, ordinal int }

// Want is asked about every file (not directory) met while flattening, in
// layer order; returning true copies a regular file's content to the
// extraction directory as it streams past, so it can be read from the FS
// later without reading the layer again. For a symlink or hard link, true
// asks for the content of what it resolves to in the final view.
type Want func(e *Entry) bool

// FlattenOptions configure Flatten.
type FlattenOptions struct {
	Want Want   // which file contents to keep (none when nil)
	Dir  string // where to keep them (a new temporary directory when empty; removed by Close either way)
}

type node struct {
	e        Entry
	parent   *node
	children map[string]*node // directories only
	touched  int              // last layer with an entry at or below this node
}

func (n *node) isDir() bool { return n.e.Mode.IsDir() }

// FS is the flattened file tree of an image: every file's metadata and the
// layer that introduced it, in memory; the contents of the files asked for,
// on disk. It implements fs.FS, fs.ReadDirFS, fs.StatFS and fs.ReadLinkFS
// with symlinks resolved inside the image root only. It is safe for
// concurrent use after Flatten returns.
type FS struct {
	img     *Image
	root    *node
	dir     string
	ownDir  bool
	lim     Limits
	entries int
	files   int
	// expanded counts decompressed bytes of the first pass.
	expanded int64

	mu        sync.Mutex
	extracted map[dataRef]string
	extBytes  int64
	closed    bool
}

// Flatten reads every layer once, base first, and applies it: files added
// or replaced, whiteouts (.wh.NAME) and opaque directories (.wh..wh..opq)
// removing what lower layers had. Parent directories are resolved through
// symlinks inside the image root, as a container runtime unpacks layers.
// Hostile content is refused with an error wrapping one of this package's
// sentinels (see Limits and the Err* values), in memory bounded by the
// number of entries and in time bounded by the expanded size.
func (img *Image) Flatten(ctx context.Context, opts FlattenOptions) (*FS, error) {
	f := &FS{img: img, lim: img.limits.withDefaults(), extracted: map[dataRef]string{}}
	f.root = &node{e: Entry{Path: ".", Mode: fs.ModeDir | 0o755}, children: map[string]*node{}, touched: -1}
	f.dir = opts.Dir
	if f.dir == "" {
		d, err := os.MkdirTemp("", "bulwark-image-")
		if err != nil {
			return nil, err
		}
		f.dir, f.ownDir = d, true
	}
	want := opts.Want
	if want == nil {
		want = func(*Entry) bool { return false }
	}
	var pending []string
	for i := range img.Layers {
		err := f.readLayer(ctx, i, false, func(h *tar.Header, r io.Reader, ord int) error {
			p, err := f.apply(i, h, r, ord, want)
			if p != "" {
				pending = append(pending, p)
			}
			return err
		})
		if err != nil {
			f.Close()
			return nil, err
		}
	}
	// Wanted symlinks and hard links whose content was not met as such.
	var need []string
	for _, p := range pending {
		if n, err := f.walk(p, true); err == nil && n.e.Mode.IsRegular() {
			need = append(need, p)
		}
	}
	if err := f.Extract(ctx, need...); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Close removes the extracted contents.
func (f *FS) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	if f.ownDir {
		return os.RemoveAll(f.dir)
	}
	for _, p := range f.extracted {
		_ = os.Remove(p)
	}
	return nil
}

// Image returns the image the tree was flattened from.
func (f *FS) Image() *Image { return f.img }

// Len returns the number of tar entries read in the first pass.
func (f *FS) Len() int { return f.entries }

// ExpandedBytes returns the decompressed bytes read in the first pass.
func (f *FS) ExpandedBytes() int64 { return f.expanded }

// cleanName turns a tar name into a clean relative path, or refuses it.
func cleanName(name string, max int) (string, error) {
	if len(name) > max {
		return "", ErrPathTooLong
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("%w: NUL in name", ErrCorrupt)
	}
	p := path.Clean("/" + strings.TrimLeft(name, "/"))
	// A name with ".." that climbs above the root is refused, as runtimes do;
	// path.Clean of a rooted path would silently stop at "/".
	depth := 0
	for _, c := range strings.Split(strings.Trim(name, "/"), "/") {
		switch c {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return "", ErrPathTraversal
			}
		default:
			depth++
		}
	}
	if p == "/" {
		return ".", nil
	}
	return p[1:], nil
}

// apply applies one tar entry of layer li. It returns a path to extract
// after the pass when a wanted symlink or hard link was met.
func (f *FS) apply(li int, h *tar.Header, r io.Reader, ord int, want Want) (string, error) {
	f.entries++
	if f.entries > f.lim.MaxEntries {
		return "", fmt.Errorf("%w: over %d", ErrTooManyEntries, f.lim.MaxEntries)
	}
	switch h.Typeflag {
	case tar.TypeXGlobalHeader, tar.TypeXHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
		return "", nil
	}
	name, err := cleanName(h.Name, f.lim.MaxPathLen)
	if err != nil {
		return "", err
	}
	if name == "." {
		return "", nil
	}
	dir, base := path.Split(name)
	parent, err := f.mkdirs(strings.TrimSuffix(dir, "/"), li)
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(base, ".wh.") {
		if base == ".wh..wh..opq" {
			opaque(parent, li)
			return "", nil
		}
		target := base[len(".wh."):]
		if target == "" || target == "." || target == ".." {
			return "", errInvalidWhiteout
		}
		if c := parent.children[target]; c != nil {
			if c.touched < li {
				delete(parent.children, target)
			} else if c.isDir() {
				opaque(c, li)
			}
		}
		return "", nil
	}
	if len(h.Linkname) > f.lim.MaxPathLen {
		return "", fmt.Errorf("link target: %w", ErrPathTooLong)
	}
	e := Entry{
		Path: path.Join(parent.e.Path, base), Mode: h.FileInfo().Mode(), Size: h.Size,
		UID: h.Uid, GID: h.Gid, ModTime: h.ModTime, Layer: li, DiffID: f.img.Layers[li].DiffID,
	}
	switch h.Typeflag {
	case tar.TypeDir:
		e.Size = 0
		if c := parent.children[base]; c != nil && c.isDir() {
			c.e, c.touched = e, li
			return "", nil
		}
		parent.children[base] = &node{e: e, parent: parent, children: map[string]*node{}, touched: li}
		return "", nil
	case tar.TypeSymlink:
		e.Size = 0
		e.Linkname = h.Linkname
		if !path.IsAbs(h.Linkname) {
			t := path.Join(parent.e.Path, h.Linkname)
			if t == ".." || strings.HasPrefix(t, "../") {
				return "", fmt.Errorf("%w: -> %s", ErrSymlinkEscape, h.Linkname)
			}
		}
		parent.children[base] = &node{e: e, parent: parent, touched: li}
		if want(&e) {
			return e.Path, nil
		}
		return "", nil
	case tar.TypeLink:
		target, err := cleanName(h.Linkname, f.lim.MaxPathLen)
		if err != nil {
			return "", fmt.Errorf("%w: -> %s: %v", ErrHardlinkTarget, h.Linkname, err)
		}
		tn, err := f.walk(target, false)
		if err != nil || tn.isDir() || tn == f.root {
			return "", fmt.Errorf("%w: -> %s", ErrHardlinkTarget, h.Linkname)
		}
		e.Mode, e.Size, e.data, e.Linkname = tn.e.Mode, tn.e.Size, tn.e.data, tn.e.Path
		if tn.e.Mode&fs.ModeSymlink != 0 {
			e.Linkname = tn.e.Linkname
		}
		parent.children[base] = &node{e: e, parent: parent, touched: li}
		if want(&e) {
			return e.Path, nil
		}
		return "", nil
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse: //nolint:staticcheck // old archives use TypeRegA
		if h.Size > f.lim.MaxFileSize {
			return "", fmt.Errorf("%w: %d bytes", ErrFileTooLarge, h.Size)
		}
		e.data = dataRef{li, ord}
		parent.children[base] = &node{e: e, parent: parent, touched: li}
		f.files++
		if want(&e) {
			return "", f.save(e.data, r, h.Size)
		}
		return "", nil
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		e.Size = 0
		parent.children[base] = &node{e: e, parent: parent, touched: li}
		return "", nil
	}
	return "", nil // unknown entry types are not part of a root filesystem
}

// opaque hides everything under dir that lower layers put there.
func opaque(dir *node, li int) {
	for name, c := range dir.children {
		if c.touched < li {
			delete(dir.children, name)
		} else if c.isDir() {
			opaque(c, li)
		}
	}
}

// mkdirs returns the directory node for dir (a clean relative path),
// following symlinks inside the root and creating missing directories.
func (f *FS) mkdirs(dir string, li int) (*node, error) {
	cur := f.root
	cur.touched = li
	if dir == "" || dir == "." {
		return cur, nil
	}
	for _, c := range strings.Split(dir, "/") {
		child := cur.children[c]
		if child != nil && child.e.Mode&fs.ModeSymlink != 0 {
			t, err := f.walk(child.e.Path, true)
			switch {
			case errors.Is(err, ErrSymlinkLoop):
				return nil, err
			case err == nil && t.isDir():
				child = t
			default:
				child = nil // dangling or not a directory: replaced below
			}
		}
		if child == nil || !child.isDir() {
			e := Entry{Path: path.Join(cur.e.Path, c), Mode: fs.ModeDir | 0o755, Layer: li, DiffID: f.img.Layers[li].DiffID}
			child = &node{e: e, parent: cur, children: map[string]*node{}}
			cur.children[c] = child
		}
		child.touched = li
		cur = child
	}
	return cur, nil
}

// walk resolves p from the root, following symlinks inside the root
// (absolute targets start again at the image root, ".." stops at it), the
// last component only when followLast.
func (f *FS) walk(p string, followLast bool) (*node, error) {
	comps := splitPath(p)
	cur := f.root
	links := 0
	for len(comps) > 0 {
		c := comps[0]
		comps = comps[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if cur.parent != nil {
				cur = cur.parent
			}
			continue
		}
		if !cur.isDir() {
			return nil, fs.ErrNotExist
		}
		child := cur.children[c]
		if child == nil {
			return nil, fs.ErrNotExist
		}
		if child.e.Mode&fs.ModeSymlink != 0 && (len(comps) > 0 || followLast) {
			links++
			if links > f.lim.MaxSymlinks {
				return nil, ErrSymlinkLoop
			}
			t := child.e.Linkname
			if path.IsAbs(t) {
				cur = f.root
			}
			comps = append(splitPath(t), comps...)
			continue
		}
		cur = child
	}
	return cur, nil
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" || p == "." {
		return nil
	}
	return strings.Split(p, "/")
}

// save copies a regular file's bytes to the extraction directory.
func (f *FS) save(ref dataRef, r io.Reader, size int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.extracted[ref]; ok {
		return nil
	}
	if f.extBytes+size > f.lim.MaxExtractBytes {
		return fmt.Errorf("%w: over %d bytes", ErrExtractTooLarge, f.lim.MaxExtractBytes)
	}
	name := filepath.Join(f.dir, fmt.Sprintf("l%d-e%d", ref.layer, ref.ordinal))
	out, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	n, err := io.CopyN(out, r, size)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: file shorter than its header (%d of %d bytes)", ErrCorrupt, n, size)
		}
		return err
	}
	f.extBytes += size
	f.extracted[ref] = name
	return nil
}

// Extract copies the contents of the named files (symlinks resolved) to the
// extraction directory, reading only the layers that hold them, each up to
// the last entry needed. Files already extracted cost nothing.
func (f *FS) Extract(ctx context.Context, paths ...string) error {
	need := map[int]map[int]int64{}
	f.mu.Lock()
	for _, p := range paths {
		n, err := f.walk(p, true)
		if err != nil {
			f.mu.Unlock()
			return &fs.PathError{Op: "extract", Path: p, Err: err}
		}
		if !n.e.Mode.IsRegular() {
			f.mu.Unlock()
			return &fs.PathError{Op: "extract", Path: p, Err: ErrNotRegular}
		}
		if _, ok := f.extracted[n.e.data]; ok {
			continue
		}
		if need[n.e.data.layer] == nil {
			need[n.e.data.layer] = map[int]int64{}
		}
		need[n.e.data.layer][n.e.data.ordinal] = n.e.Size
	}
	f.mu.Unlock()
	layers := make([]int, 0, len(need))
	for li := range need {
		layers = append(layers, li)
	}
	sort.Ints(layers)
	for _, li := range layers {
		want := need[li]
		last := 0
		for o := range want {
			last = max(last, o)
		}
		err := f.readLayer(ctx, li, true, func(h *tar.Header, r io.Reader, ord int) error {
			if size, ok := want[ord]; ok {
				if h.Size != size {
					return ErrLayerChanged
				}
				if err := f.save(dataRef{li, ord}, r, size); err != nil {
					return err
				}
			}
			if ord >= last {
				return errStopLayer
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// counter counts bytes through a reader and enforces the size limits.
type counter struct {
	ctx        context.Context
	r          io.Reader
	n          int64
	compressed *counter // the raw stream under a decompressor
	lim        Limits
	base       int64 // expanded bytes of earlier layers
	err        error
}

func (c *counter) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if err := c.ctx.Err(); err != nil {
		c.err = err
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.compressed != nil {
		switch {
		case c.base+c.n > c.lim.MaxExpandedBytes:
			c.err = fmt.Errorf("%w: over %d bytes", ErrExpandedTooLarge, c.lim.MaxExpandedBytes)
		case c.n > c.lim.RatioFloor && float64(c.n) > c.lim.MaxRatio*float64(max(c.compressed.n, 1)):
			c.err = fmt.Errorf("%w: %d bytes from %d", ErrCompressionRatio, c.n, c.compressed.n)
		}
		if c.err != nil {
			return n, c.err
		}
	}
	return n, err
}

var (
	gzipMagic  = []byte{0x1f, 0x8b}
	zstdMagic  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	bzip2Magic = []byte("BZh")
	xzMagic    = []byte{0xfd, '7', 'z', 'X', 'Z', 0}
)

// decompress detects the compression of a layer blob by its magic bytes.
func decompress(r io.Reader) (io.Reader, func(), error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(6)
	if err != nil && !errors.Is(err, io.EOF) {
		if errors.Is(err, ErrExpandedTooLarge) || errors.Is(err, ErrCompressionRatio) ||
			errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: gzip: %v", ErrCorrupt, err)
		}
		return zr, func() { zr.Close() }, nil
	case bytes.HasPrefix(head, zstdMagic):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(128<<20))
		if err != nil {
			return nil, nil, fmt.Errorf("%w: zstd: %v", ErrCorrupt, err)
		}
		return zr, zr.Close, nil
	case bytes.HasPrefix(head, bzip2Magic), bytes.HasPrefix(head, xzMagic):
		return nil, nil, fmt.Errorf("%w: bzip2 or xz layer", ErrUnsupported)
	}
	return br, func() {}, nil
}

// readLayer streams layer li's tar entries to fn, with limits, and checks
// the DiffID when the whole layer was read. fn may return errStopLayer.
func (f *FS) readLayer(ctx context.Context, li int, reread bool, fn func(*tar.Header, io.Reader, int) error) (err error) {
	l := f.img.Layers[li]
	defer func() {
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			var le *LayerError
			if !errors.As(err, &le) {
				err = &LayerError{Layer: li, DiffID: l.DiffID, Err: err}
			}
		}
	}()
	if err := ctx.Err(); err != nil {
		return err
	}
	if l.open == nil {
		return fmt.Errorf("%w: layer has no content", ErrUnsupported)
	}
	rc, err := l.open(ctx)
	if err != nil {
		return fmt.Errorf("open layer: %w", err)
	}
	defer rc.Close()
	raw := &counter{ctx: ctx, r: rc, lim: f.lim}
	dr, closeDR, err := decompress(raw)
	if err != nil {
		return err
	}
	defer closeDR()
	base := f.expanded
	if reread {
		base = 0
	}
	exp := &counter{ctx: ctx, r: dr, compressed: raw, lim: f.lim, base: base}
	// Decompression runs ahead in its own goroutine, through a few fixed
	// buffers: one core inflates while the other hashes and parses.
	var ahd io.Reader = exp
	if readAhead {
		a := newAhead(exp, 4, 256<<10)
		defer a.Close()
		ahd = a
	}
	var h hash.Hash = sha256.New()
	tr := tar.NewReader(io.TeeReader(ahd, h))
	fail := func(e error) error {
		if isLimit(e) {
			return e
		}
		return fmt.Errorf("%w: %v", ErrCorrupt, e)
	}
	for ord := 0; ; ord++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(err)
		}
		if err := fn(hdr, tr, ord); err != nil {
			if errors.Is(err, errStopLayer) {
				return nil
			}
			if isLimit(err) {
				return err
			}
			return &LayerError{Layer: li, DiffID: l.DiffID, Path: hdr.Name, Err: err}
		}
	}
	// The rest of the stream (end-of-archive blocks, padding) counts toward the digest.
	if _, err := io.Copy(h, ahd); err != nil {
		return fail(err)
	}
	if a, ok := ahd.(*ahead); ok {
		a.Close() // the producer is done: exp.n is ours to read
	}
	if !reread {
		f.expanded += exp.n
	}
	if l.DiffID.Algorithm == "sha256" {
		if got := hex.EncodeToString(h.Sum(nil)); got != l.DiffID.Hex {
			return fmt.Errorf("%w: diff_id %s, content sha256:%s", ErrDigestMismatch, l.DiffID, got)
		}
	}
	return nil
}

// readAhead turns on decompression in its own goroutine (off only to
// measure what it brings: BenchmarkFlatten/serial).
var readAhead = true

// isLimit reports whether err is a limit or cancellation, which stays as
// it is rather than being called corruption.
func isLimit(err error) bool {
	return errors.Is(err, ErrExpandedTooLarge) || errors.Is(err, ErrCompressionRatio) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// ahead reads r in a goroutine into n+1 fixed buffers of size bytes and
// hands them to Read in order: bounded read-ahead, never a whole layer.
type ahead struct {
	ch        chan chunk
	free      chan []byte
	cur, buf  []byte
	err       error
	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

type chunk struct {
	b, buf []byte
	err    error
}

func newAhead(r io.Reader, n, size int) *ahead {
	a := &ahead{ch: make(chan chunk, n), free: make(chan []byte, n+1), done: make(chan struct{})}
	for range n + 1 {
		a.free <- make([]byte, size)
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer close(a.ch)
		for {
			var buf []byte
			select {
			case buf = <-a.free:
			case <-a.done:
				return
			}
			// Fill the buffer; keep the reader's own error (a truncated
			// stream says io.ErrUnexpectedEOF, an ended one io.EOF).
			m := 0
			var err error
			for m < len(buf) && err == nil {
				var k int
				k, err = r.Read(buf[m:])
				m += k
			}
			select {
			case a.ch <- chunk{b: buf[:m], buf: buf, err: err}:
			case <-a.done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return a
}

func (a *ahead) Read(p []byte) (int, error) {
	for len(a.cur) == 0 {
		if a.err != nil {
			return 0, a.err
		}
		if a.buf != nil {
			a.free <- a.buf // never blocks: free holds every buffer there is
			a.buf = nil
		}
		c, ok := <-a.ch
		if !ok {
			a.err = io.EOF
			return 0, a.err
		}
		a.cur, a.buf, a.err = c.b, c.buf, c.err
	}
	n := copy(p, a.cur)
	a.cur = a.cur[n:]
	return n, nil
}

// Close stops the reading goroutine and waits for it.
func (a *ahead) Close() {
	a.closeOnce.Do(func() { close(a.done) })
	a.wg.Wait()
}
