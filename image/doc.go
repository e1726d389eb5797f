// Package image opens container images and flattens their layers into one
// file tree, safely.
//
// Sources (Open): a registry reference through go-containerregistry's
// remote package (anonymous, docker config.json credentials through
// authn.DefaultKeychain or a given keychain, basic or bearer credentials;
// HTTPS, and plain HTTP only to loopback registries unless WithInsecure);
// an OCI image layout directory; a tar archive in docker save format
// (layers compressed or not) or an OCI layout in a tar.
//
// Flatten streams every layer once, base first, never holding a layer in
// memory, and applies it as a container runtime would: whiteouts and opaque
// directories remove what lower layers had, parent directories are
// resolved through symlinks inside the image root. The result, FS, keeps
// every file's metadata and the layer (DiffID) that introduced it, and
// implements io/fs with symlinks resolved inside the root. File contents
// are kept only for the files a Want function asks for as they stream past
// (osv-scalibr style: extractors say which files they need, the core walks
// once); FS.Extract fetches more later, re-reading only the layers that
// hold them, each up to the last entry needed.
//
// Hostile input is refused with an error wrapping a sentinel (ErrPathTraversal,
// ErrSymlinkEscape, ErrHardlinkTarget, ErrCompressionRatio, ErrExpandedTooLarge,
// ErrFileTooLarge, ErrTooManyEntries, ErrCorrupt, ErrDigestMismatch, ...)
// and, for layer content, a *LayerError naming the layer and entry. Memory
// is bounded by the number of entries (Limits.MaxEntries), time by the
// decompressed bytes (Limits.MaxExpandedBytes, Limits.MaxRatio), disk by
// Limits.MaxExtractBytes. Symlinks are data: absolute targets resolve from
// the image root, a relative target that climbs out of the root is refused
// when the layer is read (as moby does), and nothing is ever created on the
// host but the extracted files, under names of our own.
//
// Written by hand, and why: go-containerregistry's mutate.Extract flattens
// whiteouts but yields one tar stream with no layer attribution, no limits
// and no symlink resolution, and its stdlib gzip is slower than
// klauspost/compress; the flattening here is small and fully tested. The
// archive reader indexes the tar once and reads blobs as sections, where
// go-containerregistry's tarball package rescans the archive per blob and
// recompresses uncompressed layers to compute a manifest.
//
// What it is not: it finds no packages (package inventory does), and it
// never runs or mounts anything.
package image
