package rafs

import (
	"errors"
	"fmt"

	"github.com/rafs-dev/rafs/blob"
)

// ChunkDict is a chunk dictionary (nydus-image --chunk-dict): the chunks of a prior
// bootstrap, indexed by (digest, uncompressed size), so a builder can
// reference a chunk that already exists in one of the dictionary's blobs
// instead of storing it again.
//
// How a hit is used: the builder calls Lookup for each chunk it is about to
// write; on a hit it calls Use, which copies the dictionary blob's
// blob-table entry into the bootstrap being built (once, matched by blob
// id, appended after the blobs already there) and returns the chunk with
// BlobIndex pointing at that entry and the given file offset. The chunk
// keeps the dictionary blob's CI index and offsets, so nydusd and the
// kernel read it from the dictionary blob, which must therefore be
// available wherever the new image is (nydus-snapshotter appends the
// dictionary blob's digest to the image manifest's layers). When layer
// bootstraps built this way are merged, Merge keeps each dictionary blob
// once, by id.
//
// A dictionary applies only to bootstraps with the same chunk size and
// explicit-uid/gid setting, and its chunks only to blobs with the same
// digester (Compatible checks this). A ChunkDict is read-only after
// NewChunkDict and safe for concurrent Lookup; Use modifies its
// Bootstrap argument.
type ChunkDict struct {
	chunkSize uint32
	flags     uint64
	blobs     []BlobInfo
	chunks    map[dictKey]ChunkRecord
}

// dictKey identifies a chunk by content.
type dictKey struct {
	digest [32]byte
	size   uint32
}

// NewChunkDict indexes the chunks of b. When several chunks have the same
// digest and size, the first in visit order (Bootstrap.Walk) wins.
func NewChunkDict(b *Bootstrap) (*ChunkDict, error) {
	if b == nil || b.Root == nil {
		return nil, errors.New("rafs: chunk dict: no bootstrap")
	}
	if !blob.ValidChunkSize(uint64(b.ChunkSize)) {
		return nil, fmt.Errorf("rafs: chunk dict: invalid chunk size %#x", b.ChunkSize)
	}
	if b.Flags&FlagTarfsMode != 0 {
		return nil, errors.New("rafs: chunk dict: a tarfs bootstrap has no chunk digests to look chunks up by")
	}
	d := &ChunkDict{chunkSize: b.ChunkSize, flags: b.Flags, blobs: b.Blobs, chunks: map[dictKey]ChunkRecord{}}
	err := b.Visit(func(dirs []*Node, n *Node) error {
		for i, c := range n.inode().Chunks {
			if int(c.BlobIndex) >= len(b.Blobs) {
				return fmt.Errorf("rafs: chunk dict: %s: chunk %d references blob %d of %d", AppendPath(nil, dirs, n), i, c.BlobIndex, len(b.Blobs))
			}
			k := dictKey{c.Digest, c.UncompressedSize}
			if _, ok := d.chunks[k]; !ok {
				d.chunks[k] = c
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Len returns the number of distinct chunks in the dictionary.
func (d *ChunkDict) Len() int { return len(d.chunks) }

// Blobs returns the dictionary's blob table (do not modify it).
func (d *ChunkDict) Blobs() []BlobInfo { return d.blobs }

// Compatible reports why the dictionary cannot serve bootstrap b (nil if it
// can): chunk size and the explicit-uid/gid flag must be equal.
func (d *ChunkDict) Compatible(b *Bootstrap) error {
	if b.ChunkSize != d.chunkSize {
		return fmt.Errorf("rafs: chunk dict has chunk size %#x, bootstrap %#x", d.chunkSize, b.ChunkSize)
	}
	if (b.Flags^d.flags)&FlagExplicitUIDGID != 0 {
		return errors.New("rafs: chunk dict and bootstrap differ in the EXPLICIT_UID_GID flag")
	}
	return nil
}

// Lookup finds a chunk by digest and uncompressed size. It returns the
// dictionary's chunk (its BlobIndex indexes Blobs) and that blob's entry.
func (d *ChunkDict) Lookup(digest [32]byte, size uint32) (ChunkRecord, BlobInfo, bool) {
	c, ok := d.chunks[dictKey{digest, size}]
	if !ok {
		return ChunkRecord{}, BlobInfo{}, false
	}
	return c, d.blobs[c.BlobIndex], true
}

// LookupDigester is Lookup restricted to chunks whose blob uses digester
// dg (a chunk digest only identifies content under the same algorithm).
func (d *ChunkDict) LookupDigester(digest [32]byte, size uint32, dg blob.Digester) (ChunkRecord, BlobInfo, bool) {
	c, bi, ok := d.Lookup(digest, size)
	if !ok || bi.Digester != dg {
		return ChunkRecord{}, BlobInfo{}, false
	}
	return c, bi, true
}

// Use makes dictionary chunk c (from Lookup) usable in bootstrap b at file
// offset fileOffset: it adds c's blob-table entry, unchanged, to b.Blobs
// unless a blob with that id is already there, and returns c with BlobIndex set to that entry and
// FileOffset set. It fails if b would exceed MaxBlobs.
func (d *ChunkDict) Use(b *Bootstrap, c ChunkRecord, fileOffset uint64) (ChunkRecord, error) {
	if int(c.BlobIndex) >= len(d.blobs) {
		return ChunkRecord{}, fmt.Errorf("rafs: chunk dict: chunk references blob %d of %d", c.BlobIndex, len(d.blobs))
	}
	bi := d.blobs[c.BlobIndex]
	idx := -1
	for i := range b.Blobs {
		if b.Blobs[i].ID == bi.ID {
			idx = i
			break
		}
	}
	if idx < 0 {
		if len(b.Blobs) >= MaxBlobs {
			return ChunkRecord{}, fmt.Errorf("rafs: chunk dict: bootstrap already has %d blobs", len(b.Blobs))
		}
		idx = len(b.Blobs)
		b.Blobs = append(b.Blobs, bi)
	}
	c.BlobIndex = uint32(idx)
	c.FileOffset = fileOffset
	return c, nil
}
