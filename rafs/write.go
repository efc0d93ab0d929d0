package rafs

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"math/bits"
	"slices"
	"strings"
	"sync"

	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/erofs"
)

// WriteTo encodes b as a RAFS v6 bootstrap and writes it to w. The output
// depends only on b (not on map iteration order, the order of Children or
// the machine), so equal trees give identical bytes. b is not modified.
//
// The image is written as it is encoded, in file order: memory grows with
// the number of entries (some 40 bytes each), not with the size of the
// image, and not with the depth of the tree.
//
// It returns an error naming the offending path or blob when b cannot be
// encoded: invalid names, types or sizes, xattrs outside the namespaces
// RAFS stores, more than MaxBlobs blobs, chunks that do not match their
// file or blob, and so on. Nothing is written then.
func (b *Bootstrap) WriteTo(w io.Writer) (int64, error) {
	e, err := newEncoder(b)
	if err != nil {
		return 0, fmt.Errorf("rafs: %w", err)
	}
	defer e.release()
	cw := &countingWriter{w: w}
	bw := bufio.NewWriterSize(cw, 256<<10)
	s := &streamSink{w: bw}
	err = e.emit(s, true)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return cw.n, fmt.Errorf("rafs: writing bootstrap: %w", err)
	}
	return cw.n, nil
}

// MarshalBinary returns the bootstrap WriteTo would write.
func (b *Bootstrap) MarshalBinary() ([]byte, error) {
	e, err := newEncoder(b)
	if err != nil {
		return nil, fmt.Errorf("rafs: %w", err)
	}
	defer e.release()
	img := make([]byte, e.fileSize)
	if err := e.emit(imageSink(img), false); err != nil {
		return nil, fmt.Errorf("rafs: %w", err) // cannot happen: imageSink does not fail
	}
	return img, nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// winode is one inode being written: 32 bytes. Records live in pages,
// in i_ino order; they hold no paths: a record's path is found from the
// directories only when an error must name it.
type winode struct {
	n     *Node  // attribute source (the Link target for hard links)
	off   int64  // virtual offset of the inode in the meta area
	ino   uint32 // on-disk i_ino (see number)
	nlink uint32 // names in the tree, or 2 + subdirectories
	bits  uint32 // size of the xattr ibody (0 without xattrs), | inlineBit
	aux   int32  // directories: index in encoder.dirs; symlinks with data blocks: index in encoder.symAt; else -1
}

// inlineBit in winode.bits marks FLAT_INLINE directories and symlinks.
const inlineBit = 1 << 31

// wdir is a directory being written.
type wdir struct {
	rec    int32    // its record
	parent int32    // its parent's index in encoder.dirs (the root's is 0)
	first  int32    // the record of its first child that is a new inode
	nnew   int32    // how many of its children are new inodes (records first, first+1, ...)
	size   int64    // size of its data (see dirSize)
	dataAt int64    // virtual offset of its data blocks
	kids   []*Node  // its children sorted by name (Node.Children itself when already sorted)
	shared []kidRec // the records of children that are not new inodes (hard links), in name order
}

// kidRec is the record of a directory's child that names an inode met
// before.
type kidRec struct{ kid, rec int32 }

// dirEnt is a directory entry being written.
type dirEnt struct {
	name string
	rec  int32
}

func (w *winode) nid() uint64      { return uint64(w.off / inodeSlot) }
func (w *winode) xattrSize() int64 { return int64(w.bits &^ inlineBit) }
func (w *winode) metaSize() int64  { return erofs.ExtendedInodeSize + w.xattrSize() }
func (w *winode) inline() bool     { return w.bits&inlineBit != 0 }
func (w *winode) fileType() uint8  { return erofs.FileTypeOfMode(w.n.Mode) }
func (w *winode) isDir() bool      { return w.n.IsDir() }
func (w *winode) hasBlockData() bool {
	return w.isDir() || w.n.Mode&erofs.ModeTypeMask == erofs.ModeSymlink
}

// recPageSize is the number of records per page: pages are never
// reallocated, so growing the table leaves no garbage behind.
const recPageSize = 1024

// encoder holds the state of one encode: the inodes numbered and placed,
// the chunk table and the file layout.
type encoder struct {
	b       *Bootstrap
	pages   [][]winode         // unique inodes in visit (i_ino) order
	nrec    int32              // records in pages
	dirs    []wdir             // directories in visit order
	symAt   []int64            // virtual offsets of symlinks' data blocks
	inodes  nodeTable          // non-directory inodes by attribute source → record
	seenDir map[*Node]struct{} // directory nodes seen, to reject repeats
	ino     uint32             // last assigned i_ino
	xattrs  bool               // any inode has xattrs
	records []ChunkRecord      // the chunk table, sorted
	spare   []int32            // inodes' slots, reused by emit
	blocks  uint64             // blocks of all blobs
	bits    uint32             // log2 of the block size (see blockBitsOf)
	bs      int64              // the block size: directory blocks, inline tails, block addresses

	// Layout (see the constants in format.go).
	blobTableOff, prefetchOff, prefetchSize int64
	metaAddr, cursor, chunkTableOff         int64
	fileSize                                int64

	buf, dataBuf []byte          // scratch space
	dirBlk       [BlockSize]byte // scratch space: a directory block (bs bytes of it)
	blockEnts    []dirEnt        // scratch space: the entries of a directory block
}

// rec returns record r.
func (e *encoder) rec(r int32) *winode { return &e.pages[r/recPageSize][r%recPageSize] }

// pagePool recycles record pages from one encode to the next: a Nydus
// build encodes its bootstrap twice in a row (inline in the blob and on
// its own), and the second encode then allocates no records.
var pagePool = sync.Pool{New: func() any { p := make([]winode, 0, recPageSize); return &p }}

// newRec appends a record and returns its index.
func (e *encoder) newRec(w winode) int32 {
	if e.nrec%recPageSize == 0 {
		e.pages = append(e.pages, (*pagePool.Get().(*[]winode))[:0])
	}
	p := &e.pages[len(e.pages)-1]
	*p = append(*p, w)
	e.nrec++
	return e.nrec - 1
}

// release returns the record pages to pagePool, cleared (so that they hold
// no nodes).
func (e *encoder) release() {
	for _, p := range e.pages {
		clear(p)
		p = p[:0]
		pagePool.Put(&p)
	}
	e.pages, e.nrec = nil, 0
	if c := cap(e.spare); c > 0 && c&(c-1) == 0 {
		s := e.spare[:0]
		slotPool.Put(&s)
	}
	e.spare = nil
}

// dataAt returns the virtual offset of a directory's or symlink's data
// blocks.
func (e *encoder) dataAt(w *winode) int64 {
	if w.isDir() {
		return e.dirs[w.aux].dataAt
	}
	return e.symAt[w.aux]
}

func (e *encoder) setDataAt(w *winode, off int64) {
	if w.isDir() {
		e.dirs[w.aux].dataAt = off
		return
	}
	w.aux = int32(len(e.symAt))
	e.symAt = append(e.symAt, off)
}

// nodeTable maps nodes to int32 values by the node's address: an
// open-addressing hash table of values (4 bytes a slot, at most three
// quarters full) whose keys are found through key. It takes a fraction of
// the memory of a map[*Node]int32.
type nodeTable struct {
	key   func(v int32) *Node
	seed  maphash.Seed
	slots []int32 // value + 1; 0 is empty
	n     int
}

// find returns the value of node n.
func (t *nodeTable) find(n *Node) (int32, bool) {
	if len(t.slots) == 0 {
		return 0, false
	}
	mask := uint64(len(t.slots) - 1)
	for i := maphash.Comparable(t.seed, n) & mask; ; i = (i + 1) & mask {
		v := t.slots[i] - 1
		if v < 0 {
			return 0, false
		}
		if t.key(v) == n {
			return v, true
		}
	}
}

// insert adds value v, for node key(v), which is not in the table.
func (t *nodeTable) insert(v int32) {
	if 4*(t.n+1) > 3*len(t.slots) {
		old := t.slots
		t.slots = getSlots(max(1024, 2*len(old)))
		if t.n == 0 {
			t.seed = maphash.MakeSeed()
		}
		t.n = 0
		for _, o := range old {
			if o != 0 {
				t.insert(o - 1)
			}
		}
	}
	mask := uint64(len(t.slots) - 1)
	i := maphash.Comparable(t.seed, t.key(v)) & mask
	for t.slots[i] != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = v + 1
	t.n++
}

// slotPool recycles the slots of nodeTable (see pagePool).
var slotPool sync.Pool

// getSlots returns n cleared slots, or more (a power of two).
func getSlots(n int) []int32 {
	if p, _ := slotPool.Get().(*[]int32); p != nil {
		if c := cap(*p); c >= n && c <= 64*n {
			s := (*p)[:c]
			clear(s)
			return s
		}
		slotPool.Put(p)
	}
	return make([]int32, n)
}

// dirPath returns directory di's path ("" for the root), for error
// messages.
func (e *encoder) dirPath(di int32) string {
	var names []string
	for ; di != 0; di = e.dirs[di].parent {
		names = append(names, e.rec(e.dirs[di].rec).n.Name)
	}
	slices.Reverse(names)
	if len(names) == 0 {
		return ""
	}
	return "/" + strings.Join(names, "/")
}

// childPath returns the path of entry name in directory di; di -1 is the
// root's own "/".
func (e *encoder) childPath(di int32, name string) string {
	if di < 0 {
		return "/"
	}
	return e.dirPath(di) + "/" + name
}

// path returns record r's path ("/" for the root), for error messages:
// the path of its first name, found through the directory that gave it
// its number.
func (e *encoder) path(r int32) string {
	if r == 0 {
		return "/"
	}
	di, _ := slices.BinarySearchFunc(e.dirs, r, func(d wdir, r int32) int { return cmp.Compare(int64(d.first), int64(r)+1) })
	di-- // the last directory whose first new child is at or before r
	d := &e.dirs[di]
	k, si := d.first, 0
	for i, c := range d.kids {
		if si < len(d.shared) && d.shared[si].kid == int32(i) {
			si++
			continue
		}
		if k == r {
			return e.childPath(int32(di), c.Name)
		}
		k++
	}
	return fmt.Sprintf("inode %d", r) // not reached
}

// newEncoder validates b, numbers and places its inodes and lays out the
// file. The caller releases it.
func newEncoder(b *Bootstrap) (*encoder, error) {
	e, err := layout(b)
	if err != nil {
		e.release()
		return nil, err
	}
	return e, nil
}

// layout does newEncoder's work; it returns the encoder on errors too.
func layout(b *Bootstrap) (*encoder, error) {
	e := &encoder{b: b, seenDir: map[*Node]struct{}{}, bits: blockBitsOf(b.Flags)}
	e.bs = 1 << e.bits
	e.inodes.key = func(r int32) *Node { return e.rec(r).n }
	if b.Root == nil || !b.Root.IsDir() || b.Root.Link != nil {
		return e, errors.New("root must be a directory node without Link")
	}
	if err := checkChunkSize(b.ChunkSize); err != nil {
		return e, fmt.Errorf("chunk size %w", err)
	}
	if err := checkFlags(b.Flags); err != nil {
		return e, fmt.Errorf("superblock flags: %w", err)
	}
	if len(b.Blobs) > MaxBlobs {
		return e, fmt.Errorf("%d blobs; a bootstrap holds at most %d", len(b.Blobs), MaxBlobs)
	}
	ids := map[string]int{}
	for i := range b.Blobs {
		bi := &b.Blobs[i]
		if err := checkBlob(bi, b.Flags); err != nil {
			return e, fmt.Errorf("blob %d (%s): %w", i, bi.ID, err)
		}
		if j, dup := ids[bi.ID]; dup {
			return e, fmt.Errorf("blob %d: id %s already used by blob %d", i, bi.ID, j)
		}
		ids[bi.ID] = i
		if b.Flags&FlagInlinedChunkDigest != 0 && !bi.inlinesChunkDigests() {
			return e, fmt.Errorf("blob %d (%s): flag INLINED_CHUNK_DIGEST is set but the blob lacks feature INLINED_CHUNK_DIGEST", i, bi.ID)
		}
		e.blocks += bi.UncompressedSize / uint64(e.bs)
	}
	if e.blocks > 0xFFFFFFFF {
		return e, fmt.Errorf("blobs total %d blocks, more than the superblock's 32-bit count", e.blocks)
	}

	// Number the inodes (i_ino) and collect them in visit order.
	if _, _, err := e.addInode(-1, b.Root); err != nil {
		return e, err
	}
	if err := e.number(); err != nil {
		return e, err
	}
	e.spare, e.inodes, e.seenDir = e.inodes.slots, nodeTable{}, nil
	for r := range e.nrec {
		if err := e.prepare(e.rec(r)); err != nil {
			return e, fmt.Errorf("%s: %w", e.path(r), err)
		}
	}
	var err error
	if e.records, err = e.chunkTable(); err != nil {
		return e, err
	}

	// Place the inodes in the meta area's virtual space (see place).
	e.cursor = e.place()

	// Whole-file layout: superblock, extended superblock, device slots,
	// blob table, prefetch table, inodes, chunk table (nydus's
	// builder/src/core/v6.rs, Bootstrap::v6_dump), each 4 KiB-aligned
	// whatever the block size. The prefetch table is nydus-snapshotter's
	// one-entry [root]; tarfs bootstraps have none, as the snapshotter
	// runs nydus-image for them without a prefetch policy.
	nb := int64(len(b.Blobs))
	e.blobTableOff = alignUp(devSlotOffset+devSlotSize*nb, BlockSize)
	if nb > 0 {
		e.prefetchOff = e.blobTableOff + blobEntrySize*nb
		e.prefetchSize = prefetchEntry
		if b.Flags&FlagTarfsMode != 0 {
			e.prefetchOff, e.prefetchSize = 0, 0
		}
		e.metaAddr = alignUp(e.blobTableOff+blobEntrySize*nb+e.prefetchSize, BlockSize)
	}
	e.chunkTableOff = e.metaAddr + alignUp(e.cursor, BlockSize)
	e.fileSize = alignUp(e.chunkTableOff+int64(len(e.records))*chunkRecordSize, BlockSize)
	if e.fileSize/e.bs > 0xFFFFFFFF {
		return e, fmt.Errorf("bootstrap of %d bytes is too large", e.fileSize)
	}
	return e, nil
}

// addInode returns the record for tree entry n, named in directory di (-1
// for the root itself), creating it (and giving it the next i_ino) on
// first use.
func (e *encoder) addInode(di int32, n *Node) (r int32, isNew bool, err error) {
	src := n.inode()
	if n.Link != nil {
		if src.Link != nil {
			return 0, false, fmt.Errorf("%s: hard link target is itself a hard link", e.childPath(di, n.Name))
		}
		if src.IsDir() {
			return 0, false, fmt.Errorf("%s: hard link to a directory", e.childPath(di, n.Name))
		}
	}
	if src.IsDir() {
		if _, dup := e.seenDir[src]; dup {
			return 0, false, fmt.Errorf("%s: directory node appears twice in the tree", e.childPath(di, n.Name))
		}
		e.seenDir[src] = struct{}{}
	} else if r, ok := e.inodes.find(src); ok {
		e.rec(r).nlink++
		return r, false, nil
	}
	e.ino++
	r = e.newRec(winode{n: src, ino: e.ino, nlink: 1, aux: -1})
	if !src.IsDir() {
		e.inodes.insert(r)
	}
	return r, true, nil
}

// number assigns i_ino to every entry below the root, in the order of
// nydus-image (builder/src/core/bootstrap.rs, build_rafs): all
// children of a directory get consecutive numbers in name order, then each
// child directory is numbered, depth first, in name order. Hard links
// reuse the first name's number, but the counter still advances. It
// walks with an explicit stack of directory records.
func (e *encoder) number() error {
	type job struct{ rec, parent int32 }
	stack := []job{{0, 0}}
	for len(stack) > 0 {
		j := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		w := e.rec(j.rec)
		di := int32(len(e.dirs))
		w.aux = di
		w.nlink = 2
		e.dirs = append(e.dirs, wdir{rec: j.rec, parent: j.parent, first: e.nrec, kids: sortedChildren(w.n)})
		d := &e.dirs[di]
		for i, c := range d.kids {
			if err := checkName(c.Name); err != nil {
				return fmt.Errorf("%s: %w", e.childPath(di, c.Name), err)
			}
			if i > 0 && d.kids[i-1].Name == c.Name {
				return fmt.Errorf("%s: duplicate name in directory", e.childPath(di, c.Name))
			}
			if e.ino == 0xFFFFFFFF {
				return errors.New("too many entries")
			}
			k, isNew, err := e.addInode(di, c)
			if err != nil {
				return err
			}
			if !isNew {
				e.ino++ // a hard link: the counter still advances
				d.shared = append(d.shared, kidRec{int32(i), k})
			}
		}
		d.nnew = e.nrec - d.first
		d.size = dirSize(d.kids, e.bs)
		for k := d.first + d.nnew - 1; k >= d.first; k-- {
			if e.rec(k).isDir() {
				w.nlink++
				stack = append(stack, job{k, di})
			}
		}
	}
	return nil
}

// prepare validates an inode's attributes and sizes its xattrs.
func (e *encoder) prepare(w *winode) error {
	n := w.n
	if n.MtimeNsec >= 1e9 {
		return fmt.Errorf("mtime nanoseconds %d out of range", n.MtimeNsec)
	}
	if n.Mode&^(erofs.ModeTypeMask|erofs.ModePermMask) != 0 || erofs.FileTypeOfMode(n.Mode) == 0 {
		return fmt.Errorf("invalid mode %#o", n.Mode)
	}
	x, err := xattrSize(n.Xattrs)
	if err != nil {
		return err
	}
	w.bits = uint32(x)
	if x != 0 {
		e.xattrs = true
	}
	switch n.Mode & erofs.ModeTypeMask {
	case erofs.ModeSymlink:
		if len(n.Linkname) == 0 || len(n.Linkname) > MaxSymlinkLen {
			return fmt.Errorf("symlink target of %d bytes (must be 1-%d)", len(n.Linkname), MaxSymlinkLen)
		}
	case erofs.ModeRegular:
		return e.checkChunks(n)
	case erofs.ModeCharDevice, erofs.ModeBlockDevice:
		if n.Devmajor > 0xFFF || n.Devminor > 0xFFFFF {
			return fmt.Errorf("device number %d:%d out of range", n.Devmajor, n.Devminor)
		}
	}
	return nil
}

// checkChunks validates a regular file's chunks against its size and the
// blob table.
func (e *encoder) checkChunks(n *Node) error {
	b := e.b
	want := chunkCount(n.Size, b.ChunkSize)
	if uint64(len(n.Chunks)) != want {
		return fmt.Errorf("file of %d bytes needs %d chunks of %d bytes, has %d", n.Size, want, b.ChunkSize, len(n.Chunks))
	}
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
func checkChunk(c *ChunkRecord, b *Bootstrap) error {
	if int(c.BlobIndex) >= len(b.Blobs) {
		return fmt.Errorf("blob index %d, but there are %d blobs", c.BlobIndex, len(b.Blobs))
	}
	bi := &b.Blobs[c.BlobIndex]
	bs := uint64(b.BlockSize())
	switch {
	case c.Index >= bi.ChunkCount:
		return fmt.Errorf("CI index %d, but blob %d has %d chunks", c.Index, c.BlobIndex, bi.ChunkCount)
	case c.UncompressedOffset%bs != 0:
		return fmt.Errorf("uncompressed offset %#x is not %d-aligned", c.UncompressedOffset, bs)
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
// (nydus-image's DigestWithBlobIndex order; the table is the one
// RafsV6SuperBlockExt s_chunk_table_offset points to). Two chunks with the
// same (digest, blob) must be the same chunk, and a (blob, CI index) pair
// must always name the same chunk — except in tarfs mode, where chunks
// have no digests (nydus-image leaves them zero): the table then holds
// one record per blob, the last chunk visited, which nothing reads (the
// kernel finds tarfs chunks by their chunk index alone).
func (e *encoder) chunkTable() ([]ChunkRecord, error) {
	tarfs := e.b.Flags&FlagTarfsMode != 0
	type key struct {
		digest [32]byte
		blob   uint32
	}
	type slot struct{ blob, index uint32 }
	byKey := map[key]int{}
	bySlot := map[slot][32]byte{}
	var recs []ChunkRecord
	for r := range e.nrec {
		n := e.rec(r).n
		for i := range n.Chunks {
			c := n.Chunks[i]
			s := slot{c.BlobIndex, c.Index}
			if d, ok := bySlot[s]; ok && d != c.Digest {
				return nil, fmt.Errorf("%s: chunk %d: blob %d CI index %d already holds a chunk with another digest", e.path(r), i, c.BlobIndex, c.Index)
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
			if p != c && !tarfs {
				return nil, fmt.Errorf("%s: chunk %d: digest %x in blob %d differs from an earlier chunk with that digest (the chunk table holds one record per digest and blob)",
					e.path(r), i, c.Digest[:8], c.BlobIndex)
			}
			recs[j] = c // the last one visited wins
		}
	}
	slices.SortFunc(recs, func(a, b ChunkRecord) int {
		if c := bytes.Compare(a.Digest[:], b.Digest[:]); c != 0 {
			return c
		}
		return int(a.BlobIndex) - int(b.BlobIndex)
	})
	return recs, nil
}

// sortedXattrNames returns the names of xs, sorted.
func sortedXattrNames(xs map[string][]byte) []string {
	names := make([]string, 0, len(xs))
	for k := range xs {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// xattrSize validates xattrs and returns the size of their inline ibody,
// 0 when there are none.
func xattrSize(xs map[string][]byte) (int64, error) {
	if len(xs) == 0 {
		return 0, nil
	}
	size := erofs.XattrIbodyHeaderSize
	for _, name := range sortedXattrNames(xs) {
		v := xs[name]
		if err := erofs.CheckXattr(name, len(v)); err != nil {
			return 0, err
		}
		_, suffix, _ := erofs.SplitXattrName(name)
		size += erofs.XattrEntrySize(len(suffix), len(v))
	}
	if size > erofs.XattrIbodySize(math.MaxUint16) {
		return 0, fmt.Errorf("xattrs take %d bytes, more than an inode can hold", size)
	}
	return int64(size), nil
}

// appendXattrs appends the inline xattr ibody of xs (validated by
// xattrSize), entries sorted by name.
func appendXattrs(dst []byte, xs map[string][]byte) []byte {
	dst = erofs.XattrIbodyHeader{}.Append(dst)
	for _, name := range sortedXattrNames(xs) {
		idx, suffix, _ := erofs.SplitXattrName(name)
		dst = erofs.AppendXattrEntry(dst, idx, suffix, xs[name])
	}
	return dst
}

// forEachDirent calls fn for each entry of a directory in on-disk order —
// "." and ".." sorted with kids (which are sorted and hold neither) — with
// the entry's index in kids (-1 for ".", -2 for "..") and its byte offset
// in the directory data: entries are packed in order and one that would
// cross a block boundary starts the next block.
func forEachDirent(kids []*Node, bs int64, fn func(name string, kid int, off int64)) {
	var d int64
	one := func(name string, kid int) {
		d = erofs.DirentOffset(d, len(name), bs)
		fn(name, kid, d)
		d += erofs.DirentSize + int64(len(name))
	}
	dots := [2]string{".", ".."}
	di := 0
	for i, c := range kids {
		for di < len(dots) && dots[di] < c.Name {
			one(dots[di], -1-di)
			di++
		}
		one(c.Name, i)
	}
	for ; di < len(dots); di++ {
		one(dots[di], -1-di)
	}
}

// dirSize returns the size of a directory's data: dirents and names packed
// into blocks of bs bytes, no entry or name crossing a block boundary
// (nydus's builder/src/core/v6.rs, Node::v6_dirent_size).
func dirSize(kids []*Node, bs int64) int64 {
	var d int64
	forEachDirent(kids, bs, func(name string, _ int, off int64) { d = off + erofs.DirentSize + int64(len(name)) })
	return d
}

// dirBlocks calls fn for each block of directory record r's data (see
// dirSize), in order, now that every nid is known: each block holds its
// dirents, then their names. off is the block's offset in the data, blk
// its bytes (the last block may be short), valid during the call only.
// It stops at the first error fn returns.
func (e *encoder) dirBlocks(r int32, fn func(off int64, blk []byte) error) error {
	w := e.rec(r)
	d := &e.dirs[w.aux]
	blk := e.blockEnts[:0]
	blkNo := int64(-1)
	var err error
	flush := func() {
		if err != nil {
			return
		}
		b := e.dirBlk[:min(e.bs, d.size-blkNo*e.bs)]
		err = erofs.EncodeDirBlock(b, len(blk), func(j int) (uint64, uint8, string) {
			t := e.rec(blk[j].rec)
			return t.nid(), t.fileType(), blk[j].name
		})
		blk = blk[:0]
		if err != nil {
			err = fmt.Errorf("internal error: directory block at offset %d: %w", blkNo*e.bs, err)
			return
		}
		err = fn(blkNo*e.bs, b)
	}
	// Children that are new inodes have the records d.first, d.first+1,
	// ... in name order; the others are listed in d.shared.
	next, si := d.first, 0
	forEachDirent(d.kids, e.bs, func(name string, kid int, off int64) {
		var rec int32
		switch {
		case kid == -1:
			rec = r
		case kid == -2:
			rec = e.dirs[d.parent].rec
		case si < len(d.shared) && d.shared[si].kid == int32(kid):
			rec = d.shared[si].rec
			si++
		default:
			rec = next
			next++
		}
		if b := off / e.bs; b != blkNo {
			if blkNo >= 0 {
				flush()
			}
			blkNo = b
		}
		blk = append(blk, dirEnt{name, rec})
	})
	flush()
	e.blockEnts = blk
	return err
}

// allocator is nydus's meta-area allocator (builder/src/core/context.rs,
// BootstrapContext::allocate_available_block): a cursor plus FIFO buckets
// of partly used blocks of bs bytes, indexed by their free 32-byte slots.
type allocator struct {
	cursor  int64
	bs      int64
	buckets [BlockSize / inodeSlot][]int64
}

// push records the free space between off and the end of its block.
func (a *allocator) push(off int64) {
	r := off % a.bs
	if r == 0 {
		return
	}
	free := (a.bs - r) / inodeSlot
	if free == 0 {
		return
	}
	blk := off - r
	a.buckets[free] = append(a.buckets[free], blk)
}

// frag allocates s bytes from a partly used block, if one has room.
func (a *allocator) frag(s int64) (int64, bool) {
	if s >= a.bs {
		return 0, false
	}
	need := (s + inodeSlot - 1) / inodeSlot
	for bkt := need; bkt < a.bs/inodeSlot; bkt++ {
		q := a.buckets[bkt]
		if len(q) == 0 {
			continue
		}
		blk := q[0]
		a.buckets[bkt] = q[1:]
		start := blk + a.bs - bkt*inodeSlot
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

// place lays out every inode as nydus-image does (builder/src/core/v6.rs,
// Node::v6_set_offset and v6_set_dir_offset) and returns the end of the
// used virtual space. The root lands at 4096 (nid 128) whatever the block
// size. Directories are placed in visit order, each followed by its
// children that are new inodes and not directories.
func (e *encoder) place() int64 {
	a := &allocator{cursor: unusedMetaBlock, bs: e.bs}
	for i := range e.dirs {
		d := &e.dirs[i]
		e.placeOne(a, e.rec(d.rec))
		for k := d.first; k < d.first+d.nnew; k++ {
			if w := e.rec(k); !w.isDir() {
				e.placeOne(a, w)
			}
		}
	}
	return a.cursor
}

// dataSize returns the size of a directory's or symlink's data.
func (e *encoder) dataSize(w *winode) int64 {
	if w.isDir() {
		return e.dirs[w.aux].size
	}
	return int64(len(w.n.Linkname))
}

// placeOne allocates one inode (and, for directories and symlinks, its
// data blocks).
func (e *encoder) placeOne(a *allocator, w *winode) {
	meta := w.metaSize()
	defer func() { a.cursor = alignUp(a.cursor, inodeSlot) }()
	switch {
	case w.n.IsRegular():
		need := alignUp(meta, erofs.ChunkIndexSize) + erofs.ChunkIndexSize*int64(len(w.n.Chunks))
		if off, ok := a.frag(need); ok {
			w.off = off
			return
		}
		w.off = a.take(need)
	case w.hasBlockData():
		d := e.dataSize(w)
		bs := e.bs
		t := d % bs
		if t != 0 && meta+t <= bs {
			w.bits |= inlineBit
			s := meta + t
			if off, ok := a.frag(s); ok {
				w.off = off
			} else {
				if a.cursor%bs+s > bs {
					a.push(a.cursor)
					a.cursor = alignUp(a.cursor, bs)
				}
				w.off = a.take(s)
			}
			if d != t {
				a.push(a.cursor)
				a.cursor = alignUp(a.cursor, bs)
				e.setDataAt(w, a.take(d-t))
			}
			return
		}
		if off, ok := a.frag(meta); ok {
			w.off = off
		} else {
			w.off = a.take(meta)
		}
		a.push(a.cursor)
		a.cursor = alignUp(a.cursor, bs)
		e.setDataAt(w, a.take(d))
		a.cursor = alignUp(a.cursor, bs)
	default:
		w.off = a.take(meta)
	}
}

// hasDataPiece reports whether an inode has data blocks of its own
// (directories and symlinks that are not inline, or are longer than their
// inline tail).
func (e *encoder) hasDataPiece(w *winode) bool {
	return w.hasBlockData() && (!w.inline() || e.dataSize(w) >= e.bs)
}

// putData puts an inode's data blocks (see hasDataPiece).
func (e *encoder) putData(s sink, r int32) error {
	w := e.rec(r)
	d := e.dataSize(w)
	end := d
	if w.inline() {
		end = d - d%e.bs
	}
	at := e.metaAddr + e.dataAt(w)
	if !w.isDir() {
		e.dataBuf = append(e.dataBuf[:0], w.n.Linkname[:end]...)
		return s.put(at, e.dataBuf)
	}
	return e.dirBlocks(r, func(off int64, blk []byte) error {
		if off >= end {
			return nil
		}
		return s.put(at+off, blk)
	})
}

// inodePiece returns the bytes of an inode's slots: the inode, its xattrs
// and its inline tail or chunk indexes. They are valid until the next
// call.
func (e *encoder) inodePiece(r int32) ([]byte, error) {
	w := e.rec(r)
	n := w.n
	at := e.metaAddr + w.off
	buf := append(e.buf[:0], make([]byte, erofs.ExtendedInodeSize)...)
	if w.xattrSize() > 0 {
		buf = appendXattrs(buf, n.Xattrs)
	}
	layout := erofs.LayoutFlatPlain
	var size uint64
	var iu uint32
	switch n.Mode & erofs.ModeTypeMask {
	case erofs.ModeRegular:
		layout = erofs.LayoutChunkBased
		size = n.Size
		iu = erofs.ChunkFormatIndexes | e.chunkBits(n)
		for len(buf)%erofs.ChunkIndexSize != 0 {
			buf = append(buf, 0)
		}
		for i := range n.Chunks {
			c := &n.Chunks[i]
			buf = append(buf, make([]byte, erofs.ChunkIndexSize)...)
			if err := chunkIndex(c.Index, c.BlobIndex, uint32(c.UncompressedOffset/uint64(e.bs))).Encode(buf[len(buf)-erofs.ChunkIndexSize:]); err != nil {
				return nil, fmt.Errorf("internal error: inode at offset %d, chunk %d: %w", at, i, err)
			}
		}
	case erofs.ModeDir, erofs.ModeSymlink:
		d := e.dataSize(w)
		t := d % e.bs
		size = uint64(d)
		if w.inline() {
			layout = erofs.LayoutFlatInline
			iu = uint32((at + w.metaSize()) / e.bs)
			if d != t {
				iu = uint32((e.metaAddr + e.dataAt(w)) / e.bs)
			}
			if w.isDir() {
				e.dirBlocks(r, func(off int64, blk []byte) error {
					if off == d-t {
						buf = append(buf, blk...)
					}
					return nil
				})
			} else {
				buf = append(buf, n.Linkname[d-t:]...)
			}
		} else {
			iu = uint32((e.metaAddr + e.dataAt(w)) / e.bs)
		}
	case erofs.ModeCharDevice, erofs.ModeBlockDevice:
		iu = erofs.EncodeDev(n.Devmajor, n.Devminor)
	}
	core := erofs.Inode{
		Format:     uint16(erofs.InodeExtended | layout<<1),
		XattrCount: erofs.XattrIcount(int(w.xattrSize())),
		Mode:       uint16(n.Mode),
		Size:       size,
		U:          iu,
		Ino:        w.ino,
		UID:        n.UID,
		GID:        n.GID,
		Mtime:      uint64(n.Mtime),
		MtimeNsec:  n.MtimeNsec,
		Nlink:      w.nlink,
	}
	if err := core.Encode(buf); err != nil {
		return nil, fmt.Errorf("internal error: inode at offset %d: %w", at, err)
	}
	e.buf = buf
	return buf, nil
}

// head returns the file's first bytes: the superblocks, device slots,
// blob table and prefetch table, up to the meta area's first inode.
func (e *encoder) head() ([]byte, error) {
	b := e.b
	root := e.rec(0)
	img := make([]byte, max(e.metaAddr, BlockSize))

	// EROFS superblock.
	sb := erofs.Superblock{
		Magic:           erofs.Magic,
		FeatureCompat:   FeatureCompatRAFSV6,
		FeatureIncompat: featureIncompatRAFS,
		BlkSzBits:       uint8(e.bits),
		RootNid:         root.nid(),
		Inodes:          uint64(e.ino),
		Blocks:          e.blocks,
		MetaBlkAddr:     uint32(e.metaAddr / e.bs),
		ExtraDevices:    uint16(len(b.Blobs)),
		DevtSlotOff:     devtSlotOff,
	}
	if err := sb.Encode(img[sbOffset:]); err != nil {
		return nil, fmt.Errorf("internal error: %w", err)
	}

	// Extended superblock.
	flags := b.Flags
	if e.xattrs {
		flags |= FlagHasXattr
	}
	ext := extSuperblock{
		flags:               flags,
		blobTableOffset:     uint64(e.blobTableOff),
		blobTableSize:       uint32(blobEntrySize * len(b.Blobs)),
		chunkSize:           b.ChunkSize,
		chunkTableOffset:    uint64(e.chunkTableOff),
		chunkTableSize:      uint64(len(e.records)) * chunkRecordSize,
		prefetchTableOffset: uint64(e.prefetchOff),
		prefetchTableSize:   uint32(e.prefetchSize),
	}
	ext.encode(img[extSBOffset:])

	// Device slots, blob table, prefetch table.
	pos := e.fileSize
	for i := range b.Blobs {
		bi := &b.Blobs[i]
		nblk := int64(bi.UncompressedSize / uint64(e.bs))
		mapped := alignUp(pos, mappedAlign) / e.bs
		pos = (mapped + nblk) * e.bs
		slot := erofs.SuperblockDevice{Tag: bi.ID, Blocks: uint64(nblk), UniAddr: uint64(mapped)}
		if err := slot.Encode(img[devSlotOffset+devSlotSize*int64(i):]); err != nil {
			return nil, fmt.Errorf("internal error: device slot %d: %w", i, err)
		}
		encodeBlobEntry(img[e.blobTableOff+blobEntrySize*int64(i):][:blobEntrySize], i, b.ChunkSize, bi)
	}
	if e.prefetchSize > 0 {
		le.PutUint32(img[e.prefetchOff:], uint32(root.nid()))
	}
	return img, nil
}

// sink receives the pieces of the image.
type sink interface {
	put(off int64, p []byte) error
}

// imageSink writes pieces into an image in memory, in any order.
type imageSink []byte

func (img imageSink) put(off int64, p []byte) error {
	copy(img[off:], p)
	return nil
}

// streamSink writes pieces given in file order, zero-filling the gaps.
type streamSink struct {
	w   *bufio.Writer
	pos int64
}

var zeros [BlockSize]byte

func (s *streamSink) put(off int64, p []byte) error {
	if off < s.pos {
		return fmt.Errorf("internal error: piece at offset %d after offset %d", off, s.pos)
	}
	for s.pos < off {
		n, err := s.w.Write(zeros[:min(off-s.pos, BlockSize)])
		s.pos += int64(n)
		if err != nil {
			return err
		}
	}
	n, err := s.w.Write(p)
	s.pos += int64(n)
	return err
}

// emit writes the image to s: in file order when sorted is set, which
// streamSink needs, else inode by inode.
func (e *encoder) emit(s sink, sorted bool) error {
	head, err := e.head()
	if err != nil {
		return err
	}
	if err := s.put(0, head); err != nil {
		return err
	}
	if !sorted {
		for r := range e.nrec {
			piece, err := e.inodePiece(r)
			if err != nil {
				return err
			}
			if err := s.put(e.metaAddr+e.rec(r).off, piece); err != nil {
				return err
			}
			if e.hasDataPiece(e.rec(r)) {
				if err := e.putData(s, r); err != nil {
					return err
				}
			}
		}
	} else {
		// The inodes, and the data blocks of directories and symlinks, in
		// order of their offsets.
		inodes := slices.Grow(e.spare[:0], int(e.nrec))[:e.nrec]
		var blocks []int32
		for r := range e.nrec {
			inodes[r] = r
			if e.hasDataPiece(e.rec(r)) {
				blocks = append(blocks, r)
			}
		}
		slices.SortFunc(inodes, func(a, b int32) int { return cmp.Compare(e.rec(a).off, e.rec(b).off) })
		slices.SortFunc(blocks, func(a, b int32) int { return cmp.Compare(e.dataAt(e.rec(a)), e.dataAt(e.rec(b))) })
		for len(inodes) > 0 || len(blocks) > 0 {
			if len(blocks) == 0 || len(inodes) > 0 && e.rec(inodes[0]).off < e.dataAt(e.rec(blocks[0])) {
				r := inodes[0]
				inodes = inodes[1:]
				piece, err := e.inodePiece(r)
				if err != nil {
					return err
				}
				if err := s.put(e.metaAddr+e.rec(r).off, piece); err != nil {
					return err
				}
				continue
			}
			r := blocks[0]
			blocks = blocks[1:]
			if err := e.putData(s, r); err != nil {
				return err
			}
		}
	}

	// The chunk table, then zeros to the end of the last block.
	for i := 0; i < len(e.records); {
		k := min(len(e.records)-i, 512)
		buf := slices.Grow(e.buf[:0], k*chunkRecordSize)[:k*chunkRecordSize]
		for j := range k {
			encodeChunkRecord(buf[j*chunkRecordSize:][:chunkRecordSize], &e.records[i+j])
		}
		if err := s.put(e.chunkTableOff+int64(i)*chunkRecordSize, buf); err != nil {
			return err
		}
		e.buf = buf
		i += k
	}
	return s.put(e.fileSize, nil)
}

// chunkBits returns the chunk format's block bits for a regular file: the
// filesystem chunk size, or (as nydus's Node::v6_dump_file does) the file
// size rounded up to a power of two when all its chunks are physically
// contiguous in one blob, so the kernel maps the file as one chunk.
func (e *encoder) chunkBits(n *Node) uint32 {
	cs := e.b.ChunkSize
	base := uint32(bits.TrailingZeros32(cs)) - e.bits
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
	big := uint32(bits.Len64(n.Size-1)) - e.bits // log2(next power of two ≥ size) − block bits
	if big > erofs.ChunkFormatBlkBits {
		return base
	}
	return big
}

// checkBlob validates a blob-table entry of a bootstrap with s_flags
// flags the way nydusd does (RafsV6Blob's validate in nydus's
// rafs/src/metadata/layout/v6.rs): in tarfs mode (FlagTarfsMode) every
// blob is a plain tar, with feature TARFS and without ALIGNED, holding
// whole 512-byte blocks; otherwise TARFS is refused and ALIGNED required.
func checkBlob(bi *BlobInfo, flags uint64) error {
	tarfs := flags&FlagTarfsMode != 0
	bs := uint64(1) << blockBitsOf(flags)
	switch {
	case len(bi.ID) != beIDSize:
		return fmt.Errorf("id %q is %d bytes, must be %d", bi.ID, len(bi.ID), beIDSize)
	case strings.ContainsRune(bi.ID, 0):
		return fmt.Errorf("id %q contains NUL", bi.ID)
	case bi.ChunkCount == 0:
		return errors.New("chunk count 0 (a blob without chunks makes the bootstrap unloadable)")
	case bi.ChunkCount > MaxChunksPerBlob:
		return fmt.Errorf("chunk count %d exceeds %d", bi.ChunkCount, MaxChunksPerBlob)
	case bi.Compressor > blob.CompressorZstd:
		return fmt.Errorf("unknown compressor %d", bi.Compressor)
	case bi.CICompressor > blob.CompressorZstd:
		return fmt.Errorf("unknown CI compressor %d", bi.CICompressor)
	case bi.Digester > blob.DigesterSHA256:
		return fmt.Errorf("unknown digester %d", bi.Digester)
	case bi.CipherAlgo > 3:
		return fmt.Errorf("unknown cipher %d", bi.CipherAlgo)
	case bi.Features&^blob.FeaturesKnown != 0:
		return fmt.Errorf("unknown features %#x", bi.Features&^blob.FeaturesKnown)
	case tarfs && bi.Features&blob.FeatureTarfs == 0:
		return fmt.Errorf("features %#x lack TARFS, in a tarfs bootstrap", bi.Features)
	case tarfs && bi.Features&blob.FeatureAligned != 0:
		return fmt.Errorf("features %#x have ALIGNED, which a tarfs blob must not have", bi.Features)
	case !tarfs && bi.Features&blob.FeatureTarfs != 0:
		return fmt.Errorf("features %#x have TARFS, but the superblock lacks flag TARFS_MODE", bi.Features)
	case !tarfs && bi.Features&blob.FeatureAligned == 0:
		return fmt.Errorf("features %#x lack ALIGNED", bi.Features)
	case bi.UncompressedSize == 0 || bi.UncompressedSize%bs != 0:
		return fmt.Errorf("uncompressed size %#x is not a non-zero multiple of %d", bi.UncompressedSize, bs)
	case bi.UncompressedSize > blob.MaxUncompressedOffset:
		return fmt.Errorf("uncompressed size %#x exceeds %#x", bi.UncompressedSize, uint64(blob.MaxUncompressedOffset))
	case bi.CompressedSize > blob.MaxCompressedOffset:
		return fmt.Errorf("compressed size %#x exceeds %#x", bi.CompressedSize, uint64(blob.MaxCompressedOffset))
	case bi.CICompressedSize > bi.CIUncompressedSize:
		return fmt.Errorf("CI compressed size %d exceeds CI uncompressed size %d", bi.CICompressedSize, bi.CIUncompressedSize)
	}
	v2 := bi.Features&blob.FeatureChunkInfoV2 != 0
	if tarfs && (v2 || bi.Features&(blob.FeatureBatch|blob.FeatureZran|blob.FeatureEncrypted|blob.FeatureInlinedChunkDigest) != 0) {
		return fmt.Errorf("features %#x: a tarfs blob has no chunk-info array, digests or encryption", bi.Features)
	}
	if tarfs {
		return nil // it has no CI array (nydusd skips the size check in tarfs mode)
	}
	if bi.Features&(blob.FeatureBatch|blob.FeatureZran|blob.FeatureEncrypted) != 0 {
		if !v2 {
			return fmt.Errorf("features %#x: BATCH, ZRAN and ENCRYPTED need CHUNK_INFO_V2", bi.Features)
		}
		return nil
	}
	if v2 {
		if want := 24 * uint64(bi.ChunkCount); bi.CIUncompressedSize != want {
			return fmt.Errorf("CI uncompressed size %d, want 24 × %d chunks = %d", bi.CIUncompressedSize, bi.ChunkCount, want)
		}
	} else if bi.Features&blob.FeatureChunkdictGenerated == 0 {
		if want := 16 * uint64(bi.ChunkCount); bi.CIUncompressedSize != want {
			return fmt.Errorf("CI uncompressed size %d, want 16 × %d chunks = %d", bi.CIUncompressedSize, bi.ChunkCount, want)
		}
	}
	return nil
}
