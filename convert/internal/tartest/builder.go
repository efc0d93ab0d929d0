package tartest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"
)

// Epoch is the modification time of entries that do not set their own.
var Epoch = time.Unix(1700000000, 0).UTC()

// archive accumulates tar entries and renders them with archive/tar.
type archive struct {
	format  tar.Format
	entries []entry
}

type entry struct {
	hdr  tar.Header
	data []byte
}

func newArchive(format tar.Format) *archive { return &archive{format: format} }

// add appends an entry. An unset format becomes the archive's, an unset
// ModTime becomes Epoch, and the size of regular files is len(data).
func (a *archive) add(h tar.Header, data []byte) {
	if h.Format == tar.FormatUnknown {
		h.Format = a.format
	}
	if h.ModTime.IsZero() {
		h.ModTime = Epoch
	}
	if h.Typeflag == tar.TypeReg {
		h.Size = int64(len(data))
	}
	a.entries = append(a.entries, entry{h, data})
}

func (a *archive) dir(name string, mode int64) {
	a.add(tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode}, nil)
}

func (a *archive) file(name, data string) {
	a.add(tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644}, []byte(data))
}

func (a *archive) symlink(name, target string) {
	a.add(tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}, nil)
}

func (a *archive) hardlink(name, target string) {
	a.add(tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644}, nil)
}

func (a *archive) device(typ byte, name string, major, minor int64) {
	a.add(tar.Header{Typeflag: typ, Name: name, Devmajor: major, Devminor: minor, Mode: 0o660}, nil)
}

func (a *archive) fifo(name string) {
	a.add(tar.Header{Typeflag: tar.TypeFifo, Name: name, Mode: 0o644}, nil)
}

// bytes renders the archive. It panics on errors: the cases are fixed, so an
// error is a bug in this package.
func (a *archive) bytes() []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range a.entries {
		if err := tw.WriteHeader(&e.hdr); err != nil {
			panic(fmt.Sprintf("tartest: header %q: %v", e.hdr.Name, err))
		}
		if _, err := tw.Write(e.data); err != nil {
			panic(fmt.Sprintf("tartest: data of %q: %v", e.hdr.Name, err))
		}
	}
	if err := tw.Close(); err != nil {
		panic(fmt.Sprintf("tartest: close: %v", err))
	}
	return buf.Bytes()
}

// xattrRecords returns PAX records carrying xattrs as SCHILY.xattr.NAME.
func xattrRecords(kv ...string) map[string]string {
	if len(kv)%2 != 0 {
		panic("tartest: odd xattr list")
	}
	m := make(map[string]string)
	for i := 0; i < len(kv); i += 2 {
		m["SCHILY.xattr."+kv[i]] = kv[i+1]
	}
	return m
}

// Content returns n deterministic pseudo-random bytes derived from seed
// (SHA-256 in counter mode), so that file contents are reproducible and do
// not compress trivially.
func Content(seed string, n int) []byte {
	out := make([]byte, 0, n+sha256.Size)
	var block [8]byte
	for i := uint64(0); len(out) < n; i++ {
		binary.BigEndian.PutUint64(block[:], i)
		sum := sha256.Sum256(append([]byte(seed), block[:]...))
		out = append(out, sum[:]...)
	}
	return out[:n]
}

// Text returns n bytes of compressible, text-like content determined by
// seed: lines of words from a small vocabulary, with numbers, the way
// source files and configuration compress.
func Text(seed string, n int) []byte {
	words := []string{"the", "erofs", "layer", "block", "inode", "return", "error", "func", "if", "else",
		"for", "range", "struct", "int", "string", "nil", "err", "data", "offset", "size", "var", "const"}
	h := sha256.Sum256([]byte(seed))
	x := binary.BigEndian.Uint64(h[:8]) | 1
	out := make([]byte, 0, n+64)
	for len(out) < n {
		x ^= x << 13 // xorshift64
		x ^= x >> 7
		x ^= x << 17
		switch x % 11 {
		case 0:
			out = append(out, '\n')
		case 1:
			out = fmt.Appendf(out, "%d ", x>>40)
		default:
			out = append(out, words[x>>32%uint64(len(words))]...)
			out = append(out, ' ')
		}
	}
	return out[:n]
}

// Gzip compresses b with gzip at the default level and a fixed header, so
// the output is deterministic.
func Gzip(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.ModTime = time.Time{}
	if _, err := zw.Write(b); err != nil {
		panic(err)
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// Linux binary xattr encodings.

// capabilityV2 returns a security.capability value (struct vfs_cap_data,
// VFS_CAP_REVISION_2) with the given permitted capabilities in the low
// word, none inheritable, and the effective flag set.
func capabilityV2(permitted uint32) string {
	const (
		revision2 = 0x02000000
		effective = 0x000001
	)
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], revision2|effective)
	binary.LittleEndian.PutUint32(b[4:], permitted) // data[0].permitted
	// data[0].inheritable, data[1].permitted, data[1].inheritable: 0
	return string(b)
}

// POSIX ACL entry tags (linux/posix_acl.h) and the "undefined" id the
// kernel writes for entries that have no qualifier.
const (
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20
	aclNoID     = 0xffffffff
)

type aclEntry struct {
	tag  uint16
	perm uint16
	id   uint32
}

// posixACL returns the binary xattr form of an ACL (struct
// posix_acl_xattr_header then posix_acl_xattr_entry records), exactly as
// the kernel's posix_acl_to_xattr writes it, so that reading it back
// through any file system returns the same bytes: entries must be in the
// kernel's canonical order and entries without a qualifier use aclNoID.
func posixACL(entries ...aclEntry) string {
	b := make([]byte, 4, 4+8*len(entries))
	binary.LittleEndian.PutUint32(b, 2) // POSIX_ACL_XATTR_VERSION
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return string(b)
}
