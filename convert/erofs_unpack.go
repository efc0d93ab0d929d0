package convert

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/rafs-dev/rafs/erofs"
)

// UnpackEROFS writes the tree of an EROFS image to w as a PAX tar, the
// way UnpackNydus writes a bootstrap's: every directory before its
// contents, in the image's (name) order; the root as "./" unless it has
// the attributes of an implicit directory; hard links as link entries to
// the first name written; xattrs as SCHILY.xattr records; times with
// their nanoseconds; sockets left out (counted). Open a multi-device image
// with erofs.WithDevices. The tar is finished (trailer written) but w is
// not closed.
//
// Memory grows with the entries of the directories being walked and with
// the hard-linked inodes, not with the depth of the tree: names are built
// in one buffer.
func UnpackEROFS(f *erofs.FS, w io.Writer) (*UnpackResult, error) {
	if f == nil {
		return nil, errors.New("convert: unpack: no image")
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	u := &erofsUnpacker{f: f, tw: &tarWriter{w: bw}, res: &UnpackResult{}, first: map[uint64]string{}}
	err := u.walk()
	if err == nil {
		err = finishTar(u.tw, bw)
	}
	if err != nil {
		return nil, err
	}
	return u.res, nil
}

type erofsUnpacker struct {
	f     *erofs.FS
	tw    *tarWriter
	res   *UnpackResult
	first map[uint64]string // NID of a hard-linked inode → its name written first
	hdr   tarHeader
	name  []byte // the tar name of the directory being walked, "a/b/"
	link  []byte
	buf   []byte
}

// erofsDir is a directory being walked: its entries, the next one, and
// the length of its tar name in erofsUnpacker.name.
type erofsDir struct {
	ents []fs.DirEntry
	next int
	name int
}

// walk writes the root, then the tree depth first.
func (u *erofsUnpacker) walk() error {
	root, err := u.f.Lstat(".")
	if err != nil {
		return fmt.Errorf("convert: unpack: %w", err)
	}
	if st := root.Sys().(*erofs.Stat); !implicitRoot(st) {
		if err := u.entry("./", "./", st); err != nil {
			return fmt.Errorf("convert: unpack ./: %w", err)
		}
	}
	ents, err := u.f.ReadDir(".")
	if err != nil {
		return fmt.Errorf("convert: unpack: %w", err)
	}
	stack := []erofsDir{{ents: ents}}
	for len(stack) > 0 {
		d := &stack[len(stack)-1]
		if d.next == len(d.ents) {
			stack = stack[:len(stack)-1]
			continue
		}
		e := d.ents[d.next]
		d.next++
		u.name = append(u.name[:d.name], e.Name()...)
		path := string(u.name)
		fi, err := u.f.Lstat(path)
		if err != nil {
			return fmt.Errorf("convert: unpack %s: %w", path, err)
		}
		st := fi.Sys().(*erofs.Stat)
		if fi.IsDir() {
			u.name = append(u.name, '/')
		}
		if err := u.entry(string(u.name), path, st); err != nil {
			return fmt.Errorf("convert: unpack %s: %w", path, err)
		}
		if fi.IsDir() {
			sub, err := u.f.ReadDir(path)
			if err != nil {
				return fmt.Errorf("convert: unpack %s: %w", path, err)
			}
			stack = append(stack, erofsDir{ents: sub, name: len(u.name)})
		}
	}
	return nil
}

// implicitRoot reports whether a root directory has the attributes tar
// extraction gives a directory it was not told about.
func implicitRoot(st *erofs.Stat) bool {
	return st.Mode == erofs.ModeDir|0o755 && st.UID == 0 && st.GID == 0 &&
		st.Mtime == 0 && st.MtimeNsec == 0 && len(st.Xattrs) == 0
}

// entry writes one object: name is its tar name, path its path in the
// image.
func (u *erofsUnpacker) entry(name, path string, st *erofs.Stat) error {
	h := &u.hdr
	*h = tarHeader{name: []byte(name), plain: plainPath([]byte(name)), typeflag: tar.TypeLink, noTime: true}
	typ := st.Mode & erofs.ModeTypeMask
	if typ != erofs.ModeDir && st.Nlink > 1 {
		if at, ok := u.first[st.Nid]; ok {
			u.link = append(u.link[:0], at...)
			h.linkname = u.link
			u.res.Entries++
			return u.tw.WriteHeader(h)
		}
	}
	h.mode = int64(st.Mode & erofs.ModePermMask)
	h.uid, h.gid = int64(st.UID), int64(st.GID)
	h.mtime, h.nsec, h.noTime = st.Mtime, int64(st.MtimeNsec), false
	h.records = paxXattrs(st.Xattrs)
	switch typ {
	case erofs.ModeDir:
		h.typeflag = tar.TypeDir
	case erofs.ModeRegular:
		h.typeflag, h.size = tar.TypeReg, st.Size
	case erofs.ModeSymlink:
		target, err := u.f.ReadLink(path)
		if err != nil {
			return err
		}
		h.typeflag = tar.TypeSymlink
		u.link = append(u.link[:0], target...)
		h.linkname = u.link
	case erofs.ModeCharDevice:
		h.typeflag, h.devmajor, h.devminor = tar.TypeChar, int64(st.Devmajor), int64(st.Devminor)
	case erofs.ModeBlockDevice:
		h.typeflag, h.devmajor, h.devminor = tar.TypeBlock, int64(st.Devmajor), int64(st.Devminor)
	case erofs.ModeFIFO:
		h.typeflag = tar.TypeFifo
	case erofs.ModeSocket:
		u.res.Sockets++
		return nil
	default:
		return fmt.Errorf("unknown file type %#o", st.Mode)
	}
	if typ != erofs.ModeDir && st.Nlink > 1 {
		u.first[st.Nid] = name
	}
	if err := u.tw.WriteHeader(h); err != nil {
		return err
	}
	u.res.Entries++
	if typ != erofs.ModeRegular || st.Size == 0 {
		return nil
	}
	file, err := u.f.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	if u.buf == nil {
		u.buf = make([]byte, 256<<10)
	}
	n, err := io.CopyBuffer(u.tw, io.LimitReader(file, st.Size+1), u.buf)
	if err != nil {
		return err
	}
	if n != st.Size {
		return fmt.Errorf("read %d bytes of data, the inode says %d", n, st.Size)
	}
	u.res.Bytes += uint64(n)
	return nil
}
