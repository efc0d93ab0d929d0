// Package rafs reads and writes Nydus RAFS v6 bootstraps: the EROFS images
// that describe a container image's file tree while the file data lives in
// separate Nydus blobs, one EROFS extra device per blob.
//
// A Bootstrap is an in-memory tree (Node) plus the blob table (BlobInfo)
// its regular files' chunks (ChunkRecord) point into. WriteTo encodes it
// the way nydus-image does: EROFS superblock with the RAFS v6 compat flag,
// the 256-byte extended superblock at 1152, device slots at 1408, the blob
// table, a prefetch table holding the root, a meta area that starts with
// one unused block so the root is nid 128, extended inodes placed with
// nydus-image's meta-area allocator, chunk-based regular files whose 8-byte
// chunk indexes encode (CI index, blob index + 1, block), and the v5-style
// chunk table sorted by digest. Output is deterministic.
//
// Every EROFS record of a bootstrap (superblock, device slots, inodes,
// directory blocks, xattrs, chunk indexes) is encoded and decoded by
// package erofs; this package adds only what RAFS v6 adds: the extended
// superblock, the blob table, the chunk table, the prefetch table, the
// placement of the inodes and what the chunk indexes carry. Nydus defines
// these in its source rather than its docs: RafsV6SuperBlockExt,
// RafsV6Device, RafsV6BlobTable, RafsV6InodeChunkAddr and
// RafsV6PrefetchTable in rafs/src/metadata/layout/v6.rs, the chunk-table
// record RafsV5ChunkInfo in rafs/src/metadata/layout/v5.rs, and the layout
// nydus-image writes in builder/src/core/v6.rs (github.com/dragonflyoss/nydus).
//
// Read parses a bootstrap back into the model and validates what nydusd
// validates. Merge overlays per-layer bootstraps with OCI whiteout rules
// into the merged bootstrap of an image. ChunkDict indexes a prior
// bootstrap's chunks so a builder can reuse them.
//
// The kernel mounts a bootstrap directly, with each blob's uncompressed
// data (every chunk at its uncompressed offset) as a device:
//
//	mount -t erofs -o ro,device=blob0.data,device=blob1.data image.boot /mnt
//
// Tarfs bootstraps (FlagTarfsMode, what nydus-image create --type
// tar-tarfs writes for nydus-snapshotter's tarfs mode) are read and
// written too: their blocks are 512 bytes, their blobs plain tars that
// the chunk indexes point into, and they have no prefetch table.
//
// This package does not read or write blobs themselves.
package rafs
