package image

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"time"
)

var (
	_ fs.FS         = (*FS)(nil)
	_ fs.ReadDirFS  = (*FS)(nil)
	_ fs.StatFS     = (*FS)(nil)
	_ fs.ReadLinkFS = (*FS)(nil)
)

// Walk calls fn for every entry of the tree except the root, parents
// before children, siblings in lexical order, without following symlinks.
// fn returning fs.SkipDir for a directory skips its contents; any other
// error stops the walk and is returned.
func (f *FS) Walk(fn func(e *Entry) error) error {
	err := walkNode(f.root, fn)
	if errors.Is(err, fs.SkipDir) || errors.Is(err, fs.SkipAll) {
		return nil
	}
	return err
}

func walkNode(n *node, fn func(*Entry) error) error {
	for _, name := range sortedNames(n) {
		c := n.children[name]
		if err := fn(&c.e); err != nil {
			if errors.Is(err, fs.SkipDir) && c.isDir() {
				continue
			}
			return err
		}
		if c.isDir() {
			if err := walkNode(c, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

func sortedNames(n *node) []string {
	names := make([]string, 0, len(n.children))
	for name := range n.children {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Lookup returns the entry at p, resolving symlinks in the parents (inside
// the root) but not in the last component.
func (f *FS) Lookup(p string) (*Entry, error) {
	n, err := f.walk(p, false)
	if err != nil {
		return nil, &fs.PathError{Op: "lookup", Path: p, Err: err}
	}
	return &n.e, nil
}

// Resolve returns the entry p leads to with every symlink followed inside
// the image root.
func (f *FS) Resolve(p string) (*Entry, error) {
	n, err := f.walk(p, true)
	if err != nil {
		return nil, &fs.PathError{Op: "resolve", Path: p, Err: err}
	}
	return &n.e, nil
}

// Open opens a file (symlinks followed inside the root). A regular file
// whose content was not extracted by Flatten's Want is extracted now,
// which reads its layer again: batch such reads with Extract.
func (f *FS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	n, err := f.walk(name, true)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	info := entryInfo{e: &n.e, name: path.Base(name)}
	if n.isDir() {
		return &dirFile{f: f, n: n, info: info}, nil
	}
	if !n.e.Mode.IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: name, Err: ErrNotRegular}
	}
	f.mu.Lock()
	file, ok := f.extracted[n.e.data]
	f.mu.Unlock()
	if !ok {
		if err := f.Extract(context.Background(), name); err != nil {
			return nil, err
		}
		f.mu.Lock()
		file, ok = f.extracted[n.e.data]
		f.mu.Unlock()
		if !ok {
			return nil, &fs.PathError{Op: "open", Path: name, Err: ErrNotExtracted}
		}
	}
	osf, err := os.Open(file)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &regFile{File: osf, info: info}, nil
}

// ReadFile returns the content of a file (see Open).
func (f *FS) ReadFile(name string) ([]byte, error) {
	file, err := f.Open(name)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	return io.ReadAll(file)
}

// Stat returns the file info of name, symlinks followed.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	n, err := f.walk(name, true)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	return entryInfo{e: &n.e, name: path.Base(name)}, nil
}

// Lstat returns the file info of name without following a final symlink.
func (f *FS) Lstat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: fs.ErrInvalid}
	}
	n, err := f.walk(name, false)
	if err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: err}
	}
	return entryInfo{e: &n.e, name: path.Base(name)}, nil
}

// ReadLink returns a symlink's target as stored in the layer.
func (f *FS) ReadLink(name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	n, err := f.walk(name, false)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	if n.e.Mode&fs.ModeSymlink == 0 {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return n.e.Linkname, nil
}

// ReadDir lists a directory (symlinks followed), sorted by name.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
	}
	n, err := f.walk(name, true)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	if !n.isDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	return dirEntries(n), nil
}

func dirEntries(n *node) []fs.DirEntry {
	names := sortedNames(n)
	out := make([]fs.DirEntry, len(names))
	for i, name := range names {
		out[i] = fs.FileInfoToDirEntry(entryInfo{e: &n.children[name].e, name: name})
	}
	return out
}

// entryInfo is an Entry as an fs.FileInfo; Sys returns the *Entry.
type entryInfo struct {
	e    *Entry
	name string
}

func (i entryInfo) Name() string       { return i.name }
func (i entryInfo) Size() int64        { return i.e.Size }
func (i entryInfo) Mode() fs.FileMode  { return i.e.Mode }
func (i entryInfo) ModTime() time.Time { return i.e.ModTime }
func (i entryInfo) IsDir() bool        { return i.e.Mode.IsDir() }
func (i entryInfo) Sys() any           { return i.e }

type regFile struct {
	*os.File
	info entryInfo
}

func (r *regFile) Stat() (fs.FileInfo, error) { return r.info, nil }

type dirFile struct {
	f    *FS
	n    *node
	info entryInfo
	list []fs.DirEntry
	read bool
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: errors.New("is a directory")}
}
func (d *dirFile) Close() error { return nil }

func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if !d.read {
		d.list, d.read = dirEntries(d.n), true
	}
	if n <= 0 {
		out := d.list
		d.list = nil
		return out, nil
	}
	if len(d.list) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(d.list))
	out := d.list[:n]
	d.list = d.list[n:]
	return out, nil
}
