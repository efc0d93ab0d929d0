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
	"strconv"
	"strings"
	"syscall"

	"github.com/rafs-dev/rafs/convert/internal/tarhdr"
	"github.com/rafs-dev/rafs/erofs"
)

// WhiteoutMode selects what becomes of OCI whiteout files (".wh.NAME" and
// the opaque marker ".wh..wh..opq") in a layer. Whatever the mode, and for
// Nydus layers too, whiteout names are checked the same way: a layer with
// ".wh.", ".wh.." or ".wh...", a directory with a ".wh." name, an entry
// below one, a hard link to one, or a whiteout or opaque marker below a
// non-directory is refused.
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

// EROFSOptions configure TarToEROFS (and DirToEROFS). The zero value (or
// nil) gives mkfs.erofs --tar=f's image, uncompressed, with OCI whiteouts
// turned into overlayfs ones.
type EROFSOptions struct {
	// Image configures the EROFS writer. Its zero value is mkfs.erofs's
	// defaults for an uncompressed image (see erofs.WriterOptions).
	// WhiteoutOrigin is set from Whiteouts (on for WhiteoutOverlay); set
	// it true with another mode, where it would be ignored, is an error.
	Image erofs.WriterOptions

	// Whiteouts selects how OCI whiteouts are converted.
	Whiteouts WhiteoutMode
}

// EROFSResult describes a finished conversion.
type EROFSResult struct {
	Entries   int           // tar entries read
	TarSize   int64         // bytes of uncompressed tar consumed
	ImageSize int64         // bytes of EROFS image written
	Encoding  LayerEncoding // how the input stream was encoded

	// DroppedXattrs counts xattrs left out because their names are in no
	// namespace Linux has (user., trusted., security., system.), such as
	// the bare names macOS tar writes.
	DroppedXattrs int
}

// TarToEROFS reads an OCI layer — a tar stream, plain, gzip- or
// zstd-compressed — and writes it to w as an EROFS image in one pass, its
// files compressed when opts.Image.Compression is set. File data streams
// through; only metadata is kept in memory.
// An error about one tar entry is an *EntryError naming the entry and its
// offset in the uncompressed stream.
func TarToEROFS(r io.Reader, w io.WriterAt, opts *EROFSOptions) (*EROFSResult, error) {
	var o EROFSOptions
	if opts != nil {
		o = *opts
	}
	if err := o.checkWhiteoutOrigin(); err != nil {
		return nil, err
	}
	o.Image.WhiteoutOrigin = o.Whiteouts == WhiteoutOverlay
	src, enc, closeLayer, err := openLayer(r, ReadAheadEROFS)
	if err != nil {
		return nil, err
	}
	defer closeLayer()
	iw, err := erofs.NewWriter(w, &o.Image)
	if err != nil {
		return nil, err
	}
	res := &EROFSResult{Encoding: enc}
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

// countingReader counts the bytes read through it (and sought past): the
// offset in the uncompressed tar stream.
type countingReader struct {
	r io.Reader
	n int64

	// seeker, when set, is r's: the tar reader then skips file data by
	// seeking (see Seek), and the tar walker leaves data unread.
	seeker io.Seeker
}

// Seek moves by offset bytes from the current position (the only whence
// the tar reader uses to skip data) when the reader has a seeker; without
// one it fails, and the tar reader reads the data instead.
func (c *countingReader) Seek(offset int64, whence int) (int64, error) {
	if c.seeker == nil || whence != io.SeekCurrent {
		return 0, errors.New("convert: cannot seek the tar stream")
	}
	pos, err := c.seeker.Seek(offset, io.SeekCurrent)
	if err == nil {
		c.n += offset
	}
	return pos, err
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// checkWhiteoutOrigin refuses an Image.WhiteoutOrigin that Whiteouts
// would override.
func (o *EROFSOptions) checkWhiteoutOrigin() error {
	if o.Image.WhiteoutOrigin && o.Whiteouts != WhiteoutOverlay {
		return fmt.Errorf("convert: Image.WhiteoutOrigin is set from Whiteouts, and whiteout mode %v makes no overlayfs whiteouts", o.Whiteouts)
	}
	return nil
}

// EntryError is the error TarToEROFS, TarToEROFSIndex and TarToNydus
// return for a tar entry they cannot read or store: a malformed header,
// a name, link or xattr the image cannot hold, data that ends early. Get
// it with errors.As; errors.Is and errors.As see through it to Err (an
// fs.ErrNotExist for a hard link to a missing target, say).
type EntryError struct {
	// Name is the entry's name as the tar gives it, "" when its header
	// could not be read.
	Name string
	// Offset is where the entry's header starts in the uncompressed tar
	// stream, in bytes.
	Offset int64
	// Err is what is wrong.
	Err error

	header bool // the header could not be read: Name is ""
}

// Error names the entry and its offset, then gives Err.
func (e *EntryError) Error() string {
	if e.header {
		return fmt.Sprintf("convert: tar header at offset %d: %v", e.Offset, e.Err)
	}
	return fmt.Sprintf("convert: tar entry %q at offset %d: %v", e.Name, e.Offset, e.Err)
}

// Unwrap returns Err.
func (e *EntryError) Unwrap() error { return e.Err }

// entryError is an error about one tar entry.
func entryError(name string, off int64, err error) error {
	return &EntryError{Name: name, Offset: off, Err: err}
}

// headerError is an error about a tar header that could not be read.
func headerError(off int64, err error) error {
	return &EntryError{Offset: off, Err: err, header: true}
}

// tarSink is what the tar walker builds a tree with: *erofs.Writer for
// EROFS images and *nydusTree for Nydus layers. Both keep the same
// namespace (the Writer its own, the Nydus builder an erofs.Tree), so the
// methods apply one set of rules: paths are slash-separated and relative
// to the root, a later entry replaces an earlier one, a directory over a
// directory merges into it, missing parents are created as implicit
// directories.
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

// addTar adds every entry of a tar stream to w. The rules of what an entry
// may be are the same for every sink and whiteout mode (see addEntry).
//
// Global PAX headers apply as GNU tar (1.34) applies them (xheader.c,
// xheader_decode_global): each one's records replace those of the one
// before as a whole (a keyword the new header lacks is no longer set, and
// a global header without records unsets all), and every later entry
// takes path, linkpath, uid, gid, mtime and xattr records from them unless
// its own extended header has the keyword. POSIX pax says that a keyword
// keeps its global value until another global header gives it another;
// GNU tar, which a layer is extracted like, drops it.
func addTar(w tarSink, cr *countingReader, mode WhiteoutMode, res *tarStats) error {
	tr := tarhdr.NewReader(cr)
	opaque := map[string]bool{}
	var global map[string]string // records of the latest global PAX header
	for {
		hdr, err := tr.Next()
		start := tr.Start()
		if err == io.EOF {
			if special := tarhdr.EndsAfterSpecial(tr.Raw()); special != "" {
				// archive/tar takes the end of the stream after a PAX or
				// GNU long name header for the end of the archive.
				return headerError(start, fmt.Errorf("the archive ends after this %s, before the entry it is for: %w",
					special, io.ErrUnexpectedEOF))
			}
			break
		}
		if err != nil {
			if why := tarhdr.Explain(tr.Raw(), start, err); why != "" {
				return headerError(start, fmt.Errorf("%s: %w", why, err))
			}
			return headerError(start, err)
		}
		res.Entries++
		off := tr.HeaderOffset()
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			// archive/tar ignores what it cannot parse in a global
			// header; GNU tar reports a malformed extended header.
			chain, problem, complete := tarhdr.Walk(tr.Raw(), start)
			if problem != "" {
				return entryError(hdr.Name, off, errors.New(problem))
			}
			if global, err = globalRecords(hdr, chain, complete); err != nil {
				return entryError(hdr.Name, off, err)
			}
			continue
		}
		if len(global) > 0 {
			applyGlobal(hdr, global)
		}
		if b, ok := w.(interface {
			beginEntry(sparse bool, dataOff int64)
		}); ok {
			b.beginEntry(tr.Sparse(), tr.DataOffset())
		}
		if err := addEntry(w, tr, hdr, mode, opaque, res); err != nil {
			return entryError(hdr.Name, off, err)
		}
		if !tr.Sparse() && cr.seeker == nil {
			// Data the entry did not use (a whiteout's, say): read it
			// here, so that a truncated stream is this entry's error.
			// (A sparse file's holes would be read as zeros: the tar
			// reader skips those.)
			if _, err := io.Copy(io.Discard, tr); err != nil {
				return entryError(hdr.Name, off, fmt.Errorf("data: %w", err))
			}
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

// globalRecords returns the records that apply to the entries after a
// global PAX header, hdr, in place of those of the global header before.
// chain is what the raw header blocks say, when complete.
func globalRecords(hdr *tar.Header, chain tarhdr.Chain, complete bool) (map[string]string, error) {
	recs := hdr.PAXRecords
	if complete {
		// archive/tar keeps no records of a global header one of whose
		// values does not parse; Walk has checked them.
		recs = make(map[string]string, len(chain.Records))
		for _, r := range chain.Records {
			recs[r.Key] = r.Value
		}
	}
	for k := range recs {
		if k == "size" || strings.HasPrefix(k, "GNU.sparse.") {
			// GNU tar would read every later entry's data with this
			// size; archive/tar reads each with its own.
			return nil, fmt.Errorf("global PAX header sets %q, which would change how every later entry is read: not supported", k)
		}
	}
	return recs, nil
}

// applyGlobal gives hdr the global PAX records it does not override with
// records of its own. Values were checked when the global header was read.
func applyGlobal(hdr *tar.Header, global map[string]string) {
	var recs map[string]string
	for k, v := range global {
		if _, own := hdr.PAXRecords[k]; own || v == "" {
			continue
		}
		switch {
		case k == "path":
			hdr.Name = v
		case k == "linkpath":
			hdr.Linkname = v
		case k == "uid":
			id, _ := strconv.ParseInt(v, 10, 64)
			hdr.Uid = int(id)
		case k == "gid":
			id, _ := strconv.ParseInt(v, 10, 64)
			hdr.Gid = int(id)
		case k == "mtime":
			hdr.ModTime, _ = tarhdr.ParsePAXTime(v)
		case strings.HasPrefix(k, "SCHILY.xattr."), strings.HasPrefix(k, "LIBARCHIVE.xattr."), strings.HasPrefix(k, "SCHILY.acl."):
			if recs == nil {
				recs = make(map[string]string, len(hdr.PAXRecords)+len(global))
				for k, v := range hdr.PAXRecords {
					recs[k] = v
				}
			}
			recs[k] = v
		}
	}
	if recs != nil {
		hdr.PAXRecords = recs
	}
}

// addEntry converts one tar header (and its data) into the image. Every
// rule that can refuse an entry is checked here, before the sink sees the
// entry, in every whiteout mode, so that an entry one output type or mode
// refuses is refused by all (the sinks check their own limits too):
//
//   - Names: no absolute names and no ".." components; an empty name is
//     the root, as GNU tar substitutes "." for it.
//   - Types: regular files (also contiguous and GNU sparse), directories,
//     symlinks, hard links, character and block devices and FIFOs; GNU
//     volume labels ('V') are skipped; anything else is an error.
//   - uid and gid fit in 32 bits, device numbers in Linux's 12-bit major
//     and 20-bit minor, symlink targets are 1 to 4095 bytes.
//   - A hard link's target is an earlier entry that is not a directory. A
//     link to its own name is a no-op when the name exists and an error
//     when it does not, as for GNU tar.
//   - Whiteouts (OCI image-spec, layer.md, "Whiteouts": no file or
//     directory of a layer's file system has a ".wh." name). In every mode,
//     a ".wh." name must name a file (".wh.", ".wh.." and ".wh..." do not),
//     must not be a directory or have anything below it, a hard link must
//     not point at one, and an opaque marker's directory (like a
//     whiteout's) must be a directory. WhiteoutKeep then stores the entry
//     as it is; WhiteoutOverlay and WhiteoutStrip apply it, whatever its
//     type and ignoring its data, as containerd does.
func addEntry(w tarSink, data io.Reader, hdr *tar.Header, mode WhiteoutMode, opaque map[string]bool, res *tarStats) error {
	if hdr.Typeflag == 'V' { // GNU volume header
		return nil // a volume label, not a file
	}
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if err := checkEntry(hdr); err != nil {
		return err
	}
	dir, base := path.Split(name)
	if err := checkWhiteoutNames(name, hdr); err != nil {
		return err
	}
	if mode != WhiteoutKeep && strings.HasPrefix(base, whiteoutPrefix) {
		if mode == WhiteoutStrip {
			// The entry goes, but the directories its path names exist,
			// and a whiteout still deletes what it names in this layer.
			if base != whiteoutOpaque {
				if err := w.Remove(dir + base[len(whiteoutPrefix):]); err != nil {
					return err
				}
			}
			return w.MkdirAll(dir)
		}
		if base == whiteoutOpaque {
			if err := w.MkdirAll(dir); err != nil {
				return err
			}
			opaque[path.Clean("./"+dir)] = true
			return nil
		}
		return w.Add(&erofs.Entry{
			Path: dir + base[len(whiteoutPrefix):], Mode: erofs.ModeCharDevice,
			UID: uint32(hdr.Uid), GID: uint32(hdr.Gid), ModTime: hdr.ModTime,
		}, nil)
	}
	if mode == WhiteoutStrip && hdr.Typeflag == tar.TypeChar && hdr.Devmajor == 0 && hdr.Devminor == 0 {
		return w.MkdirAll(dir) // an overlayfs whiteout already
	}
	e := &erofs.Entry{Path: name, ModTime: hdr.ModTime}
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
		return w.Add(e, data)
	case tar.TypeDir:
		e.Mode |= erofs.ModeDir
	case tar.TypeSymlink:
		e.Mode |= erofs.ModeSymlink
		e.Linkname = hdr.Linkname
	case tar.TypeLink:
		return addLink(w, name, hdr.Linkname)
	case tar.TypeChar:
		e.Mode |= erofs.ModeCharDevice
	case tar.TypeBlock:
		e.Mode |= erofs.ModeBlockDevice
	case tar.TypeFifo:
		e.Mode |= erofs.ModeFIFO
	}
	if hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock {
		e.Devmajor, e.Devminor = uint32(hdr.Devmajor), uint32(hdr.Devminor)
	}
	return w.Add(e, nil)
}

// checkEntry checks what a header says about the object it describes:
// its type, owner, device number and symlink target.
func checkEntry(hdr *tar.Header) error {
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeCont, tar.TypeGNUSparse, tar.TypeDir, tar.TypeSymlink, tar.TypeLink,
		tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
	if hdr.Uid < 0 || int64(hdr.Uid) > 1<<32-1 || hdr.Gid < 0 || int64(hdr.Gid) > 1<<32-1 {
		return fmt.Errorf("uid/gid %d/%d out of range", hdr.Uid, hdr.Gid)
	}
	switch hdr.Typeflag {
	case tar.TypeChar, tar.TypeBlock:
		if hdr.Devmajor < 0 || hdr.Devminor < 0 || hdr.Devmajor > 0xFFF || hdr.Devminor > 0xFFFFF {
			return fmt.Errorf("device number %d:%d out of range", hdr.Devmajor, hdr.Devminor)
		}
	case tar.TypeSymlink:
		if hdr.Linkname == "" || len(hdr.Linkname) > erofs.MaxLinknameLen {
			return fmt.Errorf("symlink target of %d bytes (want 1 to %d)", len(hdr.Linkname), erofs.MaxLinknameLen)
		}
	}
	return nil
}

// checkWhiteoutNames applies the whiteout naming rules (see addEntry) to an
// entry with the clean name name.
func checkWhiteoutNames(name string, hdr *tar.Header) error {
	if name == "." {
		return nil
	}
	dir, base := path.Split(name)
	if c := whiteoutComponent(dir); c != "" {
		return fmt.Errorf("%q is below %q, a whiteout name, which cannot be a directory", name, c)
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		switch base[len(whiteoutPrefix):] {
		case "", ".", "..":
			return fmt.Errorf("invalid whiteout name %q: it names no file", base)
		}
		if hdr.Typeflag == tar.TypeDir {
			return fmt.Errorf("whiteout %q is a directory", base)
		}
	}
	return nil
}

// whiteoutComponent returns the first component of the clean path p that is
// a whiteout name, or "".
func whiteoutComponent(p string) string {
	for c := range strings.SplitSeq(strings.TrimSuffix(p, "/"), "/") {
		if strings.HasPrefix(c, whiteoutPrefix) {
			return c
		}
	}
	return ""
}

// addLink adds a hard link entry name (clean) to linkname.
func addLink(w tarSink, name, linkname string) error {
	target, err := cleanName(linkname)
	if err != nil {
		return fmt.Errorf("hard link target: %w", err)
	}
	if c := whiteoutComponent(target); c != "" && !strings.HasPrefix(path.Base(name), whiteoutPrefix) {
		// A whiteout is no file to link to (a whiteout may be a link to
		// another, as aufs made them, when kept as a file).
		return fmt.Errorf("hard link to %q, a whiteout (or below one), which is not a file", linkname)
	}
	if target == name {
		// GNU tar links a name to itself when it exists (linkat fails
		// with EEXIST, which it accepts for the same name) and fails
		// when it does not.
		err := w.Link(name, name)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, fs.ErrNotExist):
			return &missingTarget{fmt.Sprintf("hard link to itself, and no earlier entry is named %q", linkname)}
		case w.MkdirAll(name) == nil:
			return nil // a directory: linkat fails with EEXIST too
		}
		return err
	}
	err = w.Link(name, target)
	if errors.Is(err, fs.ErrNotExist) {
		return &missingTarget{fmt.Sprintf("hard link to %q, which is not in the archive before it", linkname)}
	}
	return err
}

// missingTarget reports a hard link whose target is not there; it matches
// fs.ErrNotExist.
type missingTarget struct{ msg string }

func (e *missingTarget) Error() string { return e.msg }
func (e *missingTarget) Unwrap() error { return fs.ErrNotExist }

// cleanName turns a tar entry name into a clean relative path, rejecting
// names that would escape the root.
func cleanName(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("absolute path %q", name)
	}
	for rest := name; ; {
		c, after, more := strings.Cut(rest, "/")
		if c == ".." {
			return "", fmt.Errorf("path %q has a \"..\" component", name)
		}
		if !more {
			break
		}
		rest = after
	}
	// A relative path without ".." cleans the same with or without a
	// leading "./", and an empty one is ".": Clean returns a clean name
	// as it is.
	return path.Clean(name), nil
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
			name, err := url.PathUnescape(k[len("LIBARCHIVE.xattr."):]) // libarchive escapes with %XX only; "+" is "+"
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
