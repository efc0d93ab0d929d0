package erofs

// Data layouts as plans. A regular file's data is written when it is
// added, so its layout is first planned then: by newFlatPlan for a file
// stored uncompressed, by the compression pipeline for a compressed one
// (zwriter.go). Close's planning step (layout.planInodes) settles every
// inode's layout with its final metadata and records it in the inode:
// whether its tail is inline, whether it is compressed and, for a
// compressed file, the index format in its zfile. Everything after it asks
// the inode's rule (layout.rule) and never branches on the layout itself:
// the record size (placeMetadata), the data blocks Close writes
// (writeReserved) and the record's layout, i_u and what follows its xattrs
// (record). A new layout, such as chunk-based files, is one more rule type
// and a case in rule.
//
// The layouts are those of Documentation/filesystems/erofs.rst and
// fs/erofs/erofs_fs.h: FLAT_PLAIN, FLAT_INLINE (tail packing) and the
// compressed layouts with full or compact indexes.

import (
	"fmt"
	"math"
	"slices"
)

// flatPlan is where the data of a file stored uncompressed goes: blocks
// whole blocks from block start (-1 when there are none), and the tail,
// when inline, in the inode's block.
type flatPlan struct {
	start, blocks int64
	inline        bool
}

// newFlatPlan places size bytes stored uncompressed from block next: whole
// blocks there, and the tail inline in the inode's block when it fits
// with meta bytes of inode core and xattrs (unless noInline).
func newFlatPlan(size int64, meta, bs int, noInline bool, next int64) (flatPlan, error) {
	tail := size % int64(bs)
	fp := flatPlan{start: -1, blocks: size / int64(bs)}
	fp.inline = !noInline && tail > 0 && meta+int(tail) <= bs
	if tail > 0 && !fp.inline {
		fp.blocks++
	}
	if next+fp.blocks > math.MaxUint32 {
		return flatPlan{}, fmt.Errorf("image exceeds %d blocks", uint64(math.MaxUint32))
	}
	if fp.blocks > 0 {
		fp.start = next
	}
	return fp, nil
}

// dataRule is the code of one data layout. Its methods take the inode the
// planning step gave that layout.
type dataRule interface {
	// format returns the layout for i_format and the value of i_u.
	format(l *layout, n *inode) (layout uint16, u uint32)
	// recordSize is the size of the inode's record in the metadata area:
	// core, xattrs and what follows them.
	recordSize(l *layout, n *inode) int64
	// reservedBlock is the first of the data blocks Close writes for the
	// inode, if the planning step reserved any.
	reservedBlock(l *layout, n *inode) int64
	// writeReserved writes those blocks, but for the last one's padding.
	writeReserved(l *layout, id uint32, n *inode) error
	// appendInline appends to b, which ends with the inode's xattrs, the
	// rest of its record.
	appendInline(l *layout, b []byte, id uint32, n *inode) ([]byte, error)
}

// rule returns the rule of n's planned layout.
func (l *layout) rule(n *inode) dataRule {
	switch {
	case n.flags&flagZ != 0 && l.w.zf(n).isWhole():
		return wholeFragment{}
	case n.flags&flagZ != 0 && l.w.zf(n).full:
		return compressedFull{}
	case n.flags&flagZ != 0:
		return compressedCompact{}
	case n.flags&flagChunk != 0:
		return chunkBased{}
	case n.inline():
		return flatInline{}
	default:
		return flatPlain{}
	}
}

// flatPlain stores data in whole blocks from i_u (FLAT_PLAIN); it is also
// the layout of inodes without data, whose i_u is a device number or 0.
type flatPlain struct{ flat }

func (flatPlain) format(_ *layout, n *inode) (uint16, uint32) {
	switch n.mode & ModeTypeMask {
	case ModeRegular, ModeDir, ModeSymlink:
		if n.startBlk() >= 0 {
			return LayoutFlatPlain, n.u
		}
	case ModeCharDevice, ModeBlockDevice:
		return LayoutFlatPlain, n.u
	}
	return LayoutFlatPlain, 0
}

func (flatPlain) appendInline(_ *layout, b []byte, _ uint32, _ *inode) ([]byte, error) {
	return b, nil
}

// flatInline stores whole blocks from i_u (NULL_ADDR for none) and the
// tail in the inode's block, after its xattrs (FLAT_INLINE).
type flatInline struct{ flat }

func (flatInline) format(_ *layout, n *inode) (uint16, uint32) {
	if n.startBlk() >= 0 {
		return LayoutFlatInline, n.u
	}
	return LayoutFlatInline, nullAddr
}

func (flatInline) appendInline(l *layout, b []byte, id uint32, n *inode) ([]byte, error) {
	w := l.w
	tailLen := n.tailLen(w.bs)
	switch n.mode & ModeTypeMask {
	case ModeRegular:
		start := len(b)
		b = append(b, make([]byte, tailLen)...)
		if err := w.spool.readAt(b[start:], n.data); err != nil {
			return nil, err
		}
	case ModeSymlink:
		link := *w.links.at(uint32(n.data))
		b = append(b, link[len(link)-tailLen:]...)
	case ModeDir:
		var last []byte
		if err := l.dirBlocks(id, func(blk []byte) error { last = blk; return nil }); err != nil {
			return nil, err
		}
		b = append(b, last...)
	}
	return b, nil
}

// flat is what the flat layouts share: the data, but for an inline tail,
// is in whole blocks from the inode's first data block.
type flat struct{}

func (flat) recordSize(l *layout, n *inode) int64 {
	w := l.w
	return int64(w.coreSize(n) + w.ibody(n) + n.tailLen(w.bs))
}

func (flat) reservedBlock(_ *layout, n *inode) int64 { return n.startBlk() }

// writeReserved writes the blocks of a directory, a symlink target or a
// regular file's tail that no longer fit inline.
func (flat) writeReserved(l *layout, id uint32, n *inode) error {
	w := l.w
	bs := int64(w.bs)
	switch n.mode & ModeTypeMask {
	case ModeDir:
		full := n.size / bs
		var i int64
		return l.dirBlocks(id, func(b []byte) error {
			if i < full || !n.inline() {
				i++
				return l.write(b)
			}
			return nil
		})
	case ModeSymlink:
		link := *w.links.at(uint32(n.data))
		end := len(link) - n.tailLen(w.bs)
		l.scratch = append(l.scratch[:0], link[:end]...)
		return l.write(l.scratch)
	case ModeRegular:
		tail := slices.Grow(l.scratch[:0], int(n.size%bs))[:n.size%bs]
		l.scratch = tail
		if err := w.spool.readAt(tail, n.data); err != nil {
			return err
		}
		return l.write(tail)
	}
	return nil
}

// compressedFull stores a compressed file with 8-byte logical cluster
// indexes (COMPRESSED_FULL).
type compressedFull struct{ compressed }

func (compressedFull) format(l *layout, n *inode) (uint16, uint32) {
	return LayoutCompressedFull, l.compressedBlocks(n)
}

// compressedCompact stores a compressed file with compact indexes
// (COMPRESSED_COMPACT).
type compressedCompact struct{ compressed }

func (compressedCompact) format(l *layout, n *inode) (uint16, uint32) {
	return LayoutCompressedCompact, l.compressedBlocks(n)
}

// compressedBlocks is a compressed inode's i_u: its physical blocks,
// counting the block of an inline cluster that did not fit.
func (l *layout) compressedBlocks(n *inode) uint32 {
	z := l.w.zf(n)
	u := uint32(z.blocks)
	if z.homeless {
		u++
	}
	return u
}

// compressed is what the compressed layouts share: the record ends with
// the map header, the indexes and the inline cluster (see zlayout.go).
type compressed struct{}

func (compressed) recordSize(l *layout, n *inode) int64 {
	w := l.w
	return int64(roundUp(w.coreSize(n)+w.ibody(n), 8) + l.zmetaSize(n))
}

func (compressed) reservedBlock(l *layout, n *inode) int64 { return l.w.zf(n).homeBlk }

func (compressed) writeReserved(l *layout, _ uint32, n *inode) error { return l.writeHomeless(n) }

func (compressed) appendInline(l *layout, b []byte, _ uint32, n *inode) ([]byte, error) {
	w := l.w
	return l.appendZmeta(b, len(b)-w.coreSize(n)-w.ibody(n), n)
}
