// Package fstree models a file system tree as a flat map of paths to
// metadata, builds such trees from independent sources (a tar archive, a
// directory on disk, any io/fs.FS) and compares them.
//
// It is test support for the converters: FromTar is an oracle, a deliberately
// simple and independent description of what extracting an OCI layer tar into
// an empty directory produces, and FromDir/FromFS describe what a mounted or
// parsed EROFS image actually contains. Compare reports every difference.
//
// All paths are slash-separated and relative to the tree root, which is ".".
// Paths are byte strings: they need not be valid UTF-8.
package fstree

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Unix file type bits of Node.Mode, as in <sys/stat.h>.
const (
	ModeTypeMask uint32 = 0o170000 // S_IFMT
	ModeSocket   uint32 = 0o140000 // S_IFSOCK
	ModeSymlink  uint32 = 0o120000 // S_IFLNK
	ModeReg      uint32 = 0o100000 // S_IFREG
	ModeBlock    uint32 = 0o060000 // S_IFBLK
	ModeDir      uint32 = 0o040000 // S_IFDIR
	ModeChar     uint32 = 0o020000 // S_IFCHR
	ModeFIFO     uint32 = 0o010000 // S_IFIFO
	ModePerm     uint32 = 0o007777 // permission, setuid, setgid and sticky bits
)

// Overlayfs extended attributes that FromTar sets for whiteout conversion and
// that Apply interprets.
const (
	XattrOpaque = "trusted.overlay.opaque" // "y" on an opaque directory
	XattrOrigin = "trusted.overlay.origin" // "" on a directory holding whiteouts
)

// Node describes one path of a tree. Several paths that are hard links to
// the same file each have their own Node with equal contents and equal Link.
type Node struct {
	Path      string // relative, slash-separated; the root is "."
	Mode      uint32 // Unix file type and permission bits, e.g. 0o100644
	UID, GID  uint32
	Mtime     int64  // seconds since the Unix epoch, may be negative
	MtimeNsec uint32 // nanoseconds, 0..999999999
	// Size is the content length of regular files and the target length of
	// symbolic links; it is 0 for every other type.
	Size               int64
	Digest             string // hex SHA-256 of the content of regular files
	Linkname           string // symbolic link target
	Devmajor, Devminor uint32 // character and block devices only
	Xattrs             map[string]string
	// Nlink is the link count: the number of paths to a non-directory, and
	// 2 plus the number of subdirectories for a directory.
	Nlink uint32
	// Link identifies a hard link group: non-directory paths sharing one
	// inode have the same non-zero Link. The numbering is arbitrary and
	// differs between trees; Compare compares the groups as sets of paths.
	Link int
	// Implicit marks directories that FromTar created only because entries
	// below them needed a parent; their metadata are FromTar's defaults.
	Implicit bool
}

// Type returns the file type bits of the node's mode.
func (n *Node) Type() uint32 { return n.Mode & ModeTypeMask }

// IsDir reports whether the node is a directory.
func (n *Node) IsDir() bool { return n.Type() == ModeDir }

// IsWhiteout reports whether the node is an overlayfs whiteout, a character
// device with device number 0:0.
func (n *Node) IsWhiteout() bool {
	return n.Type() == ModeChar && n.Devmajor == 0 && n.Devminor == 0
}

// Clone returns a deep copy of n.
func (n *Node) Clone() *Node {
	c := *n
	if n.Xattrs != nil {
		c.Xattrs = maps.Clone(n.Xattrs)
	}
	return &c
}

// String returns a one-line description of n, for logs.
func (n *Node) String() string {
	return fmt.Sprintf("%q %s", n.Path, n.describe())
}

// describe is String without the path.
func (n *Node) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %04o %d:%d mtime=%d.%09d nlink=%d", typeName(n.Mode), n.Mode&ModePerm,
		n.UID, n.GID, n.Mtime, n.MtimeNsec, n.Nlink)
	switch n.Type() {
	case ModeReg:
		fmt.Fprintf(&b, " size=%d sha256=%.12s", n.Size, n.Digest)
	case ModeSymlink:
		fmt.Fprintf(&b, " -> %q", n.Linkname)
	case ModeChar, ModeBlock:
		fmt.Fprintf(&b, " rdev=%d:%d", n.Devmajor, n.Devminor)
	}
	if n.Link != 0 {
		fmt.Fprintf(&b, " link=%d", n.Link)
	}
	if n.Implicit {
		b.WriteString(" implicit")
	}
	for _, k := range slices.Sorted(maps.Keys(n.Xattrs)) {
		fmt.Fprintf(&b, " %s=%s", k, quoteValue(n.Xattrs[k]))
	}
	return b.String()
}

// Tree is a file system tree: every path, including the root ".", maps to
// its Node.
type Tree struct {
	Nodes map[string]*Node
}

// Paths returns the tree's paths sorted component by component in byte
// order, which puts every directory right before its descendants.
func (t *Tree) Paths() []string {
	return slices.SortedFunc(maps.Keys(t.Nodes), comparePaths)
}

// Clone returns a deep copy of t.
func (t *Tree) Clone() *Tree {
	c := &Tree{Nodes: make(map[string]*Node, len(t.Nodes))}
	for p, n := range t.Nodes {
		c.Nodes[p] = n.Clone()
	}
	return c
}

// String lists the tree one node per line in path order, for logs.
func (t *Tree) String() string {
	var b strings.Builder
	for _, p := range t.Paths() {
		b.WriteString(t.Nodes[p].String())
		b.WriteByte('\n')
	}
	return b.String()
}

// comparePaths orders paths component by component, so that "a/b" sorts
// before "a-b" and a directory's subtree is contiguous and follows it.
func comparePaths(a, b string) int {
	if a == b {
		return 0
	}
	if a == "." {
		return -1
	}
	if b == "." {
		return 1
	}
	for {
		ai, bi := strings.IndexByte(a, '/'), strings.IndexByte(b, '/')
		ac, bc := a, b
		if ai >= 0 {
			ac = a[:ai]
		}
		if bi >= 0 {
			bc = b[:bi]
		}
		if c := strings.Compare(ac, bc); c != 0 {
			return c
		}
		switch {
		case ai < 0 && bi < 0:
			return 0
		case ai < 0:
			return -1
		case bi < 0:
			return 1
		}
		a, b = a[ai+1:], b[bi+1:]
	}
}

// parentDir returns the parent of a cleaned relative path; the parent of a
// top-level name is ".".
func parentDir(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "."
	}
	return p[:i]
}

// baseName returns the last component of a cleaned relative path.
func baseName(p string) string {
	return p[strings.LastIndexByte(p, '/')+1:]
}

// joinPath joins a directory and a name; dir may be ".".
func joinPath(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

// isUnder reports whether p is strictly below dir.
func isUnder(p, dir string) bool {
	if dir == "." {
		return p != "."
	}
	return len(p) > len(dir) && p[len(dir)] == '/' && strings.HasPrefix(p, dir)
}

// assignLinks numbers hard link groups densely in path order: non-directory
// paths whose key (an inode identity) is shared by other paths get the same
// non-zero Link; all other paths get Link 0. Paths for which key reports
// false are never grouped.
func assignLinks[K comparable](t *Tree, key func(p string, n *Node) (K, bool)) {
	paths := t.Paths()
	count := make(map[K]int)
	for _, p := range paths {
		if n := t.Nodes[p]; !n.IsDir() {
			if k, ok := key(p, n); ok {
				count[k]++
			}
		}
	}
	ids := make(map[K]int)
	for _, p := range paths {
		n := t.Nodes[p]
		n.Link = 0
		if n.IsDir() {
			continue
		}
		k, ok := key(p, n)
		if !ok || count[k] < 2 {
			continue
		}
		id, seen := ids[k]
		if !seen {
			id = len(ids) + 1
			ids[k] = id
		}
		n.Link = id
	}
}

// countLinks sets Nlink from the tree itself: the size of the hard link
// group for non-directories, 2 plus the number of subdirectories for
// directories.
func countLinks(t *Tree) {
	groups := make(map[int]uint32)
	subdirs := make(map[string]uint32)
	for p, n := range t.Nodes {
		switch {
		case n.IsDir():
			if p != "." {
				subdirs[parentDir(p)]++
			}
		case n.Link != 0:
			groups[n.Link]++
		}
	}
	for p, n := range t.Nodes {
		switch {
		case n.IsDir():
			n.Nlink = 2 + subdirs[p]
		case n.Link != 0:
			n.Nlink = groups[n.Link]
		default:
			n.Nlink = 1
		}
	}
}

func typeName(mode uint32) string {
	switch mode & ModeTypeMask {
	case ModeReg:
		return "reg"
	case ModeDir:
		return "dir"
	case ModeSymlink:
		return "symlink"
	case ModeChar:
		return "char"
	case ModeBlock:
		return "block"
	case ModeFIFO:
		return "fifo"
	case ModeSocket:
		return "socket"
	}
	return fmt.Sprintf("type(%#o)", mode&ModeTypeMask)
}

// quoteValue formats an xattr value for a diff line; long values are
// abbreviated to their length and a prefix.
func quoteValue(v string) string {
	const max = 64
	if len(v) <= max {
		return fmt.Sprintf("%q", v)
	}
	return fmt.Sprintf("%q...(%d bytes)", v[:max], len(v))
}
