package rafs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"strings"

	"github.com/rafs-dev/rafs/erofs"
)

// WriteTo encodes b as a RAFS v6 bootstrap and writes it to w. The output
// depends only on b (not on map iteration order, the order of Children or
// the machine), so equal trees give identical bytes. b is not modified.
//
// It returns an error naming the offending path or blob when b cannot be
// encoded: invalid names, types or sizes, xattrs outside the namespaces
// RAFS stores, more than MaxBlobs blobs, chunks that do not match their
// file or blob, and so on.
func (b *Bootstrap) WriteTo(w io.Writer) (int64, error) {
	img, err := b.MarshalBinary()
	if err != nil {
		return 0, err
	}
	n, err := w.Write(img)
	if err != nil {
		return int64(n), fmt.Errorf("rafs: writing bootstrap: %w", err)
	}
	return int64(n), nil
}

// MarshalBinary returns the bootstrap WriteTo would write.
func (b *Bootstrap) MarshalBinary() ([]byte, error) {
	e := &encoder{b: b, inodes: map[*Node]*winode{}}
	img, err := e.encode()
	if err != nil {
		return nil, fmt.Errorf("rafs: %w", err)
	}
	return img, nil
}

// winode is one inode being written.
type winode struct {
	n      *Node   // attribute source (the Link target for hard links)
	path   string  // first path, for errors
	ino    uint32  // on-disk i_ino (spec §1.7)
	nlink  uint32  // names in the tree, or 2 + subdirectories
	parent *winode // directories: the parent (the root's is itself)
	kids   []dent  // directories: entries except . and .., sorted
	ents   []dent  // directories: all entries with . and .., sorted
	xattr  []byte  // encoded xattr ibody, or nil
	data   []byte  // directories and symlinks: the data bytes
	off    int64   // virtual offset of the inode in the meta area
	dataAt int64   // virtual offset of the data blocks (dirs/symlinks)
	inline bool    // FLAT_INLINE (dirs/symlinks)
	nchunk int     // regular files: number of chunk index entries
}

// dent is a directory entry being written.
type dent struct {
	name string
	ino  *winode
}

func (w *winode) nid() uint64     { return uint64(w.off / inodeSlot) }
func (w *winode) metaSize() int64 { return extendedInodeSize + int64(len(w.xattr)) }
func (w *winode) fileType() uint8 { return fileTypeOfMode(w.n.Mode) }
func (w *winode) isDir() bool     { return w.n.IsDir() }
func (w *winode) dataTail() int64 { return int64(len(w.data)) % BlockSize }
func (w *winode) hasBlockData() bool {
	return w.isDir() || w.n.Mode&erofs.ModeTypeMask == erofs.ModeSymlink
}

// encoder holds the state of one encode call.
type encoder struct {
	b      *Bootstrap
	inodes map[*Node]*winode // by attribute source
	order  []*winode         // unique inodes in visit (i_ino) order
	dirs   map[*Node]bool    // directory nodes seen, to reject repeats
	ino    uint32            // last assigned i_ino
	xattrs bool              // any inode has xattrs
}

func (e *encoder) encode() ([]byte, error) {
	b := e.b
	if b.Root == nil || !b.Root.IsDir() || b.Root.Link != nil {
		return nil, errors.New("root must be a directory node without Link")
	}
	if !validChunkSize(b.ChunkSize) {
		return nil, fmt.Errorf("chunk size %#x is not a power of two in [%#x, %#x]", b.ChunkSize, MinChunkSize, MaxChunkSize)
	}
	if err := checkFlags(b.Flags); err != nil {
		return nil, fmt.Errorf("superblock flags: %w", err)
	}
	if len(b.Blobs) > MaxBlobs {
		return nil, fmt.Errorf("%d blobs; a bootstrap holds at most %d", len(b.Blobs), MaxBlobs)
	}
	ids := map[string]int{}
	var blocks uint64
	for i := range b.Blobs {
		bi := &b.Blobs[i]
		if err := checkBlob(bi); err != nil {
			return nil, fmt.Errorf("blob %d (%s): %w", i, bi.ID, err)
		}
		if j, dup := ids[bi.ID]; dup {
			return nil, fmt.Errorf("blob %d: id %s already used by blob %d", i, bi.ID, j)
		}
		ids[bi.ID] = i
		if b.Flags&FlagInlinedChunkDigest != 0 && bi.Features&BlobFeatureInlinedChunkDigest == 0 {
			return nil, fmt.Errorf("blob %d (%s): flag INLINED_CHUNK_DIGEST is set but the blob lacks feature INLINED_CHUNK_DIGEST", i, bi.ID)
		}
		blocks += bi.UncompressedSize / BlockSize
	}
	if blocks > 0xFFFFFFFF {
		return nil, fmt.Errorf("blobs total %d blocks, more than the superblock's 32-bit count", blocks)
	}

	// Number the inodes (i_ino) and collect them in visit order.
	e.dirs = map[*Node]bool{}
	root, _, err := e.addInode("/", b.Root)
	if err != nil {
		return nil, err
	}
	root.parent = root
	if err := e.number("", root); err != nil {
		return nil, err
	}
	for _, w := range e.order {
		if err := e.prepare(w); err != nil {
			return nil, fmt.Errorf("%s: %w", w.path, err)
		}
	}
	records, err := e.chunkTable()
	if err != nil {
		return nil, err
	}

	// Place the inodes in the meta area's virtual space (spec §1.14).
	cursor := e.place(root)

	// Whole-file layout (spec §1.1).
	nb := int64(len(b.Blobs))
	blobTableOff := alignUp(devSlotOffset+devSlotSize*nb, BlockSize)
	blobTableSize := blobEntrySize * nb
	var prefetchOff, prefetchSize, metaAddr int64
	if nb > 0 {
		prefetchOff = blobTableOff + blobTableSize
		prefetchSize = prefetchEntry
		metaAddr = alignUp(prefetchOff+prefetchSize, BlockSize)
	}
	metaEnd := metaAddr + alignUp(cursor, BlockSize)
	chunkTableOff := metaEnd
	chunkTableSize := int64(len(records)) * chunkRecordSize
	fileSize := alignUp(chunkTableOff+chunkTableSize, BlockSize)
	if fileSize/BlockSize > 0xFFFFFFFF {
		return nil, fmt.Errorf("bootstrap of %d bytes is too large", fileSize)
	}
	img := make([]byte, fileSize)

	// EROFS superblock.
	sb := img[sbOffset : sbOffset+sbSize]
	le.PutUint32(sb[sbMagic:], erofs.Magic)
	le.PutUint32(sb[sbFeatureCompat:], FeatureCompatRAFSV6)
	sb[sbBlkszBits] = blockBits
	le.PutUint16(sb[sbRootNid:], uint16(root.nid()))
	le.PutUint64(sb[sbInos:], uint64(e.ino))
	le.PutUint32(sb[sbBlocks:], uint32(blocks))
	le.PutUint32(sb[sbMetaBlkAddr:], uint32(metaAddr/BlockSize))
	le.PutUint32(sb[sbFeatureIncompat:], featureIncompatRAFS)
	le.PutUint16(sb[sbExtraDevices:], uint16(nb))
	le.PutUint16(sb[sbDevtSlotOff:], devtSlotOff)

	// Extended superblock.
	flags := b.Flags
	if e.xattrs {
		flags |= FlagHasXattr
	}
	ext := img[extSBOffset : extSBOffset+extSBSize]
	le.PutUint64(ext[extFlags:], flags)
	le.PutUint64(ext[extBlobTableOffset:], uint64(blobTableOff))
	le.PutUint32(ext[extBlobTableSize:], uint32(blobTableSize))
	le.PutUint32(ext[extChunkSize:], b.ChunkSize)
	le.PutUint64(ext[extChunkTableOffset:], uint64(chunkTableOff))
	le.PutUint64(ext[extChunkTableSize:], uint64(chunkTableSize))
	le.PutUint64(ext[extPrefetchTableOff:], uint64(prefetchOff))
	le.PutUint32(ext[extPrefetchTableSize:], uint32(prefetchSize))

	// Device slots, blob table, prefetch table.
	pos := fileSize
	for i := range b.Blobs {
		bi := &b.Blobs[i]
		slot := img[devSlotOffset+devSlotSize*int64(i):][:devSlotSize]
		copy(slot[dsTag:dsTag+64], bi.ID)
		nblk := int64(bi.UncompressedSize / BlockSize)
		mapped := alignUp(pos, mappedAlign) / BlockSize
		pos = (mapped + nblk) * BlockSize
		le.PutUint32(slot[dsBlocks:], uint32(nblk))
		le.PutUint32(slot[dsMappedBlkaddr:], uint32(mapped))
		encodeBlobEntry(img[blobTableOff+blobEntrySize*int64(i):][:blobEntrySize], i, b.ChunkSize, bi)
	}
	if prefetchSize > 0 {
		le.PutUint32(img[prefetchOff:], uint32(root.nid()))
	}

	// Inodes and their data.
	for _, w := range e.order {
		e.writeInode(img, metaAddr, w)
	}

	// Chunk table.
	for i := range records {
		encodeChunkRecord(img[chunkTableOff+int64(i)*chunkRecordSize:][:chunkRecordSize], &records[i])
	}
	return img, nil
}

// addInode returns the winode for a tree entry, creating it (and giving it
// the next i_ino) on first use.
func (e *encoder) addInode(path string, n *Node) (w *winode, isNew bool, err error) {
	src := n.inode()
	if n.Link != nil {
		if src.Link != nil {
			return nil, false, fmt.Errorf("%s: hard link target is itself a hard link", path)
		}
		if src.IsDir() {
			return nil, false, fmt.Errorf("%s: hard link to a directory", path)
		}
	}
	if src.IsDir() {
		if e.dirs[src] {
			return nil, false, fmt.Errorf("%s: directory node appears twice in the tree", path)
		}
		e.dirs[src] = true
	}
	if w, ok := e.inodes[src]; ok {
		w.nlink++
		return w, false, nil
	}
	w = &winode{n: src, path: path, nlink: 1}
	e.inodes[src] = w
	e.order = append(e.order, w)
	e.ino++
	w.ino = e.ino
	return w, true, nil
}

// number assigns i_ino to every entry below directory d (spec §1.7): all
// children of a directory get consecutive numbers in name order, then each
// child directory is numbered recursively. Hard links reuse the first
// name's number, but the counter still advances.
func (e *encoder) number(dir string, d *winode) error {
	kids := sortedChildren(d.n)
	d.kids = make([]dent, len(kids))
	for i, c := range kids {
		path := dir + "/" + c.Name
		if err := checkName(c.Name); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if i > 0 && kids[i-1].Name == c.Name {
			return fmt.Errorf("%s: duplicate name in directory", path)
		}
		if e.ino == 0xFFFFFFFF {
			return errors.New("too many entries")
		}
		w, isNew, err := e.addInode(path, c)
		if err != nil {
			return err
		}
		if !isNew {
			e.ino++ // a hard link: the counter still advances
		}
		d.kids[i] = dent{name: c.Name, ino: w}
	}
	// On disk . and .. are sorted with the rest (".-x" sorts between them).
	d.ents = append(make([]dent, 0, len(d.kids)+2), dent{".", d}, dent{"..", d.parent})
	d.ents = append(d.ents, d.kids...)
	slices.SortFunc(d.ents, func(a, b dent) int { return strings.Compare(a.name, b.name) })
	d.nlink = 2
	for _, k := range d.kids {
		if k.ino.isDir() {
			k.ino.parent = d
			d.nlink++
			if err := e.number(dir+"/"+k.name, k.ino); err != nil {
				return err
			}
		}
	}
	return nil
}

// prepare validates an inode's attributes and encodes its xattrs and data.
func (e *encoder) prepare(w *winode) error {
	n := w.n
	if n.MtimeNsec >= 1e9 {
		return fmt.Errorf("mtime nanoseconds %d out of range", n.MtimeNsec)
	}
	if n.Mode&^(erofs.ModeTypeMask|erofs.ModePermMask) != 0 || fileTypeOfMode(n.Mode) == 0 {
		return fmt.Errorf("invalid mode %#o", n.Mode)
	}
	x, err := encodeXattrs(n.Xattrs)
	if err != nil {
		return err
	}
	w.xattr = x
	if x != nil {
		e.xattrs = true
	}
	switch n.Mode & erofs.ModeTypeMask {
	case erofs.ModeDir:
		w.data = make([]byte, dirSize(w))
	case erofs.ModeSymlink:
		if len(n.Target) == 0 || len(n.Target) > MaxSymlinkLen {
			return fmt.Errorf("symlink target of %d bytes (must be 1-%d)", len(n.Target), MaxSymlinkLen)
		}
		w.data = []byte(n.Target)
	case erofs.ModeRegular:
		return e.checkChunks(w)
	case erofs.ModeCharDevice, erofs.ModeBlockDevice:
		if n.RdevMajor > 0xFFF || n.RdevMinor > 0xFFFFF {
			return fmt.Errorf("device number %d:%d out of range", n.RdevMajor, n.RdevMinor)
		}
	}
	return nil
}

// checkChunks validates a regular file's chunks against its size and the
// blob table.
func (e *encoder) checkChunks(w *winode) error {
	n, b := w.n, e.b
	want := chunkCount(n.Size, b.ChunkSize)
	if uint64(len(n.Chunks)) != want {
		return fmt.Errorf("file of %d bytes needs %d chunks of %d bytes, has %d", n.Size, want, b.ChunkSize, len(n.Chunks))
	}
	w.nchunk = len(n.Chunks)
	cs := uint64(b.ChunkSize)
	for i := range n.Chunks {
		c := &n.Chunks[i]
		if err := checkChunk(c, b); err != nil {
			return fmt.Errorf("chunk %d: %w", i, err)
		}
		off := uint64(i) * cs
		if c.FileOffset != off {
			return fmt.Errorf("chunk %d: file offset %d, want %d", i, c.FileOffset, off)
		}
		if wantSize := min(cs, n.Size-off); uint64(c.UncompressedSize) != wantSize {
			return fmt.Errorf("chunk %d: uncompressed size %d, want %d", i, c.UncompressedSize, wantSize)
		}
	}
	return nil
}

// checkChunk validates a chunk against the blob table.
func checkChunk(c *Chunk, b *Bootstrap) error {
	if int(c.BlobIndex) >= len(b.Blobs) {
		return fmt.Errorf("blob index %d, but there are %d blobs", c.BlobIndex, len(b.Blobs))
	}
	bi := &b.Blobs[c.BlobIndex]
	switch {
	case c.Index >= bi.ChunkCount:
		return fmt.Errorf("CI index %d, but blob %d has %d chunks", c.Index, c.BlobIndex, bi.ChunkCount)
	case c.UncompressedOffset%BlockSize != 0:
		return fmt.Errorf("uncompressed offset %#x is not %d-aligned", c.UncompressedOffset, BlockSize)
	case c.UncompressedSize == 0:
		return errors.New("uncompressed size 0")
	case c.UncompressedOffset+uint64(c.UncompressedSize) > bi.UncompressedSize:
		return fmt.Errorf("uncompressed range [%#x, +%#x) beyond blob %d's uncompressed size %#x",
			c.UncompressedOffset, c.UncompressedSize, c.BlobIndex, bi.UncompressedSize)
	case c.Flags&^chunkFlagKnown != 0:
		return fmt.Errorf("unknown chunk flags %#x", c.Flags&^chunkFlagKnown)
	case c.CRC32 != 0 && c.Flags&ChunkFlagHasCRC32 == 0:
		return fmt.Errorf("CRC32 %#x without flag HAS_CRC32", c.CRC32)
	}
	return nil
}

// chunkTable collects the chunk-table records: one per unique (digest,
// blob), from the last chunk visited, sorted by digest then blob index
// (spec §1.13). Two chunks with the same (digest, blob) must be the same
// chunk, and a (blob, CI index) pair must always name the same chunk.
func (e *encoder) chunkTable() ([]Chunk, error) {
	type key struct {
		digest [32]byte
		blob   uint32
	}
	type slot struct{ blob, index uint32 }
	byKey := map[key]int{}
	bySlot := map[slot][32]byte{}
	var recs []Chunk
	for _, w := range e.order {
		for i := range w.n.Chunks {
			c := w.n.Chunks[i]
			s := slot{c.BlobIndex, c.Index}
			if d, ok := bySlot[s]; ok && d != c.Digest {
				return nil, fmt.Errorf("%s: chunk %d: blob %d CI index %d already holds a chunk with another digest", w.path, i, c.BlobIndex, c.Index)
			}
			bySlot[s] = c.Digest
			k := key{c.Digest, c.BlobIndex}
			j, ok := byKey[k]
			if !ok {
				byKey[k] = len(recs)
				recs = append(recs, c)
				continue
			}
			p := recs[j]
			p.FileOffset = c.FileOffset
			if p != c {
				return nil, fmt.Errorf("%s: chunk %d: digest %x in blob %d differs from an earlier chunk with that digest (the chunk table holds one record per digest and blob)",
					w.path, i, c.Digest[:8], c.BlobIndex)
			}
			recs[j] = c // the last one visited wins
		}
	}
	slices.SortFunc(recs, func(a, b Chunk) int {
		if c := bytes.Compare(a.Digest[:], b.Digest[:]); c != 0 {
			return c
		}
		return int(a.BlobIndex) - int(b.BlobIndex)
	})
	return recs, nil
}

// encodeXattrs returns the inline xattr ibody for the attributes, sorted
// by name, or nil when there are none.
func encodeXattrs(xs map[string][]byte) ([]byte, error) {
	if len(xs) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(xs))
	for k := range xs {
		names = append(names, k)
	}
	slices.Sort(names)
	body := make([]byte, xattrHeaderSize, 64)
	for _, name := range names {
		v := xs[name]
		idx, suffix, ok := erofs.SplitXattrName(name)
		if !ok {
			return nil, fmt.Errorf("xattr %q: RAFS stores only user.*, trusted.*, security.* and POSIX ACL attributes", name)
		}
		if len(name) > MaxXattrNameLen {
			return nil, fmt.Errorf("xattr %q: name longer than %d bytes", name[:32]+"...", MaxXattrNameLen)
		}
		if len(v) > MaxXattrValueLen {
			return nil, fmt.Errorf("xattr %q: value of %d bytes is longer than %d", name, len(v), MaxXattrValueLen)
		}
		ent := make([]byte, alignUp(int64(xattrEntryHeaderSize+len(suffix)+len(v)), 4))
		ent[0] = uint8(len(suffix))
		ent[1] = idx
		le.PutUint16(ent[2:], uint16(len(v)))
		copy(ent[4:], suffix)
		copy(ent[4+len(suffix):], v)
		body = append(body, ent...)
	}
	if (len(body)-xattrHeaderSize)/4+1 > 0xFFFF {
		return nil, fmt.Errorf("xattrs take %d bytes, more than an inode can hold", len(body))
	}
	return body, nil
}

// dirSize returns the size of a directory's data (spec §1.9): entries,
// including . and .., sorted, packed so none crosses a block.
func dirSize(w *winode) int64 {
	var d int64
	forEachDirent(w, func(name string, _ *winode, off int64) { d = off + direntSize + int64(len(name)) })
	return d
}

// forEachDirent calls fn for each entry of directory w in on-disk order
// (w.ents) with the entry's name, inode and its byte offset in the
// directory data: entries are packed in order and one that would cross a
// block boundary starts the next block.
func forEachDirent(w *winode, fn func(name string, ino *winode, off int64)) {
	var d int64
	for _, en := range w.ents {
		cost := int64(direntSize + len(en.name))
		if d%BlockSize+cost > BlockSize {
			d = alignUp(d, BlockSize)
		}
		fn(en.name, en.ino, d)
		d += cost
	}
}

// encodeDir fills w.data with the directory's blocks, now that every nid
// is known.
func encodeDir(w *winode) {
	type ent struct {
		name string
		ino  *winode
	}
	var blocks [][]ent
	last := int64(-1)
	forEachDirent(w, func(name string, ino *winode, off int64) {
		if blk := off / BlockSize; blk != last {
			blocks = append(blocks, nil)
			last = blk
		}
		blocks[len(blocks)-1] = append(blocks[len(blocks)-1], ent{name, ino})
	})
	for bi, ents := range blocks {
		blk := w.data[int64(bi)*BlockSize:]
		nameOff := direntSize * len(ents)
		for j, en := range ents {
			de := blk[j*direntSize:]
			le.PutUint64(de[0:], en.ino.nid())
			le.PutUint16(de[8:], uint16(nameOff))
			de[10] = en.ino.fileType()
			nameOff += copy(blk[nameOff:], en.name)
		}
	}
}

// allocator is nydus's meta-area allocator (spec §1.14): a cursor plus 128
// FIFO buckets of partly used blocks, indexed by their free 32-byte slots.
type allocator struct {
	cursor  int64
	buckets [BlockSize / inodeSlot][]int64
}

// push records the free space between off and the end of its block.
func (a *allocator) push(off int64) {
	r := off % BlockSize
	if r == 0 {
		return
	}
	free := (BlockSize - r) / inodeSlot
	if free == 0 {
		return
	}
	blk := off - r
	a.buckets[free] = append(a.buckets[free], blk)
}

// frag allocates s bytes from a partly used block, if one has room.
func (a *allocator) frag(s int64) (int64, bool) {
	if s >= BlockSize {
		return 0, false
	}
	need := (s + inodeSlot - 1) / inodeSlot
	for bkt := need; bkt < int64(len(a.buckets)); bkt++ {
		q := a.buckets[bkt]
		if len(q) == 0 {
			continue
		}
		blk := q[0]
		a.buckets[bkt] = q[1:]
		start := blk + BlockSize - bkt*inodeSlot
		if rest := bkt - need; rest > 0 {
			a.buckets[rest] = append(a.buckets[rest], blk)
		}
		return start, true
	}
	return 0, false
}

// take allocates s bytes at the cursor.
func (a *allocator) take(s int64) int64 {
	off := a.cursor
	a.cursor += s
	return off
}

// place lays out every inode (spec §1.14) and returns the end of the used
// virtual space. The root lands at BlockSize (nid 128).
func (e *encoder) place(root *winode) int64 {
	a := &allocator{cursor: unusedMetaBlock}
	placed := map[*winode]bool{}
	var placeDir func(d *winode)
	placeDir = func(d *winode) {
		e.placeOne(a, d)
		placed[d] = true
		for _, k := range d.kids {
			if !k.ino.isDir() && !placed[k.ino] {
				e.placeOne(a, k.ino)
				placed[k.ino] = true
			}
		}
		for _, k := range d.kids {
			if k.ino.isDir() {
				placeDir(k.ino)
			}
		}
	}
	placeDir(root)
	return a.cursor
}

// placeOne allocates one inode (and, for directories and symlinks, its
// data blocks).
func (e *encoder) placeOne(a *allocator, w *winode) {
	meta := w.metaSize()
	defer func() { a.cursor = alignUp(a.cursor, inodeSlot) }()
	switch {
	case w.n.IsRegular():
		need := alignUp(meta, chunkIndexSize) + chunkIndexSize*int64(w.nchunk)
		if off, ok := a.frag(need); ok {
			w.off = off
			return
		}
		w.off = a.take(need)
	case w.hasBlockData():
		d, t := int64(len(w.data)), w.dataTail()
		if t != 0 && meta+t <= BlockSize {
			w.inline = true
			s := meta + t
			if off, ok := a.frag(s); ok {
				w.off = off
			} else {
				if a.cursor%BlockSize+s > BlockSize {
					a.push(a.cursor)
					a.cursor = alignUp(a.cursor, BlockSize)
				}
				w.off = a.take(s)
			}
			if d != t {
				a.push(a.cursor)
				a.cursor = alignUp(a.cursor, BlockSize)
				w.dataAt = a.take(d - t)
			}
			return
		}
		if off, ok := a.frag(meta); ok {
			w.off = off
		} else {
			w.off = a.take(meta)
		}
		a.push(a.cursor)
		a.cursor = alignUp(a.cursor, BlockSize)
		w.dataAt = a.take(d)
		a.cursor = alignUp(a.cursor, BlockSize)
	default:
		w.off = a.take(meta)
	}
}

// writeInode writes an inode, its xattrs and its data or chunk indexes.
func (e *encoder) writeInode(img []byte, metaAddr int64, w *winode) {
	n := w.n
	at := metaAddr + w.off
	ino := img[at : at+extendedInodeSize]
	layout := erofs.LayoutFlatPlain
	var size uint64
	var iu uint32
	switch n.Mode & erofs.ModeTypeMask {
	case erofs.ModeRegular:
		layout = erofs.LayoutChunkBased
		size = n.Size
		iu = chunkFormatIndexes | e.chunkBits(n)
		idx := alignUp(at+w.metaSize(), chunkIndexSize)
		for i := range n.Chunks {
			c := &n.Chunks[i]
			encodeChunkIndex(img[idx+int64(i)*chunkIndexSize:], c.Index, c.BlobIndex, uint32(c.UncompressedOffset/BlockSize))
		}
	case erofs.ModeDir, erofs.ModeSymlink:
		if n.IsDir() {
			encodeDir(w)
		}
		size = uint64(len(w.data))
		d, t := int64(len(w.data)), w.dataTail()
		if w.inline {
			layout = erofs.LayoutFlatInline
			tailAt := at + w.metaSize()
			copy(img[tailAt:], w.data[d-t:])
			iu = uint32(tailAt / BlockSize)
			if d != t {
				copy(img[metaAddr+w.dataAt:], w.data[:d-t])
				iu = uint32((metaAddr + w.dataAt) / BlockSize)
			}
		} else {
			copy(img[metaAddr+w.dataAt:], w.data)
			iu = uint32((metaAddr + w.dataAt) / BlockSize)
		}
	case erofs.ModeCharDevice, erofs.ModeBlockDevice:
		iu = erofs.EncodeDev(n.RdevMajor, n.RdevMinor)
	}
	le.PutUint16(ino[ieFormat:], uint16(formatExtended|layout<<1))
	if len(w.xattr) > 0 {
		le.PutUint16(ino[ieXattrIcount:], uint16((len(w.xattr)-xattrHeaderSize)/4+1))
		copy(img[at+extendedInodeSize:], w.xattr)
	}
	le.PutUint16(ino[ieMode:], uint16(n.Mode))
	le.PutUint64(ino[ieSize:], size)
	le.PutUint32(ino[ieU:], iu)
	le.PutUint32(ino[ieIno:], w.ino)
	le.PutUint32(ino[ieUID:], n.UID)
	le.PutUint32(ino[ieGID:], n.GID)
	le.PutUint64(ino[ieMtime:], uint64(n.Mtime))
	le.PutUint32(ino[ieMtimeNsec:], n.MtimeNsec)
	le.PutUint32(ino[ieNlink:], w.nlink)
}

// chunkBits returns the chunk format's block bits for a regular file: the
// filesystem chunk size, or (spec §1.10) the file size rounded up to a
// power of two when all its chunks are physically contiguous in one blob,
// so the kernel maps the file as one chunk.
func (e *encoder) chunkBits(n *Node) uint32 {
	cs := e.b.ChunkSize
	base := uint32(bits.TrailingZeros32(cs)) - blockBits
	if len(n.Chunks) < 2 {
		return base
	}
	c0 := n.Chunks[0]
	for i := 1; i < len(n.Chunks); i++ {
		c := n.Chunks[i]
		if c.BlobIndex != c0.BlobIndex || c.UncompressedOffset != c0.UncompressedOffset+uint64(i)*uint64(cs) {
			return base
		}
	}
	big := uint32(bits.Len64(n.Size-1)) - blockBits // log2(next power of two ≥ size) − 12
	if big > chunkFormatBitsMask {
		return base
	}
	return big
}

// checkBlob validates a blob-table entry the way nydusd does (spec §1.5).
func checkBlob(bi *BlobInfo) error {
	switch {
	case len(bi.ID) != beIDSize:
		return fmt.Errorf("id %q is %d bytes, must be %d", bi.ID, len(bi.ID), beIDSize)
	case strings.ContainsRune(bi.ID, 0):
		return fmt.Errorf("id %q contains NUL", bi.ID)
	case bi.ChunkCount == 0:
		return errors.New("chunk count 0 (a blob without chunks makes the bootstrap unloadable)")
	case bi.ChunkCount > MaxChunksPerBlob:
		return fmt.Errorf("chunk count %d exceeds %d", bi.ChunkCount, MaxChunksPerBlob)
	case bi.Compressor > CompressorZstd:
		return fmt.Errorf("unknown compressor %d", bi.Compressor)
	case bi.CICompressor > CompressorZstd:
		return fmt.Errorf("unknown CI compressor %d", bi.CICompressor)
	case bi.Digester > DigesterSHA256:
		return fmt.Errorf("unknown digester %d", bi.Digester)
	case bi.CipherAlgo > 3:
		return fmt.Errorf("unknown cipher %d", bi.CipherAlgo)
	case bi.Features&^blobFeatureKnown != 0:
		return fmt.Errorf("unknown features %#x", bi.Features&^blobFeatureKnown)
	case bi.Features&BlobFeatureTarfs != 0:
		return errors.New("tarfs blobs are not supported")
	case bi.Features&BlobFeatureAligned == 0:
		return fmt.Errorf("features %#x lack ALIGNED", bi.Features)
	case bi.UncompressedSize == 0 || bi.UncompressedSize%BlockSize != 0:
		return fmt.Errorf("uncompressed size %#x is not a non-zero multiple of %d", bi.UncompressedSize, BlockSize)
	case bi.UncompressedSize > maxUncompressedBlobSize:
		return fmt.Errorf("uncompressed size %#x exceeds %#x", bi.UncompressedSize, uint64(maxUncompressedBlobSize))
	case bi.CompressedSize > maxCompressedBlobSize:
		return fmt.Errorf("compressed size %#x exceeds %#x", bi.CompressedSize, uint64(maxCompressedBlobSize))
	case bi.CICompressedSize > bi.CIUncompressedSize:
		return fmt.Errorf("CI compressed size %d exceeds CI uncompressed size %d", bi.CICompressedSize, bi.CIUncompressedSize)
	}
	v2 := bi.Features&BlobFeatureChunkInfoV2 != 0
	if bi.Features&(BlobFeatureBatch|BlobFeatureZran|BlobFeatureEncrypted) != 0 {
		if !v2 {
			return fmt.Errorf("features %#x: BATCH, ZRAN and ENCRYPTED need CHUNK_INFO_V2", bi.Features)
		}
		return nil
	}
	if v2 {
		if want := 24 * uint64(bi.ChunkCount); bi.CIUncompressedSize != want {
			return fmt.Errorf("CI uncompressed size %d, want 24 × %d chunks = %d", bi.CIUncompressedSize, bi.ChunkCount, want)
		}
	} else if bi.Features&BlobFeatureChunkdictGenerated == 0 {
		if want := 16 * uint64(bi.ChunkCount); bi.CIUncompressedSize != want {
			return fmt.Errorf("CI uncompressed size %d, want 16 × %d chunks = %d", bi.CIUncompressedSize, bi.ChunkCount, want)
		}
	}
	return nil
}
