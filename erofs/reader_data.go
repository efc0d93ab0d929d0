package erofs

// File data access for the reader. Every data layout is an extentMapper that
// maps a logical file offset to a run of bytes on some device (or a hole);
// fsData turns a mapper into an io.ReaderAt. A compressed layout plugs in as
// another mapper whose extents carry an encoding, decoded in fsData.ReadAt.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"sync"
)

// fsExtent maps the logical bytes [off, off+n) of a file.
type fsExtent struct {
	off, n int64
	dev    io.ReaderAt // nil for a hole, which reads as zeros
	pos    int64       // byte offset of logical byte off on dev
	z      *zExtent    // compressed layouts: how the bytes are stored (dev, pos unused)
}

// extentMapper maps file offsets to extents.
type extentMapper interface {
	// mapExtent returns the extent holding logical offset off, where
	// 0 <= off < the file size. The extent must contain off.
	mapExtent(off int64) (fsExtent, error)
}

// fsData reads the data of one inode. It is safe for concurrent use.
type fsData struct {
	nid  uint64
	size int64
	m    extentMapper
	lim  int64 // allocation limit for readAll

	// Compressed layouts only.
	fsys *FS
	zc   *zCache // recently decoded extents
}

// data returns a reader of the inode's data.
func (f *FS) data(i *fsInode) (*fsData, error) {
	d := &fsData{nid: i.nid, size: i.size, lim: f.allocLimit}
	switch i.layout {
	case LayoutFlatPlain, LayoutFlatInline:
		d.m = &flatMapper{fsys: f, ino: i}
	case LayoutChunkBased:
		d.m = newChunkMapper(f, i)
	case LayoutCompressedFull, LayoutCompressedCompact:
		m, err := f.newZMapper(i)
		if err != nil {
			return nil, err
		}
		d.m, d.fsys, d.zc = m, f, &zCache{max: 1}
	default:
		return nil, inodeCorruptf(i.nid, "unknown data layout %d", i.layout)
	}
	return d, nil
}

// ReadAt implements io.ReaderAt over the file's logical bytes.
func (d *fsData) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("erofs: inode %d: negative offset", d.nid)
	}
	n := 0
	for len(p) > 0 {
		if off >= d.size {
			return n, io.EOF
		}
		e, err := d.m.mapExtent(off)
		if err != nil {
			return n, err
		}
		if e.n <= 0 || off < e.off || off-e.off >= e.n {
			return n, inodeCorruptf(d.nid, "bad extent mapping at offset %d", off)
		}
		k := min(int64(len(p)), e.off+e.n-off, d.size-off)
		if e.z != nil {
			if err := d.readCompressed(p[:k], off, e); err != nil {
				return n, err
			}
		} else if e.dev == nil {
			clear(p[:k])
		} else if err := readFull(e.dev, p[:k], e.pos+(off-e.off)); err != nil {
			return n, ioErrorf(err, "inode %d: reading data at offset %d", d.nid, off)
		}
		n += int(k)
		off += k
		p = p[k:]
	}
	return n, nil
}

// readAll reads the whole file. The initial allocation is capped by the
// image size, so a corrupt size cannot force a huge allocation up front.
func (d *fsData) readAll() ([]byte, error) {
	buf := make([]byte, 0, min(d.size, d.lim, 1<<30))
	const chunk = 1 << 20
	for off := int64(0); off < d.size; {
		k := min(d.size-off, chunk)
		buf = slices.Grow(buf, int(k))
		m, err := d.ReadAt(buf[len(buf):len(buf)+int(k)], off)
		buf = buf[:len(buf)+m]
		off += int64(m)
		if err != nil && !(err == io.EOF && off == d.size) {
			return nil, err
		}
	}
	return buf, nil
}

// mapDevice resolves block blk of device devID (0: the unified address
// space) to a reader and byte offset: extra device N occupies the blocks
// from its struct erofs_deviceslot mapped_blkaddr on (fs/erofs/data.c,
// erofs_map_dev).
func (f *FS) mapDevice(nid uint64, devID uint16, blk uint64) (io.ReaderAt, int64, error) {
	pos := int64(blk) << f.blkBits
	if devID != 0 && f.devMask != 0 {
		devID &= f.devMask
	}
	if devID != 0 {
		if int(devID) > len(f.devs) {
			return nil, 0, inodeCorruptf(nid, "device id %d out of range (%d extra devices)", devID, len(f.devs))
		}
		d := &f.devs[devID-1]
		if f.flat {
			return f.r, pos + int64(d.uniaddr)<<f.blkBits, nil
		}
		return d.r, pos, nil
	}
	if !f.flat {
		for i := range f.devs {
			d := &f.devs[i]
			if d.uniaddr != 0 && blk >= d.uniaddr && blk-d.uniaddr < d.blocks {
				return d.r, int64(blk-d.uniaddr) << f.blkBits, nil
			}
		}
	}
	return f.r, pos, nil
}

// flatMapper maps FLAT_PLAIN and FLAT_INLINE files: consecutive blocks from
// i_u, and for FLAT_INLINE a tail stored right after the inode's xattrs.
type flatMapper struct {
	fsys *FS
	ino  *fsInode
}

func (m *flatMapper) mapExtent(off int64) (fsExtent, error) {
	f, i := m.fsys, m.ino
	blocksLen := i.size
	if i.layout == LayoutFlatInline {
		blocksLen = (i.size - 1) >> f.blkBits << f.blkBits
		if off >= blocksLen {
			return fsExtent{off: blocksLen, n: i.size - blocksLen, dev: f.r, pos: i.metaEnd()}, nil
		}
	}
	dev, pos, err := f.mapDevice(i.nid, 0, uint64(i.u))
	if err != nil {
		return fsExtent{}, err
	}
	return fsExtent{off: 0, n: blocksLen, dev: dev, pos: pos}, nil
}

// chunkMapper maps CHUNK_BASED files through their block map (4-byte
// entries) or chunk indexes (8-byte struct erofs_inode_chunk_index)
// (Documentation/filesystems/erofs.rst, "Chunk-based files").
type chunkMapper struct {
	fsys      *FS
	ino       *fsInode
	chunkBits uint  // log2 of the chunk size in bytes
	indexes   bool  // 8-byte chunk indexes rather than a 4-byte block map
	wide      bool  // 48-bit block addresses in the chunk indexes
	unit      int64 // entry size
	array     int64 // byte offset of the first entry
	count     int64 // number of chunks

	mu    sync.Mutex
	first int64  // index of the first cached entry
	cache []byte // cached entries
}

// chunkCacheBytes is how much of a chunk array a chunkMapper reads at once.
const chunkCacheBytes = 512

func newChunkMapper(f *FS, i *fsInode) *chunkMapper {
	cf := uint16(i.u)
	m := &chunkMapper{
		fsys:      f,
		ino:       i,
		chunkBits: f.blkBits + uint(cf&chunkFormatBlkbitsMask),
		indexes:   cf&chunkFormatIndexes != 0,
		wide:      cf&chunkFormat48Bit != 0,
		unit:      chunkBlockMapSize,
	}
	if m.indexes {
		m.unit = chunkIndexSize
	}
	m.array = roundUp64(i.metaEnd(), m.unit)
	m.count = (i.size-1)>>m.chunkBits + 1
	return m
}

// entry returns the raw array entry of chunk c.
func (m *chunkMapper) entry(c int64) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c < m.first || (c-m.first+1)*m.unit > int64(len(m.cache)) {
		n := min(m.count-c, chunkCacheBytes/m.unit)
		if cap(m.cache) < chunkCacheBytes {
			m.cache = make([]byte, chunkCacheBytes)
		}
		m.cache = m.cache[:n*m.unit]
		if err := readFull(m.fsys.r, m.cache, m.array+c*m.unit); err != nil {
			m.cache = m.cache[:0]
			return nil, ioErrorf(err, "inode %d: reading chunk %d", m.ino.nid, c)
		}
		m.first = c
	}
	b := m.cache[(c-m.first)*m.unit:][:m.unit]
	return append([]byte(nil), b...), nil
}

func (m *chunkMapper) mapExtent(off int64) (fsExtent, error) {
	c := off >> m.chunkBits
	start := c << m.chunkBits
	e := fsExtent{off: start, n: min(int64(1)<<m.chunkBits, m.ino.size-start)}
	b, err := m.entry(c)
	if err != nil {
		return fsExtent{}, err
	}
	var devID uint16
	var blk uint64
	if m.indexes {
		ci := DecodeChunkIndex(b)
		if ci.BlkAddr == nullAddr {
			return e, nil // hole
		}
		devID, blk = ci.DeviceID, ci.StartBlock(m.wide)
	} else {
		blk = uint64(decodeChunkBlockMap(b))
		if blk == uint64(nullAddr) {
			return e, nil // hole
		}
	}
	e.dev, e.pos, err = m.fsys.mapDevice(m.ino.nid, devID, blk)
	if err != nil {
		return fsExtent{}, fmt.Errorf("%w (chunk %d)", err, c)
	}
	return e, nil
}

// readLink returns the target of a symlink inode.
func (f *FS) readLink(i *fsInode) (string, error) {
	if i.size > maxSymlinkLen {
		return "", inodeCorruptf(i.nid, "symlink target length %d too long", i.size)
	}
	d, err := f.data(i)
	if err != nil {
		return "", err
	}
	b := make([]byte, i.size)
	if _, err := d.ReadAt(b, 0); err != nil && err != io.EOF {
		return "", err
	}
	return string(b), nil
}

// fsFile is an open non-directory file.
type fsFile struct {
	fsys   *FS
	name   string
	ino    *fsInode
	data   *fsData // nil for files without data (devices, FIFOs, sockets)
	off    int64
	closed bool
}

// Stat returns the file's information; Sys returns a *Stat.
func (fl *fsFile) Stat() (fs.FileInfo, error) {
	if fl.closed {
		return nil, pathErr("stat", fl.name, fs.ErrClosed)
	}
	fi, err := fl.fsys.fileInfo(baseName(fl.name), fl.ino)
	if err != nil {
		return nil, pathErr("stat", fl.name, err)
	}
	return fi, nil
}

// Read reads up to len(p) bytes at the current offset.
func (fl *fsFile) Read(p []byte) (int, error) {
	if fl.closed {
		return 0, pathErr("read", fl.name, fs.ErrClosed)
	}
	if fl.data == nil || fl.off >= fl.data.size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := fl.data.ReadAt(p, fl.off)
	fl.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	if err != nil && err != io.EOF {
		err = pathErr("read", fl.name, err)
	}
	return n, err
}

// ReadAt reads len(p) bytes at offset off; it does not move the file offset.
func (fl *fsFile) ReadAt(p []byte, off int64) (int, error) {
	if fl.closed {
		return 0, pathErr("read", fl.name, fs.ErrClosed)
	}
	if off < 0 {
		return 0, pathErr("read", fl.name, errors.New("negative offset"))
	}
	if fl.data == nil {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n, err := fl.data.ReadAt(p, off)
	if err != nil && err != io.EOF {
		err = pathErr("read", fl.name, err)
	}
	return n, err
}

// Seek sets the offset for the next Read.
func (fl *fsFile) Seek(offset int64, whence int) (int64, error) {
	if fl.closed {
		return 0, pathErr("seek", fl.name, fs.ErrClosed)
	}
	var size int64
	if fl.data != nil {
		size = fl.data.size
	}
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += fl.off
	case io.SeekEnd:
		offset += size
	default:
		return 0, pathErr("seek", fl.name, fs.ErrInvalid)
	}
	if offset < 0 {
		return 0, pathErr("seek", fl.name, fs.ErrInvalid)
	}
	fl.off = offset
	return offset, nil
}

// Close closes the file.
func (fl *fsFile) Close() error {
	if fl.closed {
		return pathErr("close", fl.name, fs.ErrClosed)
	}
	fl.closed = true
	return nil
}
