package tartest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
)

// Byte-level tar building, for archives archive/tar will not write:
// malformed headers and PAX records, sparse files, odd type flags.

// Header block fields (POSIX ustar; GNU).
const (
	fName     = 0
	fMode     = 100
	fUID      = 108
	fGID      = 116
	fSize     = 124
	fMtime    = 136
	fChksum   = 148
	fTypeflag = 156
	fLinkname = 157
	fMagic    = 257
	fDevmajor = 329
	fDevminor = 337
)

// raw is an archive built block by block; off returns where each named
// header starts.
type raw struct {
	b    bytes.Buffer
	offs map[string]int64
}

func newRaw() *raw { return &raw{offs: map[string]int64{}} }

// header appends a POSIX ustar header block for name (up to 100 bytes) of
// type typ declaring size bytes of data, mode 0644, uid and gid 0, mtime
// Epoch; edit, if not nil, changes the block before its checksum is set.
func (r *raw) header(name string, typ byte, size int64, edit func(b []byte)) {
	r.offs[name] = int64(r.b.Len())
	r.b.Write(headerBlock(name, typ, size, edit))
}

// data appends b padded to a whole block.
func (r *raw) data(b []byte) {
	r.b.Write(b)
	if n := len(b) % 512; n != 0 {
		r.b.Write(make([]byte, 512-n))
	}
}

// file appends a regular file.
func (r *raw) file(name, content string) {
	r.header(name, '0', int64(len(content)), nil)
	r.data([]byte(content))
}

// pax appends a PAX header of type typ ('x' or 'g') holding records, which
// are given whole (see record).
func (r *raw) pax(typ byte, records ...string) {
	var d []byte
	for _, rec := range records {
		d = append(d, rec...)
	}
	r.b.Write(headerBlock("PaxHeaders/x", typ, int64(len(d)), nil))
	r.data(d)
}

// end appends the two zero blocks that end an archive.
func (r *raw) end() { r.b.Write(make([]byte, 1024)) }

func (r *raw) bytes() []byte { return bytes.Clone(r.b.Bytes()) }

// off returns the offset of the header of the entry named name.
func (r *raw) off(name string) int64 {
	off, ok := r.offs[name]
	if !ok {
		panic("tartest: no raw header " + name)
	}
	return off
}

// headerBlock returns the header block header appends.
func headerBlock(name string, typ byte, size int64, edit func(b []byte)) []byte {
	b := make([]byte, 512)
	copy(b[fName:fName+100], name)
	setOctal(b, fMode, 8, 0o644)
	setOctal(b, fUID, 8, 0)
	setOctal(b, fGID, 8, 0)
	setOctal(b, fSize, 12, size)
	setOctal(b, fMtime, 12, Epoch.Unix())
	b[fTypeflag] = typ
	copy(b[fMagic:], "ustar\x0000")
	setOctal(b, fDevmajor, 8, 0)
	setOctal(b, fDevminor, 8, 0)
	if edit != nil {
		edit(b)
	}
	sealHeader(b)
	return b
}

// sealHeader sets the checksum of header block b.
func sealHeader(b []byte) {
	copy(b[fChksum:fChksum+8], "        ")
	sum := 0
	for _, c := range b[:512] {
		sum += int(c)
	}
	copy(b[fChksum:fChksum+8], fmt.Sprintf("%06o\x00 ", sum))
}

// setOctal writes x as a NUL-terminated octal number filling n bytes.
func setOctal(b []byte, off, n int, x int64) {
	copy(b[off:off+n], fmt.Sprintf("%0*o\x00", n-1, x))
}

// setBase256 writes x in GNU base-256 form (two's complement, big-endian,
// top bit of the first byte set) filling n bytes.
func setBase256(b []byte, off, n int, x int64) {
	f := b[off : off+n]
	for i := n - 1; i >= 0; i-- {
		f[i] = byte(x)
		x >>= 8
	}
	f[0] |= 0x80
}

// gnuMagic turns a header block into an old GNU one.
func gnuMagic(b []byte) { copy(b[fMagic:], "ustar  \x00") }

// record formats one PAX record, "LENGTH KEY=VALUE\n", LENGTH counting
// the whole record, its own digits included.
func record(k, v string) string {
	n := len(k) + len(v) + 3 // space, '=', newline
	total := n + len(strconv.Itoa(n))
	if len(strconv.Itoa(total)) != len(strconv.Itoa(n)) {
		total = n + len(strconv.Itoa(total))
	}
	return fmt.Sprintf("%d %s=%s\n", total, k, v)
}

// le32 is x little-endian, for zstd skippable frames.
func le32(x uint32) []byte { return binary.LittleEndian.AppendUint32(nil, x) }
