package image

import (
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Limits bound the work and the disk an image may cost. A zero field takes
// the value of DefaultLimits.
type Limits struct {
	MaxLayers        int     // layers in one image
	MaxEntries       int     // tar entries over all layers (bounds the index in memory)
	MaxFileSize      int64   // size of one file
	MaxExpandedBytes int64   // decompressed tar bytes over all layers
	MaxRatio         float64 // decompressed / compressed bytes of a layer, checked past RatioFloor
	RatioFloor       int64   // decompressed bytes of a layer before MaxRatio applies
	MaxExtractBytes  int64   // bytes copied to the extraction directory
	MaxPathLen       int     // bytes in one path or link target
	MaxSymlinks      int     // symlinks followed while resolving one path
	MaxMetadataBytes int64   // one manifest, index, config or archive index file
}

// DefaultLimits fit real images (the largest common ones expand to a few
// GiB) and refuse bombs within seconds.
var DefaultLimits = Limits{
	MaxLayers:        256,
	MaxEntries:       1_000_000,
	MaxFileSize:      4 << 30,
	MaxExpandedBytes: 16 << 30,
	MaxRatio:         200,
	RatioFloor:       64 << 20,
	MaxExtractBytes:  2 << 30,
	MaxPathLen:       4096,
	MaxSymlinks:      40,
	MaxMetadataBytes: 8 << 20,
}

func (l Limits) withDefaults() Limits {
	// Start from the defaults, so that a field added later keeps its default.
	d := DefaultLimits
	d.MaxLayers = positiveOr(l.MaxLayers, d.MaxLayers)
	d.MaxEntries = positiveOr(l.MaxEntries, d.MaxEntries)
	d.MaxFileSize = positiveOr(l.MaxFileSize, d.MaxFileSize)
	d.MaxExpandedBytes = positiveOr(l.MaxExpandedBytes, d.MaxExpandedBytes)
	d.MaxRatio = positiveOr(l.MaxRatio, d.MaxRatio)
	d.RatioFloor = positiveOr(l.RatioFloor, d.RatioFloor)
	d.MaxExtractBytes = positiveOr(l.MaxExtractBytes, d.MaxExtractBytes)
	d.MaxPathLen = positiveOr(l.MaxPathLen, d.MaxPathLen)
	d.MaxSymlinks = positiveOr(l.MaxSymlinks, d.MaxSymlinks)
	d.MaxMetadataBytes = positiveOr(l.MaxMetadataBytes, d.MaxMetadataBytes)
	return d
}

// positiveOr returns v when it is set (positive), else def.
func positiveOr[T int | int64 | float64](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// Errors for hostile or broken images. Every refusal wraps one of them
// (with errors.Is) and usually a *LayerError saying where.
var (
	ErrPathTraversal    = errors.New("path escapes the image root")
	ErrSymlinkEscape    = errors.New("symlink target escapes the image root")
	ErrHardlinkTarget   = errors.New("hard link target outside the tree or missing")
	ErrSymlinkLoop      = errors.New("too many levels of symbolic links")
	ErrTooManyLayers    = errors.New("too many layers")
	ErrTooManyEntries   = errors.New("too many files")
	ErrFileTooLarge     = errors.New("file too large")
	ErrExpandedTooLarge = errors.New("decompressed size over the limit")
	ErrCompressionRatio = errors.New("compression ratio over the limit (compression bomb)")
	ErrExtractTooLarge  = errors.New("extracted files over the size limit")
	ErrPathTooLong      = errors.New("path too long")
	ErrCorrupt          = errors.New("corrupt archive")
	ErrDigestMismatch   = errors.New("layer content does not match its digest")
	ErrUnsupported      = errors.New("unsupported layer or archive format")
	ErrInsecureRegistry = errors.New("plain HTTP to a registry that is not on the loopback interface")
	ErrAmbiguous        = errors.New("the source holds several images; name one")
	ErrNoMatchingImage  = errors.New("no image matches")
	ErrMetadataTooLarge = errors.New("manifest, index or config too large")
	ErrLayerChanged     = errors.New("layer content changed between reads")
	ErrNotExtracted     = errors.New("file content was not extracted")
	ErrNotRegular       = errors.New("not a regular file")
	errStopLayer        = errors.New("stop reading layer")
	errInvalidWhiteout  = fmt.Errorf("invalid whiteout: %w", ErrPathTraversal)
)

// LayerError says which layer and entry an error is about.
type LayerError struct {
	Layer  int     // index in Image.Layers, from the base
	DiffID v1.Hash // the layer's uncompressed digest
	Path   string  // the tar entry name, when the error is about one entry
	Err    error
}

func (e *LayerError) Error() string {
	if e.Path != "" {
		p := e.Path
		if len(p) > 160 { // hostile names can be long; the error stays readable
			p = p[:80] + "..." + p[len(p)-40:]
		}
		return fmt.Sprintf("layer %d (%s) entry %q: %v", e.Layer, short(e.DiffID), p, e.Err)
	}
	return fmt.Sprintf("layer %d (%s): %v", e.Layer, short(e.DiffID), e.Err)
}

func (e *LayerError) Unwrap() error { return e.Err }

func short(h v1.Hash) string {
	s := h.String()
	if len(s) > 19 {
		return s[:19]
	}
	return s
}
