package erofs

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"math"
	"slices"
	"strings"
	"syscall"
	"unsafe"
)

// MaxLinknameLen is the longest symlink target (Entry.Linkname) the
// Writer and Tree accept: the longest Linux stores, PATH_MAX (4096) bytes
// including the terminating NUL (symlink(2) fails with ENAMETOOLONG beyond
// it).
const MaxLinknameLen = 4095

// namespace is the tree of entries an image is built from: inodes, the
// names that refer to them (hard links share an inode), their attributes,
// xattrs and symlink targets, and the rules every entry is checked
// against. The Writer embeds one and adds the data layout of each inode;
// Tree wraps one for builders of other formats (the Nydus builder keeps
// its chunk lists beside it). The store is described in tree.go.
//
// The tree stores what it is told: a whiteout is the character device 0:0
// it is added as, an opaque directory the xattr set on it. A later entry
// replaces an earlier one at the same path, as extracting the entries in
// order would do, except that a directory added over a directory updates
// its metadata (merging xattrs, the later values winning, as mkfs.erofs
// and containerd's layer extraction do) and keeps its children. Missing
// parents are created as implied directories: mode 0755, owned by root,
// with the build time as mtime.
//
// Errors carry the path they are about but no package prefix; the
// exported methods of the Writer and of Tree add theirs.
type namespace struct {
	buildTime int64      // mtime of implied directories and of entries without one
	times     TimePolicy // what becomes of the entries' mtimes

	inodes arena[inode] // the root directory is inode rootID
	dents  arena[dentry]
	names  nameStore
	index  dirIndex
	xattrs arena[xattrSet]   // by inode.xattr-1
	xnames map[string]string // xattr names, stored once
	links  arena[string]     // symlink targets, by inode.data

	// lastPath and lastDir remember the directory the last walk ended
	// at, so that a run of entries in one directory does not walk from
	// the root for each. Replacing or removing the name of a directory
	// forgets it (lastDir is noID).
	lastPath string
	lastDir  uint32
}

// init makes an empty tree: a root directory with the build time as its
// mtime.
func (t *namespace) init(buildTime int64) {
	*t = namespace{buildTime: buildTime, lastDir: noID}
	t.index.seed = maphash.MakeSeed()
	t.xnames = map[string]string{}
	_, root, _ := t.inodes.add()
	*root = t.implicitDir()
}

// implicitDir makes a directory for a path whose parent never appeared as
// an entry: mode 0755, owned by root, with the build time as mtime.
func (t *namespace) implicitDir() inode {
	return inode{mode: ModeDir | 0o755, mtime: t.buildTime, u: noID}
}

// child returns the inode named name in directory dir, or noID, with the
// dentry that holds the name (noID if there is none) and the name's tag.
func (t *namespace) child(dir uint32, name string) (ino, de, tag uint32) {
	de, tag = t.find(dir, name)
	if de == noID {
		return noID, noID, tag
	}
	return t.dents.at(de).ino, de, tag
}

// link makes name in directory dir refer to inode ino (noID to remove the
// name).
func (t *namespace) link(dir uint32, name string, de, tag, ino uint32) error {
	if de != noID {
		d := t.dents.at(de)
		if d.ino != noID && t.inodes.at(d.ino).isDir() {
			t.lastDir = noID // it may be the one remembered, or above it
		}
		d.ino = ino
		return nil
	}
	if ino == noID {
		return nil
	}
	return t.insert(dir, name, tag, ino)
}

// walkDirs walks the directories named by path p (already checked) from
// the root, creating missing directories, and returns the last. A
// non-directory in the way is an error, as it is when extracting.
func (t *namespace) walkDirs(p string) (uint32, error) {
	if t.lastDir != noID && p == t.lastPath {
		return t.lastDir, nil
	}
	dir := uint32(rootID)
	for c, i := nextName(p, 0); c != ""; c, i = nextName(p, i) {
		child, de, tag := t.child(dir, c)
		if child == noID {
			id, n, err := t.inodes.add()
			if err != nil {
				return 0, err
			}
			*n = t.implicitDir()
			if err := t.link(dir, c, de, tag, id); err != nil {
				return 0, err
			}
			child = id
		} else if !t.inodes.at(child).isDir() {
			return 0, fmt.Errorf("%q is not a directory: %w", cleanPrefix(p, i), syscall.ENOTDIR)
		}
		dir = child
	}
	if dir != rootID {
		t.lastPath, t.lastDir = p, dir
	}
	return dir, nil
}

// lookup finds the object at path p.
func (t *namespace) lookup(p string) (uint32, error) {
	if err := checkPath(p); err != nil {
		return 0, err
	}
	n := uint32(rootID)
	for c, i := nextName(p, 0); c != ""; c, i = nextName(p, i) {
		if !t.inodes.at(n).isDir() {
			return 0, fmt.Errorf("%q: %w", p, fs.ErrNotExist)
		}
		if n, _, _ = t.child(n, c); n == noID {
			return 0, fmt.Errorf("%q: %w", p, fs.ErrNotExist)
		}
	}
	return n, nil
}

// add adds the object e describes and returns its new inode, or noID when
// e is a directory that was merged into the one at its path (or into the
// root). A regular file's data is for the caller to store.
func (t *namespace) add(e *Entry) (uint32, error) {
	if err := checkPath(e.Path); err != nil {
		return noID, err
	}
	var n inode
	xs, err := t.newInode(e, &n)
	if err != nil {
		return noID, fmt.Errorf("%s: %w", e.Path, err)
	}
	dirPath, name := splitLast(e.Path)
	if name == "" {
		if !n.isDir() {
			return noID, fmt.Errorf("%q: the root must be a directory", e.Path)
		}
		t.updateDir(t.inodes.at(rootID), &n, xs)
		return noID, nil
	}
	dir, err := t.walkDirs(dirPath)
	if err != nil {
		return noID, fmt.Errorf("%s: %w", e.Path, err)
	}
	old, de, tag := t.child(dir, name)
	if old != noID {
		if o := t.inodes.at(old); o.isDir() && n.isDir() {
			t.updateDir(o, &n, xs)
			return noID, nil
		}
	}
	id, p, err := t.inodes.add()
	if err != nil {
		return noID, fmt.Errorf("%s: %w", e.Path, err)
	}
	*p = n
	if len(xs) > 0 {
		for i, x := range xs {
			xs[i] = xattr{t.xattrName(x.name), strings.Clone(x.value)}
		}
		t.newXattrSet(p, xs)
	}
	if p.mode&ModeTypeMask == ModeSymlink {
		i, link, err := t.links.add()
		if err != nil {
			return noID, fmt.Errorf("%s: %w", e.Path, err)
		}
		*link = strings.Clone(e.Linkname)
		p.data = int64(i)
	}
	if err := t.link(dir, name, de, tag, id); err != nil {
		return noID, fmt.Errorf("%s: %w", e.Path, err)
	}
	return id, nil
}

// updateDir copies a repeated directory entry's metadata onto the existing
// directory, merging xattrs, the later values winning.
func (t *namespace) updateDir(dst, src *inode, xs []xattr) {
	dst.mode, dst.uid, dst.gid = src.mode, src.uid, src.gid
	dst.mtime, dst.nsec = src.mtime, src.nsec
	for _, x := range xs {
		t.setXattr(dst, x.name, x.value)
	}
}

// newInode validates e and fills n from its metadata. It returns e's
// xattrs, sorted, for the caller to store.
func (t *namespace) newInode(e *Entry, n *inode) ([]xattr, error) {
	*n = inode{uid: e.UID, gid: e.GID, u: noID}
	if e.ModTime.IsZero() {
		n.mtime = t.buildTime
	} else {
		n.mtime, n.nsec = e.ModTime.Unix(), uint32(e.ModTime.Nanosecond())
	}
	if t.times == TimesFixed || t.times == TimesClamp && n.mtime >= t.buildTime {
		n.mtime, n.nsec = t.buildTime, 0
	}
	switch e.Mode & ModeTypeMask {
	case ModeRegular:
		if e.Size < 0 {
			return nil, fmt.Errorf("negative size %d", e.Size)
		}
		n.size = e.Size
	case ModeDir, ModeFIFO, ModeSocket:
	case ModeSymlink:
		if e.Linkname == "" || len(e.Linkname) > MaxLinknameLen {
			return nil, fmt.Errorf("symlink target of %d bytes (want 1 to %d)", len(e.Linkname), MaxLinknameLen)
		}
		n.size = int64(len(e.Linkname))
	case ModeCharDevice, ModeBlockDevice:
		if e.Devmajor > 0xFFF || e.Devminor > 0xFFFFF {
			return nil, fmt.Errorf("device number %d:%d out of range", e.Devmajor, e.Devminor)
		}
		n.u = EncodeDev(e.Devmajor, e.Devminor)
	default:
		return nil, fmt.Errorf("unsupported file mode %#o", e.Mode)
	}
	if e.Mode&^(ModeTypeMask|ModePermMask) != 0 {
		return nil, fmt.Errorf("invalid mode bits %#o", e.Mode)
	}
	n.mode = uint16(e.Mode)
	var xs []xattr
	if len(e.Xattrs) > 0 {
		xs = make([]xattr, 0, len(e.Xattrs))
		for name, value := range e.Xattrs {
			if err := CheckXattr(name, len(value)); err != nil {
				return nil, err
			}
			xs = append(xs, xattr{name, value})
		}
		if size := inlineIbodySize(xs); (size-xattrIbodyHeaderSize)/4+1 > math.MaxUint16 {
			return nil, fmt.Errorf("xattrs take %d bytes, more than an inode can hold", size)
		}
		sortXattrs(xs)
	}
	return xs, nil
}

func sortXattrs(xs []xattr) {
	slices.SortFunc(xs, func(a, b xattr) int { return strings.Compare(a.key(), b.key()) })
}

// hardLink makes name another name of the object at target, which must
// exist and must not be a directory. An existing object at name is
// replaced.
func (t *namespace) hardLink(name, target string) error {
	if err := checkPath(name); err != nil {
		return err
	}
	id, err := t.lookup(target)
	if err != nil {
		return fmt.Errorf("hard link %q: %w", name, err)
	}
	if t.inodes.at(id).isDir() {
		return fmt.Errorf("hard link %q: target %q is a directory", name, target)
	}
	dirPath, last := splitLast(name)
	if last == "" {
		return fmt.Errorf("hard link %q: cannot replace the root", name)
	}
	dir, err := t.walkDirs(dirPath)
	if err != nil {
		return fmt.Errorf("hard link %q: %w", name, err)
	}
	_, de, tag := t.child(dir, last)
	if err := t.link(dir, last, de, tag, id); err != nil {
		return fmt.Errorf("hard link %q: %w", name, err)
	}
	t.inodes.at(id).flags |= flagLinked
	return nil
}

// remove deletes the object at path p (with everything below it, for a
// directory). It is not an error if nothing is there.
func (t *namespace) remove(p string) error {
	if err := checkPath(p); err != nil {
		return err
	}
	dirPath, name := splitLast(p)
	if name == "" {
		return errors.New("cannot remove the root")
	}
	n := uint32(rootID)
	for c, i := nextName(dirPath, 0); c != ""; c, i = nextName(dirPath, i) {
		if n, _, _ = t.child(n, c); n == noID || !t.inodes.at(n).isDir() {
			return nil
		}
	}
	if _, de, _ := t.child(n, name); de != noID {
		// Removing cannot fail: the name has its dentry.
		_ = t.link(n, name, de, 0, noID)
	}
	return nil
}

// mkdirAll makes sure a directory exists at path p, creating it and its
// parents as implied directories where they are missing.
func (t *namespace) mkdirAll(p string) error {
	if err := checkPath(p); err != nil {
		return err
	}
	if _, err := t.walkDirs(p); err != nil {
		return fmt.Errorf("MkdirAll %q: %w", p, err)
	}
	return nil
}

// setDirXattr sets an extended attribute on the directory at path p,
// creating the directory (and its parents) if it does not exist.
func (t *namespace) setDirXattr(p, name, value string) error {
	if err := CheckXattr(name, len(value)); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if err := checkPath(p); err != nil {
		return err
	}
	id := uint32(rootID)
	if dirPath, last := splitLast(p); last != "" {
		dir, err := t.walkDirs(dirPath)
		if err != nil {
			return fmt.Errorf("SetXattr %q: %w", p, err)
		}
		var de, tag uint32
		if id, de, tag = t.child(dir, last); id == noID {
			var n *inode
			if id, n, err = t.inodes.add(); err != nil {
				return fmt.Errorf("SetXattr %q: %w", p, err)
			}
			*n = t.implicitDir()
			if err := t.link(dir, last, de, tag, id); err != nil {
				return fmt.Errorf("SetXattr %q: %w", p, err)
			}
		}
	}
	n := t.inodes.at(id)
	if !n.isDir() {
		return fmt.Errorf("SetXattr %q: %w", p, syscall.ENOTDIR)
	}
	t.setXattr(n, name, value)
	return nil
}

// setXattr sets an xattr of n, keeping its list sorted. Like add, it
// stores copies of the strings, which hold on to nothing else (archive/tar
// returns PAX values that share the memory of their whole header, path
// included), and each name once.
func (t *namespace) setXattr(n *inode, name, value string) {
	if n.xattr == 0 {
		t.newXattrSet(n, nil)
	}
	s := t.xattrs.at(n.xattr - 1)
	value = strings.Clone(value)
	for i := range s.list {
		if s.list[i].name == name {
			s.list[i].value = value
			sortXattrs(s.list)
			return
		}
	}
	s.list = append(s.list, xattr{t.xattrName(name), value})
	sortXattrs(s.list)
}

// newXattrSet gives n, which has none, the xattrs xs.
func (t *namespace) newXattrSet(n *inode, xs []xattr) {
	// This cannot fail: there is at most one set per inode, and the
	// inodes' arena has the same limit.
	i, s, _ := t.xattrs.add()
	s.list = xs
	n.xattr = i + 1
}

// xattrName returns the tree's copy of an xattr name.
func (t *namespace) xattrName(name string) string {
	stored, ok := t.xnames[name]
	if !ok {
		stored = strings.Clone(name)
		t.xnames[stored] = stored
	}
	return stored
}

// xattrsOf returns n's xattrs, sorted by key.
func (t *namespace) xattrsOf(n *inode) []xattr {
	if n.xattr == 0 {
		return nil
	}
	return t.xattrs.at(n.xattr - 1).list
}

// group lists the live directory entries by directory (a counting sort by
// directory inode) and sorts each directory's entries by name, bytewise:
// directory d's entries are ents[start[d]:start[d+1]]. The name index is
// no longer needed and is dropped first; nothing can be added after.
func (t *namespace) group() (start, ents []uint32) {
	t.index = dirIndex{}
	t.lastDir = noID
	start = make([]uint32, t.inodes.n+1)
	live := 0
	for c, chunk := range t.dents.chunks {
		for i := range chunk[:min(arenaChunk, t.dents.n-c*arenaChunk)] {
			if d := &chunk[i]; d.ino != noID {
				start[d.dir+1]++
				live++
			}
		}
	}
	for d := 1; d < len(start); d++ {
		start[d] += start[d-1]
	}
	// Fill each directory's range, using start[d] as its cursor; the
	// cursors end where the next range starts, so shift them back.
	ents = make([]uint32, live)
	for c, chunk := range t.dents.chunks {
		for i := range chunk[:min(arenaChunk, t.dents.n-c*arenaChunk)] {
			if d := &chunk[i]; d.ino != noID {
				ents[start[d.dir]] = uint32(c*arenaChunk + i)
				start[d.dir]++
			}
		}
	}
	copy(start[1:], start[:len(start)-1])
	start[0] = 0
	for d := 0; d+1 < len(start); d++ {
		if seg := ents[start[d]:start[d+1]]; len(seg) > 1 {
			slices.SortFunc(seg, func(a, b uint32) int {
				return bytes.Compare(t.names.get(t.dents.at(a).name), t.names.get(t.dents.at(b).name))
			})
		}
	}
	return start, ents
}

// SplitPath cleans an entry path into the names Add uses: empty and "."
// components are dropped; absolute paths, ".." components, names over 255
// bytes and NUL bytes are errors.
func SplitPath(p string) ([]string, error) {
	if err := checkPath(p); err != nil {
		return nil, err
	}
	var parts []string
	for c, i := nextName(p, 0); c != ""; c, i = nextName(p, i) {
		parts = append(parts, c)
	}
	return parts, nil
}

// checkPath reports the error SplitPath would return for p, if any.
func checkPath(p string) error {
	if strings.HasPrefix(p, "/") {
		return fmt.Errorf("absolute path %q", p)
	}
	for rest := p; ; {
		c, tail, more := strings.Cut(rest, "/")
		switch c {
		case "", ".":
		case "..":
			return fmt.Errorf("path %q has a \"..\" component", p)
		default:
			if len(c) > maxNameLen {
				return fmt.Errorf("path %q: name %.20q... is %d bytes, over the limit of %d", p, c, len(c), maxNameLen)
			}
			if strings.IndexByte(c, 0) >= 0 {
				return fmt.Errorf("path %q contains a NUL byte", p)
			}
		}
		if !more {
			return nil
		}
		rest = tail
	}
}

// nextName returns the first name of p at or after byte i, skipping empty
// and "." components, and the byte after it; "" when there is none.
func nextName(p string, i int) (string, int) {
	for i < len(p) {
		c, _, _ := strings.Cut(p[i:], "/")
		i += len(c) + 1
		if c != "" && c != "." {
			return c, min(i, len(p))
		}
	}
	return "", len(p)
}

// splitLast splits a path into the part before its last name and that
// name, "" for a path naming the root.
func splitLast(p string) (dir, name string) {
	for end := len(p); end > 0; {
		k := strings.LastIndexByte(p[:end], '/')
		if c := p[k+1 : end]; c != "" && c != "." {
			return p[:k+1], c
		}
		if k < 0 {
			break
		}
		end = k
	}
	return "", ""
}

// cleanPrefix joins the names of p[:end] with slashes, as SplitPath would.
func cleanPrefix(p string, end int) string {
	var b strings.Builder
	for c, i := nextName(p[:end], 0); c != ""; c, i = nextName(p[:end], i) {
		if b.Len() > 0 {
			b.WriteByte('/')
		}
		b.WriteString(c)
	}
	return b.String()
}

// Tree is the namespace of a file system image built from entries, for
// builders of formats other than the Writer's (the Nydus builder in
// convert): the entries, hard links, whiteouts, opaque directories,
// implied parents and the rules for names and xattrs, as the Writer keeps
// and applies them. Its methods have the semantics of the Writer's methods
// of the same names. An inode is named by its id, from 0 (TreeRoot) up;
// a builder keeps what it needs besides (the data of regular files) in
// its own tables, indexed by id or by SetPayload's value.
type Tree struct {
	ns namespace
	// sorted is what Sort made: directory d's entries are
	// ents[start[d]:start[d+1]].
	start, ents []uint32
}

// TreeRoot is the id of a Tree's root directory.
const TreeRoot uint32 = rootID

// NewTree returns an empty tree: a root directory. buildTime is the mtime
// of implied directories and of entries with a zero ModTime.
func NewTree(buildTime int64) *Tree {
	t := &Tree{}
	t.ns.init(buildTime)
	return t
}

// Add adds the object e describes and returns its inode's id, or ok false
// when e is a directory merged into the directory already at its path.
// The data of a regular file is for the caller to store.
func (t *Tree) Add(e *Entry) (id uint32, ok bool, err error) {
	if id, err = t.ns.add(e); err != nil || id == noID {
		return 0, false, err
	}
	return id, true, nil
}

// Link makes name another name of the object at target, which must exist
// and must not be a directory. An error matching fs.ErrNotExist means
// target is missing.
func (t *Tree) Link(name, target string) error { return t.ns.hardLink(name, target) }

// Remove deletes p and everything below it, if it exists.
func (t *Tree) Remove(p string) error { return t.ns.remove(p) }

// MkdirAll creates p and its parents as implied directories where they
// are missing.
func (t *Tree) MkdirAll(p string) error { return t.ns.mkdirAll(p) }

// SetXattr sets an xattr on the directory p, creating it if missing; an
// error matching syscall.ENOTDIR means p is not a directory.
func (t *Tree) SetXattr(p, name, value string) error { return t.ns.setDirXattr(p, name, value) }

// Stat returns the attributes of inode id: Mode, UID, GID, Size (of a
// regular file or a symlink's target), Mtime, MtimeNsec, and Devmajor and
// Devminor of a device. The other fields are zero.
func (t *Tree) Stat(id uint32) Stat {
	n := t.ns.inodes.at(id)
	st := Stat{Mode: uint32(n.mode), UID: n.uid, GID: n.gid, Size: n.size, Mtime: n.mtime, MtimeNsec: n.nsec}
	if m := n.mode & ModeTypeMask; m == ModeCharDevice || m == ModeBlockDevice {
		st.Devmajor, st.Devminor = DecodeDev(n.u)
	}
	return st
}

// NumXattrs returns the number of inode id's xattrs.
func (t *Tree) NumXattrs(id uint32) int { return len(t.ns.xattrsOf(t.ns.inodes.at(id))) }

// Xattr returns inode id's xattr i, in the order of their names (and
// values), from 0 to NumXattrs-1.
func (t *Tree) Xattr(id uint32, i int) (name, value string) {
	x := t.ns.xattrsOf(t.ns.inodes.at(id))[i]
	return x.name, x.value
}

// Linkname returns the target of the symlink id.
func (t *Tree) Linkname(id uint32) string {
	return *t.ns.links.at(uint32(t.ns.inodes.at(id).data))
}

// Linked reports whether inode id has been the target of Link.
func (t *Tree) Linked(id uint32) bool { return t.ns.inodes.at(id).flags&flagLinked != 0 }

// SetPayload stores v with the regular file id, for its builder.
func (t *Tree) SetPayload(id uint32, v int64) { t.ns.inodes.at(id).data = v }

// Payload returns what SetPayload stored with the regular file id, 0 if
// nothing.
func (t *Tree) Payload(id uint32) int64 { return t.ns.inodes.at(id).data }

// Sort lists each directory's entries in name order (bytewise) for
// Entries. It drops the name index: the tree cannot change after.
func (t *Tree) Sort() { t.start, t.ents = t.ns.group() }

// Entries returns the live entries of directory dir, in name order, for
// Entry. Sort must have been called.
func (t *Tree) Entries(dir uint32) []uint32 { return t.ents[t.start[dir]:t.start[dir+1]] }

// Entry returns the name and the inode of entry de. The name shares the
// tree's store of names, whose bytes are never changed once written, so
// that naming every entry of a tree costs no copy.
func (t *Tree) Entry(de uint32) (name string, id uint32) {
	d := t.ns.dents.at(de)
	b := t.ns.names.get(d.name)
	return unsafe.String(unsafe.SliceData(b), len(b)), d.ino
}

// IsDir reports whether inode id is a directory.
func (t *Tree) IsDir(id uint32) bool { return t.ns.inodes.at(id).isDir() }
