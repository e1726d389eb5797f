package image

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Source says where an image was read from.
type Source string

// The sources Open understands.
const (
	SourceRegistry  Source = "registry"
	SourceLayout    Source = "oci-layout"
	SourceArchive   Source = "docker-archive"
	SourceOCIArchve Source = "oci-archive"
)

// Image is an opened image: its configuration and its layers, base first.
// Layer contents are read only by Flatten.
type Image struct {
	Ref    string // as given to Open
	Source Source
	// Digest is the manifest digest. It is zero for a docker archive whose
	// layers are stored uncompressed (docker save), which has no manifest;
	// ID names the image there.
	Digest v1.Hash
	ID     v1.Hash // the config digest (docker's image ID)
	Config *v1.ConfigFile
	Layers []Layer

	limits Limits
	closer io.Closer
}

// Layer is one layer of an image.
type Layer struct {
	DiffID    v1.Hash         // digest of the uncompressed tar, from the config
	Digest    v1.Hash         // digest of the blob as stored (zero when not known)
	Size      int64           // size of the blob as stored (0 when not known)
	MediaType types.MediaType // as stored
	// CreatedBy is the history line of the layer (the Dockerfile step), when the config says.
	CreatedBy string

	open func(context.Context) (io.ReadCloser, error)
}

// Close releases the files an image holds open.
func (img *Image) Close() error {
	if img.closer != nil {
		return img.closer.Close()
	}
	return nil
}

// Option configures Open.
type Option func(*options)

type options struct {
	keychain  authn.Keychain
	auth      authn.Authenticator
	transport http.RoundTripper
	insecure  bool
	platform  *v1.Platform
	limits    Limits
}

// WithKeychain resolves registry credentials through kc (default
// authn.DefaultKeychain: $DOCKER_CONFIG/config.json or ~/.docker/config.json,
// with credential helpers and identity or registry tokens).
func WithKeychain(kc authn.Keychain) Option { return func(o *options) { o.keychain = kc } }

// WithAuth uses fixed credentials (e.g. &authn.Bearer{Token: t} or
// &authn.Basic{...}) instead of a keychain.
func WithAuth(a authn.Authenticator) Option { return func(o *options) { o.auth = a } }

// WithTransport sets the HTTP transport (e.g. one trusting a private CA).
func WithTransport(rt http.RoundTripper) Option { return func(o *options) { o.transport = rt } }

// WithInsecure allows plain HTTP to any registry. Without it, plain HTTP is
// used only for registries on the loopback interface (127.0.0.0/8, ::1,
// localhost), and refused for every other host (ErrInsecureRegistry).
func WithInsecure() Option { return func(o *options) { o.insecure = true } }

// WithPlatform picks the image of a multi-platform index (default
// linux/<GOARCH> of this binary).
func WithPlatform(p v1.Platform) Option { return func(o *options) { o.platform = &p } }

// WithLimits bounds the work and disk an image may cost (see Limits).
func WithLimits(l Limits) Option { return func(o *options) { o.limits = l } }

func newOptions(opts []Option) *options {
	o := &options{keychain: authn.DefaultKeychain}
	for _, opt := range opts {
		opt(o)
	}
	if o.platform == nil {
		o.platform = &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	}
	o.limits = o.limits.withDefaults()
	return o
}

// Open opens an image by reference:
//
//	registry:REF, or any REF that is not an existing path: a registry reference
//	oci:DIR[:TAG], or an existing directory: an OCI image layout
//	docker-archive:FILE, oci-archive:FILE, or an existing file: a tar archive
//	(docker save format, or an OCI layout in a tar), gzip-compressed or not
func Open(ctx context.Context, ref string, opts ...Option) (*Image, error) {
	switch {
	case strings.HasPrefix(ref, "registry:"):
		return OpenRemote(ctx, strings.TrimPrefix(ref, "registry:"), opts...)
	case strings.HasPrefix(ref, "oci:"):
		dir, tag := splitTag(strings.TrimPrefix(ref, "oci:"))
		return OpenLayout(ctx, dir, tag, opts...)
	case strings.HasPrefix(ref, "docker-archive:"), strings.HasPrefix(ref, "oci-archive:"):
		_, file, _ := strings.Cut(ref, ":")
		return OpenArchive(ctx, file, opts...)
	}
	if fi, err := os.Stat(ref); err == nil {
		if fi.IsDir() {
			return OpenLayout(ctx, ref, "", opts...)
		}
		return OpenArchive(ctx, ref, opts...)
	}
	return OpenRemote(ctx, ref, opts...)
}

// splitTag splits "dir:tag" when the part after the last colon has no slash.
func splitTag(s string) (string, string) {
	i := strings.LastIndex(s, ":")
	if i <= 0 || strings.Contains(s[i+1:], "/") {
		return s, ""
	}
	if _, err := os.Stat(s); err == nil {
		return s, ""
	}
	return s[:i], s[i+1:]
}

// OpenRemote opens an image from a registry through go-containerregistry.
// A reference to an index picks the platform (WithPlatform).
func OpenRemote(ctx context.Context, ref string, opts ...Option) (*Image, error) {
	o := newOptions(opts)
	var nameOpts []name.Option
	if o.insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nameOpts...)
	if err != nil {
		return nil, fmt.Errorf("parse reference %q: %w", ref, err)
	}
	base := o.transport
	if base == nil {
		base = remote.DefaultTransport
	}
	ropts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(&schemeGuard{next: base, insecure: o.insecure}),
		remote.WithPlatform(*o.platform),
	}
	if o.auth != nil {
		ropts = append(ropts, remote.WithAuth(o.auth))
	} else {
		ropts = append(ropts, remote.WithAuthFromKeychain(o.keychain))
	}
	img, err := remote.Image(r, ropts...)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", ref, err)
	}
	out, err := fromV1(ctx, img, o.limits)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", ref, err)
	}
	out.Ref, out.Source = ref, SourceRegistry
	return out, nil
}

// OpenLayout opens an image from an OCI image layout directory. With a tag,
// the manifest annotated org.opencontainers.image.ref.name=tag is taken;
// without, the only image for the platform.
func OpenLayout(ctx context.Context, dir, tag string, opts ...Option) (*Image, error) {
	o := newOptions(opts)
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("open OCI layout %s: %w", dir, err)
	}
	img, err := pickImage(idx, tag, o.platform, 0)
	if err != nil {
		return nil, fmt.Errorf("open OCI layout %s: %w", dir, err)
	}
	out, err := fromV1(ctx, img, o.limits)
	if err != nil {
		return nil, fmt.Errorf("open OCI layout %s: %w", dir, err)
	}
	out.Ref, out.Source = dir, SourceLayout
	return out, nil
}

const refNameAnnotation = "org.opencontainers.image.ref.name"

// pickImage finds one image in an index: by tag annotation, else by
// platform, else the only one; nested indexes are followed four deep.
func pickImage(idx v1.ImageIndex, tag string, p *v1.Platform, depth int) (v1.Image, error) {
	if depth > 4 {
		return nil, fmt.Errorf("%w: indexes nested too deep", ErrUnsupported)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var found []v1.Descriptor
	for _, d := range m.Manifests {
		if tag != "" && depth == 0 && d.Annotations[refNameAnnotation] != tag {
			continue
		}
		if d.Platform != nil && p != nil && !d.Platform.Satisfies(*p) {
			continue
		}
		if d.MediaType.IsImage() || d.MediaType.IsIndex() {
			found = append(found, d)
		}
	}
	switch {
	case len(found) == 0:
		return nil, fmt.Errorf("%w: tag %q platform %s", ErrNoMatchingImage, tag, p)
	case len(found) > 1:
		return nil, fmt.Errorf("%w: %d candidates", ErrAmbiguous, len(found))
	}
	d := found[0]
	if d.MediaType.IsIndex() {
		child, err := idx.ImageIndex(d.Digest)
		if err != nil {
			return nil, err
		}
		return pickImage(child, "", p, depth+1)
	}
	return idx.Image(d.Digest)
}

// fromV1 reads the manifest and config of a go-containerregistry image.
func fromV1(ctx context.Context, img v1.Image, lim Limits) (*Image, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if len(m.Layers) > lim.MaxLayers {
		return nil, fmt.Errorf("%w: %d > %d", ErrTooManyLayers, len(m.Layers), lim.MaxLayers)
	}
	if m.Config.Size > lim.MaxMetadataBytes {
		return nil, fmt.Errorf("config: %w: %d bytes", ErrMetadataTooLarge, m.Config.Size)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("%w: manifest has %d layers, config %d diff_ids", ErrCorrupt, len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	out := &Image{Digest: digest, ID: m.Config.Digest, Config: cfg, limits: lim}
	for i, l := range layers {
		l := l
		out.Layers = append(out.Layers, Layer{
			DiffID: cfg.RootFS.DiffIDs[i], Digest: m.Layers[i].Digest, Size: m.Layers[i].Size,
			MediaType: m.Layers[i].MediaType,
			open:      func(context.Context) (io.ReadCloser, error) { return l.Compressed() },
		})
	}
	out.setCreatedBy()
	return out, nil
}

// setCreatedBy pairs history entries that made a layer with the layers.
func (img *Image) setCreatedBy() {
	i := 0
	for _, h := range img.Config.History {
		if h.EmptyLayer {
			continue
		}
		if i >= len(img.Layers) {
			return
		}
		img.Layers[i].CreatedBy = h.CreatedBy
		i++
	}
}

// schemeGuard refuses plain HTTP except to loopback hosts, unless insecure.
type schemeGuard struct {
	next     http.RoundTripper
	insecure bool
}

func (g *schemeGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.insecure && !isLoopback(req.URL.Hostname()) {
		return nil, fmt.Errorf("%s: %w (use https, or WithInsecure)", req.URL.Host, ErrInsecureRegistry)
	}
	return g.next.RoundTrip(req)
}

func isLoopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
