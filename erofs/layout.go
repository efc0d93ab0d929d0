package erofs

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"math"
	"sort"
)

// Close lays out and writes the directories, the inodes and the superblock,
// finishing the image. It releases the Writer's temporary storage even when
// it fails. It does not close the underlying io.WriterAt.
func (w *Writer) Close() error {
	if w.done {
		return w.err
	}
	w.done = true
	defer w.spool.close()
	if w.zp != nil {
		if err := w.zp.close(); err != nil && w.err == nil {
			w.err = err
		}
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

// layout holds the state of Close.
type layout struct {
	w         *Writer
	order     []*inode // breadth-first, each inode once
	enc       xattrEncoder
	shared    []xattr
	xattrArea []byte   // shared xattr entries, then the long prefix table
	xattrHdr  bool     // xattrArea lives in the header after the superblock
	xattrPos  int64    // byte offset of xattrArea in the image
	pfxOff    int64    // offset of the prefix table in xattrArea
	reserved  []*inode // inodes with data blocks written by Close
	metaBlk   int64
	metaLen   int64 // bytes of metadata area used
	anyXattr  bool
	sum       hash.Hash
}

func (w *Writer) finish() error {
	l := &layout{w: w, sum: sha256.New()}
	l.walk()
	l.planXattrs()
	if err := l.planInodes(); err != nil {
		return err
	}
	l.placeMetadata()
	total := l.metaBlk + (l.metaLen+int64(w.bs)-1)/int64(w.bs)
	if total > math.MaxUint32 {
		return fmt.Errorf("erofs: image of %d blocks exceeds the 32-bit block limit", total)
	}
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
	if err := l.writeHeader(total); err != nil {
		return err
	}
	w.size = total * int64(w.bs)
	return nil
}

// walk orders the inodes breadth-first with sorted children, counts links
// and marks directories that hold whiteouts.
func (l *layout) walk() {
	w := l.w
	root := w.root
	root.parent = root
	root.visited = true
	l.order = append(l.order, root)
	for i := 0; i < len(l.order); i++ {
		d := l.order[i]
		if !d.isDir() {
			continue
		}
		names := make([]string, 0, len(d.children)+2)
		names = append(names, ".", "..")
		subdirs, whiteouts := 0, false
		for name, c := range d.children {
			names = append(names, name)
			if c.isDir() {
				subdirs++
				c.parent = d
			} else {
				c.nlink++
				if c.mode&ModeTypeMask == ModeCharDevice && c.rdev == 0 {
					whiteouts = true
				}
			}
		}
		sort.Strings(names)
		d.names = names
		d.nlink = uint32(2 + subdirs)
		for _, name := range names {
			c := d.children[name]
			if c == nil || c.visited {
				continue
			}
			c.visited = true
			l.order = append(l.order, c)
		}
		if w.opts.WhiteoutOrigin && whiteouts && !hasXattr(d, "trusted.overlay.origin") {
			setXattr(d, "trusted.overlay.origin", "")
		}
	}
	for i, n := range l.order {
		n.ino = uint32(i + 1)
	}
}

func hasXattr(n *inode, name string) bool {
	for _, x := range n.xattrs {
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
		for _, n := range l.order {
			for _, x := range n.xattrs {
				count[x.key()]++
			}
		}
		for _, n := range l.order {
			for _, x := range n.xattrs {
				if c := count[x.key()]; c > 2 {
					l.shared = append(l.shared, x)
					count[x.key()] = 0
				}
			}
		}
		sort.Slice(l.shared, func(i, j int) bool { return l.shared[i].key() < l.shared[j].key() })
	}
	isShared := make(map[string]bool, len(l.shared))
	for _, x := range l.shared {
		isShared[x.key()] = true
	}
	uses := map[string]int{}
	valueLens := map[string][]int{}
	for _, x := range l.shared {
		uses[x.name]++
		valueLens[x.name] = append(valueLens[x.name], len(x.value))
	}
	for _, n := range l.order {
		if len(n.xattrs) == 0 {
			continue
		}
		l.anyXattr = true
		for _, x := range n.xattrs {
			if isShared[x.key()] && len(n.sharedX) < xattrMaxShared {
				n.sharedX = append(n.sharedX, x)
				continue
			}
			n.inlineX = append(n.inlineX, x)
			uses[x.name]++
			valueLens[x.name] = append(valueLens[x.name], len(x.value))
		}
	}
	l.enc.prefixes = chooseLongPrefixes(uses, valueLens)

	// The shared area, then the prefix table, in one byte string.
	offs := make(map[string]uint32, len(l.shared))
	for _, x := range l.shared {
		offs[x.key()] = uint32(len(l.xattrArea) / 4)
		l.xattrArea = l.enc.appendEntry(l.xattrArea, x)
	}
	l.pfxOff = int64(len(l.xattrArea))
	l.xattrArea = l.enc.appendPrefixTable(l.xattrArea)
	_, _, records := l.zconfig()
	if hdr := int64(SuperblockOffset + superblockSize + len(records)); hdr+int64(len(l.xattrArea)) <= w.dataStart*int64(w.bs) {
		l.xattrHdr = true
		l.xattrPos = hdr
	}

	for _, n := range l.order {
		if len(n.xattrs) == 0 {
			continue
		}
		for _, x := range n.sharedX {
			n.shared = append(n.shared, offs[x.key()])
		}
		size := xattrIbodyHeaderSize + 4*len(n.shared)
		for _, x := range n.inlineX {
			size += l.enc.entrySize(x)
		}
		n.ibody = size
		if !w.opts.NoXattrFilter {
			n.filter = xattrFilter(n.xattrs)
		}
	}
}

// dirSize is the size of a directory's data: entries split into blocks the
// way mkfs.erofs does (an entry and its name never cross a block).
func (l *layout) dirSize(d *inode) int64 {
	bs := int64(l.w.bs)
	var size int64
	for _, name := range d.names {
		e := int64(direntSize + len(name))
		if size%bs+e > bs {
			size = roundUp64(size, bs)
		}
		size += e
	}
	return size
}

// planInodes fixes each inode's format, record size and data blocks, and
// reserves the blocks Close writes: directory blocks, symlink blocks and
// tails that no longer fit inline.
func (l *layout) planInodes() error {
	w := l.w
	bs := int64(w.bs)
	next := w.nextBlock
	for _, n := range l.order {
		n.extended = w.needsExtended(n)
		meta := w.coreSize(n) + n.ibody
		switch n.mode & ModeTypeMask {
		case ModeRegular:
			if n.z != nil {
				next = l.zplan(n, next)
				continue
			}
			if n.inline {
				n.tailLen = int(n.size % bs)
				if meta+n.tailLen > w.bs {
					if n.startBlk >= 0 {
						return fmt.Errorf("erofs: inode %d: inline tail no longer fits its block", n.ino)
					}
					// Only a tail: give it a block of its own.
					n.inline, n.tailLen = false, 0
					n.startBlk = next
					next++
					l.reserved = append(l.reserved, n)
				}
			}
		case ModeDir, ModeSymlink:
			if n.isDir() {
				n.size = l.dirSize(n)
			}
			full, tail := n.size/bs, int(n.size%bs)
			blocks := full
			if tail > 0 && meta+tail <= w.bs {
				n.inline, n.tailLen = true, tail
			} else if tail > 0 {
				blocks++
			}
			if blocks > 0 {
				n.startBlk = next
				next += blocks
				l.reserved = append(l.reserved, n)
			}
		}
	}
	if !l.xattrHdr && len(l.xattrArea) > 0 {
		l.xattrPos = next * bs
		next += (int64(len(l.xattrArea)) + bs - 1) / bs
	}
	l.metaBlk = next
	return nil
}

// metaAllocator packs inode records into metadata blocks best-fit, the way
// mkfs.erofs fills partially used blocks, so inline tails waste little.
type metaAllocator struct {
	bs     int64
	blocks int64
	free   [][]int64 // free[k]: blocks with exactly k*32 bytes left
}

func (a *metaAllocator) push(blk, left int64) {
	if k := left / inodeSlotSize; k > 0 {
		a.free[k] = append(a.free[k], blk)
	}
}

// alloc returns the offset of a record of size bytes in the metadata area.
func (a *metaAllocator) alloc(size int64) int64 {
	size = roundUp64(size, inodeSlotSize)
	if size < a.bs {
		for k := size / inodeSlotSize; k < int64(len(a.free)); k++ {
			if m := len(a.free[k]); m > 0 {
				blk := a.free[k][m-1]
				a.free[k] = a.free[k][:m-1]
				left := k * inodeSlotSize
				pos := blk*a.bs + a.bs - left
				a.push(blk, left-size)
				return pos
			}
		}
	}
	pos := a.blocks * a.bs
	n := (size + a.bs - 1) / a.bs
	a.blocks += n
	a.push(a.blocks-1, n*a.bs-size)
	return pos
}

// placeMetadata assigns every inode its position and NID.
func (l *layout) placeMetadata() {
	bs := int64(l.w.bs)
	a := &metaAllocator{bs: bs, free: make([][]int64, bs/inodeSlotSize)}
	for _, n := range l.order {
		size := int64(l.w.coreSize(n) + n.ibody + n.tailLen)
		if n.z != nil {
			size = int64(roundUp(l.w.coreSize(n)+n.ibody, 8) + l.zmetaSize(n))
		}
		n.pos = a.alloc(size)
		n.nid = uint64(n.pos / inodeSlotSize)
	}
	l.metaLen = a.blocks * bs
}

// write writes bytes to the output and the content hash.
func (l *layout) write(b []byte) error {
	l.sum.Write(b)
	_, err := l.w.out.Write(b)
	return err
}

// dirBlocks generates a directory's blocks in order and calls emit with
// each; every block but the last is a full block.
func (l *layout) dirBlocks(d *inode, emit func([]byte) error) error {
	bs := l.w.bs
	buf := make([]byte, 0, bs)
	names := d.names
	for len(names) > 0 {
		// Take as many entries as fit in this block.
		n, used := 0, 0
		for n < len(names) && used+direntSize+len(names[n]) <= bs {
			used += direntSize + len(names[n])
			n++
		}
		buf = buf[:direntSize*n]
		nameoff := direntSize * n
		for i, name := range names[:n] {
			c := d.children[name]
			switch name {
			case ".":
				c = d
			case "..":
				c = d.parent
			}
			e := buf[i*direntSize:]
			le.PutUint64(e[direntNid:], c.nid)
			le.PutUint16(e[direntOff:], uint16(nameoff))
			e[direntType] = fileTypeOfMode(c.mode)
			e[direntType+1] = 0
			nameoff += len(name)
			buf = append(buf, name...)
		}
		names = names[n:]
		if len(names) > 0 {
			buf = append(buf, make([]byte, bs-len(buf))...)
		}
		if err := emit(buf); err != nil {
			return err
		}
	}
	return nil
}

// writeReserved writes the data blocks laid out by Close: directory blocks,
// symlink targets and homeless tails, then the shared xattr area.
func (l *layout) writeReserved() error {
	w := l.w
	bs := int64(w.bs)
	for _, n := range l.reserved {
		blk := n.startBlk
		if n.z != nil {
			blk = n.z.homeBlk
		}
		if w.out.pos() != blk*bs {
			return fmt.Errorf("erofs: internal error: inode %d data at %d, want block %d", n.ino, w.out.pos(), blk)
		}
		var err error
		switch n.mode & ModeTypeMask {
		case ModeDir:
			full := n.size / bs
			var i int64
			err = l.dirBlocks(n, func(b []byte) error {
				if i < full || !n.inline {
					i++
					return l.write(b)
				}
				return nil
			})
		case ModeSymlink:
			end := len(n.link)
			if n.inline {
				end -= n.tailLen
			}
			err = l.write([]byte(n.link[:end]))
		case ModeRegular:
			if n.z != nil {
				err = l.writeHomeless(n)
				break
			}
			tail := make([]byte, n.size%bs)
			if err = w.spool.readAt(tail, n.tailOff); err == nil {
				err = l.write(tail)
			}
		}
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

// writeMetadata writes the inode records in position order.
func (l *layout) writeMetadata() error {
	w := l.w
	bs := int64(w.bs)
	base := l.metaBlk * bs
	if w.out.pos() != base {
		return fmt.Errorf("erofs: internal error: metadata at %d, want %d", w.out.pos(), base)
	}
	byPos := make([]*inode, len(l.order))
	copy(byPos, l.order)
	sort.Slice(byPos, func(i, j int) bool { return byPos[i].pos < byPos[j].pos })
	xattrBase := uint32(l.xattrPos%bs) / 4
	var rec []byte
	for _, n := range byPos {
		if gap := base + n.pos - w.out.pos(); gap > 0 {
			if err := w.out.zero(gap); err != nil {
				return err
			}
		}
		var err error
		rec, err = l.record(rec[:0], n, xattrBase)
		if err != nil {
			return err
		}
		if err := l.write(rec); err != nil {
			return err
		}
	}
	return w.out.zero(base + l.metaLen - w.out.pos())
}

// record encodes n's inode, xattrs and inline tail.
func (l *layout) record(b []byte, n *inode, xattrBase uint32) ([]byte, error) {
	w := l.w
	layout := LayoutFlatPlain
	if n.tailLen > 0 {
		layout = LayoutFlatInline
	}
	var u uint32
	switch n.mode & ModeTypeMask {
	case ModeRegular, ModeDir, ModeSymlink:
		switch {
		case n.z != nil:
			layout = LayoutCompressedCompact
			if n.z.full {
				layout = LayoutCompressedFull
			}
			u = uint32(n.z.blocks)
			if n.z.homeless {
				u++
			}
		case n.startBlk >= 0:
			u = uint32(n.startBlk)
		case n.tailLen > 0:
			u = nullAddr
		}
	case ModeCharDevice, ModeBlockDevice:
		u = n.rdev
	}
	icount := uint16(0)
	if n.ibody > 0 {
		icount = uint16((n.ibody-xattrIbodyHeaderSize)/4 + 1)
	}
	if n.extended {
		b = append(b, make([]byte, extendedInodeSize)...)
		c := b[len(b)-extendedInodeSize:]
		le.PutUint16(c[ieFormat:], uint16(layout<<1|inodeVersionExtended))
		le.PutUint16(c[ieXattrIcount:], icount)
		le.PutUint16(c[ieMode:], uint16(n.mode))
		le.PutUint64(c[ieSize:], uint64(n.size))
		le.PutUint32(c[ieU:], u)
		le.PutUint32(c[ieIno:], n.ino)
		le.PutUint32(c[ieUID:], n.uid)
		le.PutUint32(c[ieGID:], n.gid)
		le.PutUint64(c[ieMtime:], uint64(n.mtime))
		le.PutUint32(c[ieMtimeNsec:], n.nsec)
		le.PutUint32(c[ieNlink:], n.nlink)
	} else {
		b = append(b, make([]byte, compactInodeSize)...)
		c := b[len(b)-compactInodeSize:]
		le.PutUint16(c[icFormat:], uint16(layout<<1))
		le.PutUint16(c[icXattrIcount:], icount)
		le.PutUint16(c[icMode:], uint16(n.mode))
		le.PutUint16(c[icNb:], uint16(n.nlink))
		le.PutUint32(c[icSize:], uint32(n.size))
		le.PutUint32(c[icU:], u)
		le.PutUint32(c[icIno:], n.ino)
		le.PutUint16(c[icUID:], uint16(n.uid))
		le.PutUint16(c[icGID:], uint16(n.gid))
	}
	if n.ibody > 0 {
		start := len(b)
		b = append(b, make([]byte, xattrIbodyHeaderSize)...)
		le.PutUint32(b[start:], n.filter)
		b[start+4] = uint8(len(n.shared))
		for _, id := range n.shared {
			b = le.AppendUint32(b, xattrBase+id)
		}
		for _, x := range n.inlineX {
			b = l.enc.appendEntry(b, x)
		}
		if len(b)-start != n.ibody {
			return nil, fmt.Errorf("erofs: internal error: inode %d xattrs take %d bytes, planned %d", n.ino, len(b)-start, n.ibody)
		}
	}
	if n.z != nil {
		return l.appendZmeta(b, len(b)-l.w.coreSize(n)-n.ibody, n)
	}
	if n.tailLen > 0 {
		switch n.mode & ModeTypeMask {
		case ModeRegular:
			start := len(b)
			b = append(b, make([]byte, n.tailLen)...)
			if err := w.spool.readAt(b[start:], n.tailOff); err != nil {
				return nil, err
			}
		case ModeSymlink:
			b = append(b, n.link[len(n.link)-n.tailLen:]...)
		case ModeDir:
			var last []byte
			l.dirBlocks(n, func(blk []byte) error { last = blk; return nil })
			b = append(b, last...)
		}
	}
	return b, nil
}

// writeHeader writes the blocks before the data area: the superblock and,
// when they fit, the shared xattrs and long prefix table, with the
// superblock checksum.
func (l *layout) writeHeader(blocks int64) error {
	w := l.w
	hdr := make([]byte, w.dataStart*int64(w.bs))
	sb := hdr[SuperblockOffset : SuperblockOffset+superblockSize]
	compat := uint32(FeatureCompatSbChksum | FeatureCompatMtime)
	if l.anyXattr && !w.opts.NoXattrFilter {
		compat |= FeatureCompatXattrFilter
	}
	var incompat uint32
	if len(l.enc.prefixes) > 0 {
		incompat |= FeatureIncompatXattrPrefixes
		compat |= FeatureCompatPlainXattrPf
	}
	le.PutUint32(sb[sbMagic:], Magic)
	le.PutUint32(sb[sbFeatureCompat:], compat)
	sb[sbBlkszBits] = w.bits
	le.PutUint16(sb[sbRootNid:], uint16(w.root.nid))
	le.PutUint64(sb[sbInos:], uint64(len(l.order)))
	le.PutUint64(sb[sbEpoch:], uint64(w.opts.BuildTime))
	le.PutUint32(sb[sbBlocks:], uint32(blocks))
	le.PutUint32(sb[sbMetaBlkAddr:], uint32(l.metaBlk))
	le.PutUint32(sb[sbXattrBlkAddr:], uint32(l.xattrPos/int64(w.bs)))
	copy(sb[sbVolumeName:sbVolumeName+16], w.opts.VolumeName)
	zincompat, u1, records := l.zconfig()
	incompat |= zincompat
	le.PutUint16(sb[sbU1:], u1)
	copy(hdr[SuperblockOffset+superblockSize:], records)
	le.PutUint32(sb[sbFeatureIncompat:], incompat)
	if len(l.enc.prefixes) > 0 {
		sb[sbXattrPrefixCount] = uint8(len(l.enc.prefixes))
		le.PutUint32(sb[sbXattrPrefixStart:], uint32((l.xattrPos+l.pfxOff)/4))
	}
	if l.xattrHdr {
		copy(hdr[l.xattrPos:], l.xattrArea)
	}
	if w.opts.UUID != nil {
		copy(sb[sbUUID:], w.opts.UUID[:])
	} else {
		l.sum.Write(hdr)
		l.sum.Write(le.AppendUint64(le.AppendUint32(nil, w.dataCRC), uint64(w.dataLen)))
		id := l.sum.Sum(nil)[:16]
		id[6] = id[6]&0x0F | 0x80 // RFC 9562 version 8: custom
		id[8] = id[8]&0x3F | 0x80 // RFC 4122 variant
		copy(sb[sbUUID:], id)
	}
	ck := hdr[SuperblockOffset : SuperblockOffset+checksumLen(w.bs)]
	le.PutUint32(sb[sbChecksum:], superblockChecksum(ck))
	if _, err := w.out.w.WriteAt(hdr, 0); err != nil {
		return fmt.Errorf("erofs: write superblock: %w", err)
	}
	return nil
}
