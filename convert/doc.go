// Package convert turns OCI image layers into the images this module
// writes.
//
// TarToEROFS reads a layer — a tar stream, plain or gzip- or
// zstd-compressed (its LayerEncoding) — and writes an EROFS image, plain or
// compressed (erofs.WriterOptions.Compression), in one streaming pass:
// decompression runs on one core while the tar is parsed and written on
// another, and compression, when asked for, on every core. It handles
// what real registry layers hold: PAX and GNU long names, xattrs in PAX
// records, hard-link chains, duplicate entries (the last wins, as
// extraction would), implicit parent directories and OCI whiteouts, which
// become overlayfs whiteouts by default. Bad input gives an error (an *EntryError) naming
// the tar entry and its offset in the uncompressed stream.
//
// DirToEROFS does the same for a directory tree on the local file system.
//
// TarToNydus reads a layer the same way (one tar walker serves both) and
// writes a Nydus data blob with the layer's RAFS v6 bootstrap inlined;
// ReadNydusLayer, MergeNydus, UnpackNydus and WriteBlobCache read such
// layers back, merge them into an image bootstrap, unpack a bootstrap to a
// tar and write a blob's uncompressed cache file. TarToNydusTarfs writes a
// layer's tarfs bootstrap instead, whose blob is the uncompressed tar
// itself (nydus-snapshotter's tarfs mode); UnpackNydusTarfs reads it back.
//
// The package converts layers only and has no network code. Package
// convert/image converts whole images and indexes, from registries and OCI
// layouts, with these functions.
package convert
