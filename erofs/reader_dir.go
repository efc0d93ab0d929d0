package erofs

// Directory decoding for the reader (spec §3).

import (
	"bytes"
	"io"
	"io/fs"
	"strings"
	"syscall"
)

// fsDirent is a decoded directory entry.
type fsDirent struct {
	nid  uint64
	name string
	typ  uint8
}

// dirBlocks returns the number of directory blocks of a directory inode.
func (f *FS) dirBlocks(i *fsInode) int64 {
	return (i.size + f.blkSize - 1) >> f.blkBits
}

// rawDirent is a directory entry whose name is buf[start:end] of the block
// it was parsed from.
type rawDirent struct {
	nid        uint64
	start, end int
	typ        uint8
}

// readDirBlock reads directory block b of directory i into buf (which must
// hold a block) and returns the filled part of buf and its entry count.
func (f *FS) readDirBlock(i *fsInode, d *fsData, b int64, buf []byte) ([]byte, int, error) {
	off := b << f.blkBits
	buf = buf[:min(f.blkSize, i.size-off)]
	if _, err := d.ReadAt(buf, off); err != nil && err != io.EOF {
		return nil, 0, err
	}
	count, err := DirBlockEntries(buf)
	if err != nil {
		return nil, 0, inodeCorruptf(i.nid, "directory block %d: %v", b, err)
	}
	return buf, count, nil
}

// dirEntry decodes and validates entry k of a directory block holding
// count entries (as returned by readDirBlock).
func dirEntry(i *fsInode, b int64, blk []byte, count, k int) (rawDirent, error) {
	n := len(blk)
	de := DecodeDirent(blk[k*direntSize:])
	start, end := DirentName(blk, count, k)
	if start < count*direntSize || end > n || end <= start {
		return rawDirent{}, inodeCorruptf(i.nid, "directory block %d: entry %d: bad name offsets %d..%d", b, k, start, end)
	}
	if end-start > maxNameLen {
		return rawDirent{}, inodeCorruptf(i.nid, "directory block %d: entry %d: name too long (%d bytes)", b, k, end-start)
	}
	name := blk[start:end]
	if bytes.IndexByte(name, 0) >= 0 || bytes.IndexByte(name, '/') >= 0 {
		return rawDirent{}, inodeCorruptf(i.nid, "directory block %d: entry %d: invalid name %q", b, k, name)
	}
	typ := de.FileType
	if typ >= fileTypeMax {
		return rawDirent{}, inodeCorruptf(i.nid, "directory block %d: entry %d: bad file type %d", b, k, typ)
	}
	return rawDirent{nid: de.Nid, start: start, end: end, typ: typ}, nil
}

// dirBlock reads directory block b of directory i into buf and returns the
// filled part of buf and its entries, appended to ents.
func (f *FS) dirBlock(i *fsInode, d *fsData, b int64, buf []byte, ents []rawDirent) ([]byte, []rawDirent, error) {
	blk, count, err := f.readDirBlock(i, d, b, buf)
	if err != nil {
		return nil, ents, err
	}
	for k := range count {
		e, err := dirEntry(i, b, blk, count, k)
		if err != nil {
			return nil, ents, err
		}
		ents = append(ents, e)
	}
	return blk, ents, nil
}

// lookup finds name in directory dir by binary search over its blocks (the
// entries of a directory are sorted by name across all its blocks), then
// within the block; only the entries it compares against are decoded.
func (f *FS) lookup(dir *fsInode, name string) (ent fsDirent, ok bool, err error) {
	if len(name) > maxNameLen || strings.ContainsAny(name, "/\x00") {
		return fsDirent{}, false, nil
	}
	d, err := f.data(dir)
	if err != nil {
		return fsDirent{}, false, err
	}
	buf := make([]byte, f.blkSize)
	// cmp compares name with entry k of blk.
	cmp := func(b int64, blk []byte, count, k int) (int, rawDirent, error) {
		e, err := dirEntry(dir, b, blk, count, k)
		if err != nil {
			return 0, e, err
		}
		return strings.Compare(name, string(blk[e.start:e.end])), e, nil
	}
	lo, hi := int64(0), f.dirBlocks(dir)-1
	for lo <= hi {
		mid := lo + (hi-lo)/2
		blk, count, err := f.readDirBlock(dir, d, mid, buf)
		if err != nil {
			return fsDirent{}, false, err
		}
		c, e, err := cmp(mid, blk, count, 0)
		if err != nil {
			return fsDirent{}, false, err
		}
		if c < 0 {
			hi = mid - 1
			continue
		}
		if c == 0 {
			return fsDirent{nid: e.nid, name: name, typ: e.typ}, true, nil
		}
		c, e, err = cmp(mid, blk, count, count-1)
		if err != nil {
			return fsDirent{}, false, err
		}
		if c > 0 {
			lo = mid + 1
			continue
		}
		if c == 0 {
			return fsDirent{nid: e.nid, name: name, typ: e.typ}, true, nil
		}
		// Strictly between the first and the last entry of this block.
		l, h := 1, count-2
		for l <= h {
			m := l + (h-l)/2
			c, e, err := cmp(mid, blk, count, m)
			if err != nil {
				return fsDirent{}, false, err
			}
			switch {
			case c < 0:
				h = m - 1
			case c > 0:
				l = m + 1
			default:
				return fsDirent{nid: e.nid, name: name, typ: e.typ}, true, nil
			}
		}
		return fsDirent{}, false, nil
	}
	return fsDirent{}, false, nil
}

// readDirents reads every entry of directory dir, whose entry in its parent
// directory is parent (the root's parent is the root). Besides decoding, it
// checks the invariants that keep tree walks finite: entries are strictly
// sorted, "." and ".." exist and point to dir and parent, and no two
// subdirectory entries point to the same inode, nor to dir or parent. With
// these checks every directory has a single parent, so a walk that lists
// each directory before descending into it visits each directory once.
func (f *FS) readDirents(dir *fsInode, parent uint64) ([]fsDirent, error) {
	d, err := f.data(dir)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, f.blkSize)
	var all []fsDirent
	var raw []rawDirent
	var blk []byte
	var dot, dotdot bool
	subdirs := make(map[uint64]struct{})
	nblocks := f.dirBlocks(dir)
	for b := range nblocks {
		blk, raw, err = f.dirBlock(dir, d, b, buf, raw[:0])
		if err != nil {
			return nil, err
		}
		for _, r := range raw {
			e := fsDirent{nid: r.nid, name: string(blk[r.start:r.end]), typ: r.typ}
			if len(all) > 0 && e.name <= all[len(all)-1].name {
				return nil, inodeCorruptf(dir.nid, "directory block %d: entries not sorted (%q after %q)", b, e.name, all[len(all)-1].name)
			}
			switch e.name {
			case ".":
				if e.nid != dir.nid {
					return nil, inodeCorruptf(dir.nid, "\".\" points to inode %d", e.nid)
				}
				dot = true
			case "..":
				if e.nid != parent {
					return nil, inodeCorruptf(dir.nid, "\"..\" points to inode %d, not to parent %d", e.nid, parent)
				}
				dotdot = true
			default:
				if e.typ == fileTypeUnkn {
					// Learn the type from the inode.
					ci, err := f.inode(e.nid)
					if err != nil {
						return nil, err
					}
					e.typ = FileTypeOfMode(ci.mode)
				}
				if e.typ == FileTypeDir {
					if _, dup := subdirs[e.nid]; dup || e.nid == dir.nid || e.nid == parent {
						return nil, inodeCorruptf(dir.nid, "subdirectory %q: inode %d linked twice", e.name, e.nid)
					}
					subdirs[e.nid] = struct{}{}
				}
			}
			all = append(all, e)
		}
	}
	if !dot || !dotdot {
		return nil, inodeCorruptf(dir.nid, "directory lacks \".\" or \"..\"")
	}
	// Drop "." and "..".
	out := all[:0]
	for _, e := range all {
		if e.name != "." && e.name != ".." {
			out = append(out, e)
		}
	}
	return out, nil
}

// listDir returns the entries of directory dir as fs.DirEntry values.
func (f *FS) listDir(dir *fsInode, parent uint64) ([]fs.DirEntry, error) {
	ents, err := f.readDirents(dir, parent)
	if err != nil {
		return nil, err
	}
	out := make([]fs.DirEntry, len(ents))
	for k, e := range ents {
		out[k] = &fsDirEntry{fsys: f, e: e}
	}
	return out, nil
}

// fsDirEntry implements fs.DirEntry.
type fsDirEntry struct {
	fsys *FS
	e    fsDirent
}

func (de *fsDirEntry) Name() string      { return de.e.name }
func (de *fsDirEntry) IsDir() bool       { return de.e.typ == FileTypeDir }
func (de *fsDirEntry) Type() fs.FileMode { return fileTypeToFileMode(de.e.typ) }

// Info reads the entry's inode; Sys returns a *Stat.
func (de *fsDirEntry) Info() (fs.FileInfo, error) {
	i, err := de.fsys.inode(de.e.nid)
	if err != nil {
		return nil, err
	}
	return de.fsys.fileInfo(de.e.name, i)
}

func (de *fsDirEntry) String() string { return fs.FormatDirEntry(de) }

// fsDir is an open directory.
type fsDir struct {
	fsys   *FS
	name   string
	ino    *fsInode
	parent uint64
	ents   []fs.DirEntry
	loaded bool
	off    int
	closed bool
}

// Stat returns the directory's information; Sys returns a *Stat.
func (d *fsDir) Stat() (fs.FileInfo, error) {
	if d.closed {
		return nil, pathErr("stat", d.name, fs.ErrClosed)
	}
	fi, err := d.fsys.fileInfo(baseName(d.name), d.ino)
	if err != nil {
		return nil, pathErr("stat", d.name, err)
	}
	return fi, nil
}

// Read reports that the file is a directory.
func (d *fsDir) Read([]byte) (int, error) {
	if d.closed {
		return 0, pathErr("read", d.name, fs.ErrClosed)
	}
	return 0, pathErr("read", d.name, syscall.EISDIR)
}

// Close closes the directory.
func (d *fsDir) Close() error {
	if d.closed {
		return pathErr("close", d.name, fs.ErrClosed)
	}
	d.closed = true
	return nil
}

// ReadDir returns the next n entries sorted by name (all remaining ones if
// n <= 0), without "." and "..", following fs.ReadDirFile's contract.
func (d *fsDir) ReadDir(n int) ([]fs.DirEntry, error) {
	if d.closed {
		return nil, pathErr("readdir", d.name, fs.ErrClosed)
	}
	if !d.loaded {
		ents, err := d.fsys.listDir(d.ino, d.parent)
		if err != nil {
			return nil, pathErr("readdir", d.name, err)
		}
		d.ents, d.loaded = ents, true
	}
	rest := d.ents[d.off:]
	if n <= 0 {
		d.off = len(d.ents)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	rest = rest[:min(n, len(rest))]
	d.off += len(rest)
	return rest, nil
}
