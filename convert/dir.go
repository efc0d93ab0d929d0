package convert

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rafs-dev/rafs/erofs"
)

// DirToEROFS writes the tree under the local directory root to w as an
// EROFS image (compressed when opts.Image.Compression is set), keeping
// modes, owners, times, device numbers, xattrs and hard links. Entries are
// taken as they are: whiteouts are not converted (opts.Whiteouts may be
// WhiteoutOverlay, the zero value, or WhiteoutKeep, which is what is done;
// WhiteoutStrip is an error); only opts.Image is used.
func DirToEROFS(root string, w io.WriterAt, opts *EROFSOptions) (*EROFSResult, error) {
	var o EROFSOptions
	if opts != nil {
		o = *opts
	}
	if o.Whiteouts != WhiteoutOverlay && o.Whiteouts != WhiteoutKeep {
		return nil, fmt.Errorf("convert: DirToEROFS converts no whiteouts: whiteout mode %v has no effect", o.Whiteouts)
	}
	iw, err := erofs.NewWriter(w, &o.Image)
	if err != nil {
		return nil, err
	}
	res := &EROFSResult{}
	type fileID struct{ dev, ino uint64 }
	seen := map[fileID]string{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return &fs.PathError{Op: "lstat", Path: p, Err: err}
		}
		res.Entries++
		e := &erofs.Entry{
			Path: rel, Mode: st.Mode, UID: st.Uid, GID: st.Gid,
			ModTime: time.Unix(int64(st.Mtim.Sec), int64(st.Mtim.Nsec)), // int32 on 32-bit Linux
		}
		if e.Xattrs, err = listXattrs(p); err != nil {
			return err
		}
		typ := st.Mode & erofs.ModeTypeMask
		if typ != erofs.ModeDir && st.Nlink > 1 {
			id := fileID{uint64(st.Dev), st.Ino}
			if first, ok := seen[id]; ok {
				return iw.Link(rel, first)
			}
			seen[id] = rel
		}
		switch typ {
		case erofs.ModeRegular:
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			e.Size = st.Size
			return iw.Add(e, f)
		case erofs.ModeSymlink:
			if e.Linkname, err = os.Readlink(p); err != nil {
				return err
			}
		case erofs.ModeCharDevice, erofs.ModeBlockDevice:
			e.Devmajor, e.Devminor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
		}
		return iw.Add(e, nil)
	})
	if err != nil {
		iw.Close()
		return nil, fmt.Errorf("convert: %w", err)
	}
	if err := iw.Close(); err != nil {
		return nil, err
	}
	res.ImageSize = iw.Size()
	return res, nil
}

// listXattrs reads all extended attributes of p without following a
// symlink.
func listXattrs(p string) (map[string]string, error) {
	buf := make([]byte, 4096)
	var n int
	for {
		var err error
		n, err = unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, &fs.PathError{Op: "llistxattr", Path: p, Err: err}
		}
		break
	}
	var xs map[string]string
	for _, name := range splitNul(buf[:n]) {
		val := make([]byte, 256)
		for {
			m, err := unix.Lgetxattr(p, name, val)
			if errors.Is(err, unix.ERANGE) {
				val = make([]byte, len(val)*16)
				continue
			}
			if errors.Is(err, unix.ENODATA) {
				m, err = -1, nil
			}
			if err != nil {
				return nil, &fs.PathError{Op: "lgetxattr " + name, Path: p, Err: err}
			}
			if m >= 0 {
				if xs == nil {
					xs = map[string]string{}
				}
				xs[name] = string(val[:m])
			}
			break
		}
	}
	return xs, nil
}

func splitNul(b []byte) []string {
	var out []string
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != 0 {
			i++
		}
		if i > 0 {
			out = append(out, string(b[:i]))
		}
		if i < len(b) {
			i++
		}
		b = b[i:]
	}
	return out
}
