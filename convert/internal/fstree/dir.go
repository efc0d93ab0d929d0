//go:build linux

package fstree

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// FromDir returns the tree rooted at the directory root, as lstat(2),
// readlink(2) and llistxattr(2)/lgetxattr(2) report it. Symbolic links are
// not followed. Hard links are grouped by (st_dev, st_ino); Nlink is
// st_nlink. Regular file contents are hashed while streaming.
//
// All xattrs the kernel lists are recorded, including security.selinux or
// trusted.* ones (trusted.* is only visible to root).
func FromDir(root string) (*Tree, error) {
	t := &Tree{Nodes: make(map[string]*Node)}
	type inode struct{ dev, ino uint64 }
	inodes := make(map[string]inode)
	err := filepath.WalkDir(root, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, name)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		var st unix.Stat_t
		if err := unix.Lstat(name, &st); err != nil {
			return &fs.PathError{Op: "lstat", Path: name, Err: err}
		}
		n := &Node{
			Path:      rel,
			Mode:      st.Mode,
			UID:       st.Uid,
			GID:       st.Gid,
			Mtime:     st.Mtim.Sec,
			MtimeNsec: uint32(st.Mtim.Nsec),
			Nlink:     uint32(st.Nlink),
		}
		switch n.Type() {
		case ModeReg:
			n.Size = st.Size
			if n.Digest, err = digestFile(name); err != nil {
				return err
			}
		case ModeSymlink:
			if n.Linkname, err = os.Readlink(name); err != nil {
				return err
			}
			n.Size = int64(len(n.Linkname))
		case ModeChar, ModeBlock:
			n.Devmajor, n.Devminor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
		}
		if n.Xattrs, err = listXattrs(name); err != nil {
			return err
		}
		t.Nodes[rel] = n
		inodes[rel] = inode{st.Dev, st.Ino}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fstree: %w", err)
	}
	assignLinks(t, func(p string, _ *Node) (inode, bool) { return inodes[p], true })
	return t, nil
}

func digestFile(name string) (string, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading %s: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// listXattrs returns all xattrs of name without following symbolic links.
func listXattrs(name string) (map[string]string, error) {
	list, err := growBuf(func(b []byte) (int, error) { return unix.Llistxattr(name, b) })
	if errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	if err != nil {
		return nil, &fs.PathError{Op: "llistxattr", Path: name, Err: err}
	}
	var x map[string]string
	for key := range strings.SplitSeq(strings.TrimSuffix(string(list), "\x00"), "\x00") {
		if key == "" {
			continue
		}
		v, err := growBuf(func(b []byte) (int, error) { return unix.Lgetxattr(name, key, b) })
		if errors.Is(err, unix.ENODATA) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, &fs.PathError{Op: "lgetxattr " + key, Path: name, Err: err}
		}
		if x == nil {
			x = make(map[string]string)
		}
		x[key] = string(v)
	}
	return x, nil
}

// growBuf calls a size-querying syscall wrapper until the buffer is big
// enough.
func growBuf(call func([]byte) (int, error)) ([]byte, error) {
	for {
		n, err := call(nil)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, nil
		}
		b := make([]byte, n)
		n, err = call(b)
		if errors.Is(err, unix.ERANGE) {
			continue // grew meanwhile
		}
		if err != nil {
			return nil, err
		}
		return b[:n], nil
	}
}
