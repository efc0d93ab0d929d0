package rafs

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/erofs"
)

// Bootstrap is the in-memory model of a RAFS v6 bootstrap: the file tree,
// the blobs its regular files' chunks live in, and the superblock settings.
// WriteTo encodes it; Read decodes one.
type Bootstrap struct {
	// ChunkSize is the filesystem chunk size: a power of two from
	// blob.MinChunkSize to blob.MaxChunkSize. Every regular file is cut into chunks
	// of this size (the last one shorter), and every blob-table entry
	// carries it.
	ChunkSize uint32
	// Flags is the extended superblock's s_flags (Flag* constants): one
	// compression flag, one hash flag, FlagExplicitUIDGID,
	// FlagInlinedChunkDigest, FlagEncryptionNone, ... WriteTo adds
	// FlagHasXattr when any inode has extended attributes; it never clears
	// a flag. FlagTarfsMode makes a tarfs bootstrap, with 512-byte blocks
	// (see Bootstrap.BlockSize) and plain tars as blobs.
	Flags uint64
	// Blobs is the blob table: blob i is EROFS device i+1 and device slot
	// i. ChunkRecord.BlobIndex indexes this slice.
	Blobs []BlobInfo
	// Root is the root directory. Its Name is ignored.
	Root *Node
}

// BlobInfo is one blob-table entry (RafsV6Blob). The entry's blob_index and
// chunk_size fields are implied by its position and Bootstrap.ChunkSize.
type BlobInfo struct {
	// ID is the blob id: 64 ASCII characters (normally the hex sha256 of
	// the blob; per-layer bootstraps inlined in a blob use 64 'x'). It is
	// also the device slot's tag.
	ID string
	// ChunkCount is the number of entries in the blob's chunk-info (CI)
	// array; chunk CI indexes are below it. It must not be 0.
	ChunkCount uint32
	// Compressor and Digester are the blob's chunk compression and digest
	// algorithms.
	Compressor blob.Compressor
	Digester   blob.Digester
	// Features are the blob's BlobFeatures; blob.FeatureAligned is
	// required, except in a tarfs bootstrap (FlagTarfsMode), whose blobs
	// are plain tars with blob.FeatureTarfs and without ALIGNED.
	Features blob.Features
	// CompressedSize is the size of the blob file as known to the builder.
	CompressedSize uint64
	// UncompressedSize is the end of the last chunk in the blob's
	// uncompressed address space, a non-zero multiple of the bootstrap's
	// block size (Bootstrap.BlockSize); for a tarfs blob, the tar's size.
	UncompressedSize uint64
	// TOCSize and TOCDigest describe the blob's table of contents (size
	// including its tar header; sha256); zero if unknown.
	TOCSize   uint32
	TOCDigest [32]byte
	// CIOffset, CICompressedSize, CIUncompressedSize and CICompressor
	// locate and describe the blob's compressed CI array.
	CIOffset           uint64
	CICompressedSize   uint64
	CIUncompressedSize uint64
	CICompressor       blob.Compressor
	// MetaDigest, MetaSize, CipherIV and CipherAlgo are the zran and
	// encryption fields, kept as raw values (zero for native blobs).
	MetaDigest [32]byte
	MetaSize   uint64
	CipherIV   uint64
	CipherAlgo uint32
}

// ChunkRecord is one chunk of a regular file: the fields of a chunk-table
// record.
// Chunks are identified on disk by (BlobIndex, Index); the inode's chunk
// index stores those and UncompressedOffset divided by the block size.
type ChunkRecord struct {
	// Digest is the chunk digest (BLAKE3 or SHA-256 of the uncompressed
	// data, per the blob's Digester).
	Digest [32]byte
	// BlobIndex is the blob's position in Bootstrap.Blobs (0-based).
	BlobIndex uint32
	// Flags holds ChunkFlag* bits. ChunkFlagHasCRC32 must be set when
	// CRC32 is non-zero.
	Flags uint32
	// CompressedOffset and CompressedSize locate the chunk in the blob
	// file.
	CompressedOffset uint64
	CompressedSize   uint32
	// UncompressedOffset (a multiple of the block size: 4096, or 512 in a
	// tarfs bootstrap, where it is the data's offset in the tar) and
	// UncompressedSize locate it in the blob's uncompressed address
	// space.
	UncompressedOffset uint64
	UncompressedSize   uint32
	// FileOffset is the chunk's offset in the file: i × ChunkSize for
	// the file's i-th chunk.
	FileOffset uint64
	// Index is the chunk's CI index in its blob.
	Index uint32
	// CRC32 is the CRC-32C of the uncompressed data (with
	// ChunkFlagHasCRC32), else 0.
	CRC32 uint32
}

// inlinesChunkDigests reports whether the blob carries its chunk digests
// (blob.FeatureInlinedChunkDigest), as FlagInlinedChunkDigest requires of
// every blob of a bootstrap.
func (bi *BlobInfo) inlinesChunkDigests() bool {
	return bi.Features&blob.FeatureInlinedChunkDigest != 0
}

// checkChunkSize reports why cs cannot be a bootstrap's chunk size.
func checkChunkSize(cs uint32) error {
	if !blob.ValidChunkSize(uint64(cs)) {
		return fmt.Errorf("%#x is not a power of two in [%#x, %#x]", cs, blob.MinChunkSize, blob.MaxChunkSize)
	}
	return nil
}

// NewBlobInfo returns the blob-table entry, under id, of the blob that
// info describes (as blob.Writer reports it). Its TOC fields are info's,
// which are zero in the Info a blob.BootstrapFunc is given.
func NewBlobInfo(id string, info *blob.Info) BlobInfo {
	return BlobInfo{
		ID:                 id,
		ChunkCount:         info.ChunkCount,
		Compressor:         info.Compressor,
		Digester:           info.Digester,
		Features:           info.Features,
		CompressedSize:     info.CompressedSize,
		UncompressedSize:   info.UncompressedSize,
		TOCSize:            info.TOCSize,
		TOCDigest:          info.TOCDigest,
		CIOffset:           info.CIOffset,
		CICompressedSize:   info.CICompressedSize,
		CIUncompressedSize: info.CIUncompressedSize,
		CICompressor:       info.CICompressor,
	}
}

// NewChunkRecord returns the chunk-table record of a chunk that blob.Writer
// stored as c, in blob blobIndex of the blob table, at fileOffset in its
// file. Like nydus-image's records, it carries no CRC-32.
func NewChunkRecord(c *blob.StoredChunk, blobIndex uint32, fileOffset uint64) ChunkRecord {
	r := ChunkRecord{
		Digest:             c.Digest,
		BlobIndex:          blobIndex,
		CompressedOffset:   c.CompressedOffset,
		CompressedSize:     c.CompressedSize,
		UncompressedOffset: c.UncompressedOffset,
		UncompressedSize:   c.UncompressedSize,
		FileOffset:         fileOffset,
		Index:              c.Index,
	}
	if c.Compressed {
		r.Flags = ChunkFlagCompressed
	}
	return r
}

// Node is one entry of the tree.
type Node struct {
	// Name is the entry's name in its parent (1-255 bytes, no '/' or NUL,
	// not "." or "..").
	Name string
	// Mode is the Unix mode: one of erofs.ModeRegular, ModeDir,
	// ModeSymlink, ModeCharDevice, ModeBlockDevice, ModeFIFO, ModeSocket
	// ORed with the permission bits (07777).
	Mode uint32
	// UID and GID are the owner.
	UID, GID uint32
	// Mtime and MtimeNsec are the modification time (nanoseconds below
	// 1e9).
	Mtime     int64
	MtimeNsec uint32
	// Size is a regular file's size in bytes. It is ignored for other
	// types (Read sets it to 0 for them).
	Size uint64
	// Devmajor and Devminor are a device node's numbers (major ≤ 4095,
	// minor ≤ 1048575).
	Devmajor, Devminor uint32
	// Xattrs holds the extended attributes by full name (user.*, trusted.*,
	// security.*, system.posix_acl_access, system.posix_acl_default). They
	// are stored inline, sorted by name.
	Xattrs map[string][]byte
	// Linkname is a symlink's target (1-4096 bytes).
	Linkname string
	// Chunks are a regular file's chunks in file order:
	// ceil(Size/ChunkSize) of them.
	Chunks []ChunkRecord
	// Children are a directory's entries, in any order (they are sorted
	// by name on disk; Read returns them sorted).
	Children []*Node
	// Link, when non-nil, makes this node another name (hard link) of the
	// inode described by Link: every field except Name is taken from Link,
	// which must not itself have a Link and must not be a directory. Link
	// is normally in the tree too; if it is not (say a merge removed that
	// name), the inode still exists with Link's attributes. Read sets
	// Link on every name of a shared inode except the first in visit
	// order.
	Link *Node
}

// IsDir reports whether n is a directory.
func (n *Node) IsDir() bool { return n.Mode&erofs.ModeTypeMask == erofs.ModeDir }

// IsRegular reports whether n is a regular file.
func (n *Node) IsRegular() bool { return n.Mode&erofs.ModeTypeMask == erofs.ModeRegular }

// inode returns the node whose attributes n's inode has: n.Link if set,
// else n.
func (n *Node) inode() *Node {
	if n.Link != nil {
		return n.Link
	}
	return n
}

// Child returns the child of directory n named name, or nil.
func (n *Node) Child(name string) *Node {
	for _, c := range n.Children {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Lookup returns the node at a slash-separated path relative to b.Root
// ("" or "/" is the root), or nil. It does not follow symlinks.
func (b *Bootstrap) Lookup(path string) *Node {
	n := b.Root
	for path != "" {
		var part string
		part, path, _ = strings.Cut(path, "/")
		if part == "" {
			continue
		}
		if n == nil || !n.IsDir() {
			return nil
		}
		n = n.Child(part)
	}
	return n
}

// Walk calls fn for every node of the tree in nydus's visit order (the
// order in which nydus-image numbers inodes): the root, then each
// directory's children in name order, then the child directories
// recursively in name order. path is the node's slash-separated path ("/" for the root).
// Walk stops at the first error fn returns.
//
// Each call gets a new path string, so the work grows with the length of
// the paths (the square of the depth for a deep tree); Visit passes the
// directories instead and costs the same for every node.
func (b *Bootstrap) Walk(fn func(path string, n *Node) error) error {
	var buf []byte
	return b.Visit(func(dirs []*Node, n *Node) error {
		buf = AppendPath(buf[:0], dirs, n)
		return fn(string(buf), n)
	})
}

// Visit calls fn for every node of the tree in the order of Walk, with the
// directories above the node: dirs[0] is the root and dirs[len(dirs)-1]
// the node's parent (dirs is empty for the root). dirs is only valid
// during the call and must not be modified. Between two calls it changes
// only at its end, as a stack: directories are left in the reverse order
// they were entered, and entered one at a time. Visit stops at the first
// error fn returns.
//
// Visit builds no paths and works without recursion; its memory grows
// with the depth of the tree and the size of its directories only. Use
// AppendPath for the path of a node that needs one.
func (b *Bootstrap) Visit(fn func(dirs []*Node, n *Node) error) error {
	if b.Root == nil {
		return nil
	}
	if err := fn(nil, b.Root); err != nil {
		return err
	}
	// A frame is a directory whose children were visited: kids sorted,
	// next the index of the next one to look at for a subdirectory.
	type frame struct {
		kids []*Node
		next int
	}
	dirs := []*Node{b.Root}
	var stack []frame
	enter := func(d *Node) error {
		kids := sortedChildren(d)
		for _, c := range kids {
			if err := fn(dirs, c); err != nil {
				return err
			}
		}
		stack = append(stack, frame{kids: kids})
		return nil
	}
	if err := enter(b.Root); err != nil {
		return err
	}
	for len(stack) > 0 {
		f := &stack[len(stack)-1]
		for f.next < len(f.kids) && (f.kids[f.next].Link != nil || !f.kids[f.next].IsDir()) {
			f.next++
		}
		if f.next == len(f.kids) {
			stack = stack[:len(stack)-1]
			dirs = dirs[:len(dirs)-1]
			continue
		}
		c := f.kids[f.next]
		f.next++
		dirs = append(dirs, c)
		if err := enter(c); err != nil {
			return err
		}
	}
	return nil
}

// AppendPath appends to dst the slash-separated path of node n below the
// directories dirs, as Visit passes them: "/" for the root, else "/" and
// the names of dirs[1:] and n joined by "/".
func AppendPath(dst []byte, dirs []*Node, n *Node) []byte {
	if len(dirs) == 0 {
		return append(dst, '/')
	}
	for _, d := range dirs[1:] {
		dst = append(dst, '/')
		dst = append(dst, d.Name...)
	}
	dst = append(dst, '/')
	return append(dst, n.Name...)
}

// sortedChildren returns n's children sorted by name (bytewise), without
// modifying n: n.Children itself when it is sorted already, else a sorted
// copy.
func sortedChildren(n *Node) []*Node {
	if slices.IsSortedFunc(n.Children, compareNames) {
		return n.Children
	}
	kids := slices.Clone(n.Children)
	slices.SortStableFunc(kids, compareNames)
	return kids
}

func compareNames(a, b *Node) int { return strings.Compare(a.Name, b.Name) }

// checkName validates a directory entry name.
func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty name")
	case len(name) > MaxNameLen:
		return fmt.Errorf("name of %d bytes is longer than %d", len(name), MaxNameLen)
	case name == "." || name == "..":
		return fmt.Errorf("name %q is reserved", name)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("name %q contains '/' or NUL", name)
	}
	return nil
}

// chunkCount returns ceil(size / chunkSize), without overflow.
func chunkCount(size uint64, chunkSize uint32) uint64 {
	n := size / uint64(chunkSize)
	if size%uint64(chunkSize) != 0 {
		n++
	}
	return n
}
