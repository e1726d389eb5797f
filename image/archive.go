package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// archive is a tar file indexed once: every regular file's data offset and
// size, so that blobs are read as sections without scanning again.
type archive struct {
	f     *os.File
	files map[string]section
}

type section struct{ off, size int64 }

// maxArchiveEntries bounds the outer tar's index.
const maxArchiveEntries = 100_000

func indexArchive(f *os.File) (*archive, error) {
	a := &archive{f: f, files: map[string]section{}}
	tr := tar.NewReader(f)
	for n := 0; ; n++ {
		if n > maxArchiveEntries {
			return nil, fmt.Errorf("%w: over %d entries in the archive", ErrTooManyEntries, maxArchiveEntries)
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeRegA { //nolint:staticcheck // old archives use TypeRegA
			continue
		}
		off, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, err
		}
		a.files[path.Clean(strings.TrimPrefix(h.Name, "/"))] = section{off, h.Size}
	}
	return a, nil
}

func (a *archive) open(name string) (io.ReadCloser, error) {
	s, ok := a.files[path.Clean(name)]
	if !ok {
		return nil, fmt.Errorf("%w: %s not in the archive", ErrCorrupt, name)
	}
	return io.NopCloser(io.NewSectionReader(a.f, s.off, s.size)), nil
}

// readSmall reads a metadata file of at most max bytes.
func (a *archive) readSmall(name string, max int64) ([]byte, error) {
	s, ok := a.files[path.Clean(name)]
	if !ok {
		return nil, fmt.Errorf("%w: %s not in the archive", ErrCorrupt, name)
	}
	if s.size > max {
		return nil, fmt.Errorf("%s: %w: %d bytes", name, ErrMetadataTooLarge, s.size)
	}
	b := make([]byte, s.size)
	if _, err := a.f.ReadAt(b, s.off); err != nil {
		return nil, fmt.Errorf("%w: read %s: %v", ErrCorrupt, name, err)
	}
	return b, nil
}

// OpenArchive opens a tar archive: `docker save` output (manifest.json,
// with layers compressed or not; also the OCI form of Docker 25+), or an
// OCI image layout in a tar (index.json, oci-layout, blobs/).
func OpenArchive(ctx context.Context, file string, opts ...Option) (*Image, error) {
	o := newOptions(opts)
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("open archive: %w", err)
	}
	img, err := openArchive(f, o)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open archive %s: %w", file, err)
	}
	img.Ref, img.closer = file, f
	return img, nil
}

func openArchive(f *os.File, o *options) (*Image, error) {
	a, err := indexArchive(f)
	if err != nil {
		return nil, err
	}
	lim := o.limits
	if _, ok := a.files["manifest.json"]; ok {
		return openDockerArchive(a, lim)
	}
	if _, ok := a.files["index.json"]; ok {
		return openOCIArchive(a, o)
	}
	return nil, fmt.Errorf("%w: neither manifest.json nor index.json in the archive", ErrUnsupported)
}

func openDockerArchive(a *archive, lim Limits) (*Image, error) {
	b, err := a.readSmall("manifest.json", lim.MaxMetadataBytes)
	if err != nil {
		return nil, err
	}
	var m tarball.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: manifest.json: %v", ErrCorrupt, err)
	}
	switch {
	case len(m) == 0:
		return nil, fmt.Errorf("%w: manifest.json lists no image", ErrNoMatchingImage)
	case len(m) > 1:
		return nil, fmt.Errorf("%w: manifest.json lists %d images", ErrAmbiguous, len(m))
	}
	d := m[0]
	if len(d.Layers) > lim.MaxLayers {
		return nil, fmt.Errorf("%w: %d > %d", ErrTooManyLayers, len(d.Layers), lim.MaxLayers)
	}
	raw, err := a.readSmall(d.Config, lim.MaxMetadataBytes)
	if err != nil {
		return nil, err
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: config: %v", ErrCorrupt, err)
	}
	id, _, _ := v1.SHA256(bytes.NewReader(raw))
	if len(cfg.RootFS.DiffIDs) != len(d.Layers) {
		return nil, fmt.Errorf("%w: manifest.json has %d layers, config %d diff_ids", ErrCorrupt, len(d.Layers), len(cfg.RootFS.DiffIDs))
	}
	img := &Image{Source: SourceArchive, ID: id, Config: cfg, limits: lim}
	for i, p := range d.Layers {
		p := p
		s, ok := a.files[path.Clean(p)]
		if !ok {
			return nil, fmt.Errorf("%w: layer %s not in the archive", ErrCorrupt, p)
		}
		l := Layer{DiffID: cfg.RootFS.DiffIDs[i], Size: s.size, MediaType: types.DockerLayer,
			open: func(context.Context) (io.ReadCloser, error) { return a.open(p) }}
		if src, ok := d.LayerSources[l.DiffID]; ok {
			l.Digest, l.MediaType = src.Digest, src.MediaType
		}
		img.Layers = append(img.Layers, l)
	}
	img.setCreatedBy()
	return img, nil
}

// openOCIArchive reads an OCI layout from the tar without unpacking it.
func openOCIArchive(a *archive, o *options) (*Image, error) {
	lim := o.limits
	raw, err := a.readSmall("index.json", lim.MaxMetadataBytes)
	if err != nil {
		return nil, err
	}
	blob := func(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }
	var manifestRaw []byte
	var digest v1.Hash
	for depth := 0; ; depth++ {
		if depth > 4 {
			return nil, fmt.Errorf("%w: indexes nested too deep", ErrUnsupported)
		}
		idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("%w: index: %v", ErrCorrupt, err)
		}
		var found []v1.Descriptor
		for _, d := range idx.Manifests {
			if d.Platform != nil && !d.Platform.Satisfies(*o.platform) {
				continue
			}
			if d.MediaType.IsImage() || d.MediaType.IsIndex() {
				found = append(found, d)
			}
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%w: platform %s", ErrNoMatchingImage, o.platform)
		}
		if len(found) > 1 {
			return nil, fmt.Errorf("%w: %d candidates", ErrAmbiguous, len(found))
		}
		if raw, err = readVerified(a, blob(found[0].Digest), found[0].Digest, lim); err != nil {
			return nil, err
		}
		if found[0].MediaType.IsImage() {
			manifestRaw, digest = raw, found[0].Digest
			break
		}
	}
	m, err := v1.ParseManifest(bytes.NewReader(manifestRaw))
	if err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", ErrCorrupt, err)
	}
	if len(m.Layers) > lim.MaxLayers {
		return nil, fmt.Errorf("%w: %d > %d", ErrTooManyLayers, len(m.Layers), lim.MaxLayers)
	}
	rawCfg, err := readVerified(a, blob(m.Config.Digest), m.Config.Digest, lim)
	if err != nil {
		return nil, err
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(rawCfg))
	if err != nil {
		return nil, fmt.Errorf("%w: config: %v", ErrCorrupt, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("%w: manifest has %d layers, config %d diff_ids", ErrCorrupt, len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	img := &Image{Source: SourceOCIArchve, Digest: digest, ID: m.Config.Digest, Config: cfg, limits: lim}
	for i, d := range m.Layers {
		name := blob(d.Digest)
		img.Layers = append(img.Layers, Layer{DiffID: cfg.RootFS.DiffIDs[i], Digest: d.Digest, Size: d.Size, MediaType: d.MediaType,
			open: func(context.Context) (io.ReadCloser, error) { return a.open(name) }})
	}
	img.setCreatedBy()
	return img, nil
}

func readVerified(a *archive, name string, want v1.Hash, lim Limits) ([]byte, error) {
	b, err := a.readSmall(name, lim.MaxMetadataBytes)
	if err != nil {
		return nil, err
	}
	got, _, err := v1.SHA256(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	if got != want {
		return nil, fmt.Errorf("%s: %w: got %s", name, ErrDigestMismatch, got)
	}
	return b, nil
}
