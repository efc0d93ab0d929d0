package fstree

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"maps"
)

// Meta is the Unix metadata of one file that io/fs.FileInfo cannot carry.
// Callers of FromFS fill it in from their reader's FileInfo.Sys().
type Meta struct {
	Mode               uint32 // Unix file type and permission bits
	UID, GID           uint32
	Mtime              int64
	MtimeNsec          uint32
	Nlink              uint32
	Devmajor, Devminor uint32
	Xattrs             map[string]string
	// Ino identifies the inode; non-directories with the same non-zero Ino
	// are hard links to each other.
	Ino uint64
}

// UnixMode converts an io/fs file mode to Unix type and permission bits.
func UnixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	switch m.Type() {
	case fs.ModeDir:
		u |= ModeDir
	case fs.ModeSymlink:
		u |= ModeSymlink
	case fs.ModeNamedPipe:
		u |= ModeFIFO
	case fs.ModeSocket:
		u |= ModeSocket
	case fs.ModeDevice:
		u |= ModeBlock
	case fs.ModeDevice | fs.ModeCharDevice:
		u |= ModeChar
	default:
		u |= ModeReg
	}
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// DefaultMeta returns the metadata that fi itself carries: the mode and the
// mtime. Owner, link count, device numbers, xattrs and inode are zero.
func DefaultMeta(_ string, fi fs.FileInfo) (Meta, error) {
	mt := fi.ModTime()
	return Meta{
		Mode:      UnixMode(fi.Mode()),
		Mtime:     mt.Unix(),
		MtimeNsec: uint32(mt.Nanosecond()),
		Nlink:     1,
	}, nil
}

// FromFS returns the tree of fsys, walking it from ".".
//
// meta returns the Unix metadata of each path (nil means DefaultMeta);
// readlink returns symbolic link targets (nil means fs.ReadLink, which
// needs fsys to implement fs.ReadLinkFS). Regular files are opened and
// hashed; their Size is fi.Size(), and a content length that differs from
// it is an error. Non-directories with equal non-zero Meta.Ino are grouped
// as hard links.
//
// Note that file systems following io/fs conventions reject paths that are
// not valid UTF-8 (see fs.ValidPath), so trees with such names can only be
// read from an fs.FS that does not enforce that rule.
func FromFS(fsys fs.FS, meta func(path string, fi fs.FileInfo) (Meta, error), readlink func(path string) (string, error)) (*Tree, error) {
	if meta == nil {
		meta = DefaultMeta
	}
	if readlink == nil {
		readlink = func(name string) (string, error) { return fs.ReadLink(fsys, name) }
	}
	t := &Tree{Nodes: make(map[string]*Node)}
	inos := make(map[string]uint64)
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		m, err := meta(p, fi)
		if err != nil {
			return fmt.Errorf("metadata of %q: %w", p, err)
		}
		n := &Node{
			Path:      p,
			Mode:      m.Mode,
			UID:       m.UID,
			GID:       m.GID,
			Mtime:     m.Mtime,
			MtimeNsec: m.MtimeNsec,
			Nlink:     m.Nlink,
		}
		if len(m.Xattrs) > 0 {
			n.Xattrs = maps.Clone(m.Xattrs)
		}
		if (m.Mode&ModeTypeMask == ModeDir) != d.IsDir() {
			return fmt.Errorf("%q: Meta.Mode %#o disagrees with the directory entry's type %v", p, m.Mode, d.Type())
		}
		switch n.Type() {
		case ModeReg:
			n.Size = fi.Size()
			if n.Digest, err = digestFS(fsys, p, fi.Size()); err != nil {
				return err
			}
		case ModeSymlink:
			if n.Linkname, err = readlink(p); err != nil {
				return fmt.Errorf("readlink %q: %w", p, err)
			}
			n.Size = int64(len(n.Linkname))
		case ModeChar, ModeBlock:
			n.Devmajor, n.Devminor = m.Devmajor, m.Devminor
		}
		t.Nodes[p] = n
		inos[p] = m.Ino
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fstree: %w", err)
	}
	assignLinks(t, func(p string, _ *Node) (uint64, bool) {
		ino := inos[p]
		return ino, ino != 0
	})
	return t, nil
}

func digestFS(fsys fs.FS, name string, size int64) (string, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", fmt.Errorf("reading %q: %w", name, err)
	}
	if n != size {
		return "", fmt.Errorf("reading %q: got %d bytes, FileInfo.Size says %d", name, n, size)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
