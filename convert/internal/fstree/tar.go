package fstree

import (
	"archive/tar"
	"bufio"
	"cmp"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Whiteouts selects how FromTar treats OCI whiteout files.
type Whiteouts int

const (
	// WhiteoutOverlay converts OCI whiteouts to overlayfs form, as
	// mkfs.erofs --aufs does: a file ".wh.NAME" becomes a character device
	// 0:0 named NAME with permission bits 0 and the header's owner and
	// mtime, replacing whatever NAME was; a file ".wh..wh..opq" is not
	// stored but gives its directory the xattr trusted.overlay.opaque="y";
	// and every directory that directly contains a 0:0 character device
	// (converted or already in the tar) gets trusted.overlay.origin="".
	WhiteoutOverlay Whiteouts = iota
	// WhiteoutKeep keeps whiteout files as the plain files they are in the
	// tar; no overlayfs xattrs are added.
	WhiteoutKeep
	// WhiteoutStrip processes whiteouts as WhiteoutOverlay does and then
	// removes them, as mkfs.erofs --ovlfs-strip does: no 0:0 character
	// devices remain (including ones stored in the tar as such), no
	// trusted.overlay.opaque xattrs remain (including ones from the tar)
	// and no trusted.overlay.origin is added. A whiteout still deletes an
	// earlier entry of the same layer with its name, and the parent
	// directories of dropped entries still exist.
	WhiteoutStrip
)

// TarOptions configures FromTar.
type TarOptions struct {
	Whiteouts Whiteouts
}

// OCI whiteout names.
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// Limits a Linux file system imposes on names and xattrs.
const (
	maxNameLen       = 255   // NAME_MAX
	maxXattrNameLen  = 255   // XATTR_NAME_MAX
	maxXattrValueLen = 65535 // an EROFS xattr entry's u16 value size
)

// implicitDirMode is the mode of directories FromTar creates implicitly.
const implicitDirMode = ModeDir | 0o755

// FromTar returns the tree that extracting the tar stream r into an empty
// directory produces. r may be gzip-compressed (detected by its magic).
//
// FromTar is an oracle for converter tests and is deliberately simple:
//
//   - Names are cleaned ("./a/" is "a"); absolute names, names escaping the
//     root with "..", and names with a component over 255 bytes are errors.
//     An entry for "." (as "tar -C dir ." writes for "./") sets the root's
//     metadata; it must be a directory.
//   - The root "." always exists. Directories that only appear as parents of
//     other entries, and the root without a "." entry, get mode 0o040755,
//     uid and gid 0, mtime 0 and no xattrs of their own, and are marked
//     Implicit. This is a deliberate choice (mkfs.erofs 1.9.3 instead
//     copies owner and mtime from the parent directory and gives an
//     implicit root mode 0777 and the build time; GNU tar uses the umask
//     and the extraction time); an explicit entry appearing later gives
//     such a directory its metadata. Compare with IgnoreImplicit where the
//     producer's choice differs.
//   - A later entry for an existing path replaces it, except that a
//     directory entry for an existing directory merges into it: mode,
//     owner and mtime come from the later entry, the xattrs are the union
//     with the later entry's values winning (as setxattr on an extracted
//     directory would do), and the children are kept. A replaced
//     directory's subtree is dropped. An entry below an existing
//     non-directory is an error.
//   - A hard link shares the inode its target path has at that point, so
//     replacing the target later does not change the link. The target must
//     exist and must not be a directory. A link to itself is ignored.
//     Header fields of hard link entries (mode, owner, xattrs) are ignored.
//   - Xattrs come from PAX records SCHILY.xattr.NAME (raw value),
//     LIBARCHIVE.xattr.URL-ENCODED-NAME (base64 value; a SCHILY record of
//     the same name wins) and the textual ACLs SCHILY.acl.access and
//     SCHILY.acl.default (as GNU tar --acls stores them; a SCHILY.xattr
//     record of the ACL's xattr wins). Names over 255 bytes and values over
//     65535 bytes are errors. Xattrs outside the namespaces user.,
//     trusted., security., system.posix_acl_access and
//     system.posix_acl_default are dropped: EROFS cannot expose them.
//   - A global PAX header applies as GNU tar 1.34 applies one: its records
//     replace those of any global header before it (one with no records
//     unsets them all), and each later entry takes its path,
//     linkpath, uid, gid, mtime and xattr records unless the entry's own
//     extended header has the same keyword. A global "size" or GNU.sparse
//     record (which would change how GNU tar reads every later entry) is
//     an error.
//   - Typeflags 0, NUL and 7 are regular files and GNU sparse files are
//     regular files with their expanded content (archive/tar expands them);
//     other unknown typeflags (volume headers, GNU dumpdirs, ...) are
//     ignored.
//   - Permission bits come from the header's mode & 0o7777 and the file
//     type from the typeflag; mtime and nanoseconds from the header (PAX
//     mtime keeps the fraction); atime and ctime are ignored. A symlink
//     target must be 1 to 4095 bytes (symlink(2) refuses an empty one and
//     one of PATH_MAX bytes or more).
//   - Whiteouts are handled according to opt.Whiteouts, but in every mode
//     a name ".wh.X" must name a file (".wh.", ".wh.." and ".wh..." are
//     errors), must not be a directory or have entries below it, and no
//     hard link may point to it: the OCI image spec reserves the prefix,
//     so extraction never makes such a file. A converted whiteout carries
//     the header's owner and mtime but no xattrs.
//
// Nlink is the number of paths to a non-directory and 2 plus the number of
// subdirectories for a directory.
func FromTar(r io.Reader, opt TarOptions) (*Tree, error) {
	br := bufio.NewReader(r)
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("fstree: gzip: %w", err)
		}
		defer zr.Close()
		r = zr
	} else {
		r = br
	}
	b := &tarBuilder{
		opt:   opt,
		paths: map[string]*tarInode{".": {mode: implicitDirMode, implicit: true}},
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("fstree: reading tar: %w", err)
		}
		if err := b.add(hdr, tr); err != nil {
			return nil, fmt.Errorf("fstree: tar entry %q: %w", hdr.Name, err)
		}
	}
	if gz, ok := r.(*gzip.Reader); ok {
		// Drain the gzip stream so that its checksum is verified.
		if _, err := io.Copy(io.Discard, gz); err != nil {
			return nil, fmt.Errorf("fstree: gzip: %w", err)
		}
	}
	return b.tree(), nil
}

// tarInode is an inode under construction; hard-linked paths share one.
type tarInode struct {
	mode               uint32
	uid, gid           uint32
	mtime              int64
	nsec               uint32
	size               int64
	digest             string
	linkname           string
	devmajor, devminor uint32
	xattrs             map[string]string
	implicit           bool // directory created as a parent only
	opaque             bool // directory had an opaque marker
}

type tarBuilder struct {
	opt    TarOptions
	paths  map[string]*tarInode
	global map[string]string // records of the latest global PAX header
}

// withGlobal returns hdr with the global PAX records it has no records of
// its own for applied.
func (b *tarBuilder) withGlobal(hdr *tar.Header) (*tar.Header, error) {
	if len(b.global) == 0 {
		return hdr, nil
	}
	h := *hdr
	h.PAXRecords = maps.Clone(hdr.PAXRecords)
	if h.PAXRecords == nil {
		h.PAXRecords = make(map[string]string)
	}
	for k, v := range b.global {
		if _, own := hdr.PAXRecords[k]; own || v == "" {
			continue
		}
		var err error
		switch {
		case k == "path":
			h.Name = v
		case k == "linkpath":
			h.Linkname = v
		case k == "uid" || k == "gid":
			var id int64
			id, err = strconv.ParseInt(v, 10, 64)
			if k == "uid" {
				h.Uid = int(id)
			} else {
				h.Gid = int(id)
			}
		case k == "mtime":
			h.ModTime, err = paxTime(v)
		default:
			h.PAXRecords[k] = v
		}
		if err != nil {
			return nil, fmt.Errorf("global PAX record %s=%q: %w", k, v, err)
		}
	}
	return &h, nil
}

// paxTime parses a PAX time: decimal seconds, optionally negative, and an
// optional decimal fraction (beyond nanoseconds ignored) of the same sign.
func paxTime(s string) (time.Time, error) {
	sec, frac, _ := strings.Cut(s, ".")
	secs, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	ns := int64(0)
	for i, scale := 0, int64(1e8); i < len(frac); i++ {
		if frac[i] < '0' || frac[i] > '9' {
			return time.Time{}, fmt.Errorf("bad fraction in %q", s)
		}
		ns += int64(frac[i]-'0') * scale
		scale /= 10
	}
	if strings.HasPrefix(sec, "-") {
		ns = -ns
	}
	return time.Unix(secs, ns), nil
}

func (b *tarBuilder) add(hdr *tar.Header, r io.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		for k := range hdr.PAXRecords {
			if k == "size" || strings.HasPrefix(k, "GNU.sparse.") {
				return fmt.Errorf("global PAX record %q is not supported", k)
			}
		}
		b.global = maps.Clone(hdr.PAXRecords)
		return nil
	case tar.TypeReg, tar.TypeCont, tar.TypeGNUSparse,
		tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock,
		tar.TypeDir, tar.TypeFifo:
	default:
		return nil // ignored, as by mkfs.erofs
	}
	hdr, err := b.withGlobal(hdr)
	if err != nil {
		return err
	}

	p, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if hdr.Uid < 0 || hdr.Uid > math.MaxUint32 || hdr.Gid < 0 || hdr.Gid > math.MaxUint32 {
		return fmt.Errorf("uid/gid %d/%d out of range", hdr.Uid, hdr.Gid)
	}
	if hdr.Typeflag == tar.TypeSymlink && (hdr.Linkname == "" || len(hdr.Linkname) >= 4096) {
		return fmt.Errorf("symlink target of %d bytes", len(hdr.Linkname))
	}

	// Names with the whiteout prefix, in every mode.
	if p != "." {
		for c := range strings.SplitSeq(parentDir(p), "/") {
			if strings.HasPrefix(c, whiteoutPrefix) {
				return fmt.Errorf("entry below the whiteout name %q", c)
			}
		}
		if name := baseName(p); strings.HasPrefix(name, whiteoutPrefix) {
			switch name[len(whiteoutPrefix):] {
			case "", ".", "..":
				return fmt.Errorf("whiteout %q names no file", name)
			}
			if hdr.Typeflag == tar.TypeDir {
				return fmt.Errorf("whiteout %q is a directory", name)
			}
		}
	}
	if hdr.Typeflag == tar.TypeLink {
		for c := range strings.SplitSeq(path.Clean(hdr.Linkname), "/") {
			if strings.HasPrefix(c, whiteoutPrefix) && !strings.HasPrefix(baseName(p), whiteoutPrefix) {
				return fmt.Errorf("hard link to the whiteout name %q", c)
			}
		}
	}

	whiteout, opaque := false, false
	if b.opt.Whiteouts != WhiteoutKeep && p != "." {
		switch name := baseName(p); {
		case name == opaqueMarker:
			opaque = true
		case strings.HasPrefix(name, whiteoutPrefix):
			whiteout = true
			p = joinPath(parentDir(p), name[len(whiteoutPrefix):])
		}
	}

	if opaque {
		dir := parentDir(p)
		if err := b.mkdirAll(dir); err != nil {
			return err
		}
		b.paths[dir].opaque = true
		return nil
	}

	if hdr.Typeflag == tar.TypeLink && !whiteout {
		// A link to its own name: GNU tar accepts it (linkat fails with
		// EEXIST for the same name) when the name exists, whatever it is.
		if target, err := cleanName(hdr.Linkname); err == nil && target == p {
			if _, ok := b.paths[p]; !ok {
				return fmt.Errorf("hard link to itself, %q, which does not exist", hdr.Linkname)
			}
			return nil
		}
	}
	if p == "." {
		if hdr.Typeflag != tar.TypeDir {
			return errors.New("root entry is not a directory")
		}
	} else if err := b.mkdirAll(parentDir(p)); err != nil {
		return err
	}

	if hdr.Typeflag == tar.TypeLink && !whiteout {
		target, err := cleanName(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hard link target: %w", err)
		}
		if target == p {
			if _, ok := b.paths[p]; !ok {
				return fmt.Errorf("hard link to itself, %q, which does not exist", hdr.Linkname)
			}
			return nil
		}
		ino, ok := b.paths[target]
		if !ok {
			return fmt.Errorf("hard link target %q does not exist", hdr.Linkname)
		}
		if ino.mode&ModeTypeMask == ModeDir {
			return fmt.Errorf("hard link target %q is a directory", hdr.Linkname)
		}
		b.remove(p)
		b.paths[p] = ino
		return nil
	}

	x, err := tarXattrs(hdr.PAXRecords)
	if err != nil {
		return err
	}
	ino := &tarInode{
		mode:  uint32(hdr.Mode) & ModePerm,
		uid:   uint32(hdr.Uid),
		gid:   uint32(hdr.Gid),
		mtime: hdr.ModTime.Unix(),
		nsec:  uint32(hdr.ModTime.Nanosecond()),
	}
	if whiteout {
		ino.mode = ModeChar
		b.remove(p)
		b.paths[p] = ino
		return nil
	}
	ino.xattrs = x
	switch hdr.Typeflag {
	case tar.TypeDir:
		ino.mode |= ModeDir
		if old, ok := b.paths[p]; ok && old.mode&ModeTypeMask == ModeDir {
			old.mode, old.uid, old.gid = ino.mode, ino.uid, ino.gid
			old.mtime, old.nsec = ino.mtime, ino.nsec
			old.implicit = false
			if len(x) > 0 {
				if old.xattrs == nil {
					old.xattrs = make(map[string]string)
				}
				maps.Copy(old.xattrs, x)
			}
			return nil
		}
	case tar.TypeSymlink:
		ino.mode |= ModeSymlink
		ino.linkname = hdr.Linkname
		ino.size = int64(len(hdr.Linkname))
	case tar.TypeChar, tar.TypeBlock:
		if hdr.Typeflag == tar.TypeChar {
			ino.mode |= ModeChar
		} else {
			ino.mode |= ModeBlock
		}
		if hdr.Devmajor < 0 || hdr.Devmajor > math.MaxUint32 || hdr.Devminor < 0 || hdr.Devminor > math.MaxUint32 {
			return fmt.Errorf("device %d:%d out of range", hdr.Devmajor, hdr.Devminor)
		}
		ino.devmajor, ino.devminor = uint32(hdr.Devmajor), uint32(hdr.Devminor)
	case tar.TypeFifo:
		ino.mode |= ModeFIFO
	default: // regular
		ino.mode |= ModeReg
		h := sha256.New()
		n, err := io.Copy(h, r)
		if err != nil {
			return fmt.Errorf("reading content: %w", err)
		}
		ino.size = n
		ino.digest = hex.EncodeToString(h.Sum(nil))
	}
	b.remove(p)
	b.paths[p] = ino
	return nil
}

// mkdirAll makes sure dir and its parents exist as directories, creating
// missing ones as implicit directories.
func (b *tarBuilder) mkdirAll(dir string) error {
	if dir == "." {
		return nil
	}
	if ino, ok := b.paths[dir]; ok {
		if ino.mode&ModeTypeMask != ModeDir {
			return fmt.Errorf("parent %q is not a directory", dir)
		}
		return nil
	}
	if err := b.mkdirAll(parentDir(dir)); err != nil {
		return err
	}
	b.paths[dir] = &tarInode{mode: implicitDirMode, implicit: true}
	return nil
}

// remove deletes p and, if it is a directory, everything below it.
func (b *tarBuilder) remove(p string) {
	ino, ok := b.paths[p]
	if !ok {
		return
	}
	delete(b.paths, p)
	if ino.mode&ModeTypeMask == ModeDir {
		for q := range b.paths {
			if isUnder(q, p) {
				delete(b.paths, q)
			}
		}
	}
}

func (b *tarBuilder) tree() *Tree {
	t := &Tree{Nodes: make(map[string]*Node, len(b.paths))}
	for p, ino := range b.paths {
		isWhiteout := ino.mode&ModeTypeMask == ModeChar && ino.devmajor == 0 && ino.devminor == 0
		if b.opt.Whiteouts == WhiteoutStrip && isWhiteout {
			continue
		}
		n := &Node{
			Path:      p,
			Mode:      ino.mode,
			UID:       ino.uid,
			GID:       ino.gid,
			Mtime:     ino.mtime,
			MtimeNsec: ino.nsec,
			Size:      ino.size,
			Digest:    ino.digest,
			Linkname:  ino.linkname,
			Devmajor:  ino.devmajor,
			Devminor:  ino.devminor,
			Implicit:  ino.implicit,
		}
		if len(ino.xattrs) > 0 {
			n.Xattrs = maps.Clone(ino.xattrs)
		}
		switch b.opt.Whiteouts {
		case WhiteoutOverlay:
			if ino.opaque {
				setXattr(n, XattrOpaque, "y")
			}
		case WhiteoutStrip:
			delete(n.Xattrs, XattrOpaque)
			if len(n.Xattrs) == 0 {
				n.Xattrs = nil
			}
		}
		t.Nodes[p] = n
	}
	if b.opt.Whiteouts == WhiteoutOverlay {
		for p, n := range t.Nodes {
			if p != "." && n.IsWhiteout() {
				setXattr(t.Nodes[parentDir(p)], XattrOrigin, "")
			}
		}
	}
	assignLinks(t, func(p string, _ *Node) (*tarInode, bool) { return b.paths[p], true })
	countLinks(t)
	return t
}

func setXattr(n *Node, name, value string) {
	if n.Xattrs == nil {
		n.Xattrs = make(map[string]string)
	}
	n.Xattrs[name] = value
}

// cleanName turns a tar entry name into a cleaned relative path.
func cleanName(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("absolute name %q", name)
	}
	if name == "" {
		return ".", nil
	}
	p := path.Clean(name)
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("name %q escapes the root", name)
	}
	for c := range strings.SplitSeq(p, "/") {
		if len(c) > maxNameLen {
			return "", fmt.Errorf("name component of %d bytes (max %d)", len(c), maxNameLen)
		}
	}
	return p, nil
}

// tarXattrs extracts the xattrs from an entry's PAX records.
func tarXattrs(records map[string]string) (map[string]string, error) {
	var x map[string]string
	for k, v := range records {
		var name, value string
		switch {
		case strings.HasPrefix(k, "SCHILY.xattr."):
			name, value = strings.TrimPrefix(k, "SCHILY.xattr."), v
		case strings.HasPrefix(k, "LIBARCHIVE.xattr."):
			var err error
			name, err = url.PathUnescape(strings.TrimPrefix(k, "LIBARCHIVE.xattr."))
			if err != nil {
				return nil, fmt.Errorf("PAX record %q: %w", k, err)
			}
			if _, ok := records["SCHILY.xattr."+name]; ok {
				continue
			}
			value, err = decodeBase64(v)
			if err != nil {
				return nil, fmt.Errorf("PAX record %q: %w", k, err)
			}
		case k == "SCHILY.acl.access" || k == "SCHILY.acl.default":
			name = "system.posix_acl_" + strings.TrimPrefix(k, "SCHILY.acl.")
			if _, ok := records["SCHILY.xattr."+name]; ok {
				continue
			}
			var err error
			if value, err = textACL(v); err != nil {
				return nil, fmt.Errorf("PAX record %q: %w", k, err)
			}
			if value == "" {
				continue
			}
		default:
			continue
		}
		switch {
		case len(name) > maxXattrNameLen:
			return nil, fmt.Errorf("xattr name of %d bytes (max %d)", len(name), maxXattrNameLen)
		case len(value) > maxXattrValueLen:
			return nil, fmt.Errorf("xattr %q: value of %d bytes (max %d)", name, len(value), maxXattrValueLen)
		}
		if !exposedXattr(name) {
			continue
		}
		if x == nil {
			x = make(map[string]string)
		}
		x[name] = value
	}
	return x, nil
}

// exposedXattr reports whether Linux can read xattr name back from an EROFS
// image: only the namespaces EROFS has name prefixes for are visible.
func exposedXattr(name string) bool {
	for _, prefix := range []string{"user.", "trusted.", "security."} {
		if strings.HasPrefix(name, prefix) && len(name) > len(prefix) {
			return true
		}
	}
	return name == "system.posix_acl_access" || name == "system.posix_acl_default"
}

func decodeBase64(s string) (string, error) {
	enc := base64.StdEncoding
	if len(s)%4 != 0 {
		enc = base64.RawStdEncoding // libarchive writes no padding
	}
	v, err := enc.DecodeString(s)
	if err != nil {
		return "", err
	}
	return string(v), nil
}

// textACL turns a textual POSIX ACL, as GNU tar and star store one
// ("user::rw-,user:alice:r--:1000,group::r--,mask::r--,other::---", also
// newline-separated; a named entry's id is its qualifier when numeric,
// else star's fourth field), into the xattr value the kernel's
// posix_acl_to_xattr gives: version 2, then entries of tag, permissions
// and id (0xffffffff when unnamed), little-endian, ordered by tag then id.
// An ACL of no entries is "".
func textACL(text string) (string, error) {
	type ent struct {
		tag, perm uint16
		id        uint32
	}
	tags := map[string][2]uint16{ // unnamed, named
		"user": {0x01, 0x02}, "u": {0x01, 0x02},
		"group": {0x04, 0x08}, "g": {0x04, 0x08},
		"mask": {0x10, 0}, "m": {0x10, 0},
		"other": {0x20, 0}, "o": {0x20, 0},
	}
	var ents []ent
	for _, line := range strings.Split(strings.ReplaceAll(text, "\n", ","), ",") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) != 3 && len(f) != 4 {
			return "", fmt.Errorf("ACL entry %q", line)
		}
		t, ok := tags[f[0]]
		if !ok {
			return "", fmt.Errorf("ACL entry %q: tag", line)
		}
		e := ent{tag: t[0], id: 0xffffffff}
		if f[1] != "" {
			if t[1] == 0 {
				return "", fmt.Errorf("ACL entry %q: qualifier", line)
			}
			e.tag = t[1]
			q := f[1]
			if len(f) == 4 {
				q = f[3]
			}
			id, err := strconv.ParseUint(q, 10, 32)
			if err != nil {
				return "", fmt.Errorf("ACL entry %q: id", line)
			}
			e.id = uint32(id)
		}
		for _, c := range f[2] {
			switch c {
			case 'r':
				e.perm |= 4
			case 'w':
				e.perm |= 2
			case 'x':
				e.perm |= 1
			case '-':
			default:
				return "", fmt.Errorf("ACL entry %q: permissions", line)
			}
		}
		ents = append(ents, e)
	}
	if len(ents) == 0 {
		return "", nil
	}
	slices.SortStableFunc(ents, func(a, b ent) int {
		if a.tag != b.tag {
			return int(a.tag) - int(b.tag)
		}
		return cmp.Compare(a.id, b.id)
	})
	out := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range ents {
		out = binary.LittleEndian.AppendUint16(out, e.tag)
		out = binary.LittleEndian.AppendUint16(out, e.perm)
		out = binary.LittleEndian.AppendUint32(out, e.id)
	}
	return string(out), nil
}
