package erofs

// Copying a file tree given as an fs.FS into a Writer.

import (
	"archive/tar"
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// AddFS adds every file of fsys to the image, at the same paths (fsys's
// root is the image's root; use fs.Sub for a subtree): directories,
// regular files, symbolic links, devices, FIFOs and sockets, in the order
// fs.WalkDir visits them. Like Add, an object already in the image at a
// path is replaced and a directory merges into a directory.
//
// The file type, permission bits (setuid, setgid and sticky included),
// size and modification time come from each file's fs.FileInfo (as
// DirEntry.Info gives it: symbolic links are not followed), symbolic link
// targets from fs.ReadLink. Owners, device numbers, xattrs and hard links
// come from FileInfo.Sys() or the FileInfo's methods, when they carry them:
//
//   - *Stat, this package's reader (FS): everything, so that an image
//     copied with AddFS has the same tree: names, metadata, xattrs, data
//     and hard links (files sharing a Nid);
//   - *tar.Header, archive/tar's FileInfo: owner, device, the
//     SCHILY.xattr. PAX records, and TypeLink entries as hard links to
//     their Linkname (made once the walk is done when the Linkname comes
//     later in it);
//   - *syscall.Stat_t (os.DirFS on Linux): owner, device number, and
//     hard links (files sharing a device and inode number); not xattrs,
//     which an fs.FS does not expose;
//   - the accessor methods other EROFS readers' FileInfo values have
//     (github.com/erofs/go-erofs's): UID() uint32, GID() uint32,
//     Rdev() uint64, Ino() uint64 with Nlink() uint64 for hard links,
//     and GetAllXattr() map[string]string.
//
// Without them, files are owned by 0:0 and have no xattrs. An error names
// the path; the Writer is then left as the failing Add leaves it.
func (w *Writer) AddFS(fsys fs.FS) error {
	if err := w.usable("AddFS"); err != nil {
		return err
	}
	links := map[any]string{} // identity of a multiply linked file -> its first path
	var later [][2]string     // tar hard links to paths the walk visits after them
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("erofs: AddFS: %w", err)
		}
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("erofs: AddFS: %s: %w", p, err)
		}
		m := fsMetaOf(info)
		if m.linkTo != "" {
			if err := w.Link(p, m.linkTo); errors.Is(err, fs.ErrNotExist) {
				later = append(later, [2]string{p, m.linkTo})
				return nil
			}
			return w.addFSLink(p, m.linkTo)
		}
		if m.key != nil && !info.IsDir() {
			if first, ok := links[m.key]; ok {
				return w.addFSLink(p, first)
			}
			links[m.key] = p
		}
		e := &Entry{
			Path:     p,
			UID:      m.uid,
			GID:      m.gid,
			ModTime:  info.ModTime(),
			Devmajor: m.devmajor,
			Devminor: m.devminor,
			Xattrs:   m.xattrs,
		}
		mode := info.Mode()
		e.Mode = uint32(mode.Perm())
		for _, b := range []struct {
			fm fs.FileMode
			u  uint32
		}{{fs.ModeSetuid, 0o4000}, {fs.ModeSetgid, 0o2000}, {fs.ModeSticky, 0o1000}} {
			if mode&b.fm != 0 {
				e.Mode |= b.u
			}
		}
		switch mode.Type() {
		case 0:
			e.Mode |= ModeRegular
			e.Size = info.Size()
			f, err := fsys.Open(p)
			if err != nil {
				return fmt.Errorf("erofs: AddFS: %w", err)
			}
			err = w.Add(e, f)
			f.Close()
			return err
		case fs.ModeDir:
			e.Mode |= ModeDir
		case fs.ModeSymlink:
			e.Mode |= ModeSymlink
			e.Linkname = m.linkname
			if e.Linkname == "" {
				if e.Linkname, err = fs.ReadLink(fsys, p); err != nil {
					return fmt.Errorf("erofs: AddFS: %w", err)
				}
			}
		case fs.ModeDevice:
			e.Mode |= ModeBlockDevice
		case fs.ModeDevice | fs.ModeCharDevice:
			e.Mode |= ModeCharDevice
		case fs.ModeNamedPipe:
			e.Mode |= ModeFIFO
		case fs.ModeSocket:
			e.Mode |= ModeSocket
		default:
			return fmt.Errorf("erofs: AddFS: %s: file type %v has no EROFS form", p, mode.Type())
		}
		return w.Add(e, nil)
	})
	if err != nil {
		return err
	}
	for _, l := range later {
		if err := w.addFSLink(l[0], l[1]); err != nil {
			return err
		}
	}
	return nil
}

// addFSLink makes p a hard link to the earlier path target.
func (w *Writer) addFSLink(p, target string) error {
	if err := w.Link(p, target); err != nil {
		return fmt.Errorf("erofs: AddFS: %s: %w", p, err)
	}
	return nil
}

// fsMeta is what AddFS learns about a file beyond its fs.FileInfo.
type fsMeta struct {
	uid, gid           uint32
	devmajor, devminor uint32
	xattrs             map[string]string
	key                any    // identity shared by hard links, nil if unknown
	linkTo             string // a hard link to this earlier path (tar)
	linkname           string // symbolic link target, if known
}

// fsMetaOf reads what info carries of a file's metadata (see AddFS).
func fsMetaOf(info fs.FileInfo) fsMeta {
	var m fsMeta
	switch st := info.Sys().(type) {
	case *Stat:
		m.uid, m.gid, m.devmajor, m.devminor, m.xattrs = st.UID, st.GID, st.Devmajor, st.Devminor, st.Xattrs
		if st.Nlink > 1 {
			m.key = nidKey(st.Nid)
		}
		return m
	case *tar.Header:
		m.uid, m.gid = uint32(st.Uid), uint32(st.Gid)
		m.devmajor, m.devminor = uint32(st.Devmajor), uint32(st.Devminor)
		for k, v := range st.PAXRecords {
			if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				if m.xattrs == nil {
					m.xattrs = map[string]string{}
				}
				m.xattrs[name] = v
			}
		}
		switch st.Typeflag {
		case tar.TypeLink:
			m.linkTo = st.Linkname
		case tar.TypeSymlink:
			m.linkname = st.Linkname
		}
		return m
	}
	if sm, ok := sysMeta(info.Sys()); ok {
		return sm
	}
	if a, ok := info.(interface{ UID() uint32 }); ok {
		m.uid = a.UID()
	}
	if a, ok := info.(interface{ GID() uint32 }); ok {
		m.gid = a.GID()
	}
	if a, ok := info.(interface{ Rdev() uint64 }); ok && info.Mode()&fs.ModeDevice != 0 {
		m.devmajor, m.devminor = DecodeDev(uint32(a.Rdev()))
	}
	if a, ok := info.(interface{ GetAllXattr() map[string]string }); ok {
		m.xattrs = a.GetAllXattr()
	}
	n, okN := info.(interface{ Nlink() uint64 })
	ino, okI := info.(interface{ Ino() uint64 })
	if okN && okI && n.Nlink() > 1 {
		m.key = inoKey(ino.Ino())
	}
	return m
}

// nidKey and inoKey are the hard-link identities of files of this
// package's reader and of readers with an Ino accessor.
type (
	nidKey uint64
	inoKey uint64
)
