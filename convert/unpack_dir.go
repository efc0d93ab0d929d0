package convert

import (
	"archive/tar"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/rafs-dev/rafs/erofs"
	"golang.org/x/sys/unix"
)

// ExtractResult counts what ExtractTar could not create.
type ExtractResult struct {
	// SkippedNodes counts character and block devices (whiteouts among
	// them) left out for want of the privilege to create them.
	SkippedNodes int
}

// extractor writes tar entries into a directory through file descriptors
// of directories opened inside it with os.Root, so that no symlink (in
// the tree or planted beside it) is ever followed out of it: every final
// component is created (O_EXCL, no following), and parents are opened
// through the root.
type extractor struct {
	root   *os.Root
	rootFD int
	isRoot bool // running as root: owners and device nodes are set

	parent  string   // the directory parentF is
	parentF *os.File // open directory of the last entry
	dirs    []dirAttrs
	res     ExtractResult
	copyBuf []byte
}

// dirAttrs is a directory whose attributes are set after its contents.
type dirAttrs struct {
	name string
	hdr  *tar.Header
}

// ExtractTar extracts the tar r, as UnpackEROFS and UnpackNydus write
// them, into the directory dir, which must exist and should be empty:
// directories, regular files, symlinks, hard links, FIFOs and device
// nodes, with their modes, times (nanoseconds), SCHILY.xattr and
// LIBARCHIVE.xattr records and, when running as root, owners. Device
// nodes need root (CAP_MKNOD): without it, they are left out and counted
// in the result. Directories get their attributes after their contents;
// the root gets those of the tar's "./" entry, or those of an implicit
// directory (0755, mtime 0). Whiteouts are created as they come: a tar of
// ours holds overlayfs 0:0 devices, not .wh. files.
//
// Nothing is written outside dir: every entry is created anew (an
// existing name is an error) in a directory opened through an os.Root of
// dir, so no symlink is followed out of it, and names that are not clean
// relative paths are refused. On error, dir holds what was extracted so
// far.
func ExtractTar(r io.Reader, dir string) (*ExtractResult, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	rf, err := root.Open(".")
	if err != nil {
		return nil, err
	}
	defer rf.Close()
	x := &extractor{root: root, rootFD: int(rf.Fd()), isRoot: os.Geteuid() == 0, copyBuf: make([]byte, 256<<10)}
	defer func() {
		if x.parentF != nil {
			x.parentF.Close()
		}
	}()
	// The root has the attributes of an implicit directory unless the
	// tar has a "./" entry.
	x.dirs = append(x.dirs, dirAttrs{".", &tar.Header{Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(0, 0)}})
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if err := x.entry(h, tr); err != nil {
			return nil, fmt.Errorf("%s: %w", h.Name, err)
		}
	}
	// Directories last, the deepest first, so that their times stay and
	// read-only ones were writable while being filled.
	for _, d := range slices.Backward(x.dirs) {
		if err := x.attrs(d.name, d.hdr); err != nil {
			return nil, fmt.Errorf("%s: %w", d.name, err)
		}
	}
	return &x.res, nil
}

// extractName returns the entry's path relative to the root ("." for the
// root), refusing names that leave it or are not clean.
func extractName(name string) (string, error) {
	n := strings.TrimPrefix(strings.TrimSuffix(name, "/"), "./")
	if n == "" || n == "." {
		return ".", nil
	}
	if path.Clean(n) != n || path.IsAbs(n) || n == ".." || strings.HasPrefix(n, "../") {
		return "", fmt.Errorf("name %q is not a clean relative path", name)
	}
	return n, nil
}

// dirFD returns an open descriptor of directory dir (relative to the
// root) and the base name.
func (x *extractor) dirFD(name string) (int, string, error) {
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		return x.rootFD, base, nil
	}
	if x.parentF == nil || x.parent != dir {
		if x.parentF != nil {
			x.parentF.Close()
			x.parentF = nil
		}
		f, err := x.root.Open(dir)
		if err != nil {
			return -1, "", err
		}
		x.parentF, x.parent = f, dir
	}
	return int(x.parentF.Fd()), base, nil
}

func (x *extractor) entry(h *tar.Header, r io.Reader) error {
	name, err := extractName(h.Name)
	if err != nil {
		return err
	}
	if name == "." {
		if h.Typeflag != tar.TypeDir {
			return errors.New("the root is not a directory")
		}
		x.dirs[0].hdr = h
		return nil
	}
	fd, base, err := x.dirFD(name)
	if err != nil {
		return err
	}
	switch h.Typeflag {
	case tar.TypeDir:
		if err := unix.Mkdirat(fd, base, 0o700); err != nil {
			return err
		}
		x.dirs = append(x.dirs, dirAttrs{name, h})
		return nil
	case tar.TypeReg:
		nfd, err := unix.Openat(fd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(nfd), name)
		_, err = io.CopyBuffer(onlyWriter{f}, r, x.copyBuf)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	case tar.TypeSymlink:
		if err := unix.Symlinkat(h.Linkname, fd, base); err != nil {
			return err
		}
	case tar.TypeLink:
		target, err := extractName(h.Linkname)
		if err != nil || target == "." {
			return fmt.Errorf("hard link to %q", h.Linkname)
		}
		// Linked through the root, never following a symlink.
		return x.root.Link(target, name)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		typ := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[h.Typeflag]
		dev := unix.Mkdev(uint32(h.Devmajor), uint32(h.Devminor))
		if err := unix.Mknodat(fd, base, typ|0o600, int(dev)); err != nil {
			if errors.Is(err, unix.EPERM) && !x.isRoot && h.Typeflag != tar.TypeFifo {
				x.res.SkippedNodes++
				return nil
			}
			return err
		}
	default:
		return fmt.Errorf("unsupported tar entry type %q", h.Typeflag)
	}
	return x.attrs(name, h)
}

// attrs sets an entry's owner, mode, xattrs and times, in that order (a
// chown clears set-id bits; times last).
func (x *extractor) attrs(name string, h *tar.Header) error {
	fd, base := x.rootFD, "."
	if name != "." {
		var err error
		if fd, base, err = x.dirFD(name); err != nil {
			return err
		}
	}
	link := h.Typeflag == tar.TypeSymlink
	if x.isRoot {
		if err := unix.Fchownat(fd, base, h.Uid, h.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	if !link {
		if err := unix.Fchmodat(fd, base, uint32(h.Mode&0o7777), 0); err != nil {
			return err
		}
	}
	if err := x.setXattrs(fd, base, h); err != nil {
		return err
	}
	ts := []unix.Timespec{unix.NsecToTimespec(h.ModTime.UnixNano()), unix.NsecToTimespec(h.ModTime.UnixNano())}
	if !h.AccessTime.IsZero() {
		ts[0] = unix.NsecToTimespec(h.AccessTime.UnixNano())
	}
	return unix.UtimesNanoAt(fd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// setXattrs sets the SCHILY.xattr and LIBARCHIVE.xattr records of h on
// base in directory fd, without following a symlink (through /proc, as
// there is no lsetxattrat).
func (x *extractor) setXattrs(fd int, base string, h *tar.Header) error {
	for k, v := range h.PAXRecords {
		var name, value string
		switch {
		case strings.HasPrefix(k, "SCHILY.xattr."):
			name, value = strings.TrimPrefix(k, "SCHILY.xattr."), v
		case strings.HasPrefix(k, "LIBARCHIVE.xattr."):
			n, err := url.PathUnescape(strings.TrimPrefix(k, "LIBARCHIVE.xattr."))
			if err != nil {
				return fmt.Errorf("xattr record %q: %w", k, err)
			}
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				return fmt.Errorf("xattr record %q: %w", k, err)
			}
			name, value = n, string(b)
		default:
			continue
		}
		p := fmt.Sprintf("/proc/self/fd/%d/%s", fd, base)
		if err := unix.Lsetxattr(p, name, []byte(value), 0); err != nil {
			return fmt.Errorf("xattr %s: %w", name, err)
		}
	}
	return nil
}

// onlyWriter hides an *os.File's ReadFrom, so that io.CopyBuffer uses the
// buffer.
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }

// UnpackEROFSDir writes the tree of an EROFS image into the directory dir
// (existing and empty): UnpackEROFS's tar, extracted as it streams by
// ExtractTar. The result counts what UnpackEROFS left out (sockets); the
// ExtractResult what ExtractTar did (device nodes without root).
func UnpackEROFSDir(f *erofs.FS, dir string) (*UnpackResult, *ExtractResult, error) {
	return UnpackDirFunc(dir, func(w io.Writer) (*UnpackResult, error) { return UnpackEROFS(f, w) })
}

// UnpackDirFunc runs unpack, a function writing a tar such as
// UnpackEROFS or UnpackNydus with its arguments bound, into a pipe that
// ExtractTar reads into dir (existing and empty) as it streams.
func UnpackDirFunc(dir string, unpack func(io.Writer) (*UnpackResult, error)) (*UnpackResult, *ExtractResult, error) {
	pr, pw := io.Pipe()
	type extracted struct {
		res *ExtractResult
		err error
	}
	done := make(chan extracted, 1)
	go func() {
		res, err := ExtractTar(pr, dir)
		if err != nil {
			err = fmt.Errorf("convert: extracting into %s: %w", dir, err)
		}
		pr.CloseWithError(err) // unblocks the unpacker
		done <- extracted{res, err}
	}()
	res, err := unpack(pw)
	pw.CloseWithError(err)
	x := <-done
	// Whichever side failed first made the other fail with its error.
	if err == nil || x.err != nil && !errors.Is(x.err, err) {
		err = x.err
	}
	if err != nil {
		return nil, nil, err
	}
	return res, x.res, nil
}
