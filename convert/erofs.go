package convert

import (
	"archive/tar"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"path"
	"sort"
	"strings"
	"syscall"

	"github.com/rafs-dev/rafs/erofs"
)

// WhiteoutMode selects what becomes of OCI whiteout files (".wh.NAME" and
// the opaque marker ".wh..wh..opq") in a layer.
type WhiteoutMode int

const (
	// WhiteoutOverlay converts whiteouts to overlayfs form, as
	// mkfs.erofs --aufs does: ".wh.NAME" becomes a character device 0:0
	// named NAME, ".wh..wh..opq" sets trusted.overlay.opaque="y" on its
	// directory, and each directory holding a whiteout gets an empty
	// trusted.overlay.origin xattr.
	WhiteoutOverlay WhiteoutMode = iota
	// WhiteoutKeep stores whiteout files as the plain files they are.
	WhiteoutKeep
	// WhiteoutStrip leaves whiteouts out: OCI whiteout files and opaque
	// markers, overlayfs whiteouts (0:0 character devices) and
	// trusted.overlay.opaque xattrs, like mkfs.erofs --ovlfs-strip, for a
	// layer that is to stand alone.
	WhiteoutStrip
)

var whiteoutModeNames = [...]string{WhiteoutOverlay: "overlay", WhiteoutKeep: "keep", WhiteoutStrip: "strip"}

// String returns the mode's name: overlay, keep or strip.
func (m WhiteoutMode) String() string {
	if m >= 0 && int(m) < len(whiteoutModeNames) {
		return whiteoutModeNames[m]
	}
	return fmt.Sprintf("WhiteoutMode(%d)", int(m))
}

// ParseWhiteoutMode returns the mode String names.
func ParseWhiteoutMode(s string) (WhiteoutMode, error) {
	for m, name := range whiteoutModeNames {
		if s == name {
			return WhiteoutMode(m), nil
		}
	}
	return 0, fmt.Errorf("whiteout mode %q: want overlay, keep or strip", s)
}

// OCI whiteout names and the overlayfs xattr for opaque directories.
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
	xattrOpaque    = "trusted.overlay.opaque"
)

// EROFSOptions configure TarToEROFS.
type EROFSOptions struct {
	// Image configures the EROFS writer. WhiteoutOrigin is set from
	// Whiteouts.
	Image erofs.WriterOptions

	// Whiteouts selects how OCI whiteouts are converted.
	Whiteouts WhiteoutMode
}

// EROFSResult describes a finished conversion.
type EROFSResult struct {
	Entries     int         // tar entries read
	TarSize     int64       // bytes of uncompressed tar consumed
	ImageSize   int64       // bytes of EROFS image written
	Compression Compression // compression of the input stream

	// DroppedXattrs counts xattrs left out because their names are in no
	// namespace Linux has (user., trusted., security., system.), such as
	// the bare names macOS tar writes.
	DroppedXattrs int
}

// TarToEROFS reads an OCI layer — a tar stream, plain, gzip- or
// zstd-compressed — and writes it to w as an uncompressed EROFS image in
// one pass. File data streams through; only metadata is kept in memory.
// Errors name the tar entry and its offset in the uncompressed stream.
func TarToEROFS(r io.Reader, w io.WriterAt, opts *EROFSOptions) (*EROFSResult, error) {
	var o EROFSOptions
	if opts != nil {
		o = *opts
	}
	o.Image.WhiteoutOrigin = o.Whiteouts == WhiteoutOverlay
	src, comp, closeLayer, err := openLayer(r, 1<<20)
	if err != nil {
		return nil, err
	}
	defer closeLayer()
	iw, err := erofs.NewWriter(w, &o.Image)
	if err != nil {
		return nil, err
	}
	res := &EROFSResult{Compression: comp}
	cr := &countingReader{r: src}
	var st tarStats
	err = addTar(iw, cr, o.Whiteouts, &st)
	res.Entries, res.TarSize, res.DroppedXattrs = st.Entries, st.TarSize, st.DroppedXattrs
	if err != nil {
		iw.Close()
		return nil, err
	}
	// Read to the end so a corrupt or truncated compressed stream after the
	// tar trailer is still an error.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		iw.Close()
		return nil, fmt.Errorf("convert: after the tar end at offset %d: %w", cr.n, err)
	}
	if err := iw.Close(); err != nil {
		return nil, err
	}
	res.ImageSize = iw.Size()
	return res, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// entryError is an error about one tar entry.
func entryError(name string, off int64, err error) error {
	return fmt.Errorf("convert: tar entry %q at offset %d: %w", name, off, err)
}

// tarSink is what the tar walker builds a tree with: *erofs.Writer for
// EROFS images and *nydusTree for Nydus layers. Paths are slash-separated
// and relative to the root; the methods have the semantics of
// erofs.Writer's methods of the same names (a later entry replaces an
// earlier one, a directory over a directory merges into it, missing
// parents are created as implicit directories).
type tarSink interface {
	// Add adds an object; a regular file's data is read from data.
	Add(e *erofs.Entry, data io.Reader) error
	// Link makes name another name of the non-directory at target. An
	// error matching fs.ErrNotExist means target is missing.
	Link(name, target string) error
	// Remove deletes p and everything below it, if it exists.
	Remove(p string) error
	// MkdirAll creates p and its parents as implicit directories where
	// they are missing.
	MkdirAll(p string) error
	// SetXattr sets an xattr on the directory p, creating it if missing;
	// an error matching syscall.ENOTDIR means p is not a directory.
	SetXattr(p, name, value string) error
}

var _ tarSink = (*erofs.Writer)(nil)

// tarStats are the counts the tar walker reports.
type tarStats struct {
	Entries       int   // tar entries read
	TarSize       int64 // bytes of uncompressed tar consumed
	DroppedXattrs int   // xattrs in no Linux namespace, left out
}

// addTar adds every entry of a tar stream to w.
func addTar(w tarSink, cr *countingReader, mode WhiteoutMode, res *tarStats) error {
	tr := tar.NewReader(cr)
	opaque := map[string]bool{}
	var next int64         // where the next header starts
	var global *tar.Header // the latest global PAX header
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("convert: tar header at offset %d: %w", next, err)
		}
		res.Entries++
		// archive/tar reads headers block by block and file data only
		// when asked, so the header's last block ends where the count is.
		off := cr.n - 512
		next = cr.n + (hdr.Size+511)&^511
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			global = hdr
			continue
		}
		if global != nil {
			// Global records apply to every later entry unless the
			// entry has its own.
			recs := make(map[string]string, len(global.PAXRecords)+len(hdr.PAXRecords))
			for k, v := range global.PAXRecords {
				recs[k] = v
			}
			for k, v := range hdr.PAXRecords {
				recs[k] = v
			}
			hdr.PAXRecords = recs
		}
		if err := addEntry(w, tr, hdr, mode, opaque, res); err != nil {
			return entryError(hdr.Name, off, err)
		}
	}
	res.TarSize = cr.n
	dirs := make([]string, 0, len(opaque))
	for d := range opaque {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, d := range dirs {
		err := w.SetXattr(d, xattrOpaque, "y")
		if err != nil && !errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("convert: opaque directory %q: %w", d, err)
		}
	}
	return nil
}

// addEntry converts one tar header (and its data) into the image.
func addEntry(w tarSink, tr *tar.Reader, hdr *tar.Header, mode WhiteoutMode, opaque map[string]bool, res *tarStats) error {
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	dir, base := path.Split(name)
	if mode != WhiteoutKeep && strings.HasPrefix(base, whiteoutPrefix) {
		if mode == WhiteoutStrip {
			// The entry goes, but the directories its path names exist,
			// and a whiteout still deletes what it names in this layer.
			if base != whiteoutOpaque && len(base) > len(whiteoutPrefix) {
				if err := w.Remove(dir + base[len(whiteoutPrefix):]); err != nil {
					return err
				}
			}
			return w.MkdirAll(dir)
		}
		if base == whiteoutOpaque {
			opaque[path.Clean("./"+dir)] = true
			return nil
		}
		target := base[len(whiteoutPrefix):]
		if target == "" || target == "." || target == ".." {
			return fmt.Errorf("invalid whiteout name %q", base)
		}
		return w.Add(&erofs.Entry{
			Path: dir + target, Mode: erofs.ModeCharDevice,
			UID: uint32(hdr.Uid), GID: uint32(hdr.Gid), ModTime: hdr.ModTime,
		}, nil)
	}
	if mode == WhiteoutStrip && hdr.Typeflag == tar.TypeChar && hdr.Devmajor == 0 && hdr.Devminor == 0 {
		return w.MkdirAll(dir) // an overlayfs whiteout already
	}
	e := &erofs.Entry{Path: name, ModTime: hdr.ModTime}
	if hdr.Uid < 0 || hdr.Uid > 1<<32-1 || hdr.Gid < 0 || hdr.Gid > 1<<32-1 {
		return fmt.Errorf("uid/gid %d/%d out of range", hdr.Uid, hdr.Gid)
	}
	e.UID, e.GID = uint32(hdr.Uid), uint32(hdr.Gid)
	e.Mode = uint32(hdr.Mode) & erofs.ModePermMask
	if e.Xattrs, err = xattrsOf(hdr); err != nil {
		return err
	}
	for name := range e.Xattrs {
		if mode == WhiteoutStrip && name == xattrOpaque {
			delete(e.Xattrs, name)
			continue
		}
		if !erofs.StorableXattr(name) {
			// Names outside the Linux namespaces (macOS's com.apple.*,
			// say) cannot exist on Linux; extraction drops them too.
			delete(e.Xattrs, name)
			res.DroppedXattrs++
		}
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeCont, tar.TypeGNUSparse: // archive/tar reports the old NUL type as TypeReg and fills sparse holes with zeros
		e.Mode |= erofs.ModeRegular
		e.Size = hdr.Size
		return w.Add(e, tr)
	case tar.TypeDir:
		e.Mode |= erofs.ModeDir
	case tar.TypeSymlink:
		e.Mode |= erofs.ModeSymlink
		e.Linkname = hdr.Linkname
	case tar.TypeLink:
		target, err := cleanName(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hard link target: %w", err)
		}
		if target == name {
			return nil // a link to itself changes nothing
		}
		err = w.Link(name, target)
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("hard link to %q, which is not in the archive before it", hdr.Linkname)
		}
		return err
	case tar.TypeChar:
		e.Mode |= erofs.ModeCharDevice
	case tar.TypeBlock:
		e.Mode |= erofs.ModeBlockDevice
	case tar.TypeFifo:
		e.Mode |= erofs.ModeFIFO
	case 'V': // GNU volume header
		return nil // a volume label, not a file
	default:
		return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
	if hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock {
		if hdr.Devmajor < 0 || hdr.Devminor < 0 || hdr.Devmajor > 0xFFF || hdr.Devminor > 0xFFFFF {
			return fmt.Errorf("device number %d:%d out of range", hdr.Devmajor, hdr.Devminor)
		}
		e.Devmajor, e.Devminor = uint32(hdr.Devmajor), uint32(hdr.Devminor)
	}
	return w.Add(e, nil)
}

// cleanName turns a tar entry name into a clean relative path, rejecting
// names that would escape the root.
func cleanName(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("absolute path %q", name)
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", fmt.Errorf("path %q has a \"..\" component", name)
		}
	}
	return path.Clean("./" + name), nil
}

// xattrsOf collects a header's extended attributes from its PAX records:
// SCHILY.xattr.NAME (raw value), LIBARCHIVE.xattr.URLENCODED-NAME (base64
// value) and the textual ACLs SCHILY.acl.access and SCHILY.acl.default,
// which become the kernel's binary POSIX ACL xattrs.
func xattrsOf(hdr *tar.Header) (map[string]string, error) {
	var xs map[string]string
	set := func(k, v string) {
		if xs == nil {
			xs = map[string]string{}
		}
		xs[k] = v
	}
	for k, v := range hdr.PAXRecords {
		switch {
		case strings.HasPrefix(k, "SCHILY.xattr."):
			set(k[len("SCHILY.xattr."):], v)
		case strings.HasPrefix(k, "LIBARCHIVE.xattr."):
			name, err := url.QueryUnescape(k[len("LIBARCHIVE.xattr."):])
			if err != nil {
				return nil, fmt.Errorf("PAX record %q: %w", k, err)
			}
			val, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				if val, err = base64.RawStdEncoding.DecodeString(v); err != nil {
					return nil, fmt.Errorf("PAX record %q: %w", k, err)
				}
			}
			if _, dup := hdr.PAXRecords["SCHILY.xattr."+name]; !dup {
				set(name, string(val))
			}
		case k == "SCHILY.acl.access" || k == "SCHILY.acl.default":
			acl, err := parseACL(v)
			if err != nil {
				return nil, fmt.Errorf("PAX record %q: %w", k, err)
			}
			name := "system.posix_acl_access"
			if k == "SCHILY.acl.default" {
				name = "system.posix_acl_default"
			}
			if _, dup := hdr.PAXRecords["SCHILY.xattr."+name]; !dup && acl != "" {
				set(name, acl)
			}
		}
	}
	return xs, nil
}
