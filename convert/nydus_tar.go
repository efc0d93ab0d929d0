package convert

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// tarHeader is one header UnpackNydus writes: what it would put in a
// tar.Header, with the name and link name as bytes so that a long path
// can be built in a reused buffer.
type tarHeader struct {
	typeflag           byte
	name, linkname     []byte
	plain              bool // name is known to pass plainPath
	mode, uid, gid     int64
	size               int64
	mtime              int64 // seconds
	nsec               int64 // nanoseconds of mtime
	noTime             bool  // a zero ModTime (hard links)
	devmajor, devminor int64
	records            map[string]string // PAX records (xattrs)
}

// tarWriter writes the tar archive UnpackNydus makes: the bytes
// archive/tar's Writer writes for the same headers with Format PAX.
// archive/tar works on a long name many times over (a header of a path
// 80 KB long costs it about a millisecond); tarWriter formats the
// records once, into reused buffers. Headers it does not handle itself —
// names that are not ASCII, or fields archive/tar refuses — go through
// archive/tar.
type tarWriter struct {
	w    io.Writer
	left int64 // data bytes the current entry still expects
	pad  int64 // zero bytes to write after them
	blk  [tarBlockSize]byte
	recs []byte   // the PAX records being built
	keys []string // their keys, sorted
	err  error
}

const (
	tarBlockSize   = 512
	tarNameSize    = 100
	tarPrefixSize  = 155
	tarMaxSpecial  = 1 << 20 // archive/tar's limit on a PAX header's data
	zeroTimeSecond = -62135596800
)

var tarZeros [tarBlockSize]byte

// flush writes the padding of the previous entry.
func (tw *tarWriter) flush() error {
	if tw.err != nil {
		return tw.err
	}
	if tw.left > 0 {
		return fmt.Errorf("archive/tar: missed writing %d bytes", tw.left)
	}
	if tw.pad > 0 {
		_, tw.err = tw.w.Write(tarZeros[:tw.pad])
		tw.pad = 0
	}
	return tw.err
}

// Write writes data of the current entry.
func (tw *tarWriter) Write(p []byte) (int, error) {
	if tw.err != nil {
		return 0, tw.err
	}
	if int64(len(p)) > tw.left {
		return 0, tar.ErrWriteTooLong
	}
	n, err := tw.w.Write(p)
	tw.left -= int64(n)
	if err != nil {
		tw.err = err
	}
	return n, err
}

// Close writes the padding and the trailer of two zero blocks.
func (tw *tarWriter) Close() error {
	if err := tw.flush(); err != nil {
		return err
	}
	for range 2 {
		if _, err := tw.w.Write(tarZeros[:]); err != nil {
			tw.err = err
			return err
		}
	}
	tw.err = errors.New("archive/tar: write after close")
	return nil
}

// start prepares for an entry of size data bytes.
func (tw *tarWriter) start(typeflag byte, size int64) {
	switch typeflag {
	case tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo:
		size = 0
	}
	tw.left, tw.pad = size, -size&(tarBlockSize-1)
}

// WriteHeader writes the header of the next entry.
func (tw *tarWriter) WriteHeader(h *tarHeader) error {
	if err := tw.flush(); err != nil {
		return err
	}
	if !tw.fast(h) {
		return tw.slow(h)
	}

	// The decisions of archive/tar's Header.allowedFormats for these
	// fields: which PAX records are needed, and whether the header
	// can be plain USTAR instead.
	ustar := true
	prefix, suffix, split := splitUSTARPath(h.name)
	var path, linkpath []byte
	if len(h.name) > tarNameSize {
		path = h.name
		if !split {
			ustar = false
		}
	}
	if len(h.linkname) > tarNameSize {
		linkpath = h.linkname
		ustar = false
	}
	var uid, gid, size, mtime string
	if !fitsOctal(8, h.uid) {
		uid, ustar = strconv.FormatInt(h.uid, 10), false
	}
	if !fitsOctal(8, h.gid) {
		gid, ustar = strconv.FormatInt(h.gid, 10), false
	}
	if !fitsOctal(12, h.size) {
		size, ustar = strconv.FormatInt(h.size, 10), false
	}
	noTime := h.noTime || h.mtime == zeroTimeSecond && h.nsec == 0 // time.Time.IsZero
	preferPAX := false
	if !noTime {
		fits := fitsOctal(12, h.mtime)
		if !fits {
			ustar = false
		}
		if !fits || h.nsec != 0 {
			preferPAX = true
			mtime = formatPAXTime(h.mtime, h.nsec)
		}
	}
	if ustar && !preferPAX && len(h.records) == 0 {
		name := h.name
		if split {
			name = suffix
		}
		tw.template(h, name, noTime)
		formatString(tw.blk[345:][:tarPrefixSize], prefix)
		return tw.finish(h)
	}

	// The PAX records, sorted by key.
	tw.keys = tw.keys[:0]
	for k := range h.records {
		tw.keys = append(tw.keys, k)
	}
	for _, k := range [...]struct {
		key string
		set bool
	}{{"gid", gid != ""}, {"linkpath", linkpath != nil}, {"mtime", mtime != ""}, {"path", path != nil}, {"size", size != ""}, {"uid", uid != ""}} {
		if k.set {
			tw.keys = append(tw.keys, k.key)
		}
	}
	slices.Sort(tw.keys)
	tw.recs = tw.recs[:0]
	for _, k := range tw.keys {
		switch k {
		case "gid":
			tw.recs = appendPAXRecord(tw.recs, k, nil, gid)
		case "linkpath":
			tw.recs = appendPAXRecord(tw.recs, k, linkpath, "")
		case "mtime":
			tw.recs = appendPAXRecord(tw.recs, k, nil, mtime)
		case "path":
			tw.recs = appendPAXRecord(tw.recs, k, path, "")
		case "size":
			tw.recs = appendPAXRecord(tw.recs, k, nil, size)
		case "uid":
			tw.recs = appendPAXRecord(tw.recs, k, nil, uid)
		default:
			tw.recs = appendPAXRecord(tw.recs, k, nil, h.records[k])
		}
	}
	if len(tw.recs) > tarMaxSpecial {
		return tar.ErrFieldTooLong
	}

	// The extended header, named as archive/tar names it:
	// path.Join(dir, "PaxHeaders.0", file), cut to 100 bytes, without
	// trailing slashes.
	var nameBuf [tarNameSize]byte
	dir, file := splitLast(h.name)
	name := nameBuf[:0]
	if d := bytes.TrimSuffix(dir, []byte("/")); len(d) > 0 && string(d) != "." {
		name = appendCut(name, d)
		name = appendCut(name, []byte("/"))
	}
	name = appendCut(name, []byte("PaxHeaders.0"))
	if len(file) > 0 {
		name = appendCut(name, []byte("/"))
		name = appendCut(name, file)
	}
	name = bytes.TrimRight(name, "/")
	clear(tw.blk[:])
	formatString(tw.blk[:tarNameSize], name)
	formatOctal(tw.blk[100:][:8], 0)
	formatOctal(tw.blk[108:][:8], 0)
	formatOctal(tw.blk[116:][:8], 0)
	formatOctal(tw.blk[124:][:12], int64(len(tw.recs)))
	formatOctal(tw.blk[136:][:12], 0)
	tw.blk[156] = tar.TypeXHeader
	setUSTARFormat(&tw.blk)
	if _, err := tw.w.Write(tw.blk[:]); err != nil {
		tw.err = err
		return err
	}
	tw.start(tar.TypeXHeader, int64(len(tw.recs)))
	if _, err := tw.Write(tw.recs); err != nil {
		return err
	}
	if err := tw.flush(); err != nil {
		return err
	}

	// The header itself, the fields that do not fit written as zeros.
	tw.template(h, h.name, noTime)
	return tw.finish(h)
}

// template fills the block with a header's fields (archive/tar's
// templateV7Plus with octal numbers; values that do not fit become 0).
func (tw *tarWriter) template(h *tarHeader, name []byte, noTime bool) {
	clear(tw.blk[:])
	b := tw.blk[:]
	b[156] = h.typeflag
	formatString(b[0:][:tarNameSize], name)
	formatString(b[157:][:tarNameSize], h.linkname)
	formatOctal(b[100:][:8], h.mode)
	formatOctal(b[108:][:8], h.uid)
	formatOctal(b[116:][:8], h.gid)
	formatOctal(b[124:][:12], h.size)
	mtime := h.mtime
	if noTime {
		mtime = 0
	}
	formatOctal(b[136:][:12], mtime)
	formatString(b[265:][:32], nil) // user name
	formatString(b[297:][:32], nil) // group name
	formatOctal(b[329:][:8], h.devmajor)
	formatOctal(b[337:][:8], h.devminor)
}

// finish writes the block of a header.
func (tw *tarWriter) finish(h *tarHeader) error {
	setUSTARFormat(&tw.blk)
	if _, err := tw.w.Write(tw.blk[:]); err != nil {
		tw.err = err
		return err
	}
	tw.start(h.typeflag, h.size)
	return nil
}

// fast reports whether WriteHeader can write h itself: names and link
// names of ASCII without NUL or "." and ".." components (archive/tar
// cleans them), numbers archive/tar can encode, valid PAX records.
func (tw *tarWriter) fast(h *tarHeader) bool {
	if !h.plain && !plainPath(h.name) || !isASCII(h.linkname) {
		return false
	}
	switch h.typeflag {
	case tar.TypeReg, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		if bytes.HasSuffix(h.name, []byte("/")) {
			return false // archive/tar refuses it
		}
	}
	if h.size < 0 || h.nsec < 0 || h.nsec >= 1e9 || h.mode < 0 || h.mode >= 1<<21 ||
		h.uid < 0 || h.gid < 0 || !fitsOctal(8, h.devmajor) || !fitsOctal(8, h.devminor) {
		return false
	}
	for k := range h.records {
		if k == "" || strings.ContainsAny(k, "=\x00") || basicPAXKey(k) {
			return false
		}
	}
	return true
}

// archiveHeader is h as an archive/tar header, in PAX format.
func (h *tarHeader) archiveHeader() *tar.Header {
	th := &tar.Header{
		Typeflag: h.typeflag, Name: string(h.name), Linkname: string(h.linkname),
		Mode: h.mode, Uid: int(h.uid), Gid: int(h.gid), Size: h.size,
		Devmajor: h.devmajor, Devminor: h.devminor, Format: tar.FormatPAX,
	}
	if !h.noTime {
		th.ModTime = time.Unix(h.mtime, h.nsec)
	}
	if len(h.records) > 0 {
		th.PAXRecords = h.records
	}
	return th
}

// slow writes h with archive/tar.
func (tw *tarWriter) slow(h *tarHeader) error {
	if err := tar.NewWriter(tw.w).WriteHeader(h.archiveHeader()); err != nil {
		return err
	}
	tw.start(h.typeflag, h.size)
	return nil
}

// basicPAXKey reports whether archive/tar ignores a record of that key
// in Header.PAXRecords (it derives them from the fields).
func basicPAXKey(k string) bool {
	switch k {
	case "path", "linkpath", "size", "uid", "gid", "uname", "gname", "mtime", "atime", "ctime":
		return true
	}
	return strings.HasPrefix(k, "GNU.sparse.")
}

// plainPath reports whether a slash-separated name is ASCII without NUL,
// and has no component path.Clean would change ("", ".", "..") except a
// trailing slash, or is "./".
func plainPath(p []byte) bool {
	if string(p) == "./" {
		return true
	}
	if !isASCII(p) || len(p) == 0 || p[0] == '/' {
		return false
	}
	rest := bytes.TrimSuffix(p, []byte("/"))
	for len(rest) > 0 {
		c := rest
		if i := bytes.IndexByte(rest, '/'); i >= 0 {
			c, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if len(c) == 0 || string(c) == "." || string(c) == ".." {
			return false
		}
	}
	return !bytes.HasSuffix(p, []byte("//"))
}

// isASCII reports whether s holds only ASCII characters other than NUL.
func isASCII(s []byte) bool {
	for _, c := range s {
		if c == 0 || c >= 0x80 {
			return false
		}
	}
	return true
}

// splitLast splits a name like path.Split.
func splitLast(p []byte) (dir, file []byte) {
	i := bytes.LastIndexByte(p, '/')
	return p[:i+1], p[i+1:]
}

// appendCut appends s to the name being built, up to 100 bytes.
func appendCut(name, s []byte) []byte {
	return append(name, s[:min(len(s), tarNameSize-len(name))]...)
}

// splitUSTARPath is archive/tar's splitUSTARPath: a name over 100 bytes
// as a prefix (at most 155 bytes) and a name (at most 100) split at a
// slash.
func splitUSTARPath(name []byte) (prefix, suffix []byte, ok bool) {
	length := len(name)
	if length > tarPrefixSize+1+tarNameSize {
		return nil, nil, false // the name part would be too long (checked first, to skip isASCII)
	}
	if length <= tarNameSize || !isASCII(name) {
		return nil, nil, false
	} else if length > tarPrefixSize+1 {
		length = tarPrefixSize + 1
	} else if name[length-1] == '/' {
		length--
	}
	i := bytes.LastIndexByte(name[:length], '/')
	nlen := len(name) - i - 1
	plen := i
	if i <= 0 || nlen > tarNameSize || nlen == 0 || plen > tarPrefixSize {
		return nil, nil, false
	}
	return name[:i], name[i+1:], true
}

// formatString is archive/tar's formatter.formatString.
func formatString(b, s []byte) {
	copy(b, s)
	if len(s) < len(b) {
		b[len(s)] = 0
	}
	if len(s) > len(b) && b[len(b)-1] == '/' {
		n := len(bytes.TrimRight(s[:len(b)-1], "/"))
		b[n] = 0 // Replace trailing slash with NUL terminator
	}
}

// fitsOctal reports whether x fits an octal field of n bytes.
func fitsOctal(n int, x int64) bool {
	octBits := uint(n-1) * 3
	return x >= 0 && (n >= 22 || x < 1<<octBits)
}

// formatOctal is archive/tar's formatter.formatOctal: zero-padded octal,
// NUL-terminated; 0 when x does not fit.
func formatOctal(b []byte, x int64) {
	if !fitsOctal(len(b), x) {
		x = 0
	}
	var buf [24]byte
	s := strconv.AppendInt(buf[:0], x, 8)
	for i := range b {
		b[i] = '0'
	}
	copy(b[len(b)-1-len(s):], s)
	b[len(b)-1] = 0
}

// setUSTARFormat sets the USTAR magic and version and the checksum.
func setUSTARFormat(b *[tarBlockSize]byte) {
	copy(b[257:], "ustar\x00")
	copy(b[263:], "00")
	var sum int64
	for i, c := range b {
		if 148 <= i && i < 156 {
			c = ' '
		}
		sum += int64(c)
	}
	formatOctal(b[148:][:7], sum)
	b[155] = ' '
}

// formatPAXTime is archive/tar's formatPAXTime.
func formatPAXTime(secs, nsecs int64) string {
	if nsecs == 0 {
		return strconv.FormatInt(secs, 10)
	}
	sign := ""
	if secs < 0 {
		sign = "-"
		secs = -(secs + 1)
		nsecs = -(nsecs - 1e9)
	}
	return strings.TrimRight(fmt.Sprintf("%s%d.%09d", sign, secs, nsecs), "0")
}

// appendPAXRecord appends the record "LEN KEY=VALUE\n" (value v, or vs
// when v is nil), LEN counting itself (archive/tar's formatPAXRecord).
func appendPAXRecord(dst []byte, k string, v []byte, vs string) []byte {
	vlen := len(v)
	if v == nil {
		vlen = len(vs)
	}
	size := len(k) + vlen + 3
	size += len(strconv.Itoa(size))
	if n := len(strconv.Itoa(size)) + 1 + len(k) + 1 + vlen + 1; n != size {
		size = n
	}
	dst = strconv.AppendInt(dst, int64(size), 10)
	dst = append(dst, ' ')
	dst = append(dst, k...)
	dst = append(dst, '=')
	if v != nil {
		dst = append(dst, v...)
	} else {
		dst = append(dst, vs...)
	}
	return append(dst, '\n')
}
