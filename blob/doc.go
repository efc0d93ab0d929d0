// Package blob reads and writes Nydus data blobs, the per-layer blobs of a
// RAFS v6 (Nydus) image.
//
// A blob is written append-only (it may be streamed to a pipe or a
// registry upload). The layout [Writer] produces is the one nydus-snapshotter
// and nydusify get from nydus-image (tar-rafs, --blob-inline-meta,
// --features blob-toc); each section is followed by a 512-byte GNU tar
// header naming it:
//
//	chunk data                  "image.blob"
//	CI array (zstd or raw)
//	CI header (4096 bytes)      "blob.meta"
//	chunk digests (32 × n)      "blob.digest"
//	bootstrap (zstd or raw)     "image.boot"
//	TOC entries (128 × k)       "rafs.blob.toc"
//
// A layer without file data has only the bootstrap and a one-entry TOC.
// Chunks are deduplicated by digest and size within a blob; their CI
// index is the order of first write, their uncompressed offsets are
// 4 KiB aligned and cumulative, their stored bytes contiguous. A chunk is
// stored compressed only when that is strictly smaller.
//
// The blob id is the hex SHA-256 of the complete blob (its OCI layer
// digest). nydus-image itself leaves the digest array out of that hash;
// this package does not.
//
// [Reader] parses blobs from nydus-image and from [Writer]: through the
// TOC, or by walking tar headers backwards when there is none, or from a
// trailing CI header for blobs without tar headers. It decodes V1 and V2
// chunk infos and verifies section digests, chunk digests and CRCs.
// Zran, batch and encrypted chunks are recognised but not decoded.
//
// On-disk structures are in format.go. The names a blob and a bootstrap's
// blob table share are this package's: the algorithm ids ([Compressor],
// [Digester], with [Digester.Sum] the chunk digest), the BlobFeatures bits
// ([Features]) and the chunk-size bounds ([ValidChunkSize]); package rafs
// uses them. A blob's chunks appear under three names: [ChunkInfo] is a
// chunk-info (CI) entry as stored, [StoredChunk] is what [Writer.Add]
// reports, and rafs.ChunkRecord is a bootstrap's chunk-table record.
package blob
