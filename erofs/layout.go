package erofs

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"fmt"
	"hash"
	"math"
	"slices"
	"sort"
)

// Close lays out and writes the directories, the inodes and the superblock,
// finishing the image. It releases the Writer's temporary storage even when
// it fails. It does not close the underlying io.WriterAt.
//
// It runs in phases: the file data (the compression pipeline, if any,
// writes what is queued and hands back the data area and where each file
// went), the data made at close (closeData), the metadata layout (plan,
// place and write directories, inodes and xattrs) and the superblock.
func (w *Writer) Close() error {
	if w.done {
		return w.err
	}
	w.done = true
	defer w.spool.close()
	defer w.dropTree()
	if w.zp != nil {
		if w.err == nil && w.zp.sink.frags != nil {
			w.err = w.packFragments()
		}
		if w.err != nil {
			w.zp.pipe.Fail(w.err) // what is queued will not be used
		}
		if err := w.closePipe(); err != nil && w.err == nil {
			w.err = err
		}
	}
	if w.err == nil {
		w.err = w.finishChunks()
	}
	if w.err != nil {
		return w.err
	}
	if err := w.finish(); err != nil {
		w.err = err
		return err
	}
	return nil
}

// dropTree lets the garbage collector have the tree once Close is done
// with it; no method uses it after Close.
func (w *Writer) dropTree() {
	w.inodes, w.dents, w.names, w.index = arena[inode]{}, arena[dentry]{}, nameStore{}, dirIndex{}
	w.xattrs, w.xnames, w.links, w.zfiles = arena[xattrSet]{}, nil, arena[string]{}, nil
}

// layout holds the state of Close.
type layout struct {
	w          *Writer
	order      []uint32    // inodes breadth-first, each once; by position after placeMetadata
	start      []uint32    // start[d] to start[d+1]: directory d's entries in ents
	ents       []uint32    // live dentries, grouped by directory, sorted by name
	meta       []inodeMeta // by inode: what Close decides of each
	enc        xattrEncoder
	shared     []xattr
	isShared   map[string]bool   // by key(): xattrs in the shared area
	offs       map[string]uint32 // by key(): their ids
	xattrArea  []byte            // shared xattr entries, then the long prefix table
	xattrHdr   bool              // xattrArea lives in the header after the superblock
	xattrPos   int64             // byte offset of xattrArea in the image
	pfxOff     int64             // offset of the prefix table in xattrArea
	reserved   []uint32          // inodes with data blocks written by Close
	metaBlk    int64
	nidBase    int64      // byte offset NIDs count from, less metaBlk's (see headRoom)
	headRecs   [][2]int64 // records in the first block: offset in the image, length
	headBytes  []byte     // their bytes, in order
	metaLen    int64      // bytes of metadata area used
	anyXattr   bool
	sum        hash.Hash
	block      []byte    // a directory block being built
	pending    []pending // its entries
	scratch    []byte
	pclScratch []byte // pclusters read back from the spool
}

// inodeMeta is what Close decides of an inode besides its layout.
type inodeMeta struct {
	pos   int64  // offset of the record in the metadata area
	nlink uint32 // links: names, and for a directory its subdirectories' ".."
	ino   uint32 // the inode number, from 1 in walk order
}

// nid is inode id's number on disk, once placeMetadata has placed it.
func (l *layout) nid(id uint32) uint64 {
	return uint64((l.meta[id].pos + l.nidBase) / inodeSlotSize)
}

// pending is a directory entry waiting for its block to be written.
type pending struct {
	name []byte
	ino  uint32
}

// finish runs the phases of Close after the file data.
func (w *Writer) finish() error {
	if err := w.closeData(); err != nil {
		return err
	}
	l := &layout{w: w, sum: sha256.New()}
	total, err := l.plan()
	if err != nil {
		return err
	}
	if err := l.writeData(total); err != nil {
		return err
	}
	if err := l.writeHeader(total); err != nil {
		return err
	}
	w.size = total * int64(w.bs)
	return nil
}

// closeData is the phase of Close that writes data made at close, after
// the data of the added files and before the metadata is laid out, so
// that the planning step sees it as file data. Nothing does yet; a packed
// inode holding the tails of many files would be written here.
func (w *Writer) closeData() error { return nil }

// plan lays out the metadata: the inode order, the xattrs, each inode's
// data layout and the position of its record. It returns the image's size
// in blocks.
func (l *layout) plan() (int64, error) {
	w := l.w
	l.walk()
	l.planXattrs()
	if err := l.planInodes(); err != nil {
		return 0, err
	}
	l.placeMetadata()
	total := l.metaBlk + (l.metaLen+int64(w.bs)-1)/int64(w.bs)
	if total > math.MaxUint32 {
		return 0, fmt.Errorf("erofs: image of %d blocks exceeds the 32-bit block limit", total)
	}
	return total, nil
}

// writeData writes what plan laid out after the file data: the blocks
// Close makes and the metadata area, ending at block total.
func (l *layout) writeData(total int64) error {
	w := l.w
	if err := l.writeReserved(); err != nil {
		return err
	}
	if err := l.writeMetadata(); err != nil {
		return err
	}
	if err := w.out.flush(); err != nil {
		return err
	}
	if got := w.out.pos(); got != total*int64(w.bs) {
		return fmt.Errorf("erofs: internal error: wrote %d bytes, laid out %d", got, total*int64(w.bs))
	}
	return nil
}

// children returns directory d's live entries, sorted by name.
func (l *layout) children(d uint32) []uint32 { return l.ents[l.start[d]:l.start[d+1]] }

// walk orders the inodes breadth-first with sorted children, counts links
// and marks directories that hold whiteouts.
func (l *layout) walk() {
	w := l.w
	l.start, l.ents = w.group()
	l.meta = make([]inodeMeta, w.inodes.n)
	root := w.inodes.at(rootID)
	root.data = rootID
	root.flags |= flagVisited
	l.order = make([]uint32, 1, w.inodes.n)
	l.order[0] = rootID
	for i := 0; i < len(l.order); i++ {
		id := l.order[i]
		d := w.inodes.at(id)
		if !d.isDir() {
			continue
		}
		subdirs, whiteouts := 0, false
		for _, e := range l.children(id) {
			c := w.inodes.at(w.dents.at(e).ino)
			if c.isDir() {
				subdirs++
				c.data = int64(id)
			} else {
				l.meta[w.dents.at(e).ino].nlink++
				if c.mode&ModeTypeMask == ModeCharDevice && c.u == 0 {
					whiteouts = true
				}
			}
		}
		l.meta[id].nlink = uint32(2 + subdirs)
		for _, e := range l.children(id) {
			cid := w.dents.at(e).ino
			if c := w.inodes.at(cid); c.flags&flagVisited == 0 {
				c.flags |= flagVisited
				l.order = append(l.order, cid)
			}
		}
		if w.opts.WhiteoutOrigin && whiteouts && !hasXattr(w.xattrsOf(d), "trusted.overlay.origin") {
			w.setXattr(d, "trusted.overlay.origin", "")
		}
	}
	if w.packedID != noID {
		// The packed inode is in no directory (Documentation/filesystems/erofs.rst).
		l.order = append(l.order, w.packedID)
		l.meta[w.packedID].nlink = 1
	}
	for i, id := range l.order {
		m := &l.meta[id]
		m.ino = uint32(i + 1)
		if m.nlink > math.MaxUint16 {
			w.inodes.at(id).flags |= flagManyLinks
		}
	}
}

func hasXattr(xs []xattr, name string) bool {
	for _, x := range xs {
		if x.name == name {
			return true
		}
	}
	return false
}

// planXattrs picks shared xattrs and long prefixes and lays out the shared
// area and prefix table.
func (l *layout) planXattrs() {
	w := l.w
	if !w.opts.NoSharedXattrs {
		count := map[string]int{}
		for _, id := range l.order {
			for _, x := range w.xattrsOf(w.inodes.at(id)) {
				count[x.key()]++
			}
		}
		for _, id := range l.order {
			for _, x := range w.xattrsOf(w.inodes.at(id)) {
				if c := count[x.key()]; c > 2 {
					l.shared = append(l.shared, x)
					count[x.key()] = 0
				}
			}
		}
		sort.Slice(l.shared, func(i, j int) bool { return l.shared[i].key() < l.shared[j].key() })
	}
	l.isShared = make(map[string]bool, len(l.shared))
	for _, x := range l.shared {
		l.isShared[x.key()] = true
	}
	uses := map[string]int{}
	valueLens := map[string][]int{}
	for _, x := range l.shared {
		uses[x.name]++
		valueLens[x.name] = append(valueLens[x.name], len(x.value))
	}
	for _, id := range l.order {
		xs := w.xattrsOf(w.inodes.at(id))
		if len(xs) == 0 {
			continue
		}
		l.anyXattr = true
		l.splitXattrs(xs, func(x xattr, shared bool) {
			if !shared {
				uses[x.name]++
				valueLens[x.name] = append(valueLens[x.name], len(x.value))
			}
		})
	}
	l.enc.prefixes = chooseLongPrefixes(uses, valueLens)

	// The shared area, then the prefix table, in one byte string.
	l.offs = make(map[string]uint32, len(l.shared))
	for _, x := range l.shared {
		l.offs[x.key()] = uint32(len(l.xattrArea) / 4)
		l.xattrArea = l.enc.appendEntry(l.xattrArea, x)
	}
	l.pfxOff = int64(len(l.xattrArea))
	l.xattrArea = l.enc.appendPrefixTable(l.xattrArea)
	_, _, records := l.zconfig()
	hdr := int64(SuperblockOffset + superblockSize + len(records))
	if len(w.opts.Devices) > 0 {
		hdr = int64(headerEnd(w.opts.Compression != nil, len(w.opts.Devices)))
	}
	if hdr+int64(len(l.xattrArea)) <= w.dataStart*int64(w.bs) {
		l.xattrHdr = true
		l.xattrPos = hdr
	}

	for _, id := range l.order {
		n := w.inodes.at(id)
		if n.xattr == 0 || len(w.xattrsOf(n)) == 0 {
			continue
		}
		s := w.xattrs.at(n.xattr - 1)
		size := xattrIbodyHeaderSize
		l.splitXattrs(s.list, func(x xattr, shared bool) {
			if shared {
				size += 4
			} else {
				size += l.enc.entrySize(x)
			}
		})
		s.ibody = int32(size)
		if !w.opts.NoXattrFilter {
			s.filter = xattrFilter(s.list)
		}
	}
}

// splitXattrs calls fn with each of an inode's xattrs, in order, and
// whether it is stored in the shared area: a shared one is, unless the
// inode already refers to the most shared xattrs it can.
func (l *layout) splitXattrs(xs []xattr, fn func(x xattr, shared bool)) {
	n := 0
	for _, x := range xs {
		shared := n < xattrMaxShared && l.isShared[x.key()]
		if shared {
			n++
		}
		fn(x, shared)
	}
}

// entries calls fn with each entry of directory d in on-disk order: by
// name, bytewise, "." and ".." included.
func (l *layout) entries(d uint32, fn func(name []byte, ino uint32) error) error {
	w := l.w
	dots := [2]uint32{d, uint32(w.inodes.at(d).data)}
	k := 0
	for _, e := range l.children(d) {
		de := w.dents.at(e)
		name := w.names.get(de.name)
		for ; k < len(dotNames) && bytes.Compare(dotNames[k], name) < 0; k++ {
			if err := fn(dotNames[k], dots[k]); err != nil {
				return err
			}
		}
		if err := fn(name, de.ino); err != nil {
			return err
		}
	}
	for ; k < len(dotNames); k++ {
		if err := fn(dotNames[k], dots[k]); err != nil {
			return err
		}
	}
	return nil
}

var dotNames = [2][]byte{[]byte("."), []byte("..")}

// dirSize is the size of a directory's data: entries split into blocks the
// way mkfs.erofs does (an entry and its name never cross a block).
func (l *layout) dirSize(d uint32) int64 {
	bs := int64(l.w.bs)
	var size int64
	l.entries(d, func(name []byte, _ uint32) error {
		size = DirentOffset(size, len(name), bs) + direntSize + int64(len(name))
		return nil
	})
	return size
}

// planInodes is the planning step of Close: it fixes each inode's data
// layout (whose rule then sizes, writes and encodes it; see plan.go) and
// its data blocks, and reserves the blocks Close writes: directory blocks,
// symlink blocks, and tails and inline clusters that no longer fit inline.
func (l *layout) planInodes() error {
	w := l.w
	bs := int64(w.bs)
	next := w.nextBlock
	for _, id := range l.order {
		var err error
		if next, err = l.planData(id, w.inodes.at(id), next); err != nil {
			return err
		}
	}
	if !l.xattrHdr && len(l.xattrArea) > 0 {
		l.xattrPos = next * bs
		next += (int64(len(l.xattrArea)) + bs - 1) / bs
	}
	l.metaBlk = next
	return nil
}

// planData fixes inode id's data layout, reserving blocks for Close to
// write from block next, and returns the next free block. A regular
// file's data was written when it was added, planned with the inode as it
// was then: only its inline part may have to move.
func (l *layout) planData(id uint32, n *inode, next int64) (int64, error) {
	w := l.w
	if n.isDir() {
		n.size = l.dirSize(id)
	}
	meta := w.coreSize(n) + w.ibody(n)
	switch n.mode & ModeTypeMask {
	case ModeRegular:
		if n.flags&flagZ != 0 {
			return l.zplan(id, n, next), nil
		}
		if n.inline() && meta+n.tailLen(w.bs) > w.bs {
			if n.startBlk() >= 0 {
				return 0, fmt.Errorf("erofs: inode %d: inline tail no longer fits its block", l.meta[id].ino)
			}
			// Only a tail: give it a block of its own.
			n.setInline(false)
			n.setStartBlk(next)
			next++
			l.reserved = append(l.reserved, id)
		}
	case ModeDir, ModeSymlink:
		// Made at close, laid out as a file stored uncompressed would be,
		// but always with its tail inline when it fits.
		fp, err := newFlatPlan(n.size, meta, w.bs, false, next)
		if err != nil {
			return 0, fmt.Errorf("erofs: inode %d: %w", l.meta[id].ino, err)
		}
		n.setInline(fp.inline)
		if fp.blocks > 0 {
			n.setStartBlk(fp.start)
			next += fp.blocks
			l.reserved = append(l.reserved, id)
		}
	}
	if next >= math.MaxUint32 {
		return 0, fmt.Errorf("erofs: image of more than %d blocks exceeds the 32-bit block limit", next)
	}
	return next, nil
}

// metaAllocator packs inode records into metadata blocks best-fit: a
// record goes into the partly used block it leaves the least room in, or
// a new block. A record smaller than a block never crosses a block
// boundary, so an inline tail stays within its inode's block as the
// kernel requires; a larger one starts a block. A record allowed to cross
// (one without inline data, as mkfs.erofs places them) that fits no partly
// used block continues from the end of the last block instead.
type metaAllocator struct {
	bs       int64
	blocks   int64
	free     [][]int64 // free[k]: blocks with exactly k*32 bytes left
	lastLeft int64     // bytes left at the end of the last block
}

func (a *metaAllocator) push(blk, left int64) {
	if k := left / inodeSlotSize; k > 0 {
		a.free[k] = append(a.free[k], blk)
	}
}

// drop removes block blk, with left bytes left, from the free lists.
func (a *metaAllocator) drop(blk, left int64) {
	l := a.free[left/inodeSlotSize]
	for i := len(l) - 1; i >= 0; i-- {
		if l[i] == blk {
			a.free[left/inodeSlotSize] = append(l[:i], l[i+1:]...)
			return
		}
	}
}

// alloc returns the offset of a record of size bytes in the metadata area;
// cross allows it to cross a block boundary.
func (a *metaAllocator) alloc(size int64, cross bool) int64 {
	size = roundUp64(size, inodeSlotSize)
	if size < a.bs {
		for k := size / inodeSlotSize; k < int64(len(a.free)); k++ {
			if m := len(a.free[k]); m > 0 {
				blk := a.free[k][m-1]
				a.free[k] = a.free[k][:m-1]
				left := k * inodeSlotSize
				pos := blk*a.bs + a.bs - left
				a.push(blk, left-size)
				if blk >= 0 && blk == a.blocks-1 {
					a.lastLeft = left - size
				}
				return pos
			}
		}
	}
	if cross && a.lastLeft > 0 {
		a.drop(a.blocks-1, a.lastLeft)
		pos := a.blocks*a.bs - a.lastLeft
		a.blocks = (pos + size + a.bs - 1) / a.bs
		a.lastLeft = a.blocks*a.bs - pos - size
		a.push(a.blocks-1, a.lastLeft)
		return pos
	}
	pos := a.blocks * a.bs
	n := (size + a.bs - 1) / a.bs
	a.blocks += n
	a.lastLeft = n*a.bs - size
	a.push(a.blocks-1, a.lastLeft)
	return pos
}

// placeMetadata assigns every inode its position and NID. The root goes
// first: the superblock holds its NID in 16 bits. The other records are
// placed largest first, ties in walk order, so that the small ones fill
// what the large ones leave of their blocks (best-fit decreasing). Inline
// tails make record sizes vary up to a block, and placing them in walk
// order left about one percent of the metadata blocks empty. NIDs then do
// not follow the walk order; inode numbers still do.
func (l *layout) placeMetadata() {
	w := l.w
	bs := int64(w.bs)
	a := &metaAllocator{bs: bs, free: make([][]int64, bs/inodeSlotSize)}
	type rec struct {
		id    uint32
		size  int64
		cross bool
	}
	recs := make([]rec, len(l.order))
	for i, id := range l.order {
		n := w.inodes.at(id)
		r := l.rule(n)
		_, chunked := r.(chunkBased)
		recs[i] = rec{id, roundUp64(r.recordSize(l, n), inodeSlotSize), chunked}
	}
	if start := l.headRoom(); start > 0 && recs[0].size <= bs-start {
		// The first block's free part, at relative block -metaBlk, is
		// never the last block.
		l.nidBase = l.metaBlk * bs
		a.push(-l.metaBlk, bs-start)
	}
	// l.order starts with the root.
	slices.SortStableFunc(recs[1:], func(a, b rec) int { return cmp.Compare(b.size, a.size) })
	for _, r := range recs {
		l.meta[r.id].pos = a.alloc(r.size, r.cross)
	}
	l.metaLen = a.blocks * bs
}

// headRoom is where records may start in the first block, after the
// superblock, the device table and the shared xattrs kept there, or 0
// when they are not to go there. Chunk-based images put records there, as
// mkfs.erofs does: the metadata area then starts at block 0 (NIDs count
// from the image's start), the root going first, into the first block.
// Other images keep the metadata area after the data.
func (l *layout) headRoom() int64 {
	w := l.w
	if w.chunks == nil {
		return 0
	}
	_, _, records := l.zconfig()
	end := int64(SuperblockOffset + superblockSize + len(records))
	if len(w.opts.Devices) > 0 {
		end = int64(headerEnd(w.opts.Compression != nil, len(w.opts.Devices)))
	}
	if l.xattrHdr {
		end = l.xattrPos + int64(len(l.xattrArea))
	}
	end = roundUp64(end, inodeSlotSize)
	if end >= int64(w.bs) {
		return 0
	}
	return end
}

// write writes bytes to the output and the content hash.
func (l *layout) write(b []byte) error {
	l.sum.Write(b)
	_, err := l.w.out.Write(b)
	return err
}

// dirBlocks generates a directory's blocks in order and calls emit with
// each; every block but the last is a full block. A block is valid until
// the next call.
func (l *layout) dirBlocks(d uint32, emit func([]byte) error) error {
	bs := l.w.bs
	used := 0
	l.pending = l.pending[:0]
	err := l.entries(d, func(name []byte, ino uint32) error {
		if used+direntSize+len(name) > bs {
			blk, err := l.dirBlock(bs)
			if err != nil {
				return err
			}
			if err := emit(blk); err != nil {
				return err
			}
			used = 0
			l.pending = l.pending[:0]
		}
		used += direntSize + len(name)
		l.pending = append(l.pending, pending{name, ino})
		return nil
	})
	if err != nil {
		return err
	}
	blk, err := l.dirBlock(used)
	if err != nil {
		return err
	}
	return emit(blk)
}

// dirBlock encodes the pending entries as one directory block of size
// bytes: a whole block when more follow.
func (l *layout) dirBlock(size int) ([]byte, error) {
	w := l.w
	buf := slices.Grow(l.block[:0], w.bs)[:size]
	err := EncodeDirBlock(buf, len(l.pending), func(k int) (uint64, uint8, []byte) {
		p := &l.pending[k]
		c := w.inodes.at(p.ino)
		return l.nid(p.ino), FileTypeOfMode(uint32(c.mode)), p.name
	})
	if err != nil {
		return nil, fmt.Errorf("erofs: internal error: %w", err)
	}
	l.block = buf
	return buf, nil
}

// writeReserved writes the data blocks laid out by Close: directory blocks,
// symlink targets and homeless tails, then the shared xattr area.
func (l *layout) writeReserved() error {
	w := l.w
	bs := int64(w.bs)
	for _, id := range l.reserved {
		n := w.inodes.at(id)
		r := l.rule(n)
		if blk := r.reservedBlock(l, n); w.out.pos() != blk*bs {
			return fmt.Errorf("erofs: internal error: inode %d data at %d, want block %d", l.meta[id].ino, w.out.pos(), blk)
		}
		err := r.writeReserved(l, id, n)
		if err == nil {
			err = w.out.padTo(bs)
		}
		if err != nil {
			return err
		}
	}
	if !l.xattrHdr && len(l.xattrArea) > 0 {
		if err := l.write(l.xattrArea); err != nil {
			return err
		}
		if err := w.out.padTo(bs); err != nil {
			return err
		}
	}
	return nil
}

// writeMetadata writes the inode records in position order. It leaves
// l.order in that order.
func (l *layout) writeMetadata() error {
	w := l.w
	bs := int64(w.bs)
	base := l.metaBlk * bs
	if w.out.pos() != base {
		return fmt.Errorf("erofs: internal error: metadata at %d, want %d", w.out.pos(), base)
	}
	slices.SortFunc(l.order, func(a, b uint32) int { return cmp.Compare(l.meta[a].pos, l.meta[b].pos) })
	xattrBase := uint32(l.xattrPos%bs) / 4
	var rec []byte
	for _, id := range l.order {
		if l.meta[id].pos < 0 {
			// In the first block: writeHeader writes it.
			var err error
			if rec, err = l.record(rec[:0], id, xattrBase); err != nil {
				return err
			}
			l.headRecs = append(l.headRecs, [2]int64{l.meta[id].pos + l.nidBase, int64(len(rec))})
			l.headBytes = append(l.headBytes, rec...)
			continue
		}
		if gap := base + l.meta[id].pos - w.out.pos(); gap > 0 {
			if err := w.out.zero(gap); err != nil {
				return err
			}
		}
		var err error
		rec, err = l.record(rec[:0], id, xattrBase)
		if err != nil {
			return err
		}
		if err := l.write(rec); err != nil {
			return err
		}
	}
	return w.out.zero(base + l.metaLen - w.out.pos())
}

// record encodes inode id's record: the inode, xattrs and inline tail.
func (l *layout) record(b []byte, id uint32, xattrBase uint32) ([]byte, error) {
	w := l.w
	n, m := w.inodes.at(id), &l.meta[id]
	rule := l.rule(n)
	layout, u := rule.format(l, n)
	var xs *xattrSet
	ibody := 0
	if n.xattr != 0 {
		xs = w.xattrs.at(n.xattr - 1)
		ibody = int(xs.ibody)
	}
	core := Inode{
		Format:     uint16(layout << 1),
		XattrCount: XattrIcount(ibody),
		Mode:       n.mode,
		Size:       uint64(n.size),
		U:          u,
		Ino:        m.ino,
		UID:        n.uid,
		GID:        n.gid,
		Nlink:      m.nlink,
	}
	if w.needsExtended(n) {
		core.Format |= InodeExtended
		core.Mtime, core.MtimeNsec = uint64(n.mtime), n.nsec
	}
	b = core.Append(b)
	if ibody > 0 {
		start := len(b)
		hdr := XattrIbodyHeader{NameFilter: xs.filter}
		b = hdr.Append(b)
		l.splitXattrs(xs.list, func(x xattr, isShared bool) {
			if isShared {
				b = AppendSharedXattrID(b, xattrBase+l.offs[x.key()])
				hdr.SharedCount++
			}
		})
		if err := hdr.Encode(b[start:]); err != nil {
			return nil, fmt.Errorf("erofs: internal error: inode %d: %w", m.ino, err)
		}
		l.splitXattrs(xs.list, func(x xattr, isShared bool) {
			if !isShared {
				b = l.enc.appendEntry(b, x)
			}
		})
		if len(b)-start != ibody {
			return nil, fmt.Errorf("erofs: internal error: inode %d xattrs take %d bytes, planned %d", m.ino, len(b)-start, ibody)
		}
	}
	return rule.appendInline(l, b, id, n)
}

// writeHeader writes the blocks before the data area: the superblock, the
// compression configuration records and, when they fit, the shared xattrs
// and long prefix table, with the superblock checksum.
func (l *layout) writeHeader(blocks int64) error {
	w := l.w
	hdr := make([]byte, w.dataStart*int64(w.bs))
	compat := uint32(FeatureCompatSbChksum | FeatureCompatMtime)
	if l.anyXattr && !w.opts.NoXattrFilter {
		compat |= FeatureCompatXattrFilter
	}
	var incompat uint32
	if len(l.enc.prefixes) > 0 {
		incompat |= FeatureIncompatXattrPrefixes
		compat |= FeatureCompatPlainXattrPf
	}
	zincompat, u1, records := l.zconfig()
	sb := Superblock{
		Magic:           Magic,
		FeatureCompat:   compat,
		FeatureIncompat: incompat | zincompat,
		BlkSzBits:       w.bits,
		RootNid:         l.nid(rootID),
		Inodes:          uint64(len(l.order)),
		Epoch:           w.opts.BuildTime,
		Blocks:          uint64(blocks),
		MetaBlkAddr:     uint32(l.metaBlk - l.nidBase/int64(w.bs)),
		XattrBlkAddr:    uint32(l.xattrPos / int64(w.bs)),
		VolumeName:      w.opts.VolumeName,
		U1:              u1,
	}
	if w.packedID != noID {
		sb.PackedNid = l.nid(w.packedID)
	}
	if len(w.opts.Devices) > 0 {
		sb.FeatureIncompat |= FeatureIncompatDeviceTable
		sb.ExtraDevices = uint16(len(w.opts.Devices))
		sb.DevtSlotOff = uint16(devtSlotOff(w.opts.Compression != nil))
		next := uint64(blocks)
		for i := range w.opts.Devices {
			d := &w.opts.Devices[i]
			if w.opts.DevicesAppended {
				d.UniAddr = next
				next += d.Blocks
			}
			if d.Blocks > math.MaxUint32 || d.UniAddr > math.MaxUint32 {
				sb.FeatureIncompat |= FeatureIncompat48Bit
			}
			if d.UniAddr >= 1<<48 {
				return fmt.Errorf("erofs: device %d starts at block %d, past 48 bits", i+1, d.UniAddr)
			}
			if err := d.Encode(hdr[(int(sb.DevtSlotOff)+i)*deviceSlotSize:]); err != nil {
				return fmt.Errorf("erofs: internal error: device %d: %w", i+1, err)
			}
		}
	}
	if w.wide {
		sb.FeatureIncompat |= FeatureIncompat48Bit
	}
	if len(w.chunkFiles) > 0 {
		sb.FeatureIncompat |= FeatureIncompatChunkedFile
	}
	if len(l.enc.prefixes) > 0 {
		sb.XattrPrefixCount = uint8(len(l.enc.prefixes))
		sb.XattrPrefixStart = uint32((l.xattrPos + l.pfxOff) / 4)
	}
	if w.opts.UUID != nil {
		sb.UUID = *w.opts.UUID
	}
	if err := sb.Encode(hdr[SuperblockOffset:]); err != nil {
		return fmt.Errorf("erofs: internal error: %w", err)
	}
	copy(hdr[SuperblockOffset+superblockSize:], records)
	if l.xattrHdr {
		copy(hdr[l.xattrPos:], l.xattrArea)
	}
	b := l.headBytes
	for _, r := range l.headRecs {
		copy(hdr[r[0]:], b[:r[1]])
		b = b[r[1]:]
	}
	if w.opts.UUID == nil {
		l.sum.Write(hdr)
		l.sum.Write(le.AppendUint64(le.AppendUint32(nil, w.dataCRC), uint64(w.dataLen)))
		id := l.sum.Sum(nil)[:16]
		id[6] = id[6]&0x0F | 0x80 // RFC 9562 version 8: custom
		id[8] = id[8]&0x3F | 0x80 // RFC 4122 variant
		copy(sb.UUID[:], id)
		if err := sb.Encode(hdr[SuperblockOffset:]); err != nil {
			return fmt.Errorf("erofs: internal error: %w", err)
		}
	}
	sealSuperblock(hdr[SuperblockOffset : SuperblockOffset+checksumLen(w.bs)])
	if _, err := w.out.w.WriteAt(hdr, 0); err != nil {
		return fmt.Errorf("erofs: write superblock: %w", err)
	}
	return nil
}
