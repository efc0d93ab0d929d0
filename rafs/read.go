package rafs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/rafs-dev/rafs/erofs"
)

// ErrFormat is matched (errors.Is) by every error Read returns for a
// bootstrap that is malformed or that nydusd would refuse.
var ErrFormat = errors.New("rafs: invalid bootstrap")

// formatError is a validation failure; it names the field and offset.
type formatError struct{ msg string }

func (e *formatError) Error() string        { return "rafs: invalid bootstrap: " + e.msg }
func (e *formatError) Is(target error) bool { return target == ErrFormat }

func errorf(format string, args ...any) error {
	return &formatError{fmt.Sprintf(format, args...)}
}

// Read parses a RAFS v6 bootstrap of size bytes from r into the model. It
// checks what nydusd checks (the validate methods of RafsV6SuperBlock,
// RafsV6SuperBlockExt and RafsV6Blob in nydus's
// rafs/src/metadata/layout/v6.rs: superblock constants, incompat 0xC,
// flags, blob ids of 64 characters, chunk sizes equal, blob entries, ...)
// and the EROFS structure (dirents, inline tails, xattrs, chunk indexes,
// the chunk table), and returns an error matching ErrFormat that names the
// offending field and its offset for anything wrong. It never panics, and
// its allocations are bounded by size.
//
// Regular files' chunks are resolved through the chunk table, so every
// chunk index must match a record by (blob, CI index, block) — except in
// tarfs bootstraps (FlagTarfsMode, 512-byte blocks, what nydus-image
// create --type tar-tarfs writes), whose blobs are plain tars: a chunk is
// then the file's data at its chunk index's block of the tar, with a zero
// digest, as nydus-image records it. Hard links
// come back as nodes sharing one inode: the first name in visit order is
// the inode's node, later names have Link set to it. Read does not keep
// the prefetch table or the device slots' mapped_blkaddr.
func Read(r io.ReaderAt, size int64) (*Bootstrap, error) {
	d := &decoder{r: r, size: size}
	b, err := d.decode()
	if err != nil {
		var fe *formatError
		if errors.As(err, &fe) {
			return nil, err
		}
		return nil, fmt.Errorf("rafs: reading bootstrap: %w", err)
	}
	return b, nil
}

// decoder holds the state of one Read.
type decoder struct {
	r        io.ReaderAt
	size     int64
	b        *Bootstrap
	metaBase int64
	bs       int64 // block size: 4096, or 512 in tarfs mode
	epoch    int64
	chunks   map[[2]uint32]ChunkRecord // (blob, CI index) → chunk-table record
	budget   int64                     // bytes of directory data and chunk indexes left to read

	// The inodes met so far: seen has a bit per nid; nodes holds the
	// non-directory inodes another name may point to, those with i_nlink
	// above 1, or every one when allLinks is set (see readAll).
	seen     []uint64
	nodes    map[uint64]*Node
	allLinks bool

	ibuf [erofs.ExtendedInodeSize]byte // the inode being read
}

// errNlink reports a non-directory inode with i_nlink 1 met under a
// second name; readAll then reads the tree again keeping every inode.
var errNlink = errors.New("rafs: inode with i_nlink 1 has two names")

// loc locates a directory for error messages: its name and its parent.
// One exists per directory being read; paths are built from them only
// when an error needs one.
type loc struct {
	parent *loc
	name   string
}

// path returns the directory's path: "" for the root, else "/a/b".
func (l *loc) path() string {
	var names []string
	for ; l != nil && l.parent != nil; l = l.parent {
		names = append(names, l.name)
	}
	if len(names) == 0 {
		return ""
	}
	slices.Reverse(names)
	return "/" + strings.Join(names, "/")
}

// where names an inode or a directory in error messages, lazily: it is
// formatted only when an error is.
type where struct {
	dir   *loc   // the directory holding the entry; nil for the root
	name  string // the entry's name
	nid   uint64
	off   int64
	isDir bool // a directory being listed, not an inode being read
}

// path returns the entry's path ("/" for the root).
func (w where) path() string {
	if w.dir == nil {
		return "/"
	}
	return w.dir.path() + "/" + w.name
}

func (w where) String() string {
	if w.isDir {
		p := ""
		if w.dir != nil {
			p = w.path()
		}
		return fmt.Sprintf("%s/: directory nid %d (offset %d)", p, w.nid, w.off)
	}
	return fmt.Sprintf("%s: inode nid %d (offset %d)", w.path(), w.nid, w.off)
}

// read reads exactly len(p) bytes at off, which must lie inside the file.
func (d *decoder) read(p []byte, off int64, what string) error {
	if off < 0 || off > d.size || int64(len(p)) > d.size-off {
		return errorf("%s at offset %d (+%d) is beyond the end of the %d-byte bootstrap", what, off, len(p), d.size)
	}
	n, err := d.r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%s at offset %d: %w", what, off, err)
}

func (d *decoder) decode() (*Bootstrap, error) {
	if d.size < BlockSize || d.size%BlockSize != 0 {
		return nil, errorf("size %d is not a non-zero multiple of %d", d.size, BlockSize)
	}
	var blk0 [BlockSize]byte
	if err := d.read(blk0[:], 0, "block 0"); err != nil {
		return nil, err
	}
	sb := erofs.DecodeSuperblock(blk0[sbOffset:])
	field := func(name string) string {
		return fmt.Sprintf("superblock %s (offset %d)", name, erofs.SuperblockFieldOffset(name))
	}
	if sb.Magic != erofs.Magic {
		return nil, errorf("%s is %#x, not the EROFS magic", field("magic"), sb.Magic)
	}
	checks := []struct {
		name string
		got  uint64
		want uint64
	}{
		{"checksum", uint64(sb.Checksum), 0},
		{"feature_compat", uint64(sb.FeatureCompat & FeatureCompatRAFSV6), FeatureCompatRAFSV6},
		{"sb_extslots", uint64(sb.ExtSlots), 0},
		{"xattr_blkaddr", uint64(sb.XattrBlkAddr), 0},
		{"feature_incompat", uint64(sb.FeatureIncompat), featureIncompatRAFS},
		{"u1", uint64(sb.U1), 0},
		{"devt_slotoff", uint64(sb.DevtSlotOff), devtSlotOff},
	}
	for _, c := range checks {
		if c.got != c.want {
			return nil, errorf("%s is %#x, want %#x", field(c.name), c.got, c.want)
		}
	}
	rootNid := sb.RootNid
	d.epoch = sb.Epoch
	nblobs := int(sb.ExtraDevices)

	// Extended superblock.
	ext, reservedZero := decodeExtSuperblock(blk0[extSBOffset:])
	efield := func(off int, name string) string {
		return fmt.Sprintf("extended superblock %s (offset %d)", name, extSBOffset+off)
	}
	b := &Bootstrap{Flags: ext.flags, ChunkSize: ext.chunkSize}
	d.b = b
	if err := checkFlags(b.Flags); err != nil {
		return nil, errorf("%s: %v", efield(extFlags, "s_flags"), err)
	}
	// The block size goes with the flags: 512 in tarfs mode, else 4096.
	if bits := blockBitsOf(b.Flags); uint32(sb.BlkSzBits) != bits {
		return nil, errorf("%s is %d, want %d with s_flags %#x", field("blkszbits"), sb.BlkSzBits, bits, b.Flags)
	}
	d.bs = b.BlockSize()
	d.metaBase = int64(sb.MetaBlkAddr) * d.bs
	if d.metaBase >= d.size {
		return nil, errorf("%s %d points beyond the file", field("meta_blkaddr"), sb.MetaBlkAddr)
	}
	if err := checkChunkSize(b.ChunkSize); err != nil {
		return nil, errorf("%s %v", efield(extChunkSize, "s_chunk_size"), err)
	}
	if ext.padding != 0 || !reservedZero {
		return nil, errorf("%s: reserved bytes are not zero", efield(extPadding, "padding"))
	}
	if nblobs > MaxBlobs {
		return nil, errorf("%s %d exceeds %d", field("extra_devices"), nblobs, MaxBlobs)
	}
	slotsEnd := int64(devSlotOffset + devSlotSize*nblobs)
	if !allZero(blk0[sbOffset+sbSize : extSBOffset]) {
		return nil, errorf("bytes %d-%d after the superblock are not zero", sbOffset+sbSize, extSBOffset)
	}
	if slotsEnd < BlockSize && !allZero(blk0[slotsEnd:]) {
		return nil, errorf("block 0 bytes after the device table (from offset %d) are not zero", slotsEnd)
	}

	// Blob table.
	btOff := int64(ext.blobTableOffset)
	btSize := int64(ext.blobTableSize)
	if btSize != int64(blobEntrySize*nblobs) {
		return nil, errorf("%s %d does not hold the %d blobs of extra_devices", efield(extBlobTableSize, "s_blob_table_size"), btSize, nblobs)
	}
	if nblobs > 0 && (btOff%BlockSize != 0 || btOff < slotsEnd || btOff < BlockSize || btOff+btSize > d.size) {
		return nil, errorf("%s %d is not a 4 KiB-aligned offset after the device table and inside the file", efield(extBlobTableOffset, "s_blob_table_offset"), btOff)
	}
	bt := make([]byte, btSize)
	if err := d.read(bt, btOff, "blob table"); err != nil {
		return nil, err
	}
	slots := make([]byte, devSlotSize*nblobs)
	if err := d.read(slots, devSlotOffset, "device table"); err != nil {
		return nil, err
	}
	for i := range nblobs {
		at := btOff + int64(blobEntrySize*i)
		bi, index, cs, reservedZero := decodeBlobEntry(bt[blobEntrySize*i:][:blobEntrySize])
		if index != uint32(i) {
			return nil, errorf("blob table entry %d (offset %d): blob_index %d", i, at+beIndex, index)
		}
		if cs != b.ChunkSize {
			return nil, errorf("blob table entry %d (offset %d): chunk_size %#x differs from the superblock's %#x", i, at+beChunkSize, cs, b.ChunkSize)
		}
		if err := checkBlob(&bi, b.Flags); err != nil {
			return nil, errorf("blob table entry %d (offset %d): %v", i, at, err)
		}
		if !reservedZero {
			return nil, errorf("blob table entry %d (offset %d): reserved bytes are not zero", i, at+beReservedStart)
		}
		for j := range i {
			if b.Blobs[j].ID == bi.ID {
				return nil, errorf("blob table entry %d (offset %d): id %s repeats entry %d", i, at, bi.ID, j)
			}
		}
		slot := slots[devSlotSize*i:][:devSlotSize]
		sat := int64(devSlotOffset + devSlotSize*i)
		dev := erofs.DecodeDeviceSlot(slot)
		if dev.Tag != bi.ID {
			return nil, errorf("device slot %d (offset %d): tag %q differs from blob id %q", i, sat, dev.Tag, bi.ID)
		}
		if dev.Blocks != bi.UncompressedSize/uint64(d.bs) {
			return nil, errorf("device slot %d (offset %d): %d blocks, but blob uncompressed size is %d blocks", i, sat+int64(erofs.DeviceSlotFieldOffset("blocks")), dev.Blocks, bi.UncompressedSize/uint64(d.bs))
		}
		var again [devSlotSize]byte
		if err := dev.Encode(again[:]); err != nil {
			return nil, errorf("device slot %d (offset %d): %v", i, sat, err)
		} else if !bytes.Equal(again[:], slot) {
			return nil, errorf("device slot %d (offset %d): reserved bytes are not zero", i, sat)
		}
		if b.Flags&FlagInlinedChunkDigest != 0 && !bi.inlinesChunkDigests() {
			return nil, errorf("blob table entry %d (offset %d): flag INLINED_CHUNK_DIGEST set but the blob lacks the feature", i, at+beFeatures)
		}
		b.Blobs = append(b.Blobs, bi)
	}

	// Prefetch table: validated, not kept.
	pfOff := int64(ext.prefetchTableOffset)
	pfSize := int64(ext.prefetchTableSize)
	if pfSize%prefetchEntry != 0 || (pfSize > 0 && (pfOff < BlockSize || pfOff > d.size || pfSize > d.size-pfOff)) {
		return nil, errorf("%s %d (size %d) is not a table of 4-byte nids inside the file", efield(extPrefetchTableOff, "s_prefetch_table_offset"), pfOff, pfSize)
	}

	// Chunk table.
	ctOff := int64(ext.chunkTableOffset)
	ctSize := int64(ext.chunkTableSize)
	if ctOff%BlockSize != 0 || ctOff < 0 || ctOff > d.size || ctSize%chunkRecordSize != 0 || ctSize < 0 || ctSize > d.size-ctOff {
		return nil, errorf("%s %d / size %d: not a 4 KiB-aligned table of 80-byte records inside the file", efield(extChunkTableOffset, "s_chunk_table_offset"), ctOff, ctSize)
	}
	if err := d.readChunkTable(ctOff, ctSize); err != nil {
		return nil, err
	}

	// The tree.
	root, err := d.readAll(rootNid)
	if errors.Is(err, errNlink) {
		d.allLinks = true
		root, err = d.readAll(rootNid)
	}
	if err != nil {
		return nil, err
	}
	b.Root = root
	return b, nil
}

// readAll reads the tree below the root inode. Hard links are found by
// nid: a name whose inode was met before becomes a Link to it. To know
// that without a map of every inode, it keeps only those with i_nlink
// above 1, and fails with errNlink if an inode with i_nlink 1 turns out
// to have a second name — an inconsistent bootstrap, which the caller
// then reads again with allLinks set.
func (d *decoder) readAll(rootNid uint64) (*Node, error) {
	d.budget = d.size
	d.seen = make([]uint64, (d.size/inodeSlot)/64+1)
	d.nodes = map[uint64]*Node{}
	root, err := d.inode(rootNid, where{nid: rootNid, off: d.metaBase + int64(rootNid)*inodeSlot})
	if err != nil {
		return nil, err
	}
	if !root.n.IsDir() {
		return nil, errorf("root nid %d (offset %d) is not a directory", rootNid, d.metaBase+int64(rootNid)*inodeSlot)
	}
	if err := d.readTree(root); err != nil {
		return nil, err
	}
	return root.n, nil
}

// readChunkTable loads the chunk table, checking its order and records.
func (d *decoder) readChunkTable(off, size int64) error {
	tab := make([]byte, size)
	if err := d.read(tab, off, "chunk table"); err != nil {
		return err
	}
	d.chunks = make(map[[2]uint32]ChunkRecord, size/chunkRecordSize)
	var prev *ChunkRecord
	for i := int64(0); i < size/chunkRecordSize; i++ {
		at := off + i*chunkRecordSize
		c := decodeChunkRecord(tab[i*chunkRecordSize:][:chunkRecordSize])
		if err := checkChunk(&c, d.b); err != nil {
			return errorf("chunk table record %d (offset %d): %v", i, at, err)
		}
		if prev != nil {
			cmp := bytes.Compare(prev.Digest[:], c.Digest[:])
			if cmp > 0 || cmp == 0 && prev.BlobIndex >= c.BlobIndex {
				return errorf("chunk table record %d (offset %d): not sorted by digest then blob index", i, at)
			}
		}
		k := [2]uint32{c.BlobIndex, c.Index}
		if _, dup := d.chunks[k]; dup {
			return errorf("chunk table record %d (offset %d): blob %d CI index %d already has a record", i, at, c.BlobIndex, c.Index)
		}
		d.chunks[k] = c
		prev = &c
	}
	return nil
}

// rinode is an inode read from the meta area.
type rinode struct {
	nid     uint64
	off     int64 // file offset
	n       *Node
	layout  int
	iu      uint32
	size    uint64
	xattrSz int64 // xattr ibody size
	hdrSize int64 // 32 or 64
	nlink   uint32
}

// inode reads the inode at nid, named by where (whose nid and offset
// inode fills in). Directories are read once (a second reference is an
// error); other inodes are shared (hard links).
func (d *decoder) inode(nid uint64, where where) (rinode, error) {
	off := d.metaBase + int64(nid)*inodeSlot
	where.nid, where.off = nid, off
	if nid > uint64(d.size)/inodeSlot || off+erofs.CompactInodeSize > d.size {
		return rinode{}, errorf("%s: nid %d (offset %d) is beyond the end of the file", where.path(), nid, off)
	}
	buf := d.ibuf[:] // (a local array would move to the heap: ReadAt keeps no slice, but may)
	n := min(int64(len(buf)), d.size-off)
	if err := d.read(buf[:n], off, "inode"); err != nil {
		return rinode{}, err
	}
	if n < erofs.ExtendedInodeSize && erofs.InodeRecordSize(buf) > int(n) {
		return rinode{}, errorf("%s: extended inode is cut off by the end of the file", where)
	}
	rec := erofs.DecodeInode(buf)
	ri := rinode{nid: nid, off: off, layout: int(rec.Layout())}
	if rec.Format&^0xF != 0 {
		return rinode{}, errorf("%s: i_format %#x has unknown bits", where, rec.Format)
	}
	nd := &Node{UID: rec.UID, GID: rec.GID}
	ri.hdrSize = int64(rec.RecordSize())
	ri.size = rec.Size
	ri.nlink = rec.Nlink
	if ri.nlink == 0 {
		return rinode{}, errorf("%s: i_nlink is 0", where)
	}
	if rec.Extended() {
		nd.Mtime = int64(rec.Mtime)
		nd.MtimeNsec = rec.MtimeNsec
		if nd.MtimeNsec >= 1e9 {
			return rinode{}, errorf("%s: i_mtime_nsec %d out of range", where, nd.MtimeNsec)
		}
		if rec.Nb != 0 {
			return rinode{}, errorf("%s: i_nb is %#x, must be 0", where, rec.Nb)
		}
	} else {
		nd.Mtime = d.epoch // as before: a compact inode's own i_mtime is not read
	}
	nd.Mode = uint32(rec.Mode)
	ri.iu = rec.U
	ri.n = nd
	if rec.XattrCount == 1 {
		return rinode{}, errorf("%s: i_xattr_icount 1 (a bare header) is invalid", where)
	}
	ri.xattrSz = int64(erofs.XattrIbodySize(rec.XattrCount))
	if nd.IsDir() {
		if d.seen[nid/64]&(1<<(nid%64)) != 0 {
			return rinode{}, errorf("%s: directory nid %d is referenced twice", where, nid)
		}
	}
	d.seen[nid/64] |= 1 << (nid % 64)
	if err := d.readXattrs(&ri, where); err != nil {
		return rinode{}, err
	}
	switch nd.Mode & erofs.ModeTypeMask {
	case erofs.ModeDir, erofs.ModeSymlink:
		if ri.layout != erofs.LayoutFlatPlain && ri.layout != erofs.LayoutFlatInline {
			return rinode{}, errorf("%s: layout %d; directories and symlinks must be FLAT_PLAIN or FLAT_INLINE", where, ri.layout)
		}
		if nd.Mode&erofs.ModeTypeMask == erofs.ModeSymlink {
			if ri.size == 0 || ri.size > MaxSymlinkLen {
				return rinode{}, errorf("%s: symlink size %d (must be 1-%d)", where, ri.size, MaxSymlinkLen)
			}
			data, err := d.data(&ri, where)
			if err != nil {
				return rinode{}, err
			}
			if bytes.IndexByte(data, 0) >= 0 {
				return rinode{}, errorf("%s: symlink target contains NUL", where)
			}
			nd.Linkname = string(data)
		}
	case erofs.ModeRegular:
		nd.Size = ri.size
		if err := d.readChunks(&ri, where); err != nil {
			return rinode{}, err
		}
	case erofs.ModeCharDevice, erofs.ModeBlockDevice:
		nd.Devmajor, nd.Devminor = erofs.DecodeDev(ri.iu)
		fallthrough
	case erofs.ModeFIFO, erofs.ModeSocket:
		if ri.layout != erofs.LayoutFlatPlain || ri.size != 0 {
			return rinode{}, errorf("%s: special file with layout %d and size %d", where, ri.layout, ri.size)
		}
	default:
		return rinode{}, errorf("%s: i_mode %#o has no valid file type", where, nd.Mode)
	}
	return ri, nil
}

// readXattrs decodes an inode's inline xattr ibody.
func (d *decoder) readXattrs(ri *rinode, where where) error {
	if ri.xattrSz == 0 {
		return nil
	}
	body := make([]byte, ri.xattrSz)
	at := ri.off + ri.hdrSize
	if err := d.read(body, at, "xattrs"); err != nil {
		return errorf("%s: xattr ibody of %d bytes at offset %d is beyond the end of the file", where, ri.xattrSz, at)
	}
	if h := erofs.DecodeXattrIbodyHeader(body); h.SharedCount != 0 {
		return errorf("%s: %d shared xattrs (offset %d); RAFS has none", where, h.SharedCount, at+4)
	}
	xs := map[string][]byte{}
	for p := int64(erofs.XattrIbodyHeaderSize); p < int64(len(body)); {
		if allZero(body[p:min(p+4, int64(len(body)))]) {
			p += 4 // zero padding
			continue
		}
		e, size, err := erofs.DecodeXattrEntry(body[p:])
		if err != nil {
			return errorf("%s: xattr entry at offset %d: %v", where, at+p, err)
		}
		prefix := erofs.XattrPrefix(e.NameIndex)
		if prefix == "" || e.NameIndex == erofs.XattrIndexLustre {
			return errorf("%s: xattr entry at offset %d has name index %d, which RAFS does not use", where, at+p, e.NameIndex)
		}
		name := prefix + string(e.Name)
		if _, _, ok := erofs.SplitXattrName(name); !ok || strings.IndexByte(name, 0) >= 0 {
			return errorf("%s: xattr entry at offset %d has invalid name %q", where, at+p, name)
		}
		if _, dup := xs[name]; dup {
			return errorf("%s: xattr %q repeated (offset %d)", where, name, at+p)
		}
		xs[name] = bytes.Clone(e.Value)
		p += int64(size)
	}
	if len(xs) > 0 {
		ri.n.Xattrs = xs
	}
	return nil
}

// data reads a directory's or symlink's data bytes (FLAT_PLAIN or
// FLAT_INLINE), charging them to the read budget.
func (d *decoder) data(ri *rinode, where where) ([]byte, error) {
	if ri.size > uint64(d.budget) {
		return nil, errorf("%s: data size %d exceeds what the file can hold", where, ri.size)
	}
	d.budget -= int64(ri.size)
	size := int64(ri.size)
	buf := make([]byte, size)
	full := size
	if ri.layout == erofs.LayoutFlatInline {
		tail := size % d.bs
		full = size - tail
		tailAt := ri.off + ri.hdrSize + ri.xattrSz
		if tail == 0 || tailAt%d.bs+tail > d.bs {
			return nil, errorf("%s: inline tail of %d bytes at offset %d crosses a block boundary or is empty", where, tail, tailAt)
		}
		if err := d.read(buf[full:], tailAt, "inline data"); err != nil {
			return nil, errorf("%s: inline data at offset %d is beyond the end of the file", where, tailAt)
		}
	}
	if full > 0 {
		at := int64(ri.iu) * d.bs
		if err := d.read(buf[:full], at, "data blocks"); err != nil {
			return nil, errorf("%s: data blocks at block %d are beyond the end of the file", where, ri.iu)
		}
	}
	return buf, nil
}

// readChunks decodes a regular file's chunk indexes and resolves them
// through the chunk table; in tarfs mode, where the table is one
// placeholder record per blob, from the chunk indexes alone.
func (d *decoder) readChunks(ri *rinode, where where) error {
	nd := ri.n
	if ri.layout == erofs.LayoutFlatPlain && ri.size == 0 {
		return nil // an empty file without chunk format
	}
	if ri.layout != erofs.LayoutChunkBased {
		return errorf("%s: regular file with layout %d; RAFS files are chunk-based", where, ri.layout)
	}
	format := ri.iu & 0xFFFF
	if ri.iu>>16 != 0 || format&^(erofs.ChunkFormatIndexes|erofs.ChunkFormatBlkBits) != 0 || format&erofs.ChunkFormatIndexes == 0 {
		return errorf("%s: chunk format %#x is not 8-byte chunk indexes", where, ri.iu)
	}
	cs := uint64(d.b.ChunkSize)
	count := chunkCount(ri.size, d.b.ChunkSize)
	if count > uint64(d.budget)/erofs.ChunkIndexSize {
		return errorf("%s: %d chunks for size %d cannot fit in the file", where, count, ri.size)
	}
	d.budget -= int64(count) * erofs.ChunkIndexSize
	at := alignUp(ri.off+ri.hdrSize+ri.xattrSz, erofs.ChunkIndexSize)
	raw := make([]byte, count*erofs.ChunkIndexSize)
	if err := d.read(raw, at, "chunk indexes"); err != nil {
		return errorf("%s: %d chunk indexes at offset %d are beyond the end of the file", where, count, at)
	}
	nd.Chunks = make([]ChunkRecord, count)
	tarfs := d.b.Flags&FlagTarfsMode != 0
	for i := range count {
		eat := at + int64(i)*erofs.ChunkIndexSize
		ci, dev, blk := chunkOf(erofs.DecodeChunkIndex(raw[i*erofs.ChunkIndexSize:]))
		if dev == 0 || int(dev) > len(d.b.Blobs) {
			return errorf("%s: chunk %d (offset %d): device id %d, but there are %d blobs", where, i, eat, dev, len(d.b.Blobs))
		}
		off := i * cs
		want := min(cs, ri.size-off)
		var c ChunkRecord
		if tarfs {
			// The chunk index says it all: the chunk is the file's
			// data at that block of the tar, stored as it is.
			at := uint64(blk) * uint64(d.bs)
			c = ChunkRecord{BlobIndex: dev - 1, Index: ci, CompressedOffset: at, CompressedSize: uint32(want), UncompressedOffset: at, UncompressedSize: uint32(want)}
			if err := checkChunk(&c, d.b); err != nil {
				return errorf("%s: chunk %d (offset %d): %v", where, i, eat, err)
			}
		} else {
			var ok bool
			if c, ok = d.chunks[[2]uint32{dev - 1, ci}]; !ok {
				return errorf("%s: chunk %d (offset %d): blob %d CI index %d has no chunk table record", where, i, eat, dev-1, ci)
			}
			if c.UncompressedOffset/uint64(d.bs) != uint64(blk) {
				return errorf("%s: chunk %d (offset %d): block %d, but the chunk table says uncompressed offset %#x", where, i, eat, blk, c.UncompressedOffset)
			}
		}
		if uint64(c.UncompressedSize) != want {
			return errorf("%s: chunk %d (offset %d): chunk of %d bytes where the file needs %d", where, i, eat, c.UncompressedSize, want)
		}
		c.FileOffset = off
		nd.Chunks[i] = c
	}
	return nil
}

// readTree reads every directory, in the visit order of Bootstrap.Walk (a
// directory's entries, then its subdirectories depth-first), so the first
// name of a hard-linked inode is the first one Walk meets. It keeps no
// paths: a loc per directory names it if an error must.
func (d *decoder) readTree(root rinode) error {
	type job struct {
		dir    rinode
		parent uint64
		loc    *loc
	}
	stack := []job{{root, root.nid, &loc{}}}
	var subdirs []job
	for len(stack) > 0 {
		j := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		subdirs = subdirs[:0]
		dw := where{dir: j.loc.parent, name: j.loc.name, nid: j.dir.nid, off: j.dir.off, isDir: true}
		if j.loc.parent == nil {
			dw.dir = nil
		}
		data, err := d.data(&j.dir, dw)
		if err != nil {
			return err
		}
		count, err := parseDir(data, d.bs, dw, nil)
		if err != nil {
			return err
		}
		kids := make([]*Node, 0, count-2)
		_, err = parseDir(data, d.bs, dw, func(nid uint64, rawName []byte, typ uint8) error {
			switch string(rawName) {
			case ".":
				if nid != j.dir.nid {
					return errorf("%s: '.' points to nid %d", dw, nid)
				}
				return nil
			case "..":
				if nid != j.parent {
					return errorf("%s: '..' points to nid %d, not the parent %d", dw, nid, j.parent)
				}
				return nil
			}
			name := string(rawName)
			ew := where{dir: j.loc, name: name}
			var nd *Node
			if prev, ok := d.nodes[nid]; ok {
				nd = &Node{Name: name, Link: prev}
				if erofs.FileTypeOfMode(prev.Mode) != typ {
					return errorf("%s: dirent file type %d does not match the inode", ew.path(), typ)
				}
			} else {
				if !d.allLinks && nid < uint64(len(d.seen))*64 && d.seen[nid/64]&(1<<(nid%64)) != 0 {
					return errNlink // met before, with i_nlink 1 or as a directory
				}
				ri, err := d.inode(nid, ew)
				if err != nil {
					return err
				}
				nd = ri.n
				nd.Name = name
				if erofs.FileTypeOfMode(nd.Mode) != typ {
					return errorf("%s: dirent file type %d does not match the inode's mode %#o", ew.path(), typ, nd.Mode)
				}
				if nd.IsDir() {
					subdirs = append(subdirs, job{ri, j.dir.nid, &loc{j.loc, name}})
				} else if ri.nlink > 1 || d.allLinks {
					d.nodes[nid] = nd
				}
			}
			kids = append(kids, nd)
			return nil
		})
		if err != nil {
			return err
		}
		j.dir.n.Children = kids
		for i := len(subdirs) - 1; i >= 0; i-- {
			stack = append(stack, subdirs[i])
		}
	}
	return nil
}

// parseDir decodes directory data: blocks of bs bytes, each of dirents
// then names, entries sorted bytewise across blocks, . and .. present
// once. It first checks all of it and returns the number of entries;
// then, if fn is not nil, it calls fn for each entry in order (name is
// valid during the call only), stopping at the first error fn returns.
func parseDir(data []byte, bs int64, where where, fn func(nid uint64, name []byte, typ uint8) error) (int, error) {
	var prev []byte
	dots, n := 0, 0
	step := int(bs)
	for blk := 0; blk < len(data); blk += step {
		b := data[blk:min(blk+step, len(data))]
		count, err := erofs.DirBlockEntries(b)
		if err != nil {
			return 0, errorf("%s: directory block %d: %v", where, blk/step, err)
		}
		first := count * erofs.DirentSize
		for k := range count {
			de := erofs.DecodeDirent(b[k*erofs.DirentSize:])
			start, end := erofs.DirentName(b, count, k)
			if start < first || end > len(b) || start >= end || end-start > MaxNameLen {
				return 0, errorf("%s: directory block %d entry %d: bad name bounds [%d, %d)", where, blk/step, k, start, end)
			}
			name := b[start:end]
			typ := de.FileType
			if fn != nil {
				if err := fn(de.Nid, name, typ); err != nil {
					return 0, err
				}
				continue
			}
			if bytes.ContainsAny(name, "/\x00") {
				return 0, errorf("%s: directory block %d entry %d: invalid name %q", where, blk/step, k, name)
			}
			if prev != nil && bytes.Compare(prev, name) >= 0 {
				return 0, errorf("%s: directory entry %q is not sorted after %q", where, name, prev)
			}
			if typ == 0 || typ > erofs.FileTypeSymlink {
				return 0, errorf("%s: entry %q has file type %d", where, name, typ)
			}
			if string(name) == "." || string(name) == ".." {
				dots++
				if typ != erofs.FileTypeDir {
					return 0, errorf("%s: entry %q is not a directory", where, name)
				}
			}
			prev = name
			n++
		}
	}
	if fn == nil && dots != 2 {
		return 0, errorf("%s: '.' and '..' are missing", where)
	}
	return n, nil
}

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
