package convert

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/rafs-dev/rafs/convert/internal/gunzip"
)

// LayerEncoding is how a layer's tar stream arrives: plain or compressed
// as a whole, as the suffix of an OCI layer media type says (".tar",
// ".tar+gzip", ".tar+zstd"). It describes the input; erofs.Compression is
// the compression of the image written.
type LayerEncoding int

// The layer encodings Decompress recognises and undoes.
const (
	Tar     LayerEncoding = iota // a plain tar
	TarGzip                      // a gzip-compressed tar
	TarZstd                      // a zstd-compressed tar
)

// String gives the compression of the stream: "none", "gzip" or "zstd".
func (e LayerEncoding) String() string {
	switch e {
	case TarGzip:
		return "gzip"
	case TarZstd:
		return "zstd"
	}
	return "none"
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// unsupportedMagic are the magic numbers of compressed formats a layer
// might arrive in that Decompress does not undo.
var unsupportedMagic = []struct {
	format string
	magic  []byte
}{
	{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}}, // xz file format 1.1.0, 2.1.1.1
	{"lz4", []byte{0x04, 0x22, 0x4d, 0x18}},        // LZ4 frame format
	{"lz4-legacy", []byte{0x02, 0x21, 0x4c, 0x18}}, // LZ4 legacy frame
	{"lzip", []byte{'L', 'Z', 'I', 'P'}},           // lzip member header
	{"compress(1)", []byte{0x1f, 0x9d}},            // compress(1) LZW
	{"bzip2", []byte{'B', 'Z', 'h'}},               // then a block size digit, checked below
}

// UnsupportedCompressionError is the error Decompress returns for a stream
// compressed in a format it does not undo (xz, bzip2, lz4, lzip or
// compress(1)), which tar.Reader would only report as an invalid header.
type UnsupportedCompressionError struct {
	Format string // "xz", "bzip2", ...
}

// Error names the format and what is supported.
func (e *UnsupportedCompressionError) Error() string {
	return fmt.Sprintf("convert: %s-compressed input is not supported (want tar, tar+gzip or tar+zstd)", e.Format)
}

// unsupportedCompression returns the compressed format head, the start of
// a stream, begins with, unless head begins with a valid tar header (whose
// first bytes are a file name, which may look like anything).
func unsupportedCompression(head []byte) string {
	if isTarHeader(head) {
		return ""
	}
	for _, u := range unsupportedMagic {
		if !bytes.HasPrefix(head, u.magic) {
			continue
		}
		if u.format == "bzip2" && (len(head) < 4 || head[3] < '1' || head[3] > '9') {
			continue
		}
		return u.format
	}
	return ""
}

// isZstdSkippable reports whether head begins with a Zstandard skippable
// frame (RFC 8878, 3.1.2: magic 0x184D2A50 to 0x184D2A5F, little-endian),
// which may precede the first data frame.
func isZstdSkippable(head []byte) bool {
	return len(head) >= 4 && head[0]&0xf0 == 0x50 && head[1] == 0x2a && head[2] == 0x4d && head[3] == 0x18 &&
		!isTarHeader(head)
}

// isTarHeader reports whether b begins with a 512-byte block whose checksum
// field matches its contents, as a tar header's does (POSIX ustar: the sum
// of the block's bytes with the checksum field taken as spaces; old
// writers summed signed bytes).
func isTarHeader(b []byte) bool {
	if len(b) < 512 {
		return false
	}
	var unsigned, signed int64
	for i, c := range b[:512] {
		if i >= 148 && i < 156 {
			c = ' '
		}
		unsigned += int64(c)
		signed += int64(int8(c))
	}
	field := strings.Trim(string(b[148:156]), " \x00")
	stored, err := strconv.ParseInt(field, 8, 64)
	return err == nil && field != "" && (stored == unsigned || stored == signed)
}

// Decompress detects by its magic number whether r is gzip- or
// zstd-compressed and returns a reader of the uncompressed stream, which
// the caller must close. Other streams are returned as they are, except
// that a stream in another compressed format Decompress recognises (xz,
// bzip2, lz4, lzip, compress(1)) is an *UnsupportedCompressionError.
func Decompress(r io.Reader) (io.ReadCloser, LayerEncoding, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(512)
	if err != nil && err != io.EOF {
		return nil, Tar, fmt.Errorf("convert: reading stream header: %w", err)
	}
	switch {
	case unsupportedCompression(magic) != "":
		return nil, Tar, &UnsupportedCompressionError{Format: unsupportedCompression(magic)}
	case bytes.HasPrefix(magic, gzipMagic):
		zr, err := gunzip.NewReader(br)
		if err != nil {
			return nil, TarGzip, fmt.Errorf("convert: gzip header: %w", err)
		}
		return zr, TarGzip, nil
	case bytes.HasPrefix(magic, zstdMagic) || isZstdSkippable(magic):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, TarZstd, fmt.Errorf("convert: zstd header: %w", err)
		}
		return zstdReader{zr.IOReadCloser()}, TarZstd, nil
	}
	return io.NopCloser(br), Tar, nil
}

// zstdReader names the errors of the zstd decoder, which do not say where
// they come from ("CRC check failed").
type zstdReader struct{ io.ReadCloser }

func (z zstdReader) Read(p []byte) (int, error) {
	n, err := z.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("zstd: %w", err)
	}
	return n, err
}

// readahead reads from r in a goroutine into a few large buffers, so that
// decompression runs on one core while the tar is parsed and written on
// another.
type readahead struct {
	full  chan []byte
	empty chan []byte
	buf   []byte // buffer being consumed
	cur   []byte // unread part of buf
	err   error
	done  chan struct{}
	errc  chan error
}

// A DecodedLayer is a layer's tar stream whose encoding has been undone
// (Decompress), read ahead in a goroutine of its own when it was
// compressed. TarToEROFS and TarToNydus read a DecodedLayer as the tar it
// is, without detecting an encoding again: a caller that decompresses a
// layer itself (to hash the uncompressed bytes for its diff ID on their
// way, say) hands them the stream this way.
type DecodedLayer struct {
	src io.Reader // ra, or the decoded stream when there is no read-ahead
	ra  *readahead
	enc LayerEncoding
}

// NewDecodedLayer returns the decoded stream dr of a layer that was
// encoded as enc. Unless enc is Tar, a goroutine reads dr up to ahead
// bytes in front of the reader, in 256 KiB or larger pieces, so that
// decompression runs on one core while the tar is parsed and written on
// another. Close stops it; closing dr is the caller's.
func NewDecodedLayer(dr io.Reader, enc LayerEncoding, ahead int) *DecodedLayer {
	d := &DecodedLayer{src: dr, enc: enc}
	if enc != Tar {
		piece := max(256<<10, ahead/8)
		d.ra = newReadahead(dr, piece, max(ahead/piece, 2))
		d.src = d.ra
	}
	return d
}

// Read reads the decoded tar stream.
func (d *DecodedLayer) Read(p []byte) (int, error) { return d.src.Read(p) }

// Encoding returns the encoding the layer arrived in.
func (d *DecodedLayer) Encoding() LayerEncoding { return d.enc }

// Close stops the read-ahead, after a read in progress ends. It does not
// close the decoded stream.
func (d *DecodedLayer) Close() error {
	if d.ra != nil {
		return d.ra.Close()
	}
	return nil
}

// How far TarToEROFS and TarToNydus decompress a layer ahead of the tar
// walker (NewDecodedLayer). A Nydus layer's chunk workers take file data
// in bursts, so decompression runs further ahead to keep going while they
// catch up after a run of large files.
const (
	ReadAheadEROFS = 1 << 20
	ReadAheadNydus = 8 << 20
)

// openLayer detects and undoes a layer's encoding, reading ahead by up to
// ahead bytes (NewDecodedLayer), unless r is a DecodedLayer already.
// close releases both.
func openLayer(r io.Reader, ahead int) (src io.Reader, enc LayerEncoding, close func(), err error) {
	if d, ok := r.(*DecodedLayer); ok {
		// The caller decompresses the layer itself.
		return d.src, d.enc, func() {}, nil
	}
	dr, enc, err := Decompress(r)
	if err != nil {
		return nil, 0, nil, err
	}
	d := NewDecodedLayer(dr, enc, ahead)
	return d.src, enc, func() { d.Close(); dr.Close() }, nil
}

func newReadahead(r io.Reader, bufSize, bufs int) *readahead {
	ra := &readahead{
		full:  make(chan []byte, bufs),
		empty: make(chan []byte, bufs),
		done:  make(chan struct{}),
		errc:  make(chan error, 1),
	}
	for i := 0; i < bufs; i++ {
		ra.empty <- make([]byte, bufSize)
	}
	go func() {
		defer close(ra.full)
		for {
			var buf []byte
			select {
			case buf = <-ra.empty:
			case <-ra.done:
				return
			}
			buf = buf[:cap(buf)]
			n := 0
			var err error
			for n < len(buf) && err == nil {
				var m int
				m, err = r.Read(buf[n:])
				n += m
			}
			if n > 0 {
				select {
				case ra.full <- buf[:n]:
				case <-ra.done:
					return
				}
			}
			if err != nil {
				ra.errc <- err
				return
			}
		}
	}()
	return ra
}

func (ra *readahead) Read(p []byte) (int, error) {
	for len(ra.cur) == 0 {
		if ra.buf != nil {
			ra.empty <- ra.buf[:cap(ra.buf)]
			ra.buf = nil
		}
		if ra.err != nil {
			return 0, ra.err
		}
		buf, ok := <-ra.full
		if !ok {
			ra.err = <-ra.errc
			return 0, ra.err
		}
		ra.buf, ra.cur = buf, buf
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

// Close stops the reading goroutine. It does not close the source.
func (ra *readahead) Close() error {
	select {
	case <-ra.done:
	default:
		close(ra.done)
	}
	// Let the goroutine finish a read in progress before the source is
	// closed by the caller.
	for range ra.full {
	}
	return nil
}

// A tar entry's header blocks, as the tar reader (convert/internal/tarhdr)
// keeps them (Reader.Raw), walked again only to say what is wrong with a
// header the reader refuses (archive/tar, whose errors it returns, says
// only "invalid tar header") and to check global PAX headers whole
// (archive/tar drops a global header's records when one of its values
// does not parse).

// maxSpecialFile is archive/tar's limit on PAX records and GNU long names.
const maxSpecialFile = 1 << 20

// headerChain is what the raw header blocks of one entry describe.
type headerChain struct {
	final   int64       // offset of the entry's own header block
	dataEnd int64       // offset where the entry's data ends, before padding
	global  bool        // the entry is a global PAX header
	records []paxRecord // records of the last PAX header, in order
}

// paxRecord is one "LENGTH KEYWORD=VALUE\n" record of a PAX header.
type paxRecord struct {
	key, value string
}

// tar header block fields (POSIX ustar; GNU).
const (
	hdrMode     = 100
	hdrUID      = 108
	hdrGID      = 116
	hdrSize     = 124
	hdrMtime    = 136
	hdrChksum   = 148
	hdrTypeflag = 156
	hdrMagic    = 257
	hdrDevmajor = 329
	hdrDevminor = 337
	gnuExtended = 482 // old GNU sparse: more sparse headers follow
	extExtended = 504 // the same flag in a sparse extension block
)

// walkHeaders reads the header blocks of one entry from buf, which holds
// the archive from offset base on: PAX extended ('x') headers and GNU long
// names and links ('L', 'K') with their data, then the entry's own header
// (and an old GNU sparse file's extension blocks), or a global PAX header
// ('g'), which archive/tar returns as an entry. It returns what they
// describe, or problem, a description of the first thing wrong with them,
// or complete=false when buf ends first. Every block is checked, and the
// records of PAX headers are read and their values checked.
func walkHeaders(buf []byte, base int64) (c headerChain, problem string, complete bool) {
	localSize := int64(-1) // a PAX "size" record of the entry
	pos := 0
	block := func(at int) []byte {
		if at < 0 || at+512 > len(buf) {
			return nil
		}
		return buf[at : at+512]
	}
	for {
		b := block(pos)
		if b == nil {
			return c, "", false
		}
		off := base + int64(pos)
		if bytes.Equal(b, zeroTarBlock[:]) {
			if next := block(pos + 512); next != nil && !bytes.Equal(next, zeroTarBlock[:]) {
				return c, fmt.Sprintf("a single zero block at offset %d is followed by more data (an archive ends with two)", off), true
			}
			return c, "", false
		}
		if p := checkHeaderBlock(b); p != "" {
			return c, fmt.Sprintf("header block at offset %d: %s", off, p), true
		}
		size, _ := parseNumericField(b[hdrSize : hdrSize+12])
		typ := b[hdrTypeflag]
		switch typ {
		case 'x', 'g', 'L', 'K':
			if size > maxSpecialFile {
				return c, fmt.Sprintf("%s of %d bytes at offset %d, over the 1 MiB archive/tar reads", specialName(typ), size, off), true
			}
			if size < 0 {
				return c, fmt.Sprintf("%s at offset %d has a negative size %d", specialName(typ), off, size), true
			}
			data := buf[min(pos+512, len(buf)):min(pos+512+int(size), len(buf))]
			if int64(len(data)) < size {
				return c, "", false
			}
			if typ == 'g' {
				c.final, c.global = off, true
			}
			if typ == 'g' || typ == 'x' {
				recs, p := parsePAXRecords(data, off+512, typ == 'g')
				if p != "" {
					return c, p, true
				}
				c.records = recs
				if typ == 'g' {
					c.final, c.global = off, true
					c.dataEnd = off + 512 + size
					return c, "", true
				}
				localSize = -1
				for _, r := range recs {
					if r.key == "size" && r.value != "" {
						localSize, _ = strconv.ParseInt(r.value, 10, 64)
					}
				}
			}
			pos += 512 + int(size+511)&^511
			continue
		}
		c.final = off
		if localSize >= 0 {
			size = localSize
		}
		if size < 0 && !headerOnly(typ) {
			return c, fmt.Sprintf("header block at offset %d: negative size %d", off, size), true
		}
		end := pos + 512
		if typ == 'S' && b[gnuExtended] != 0 {
			for {
				ext := block(end)
				if ext == nil {
					return c, "", false
				}
				end += 512
				if ext[extExtended] == 0 {
					break
				}
			}
		}
		if headerOnly(typ) {
			size = 0
		}
		c.dataEnd = base + int64(end) + size
		return c, "", true
	}
}

var zeroTarBlock [512]byte

// headerOnly reports whether archive/tar reads no data for an entry of type
// typ, whatever its size field says.
func headerOnly(typ byte) bool {
	switch typ {
	case tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo:
		return true
	}
	return false
}

func specialName(typ byte) string {
	switch typ {
	case 'x':
		return "PAX extended header"
	case 'g':
		return "PAX global header"
	case 'L':
		return "GNU long name"
	}
	return "GNU long link name"
}

// checkHeaderBlock returns what archive/tar refuses in a header block, or "".
func checkHeaderBlock(b []byte) string {
	field := strings.Trim(string(b[hdrChksum:hdrChksum+8]), " \x00")
	stored, err := strconv.ParseInt(field, 8, 64)
	if err != nil {
		return fmt.Sprintf("checksum field %q is not an octal number", field)
	}
	if !isTarHeader(b) {
		var sum int64
		for i, c := range b {
			if i >= hdrChksum && i < hdrChksum+8 {
				c = ' '
			}
			sum += int64(c)
		}
		return fmt.Sprintf("checksum %d does not match the block's %d (not a tar header, or a corrupt one)", stored, sum)
	}
	fields := []struct {
		name     string
		off, len int
	}{{"size", hdrSize, 12}, {"mode", hdrMode, 8}, {"uid", hdrUID, 8}, {"gid", hdrGID, 8}, {"mtime", hdrMtime, 12}}
	if string(b[hdrMagic:hdrMagic+5]) == "ustar" {
		fields = append(fields, struct {
			name     string
			off, len int
		}{"devmajor", hdrDevmajor, 8}, struct {
			name     string
			off, len int
		}{"devminor", hdrDevminor, 8})
	}
	for _, f := range fields {
		if _, err := parseNumericField(b[f.off : f.off+f.len]); err != nil {
			v, _, _ := strings.Cut(string(b[f.off:f.off+f.len]), "\x00")
			return fmt.Sprintf("%s field %q: %v", f.name, v, err)
		}
	}
	return ""
}

// parseNumericField parses a numeric header field as archive/tar does:
// octal, padded with spaces and NULs, or GNU base-256 (two's complement,
// big-endian) when the first byte's top bit is set.
func parseNumericField(b []byte) (int64, error) {
	if len(b) > 0 && b[0]&0x80 != 0 {
		var inv byte
		if b[0]&0x40 != 0 {
			inv = 0xff
		}
		var x uint64
		for i, c := range b {
			c ^= inv
			if i == 0 {
				c &= 0x7f
			}
			if x>>56 > 0 {
				return 0, errors.New("base-256 number overflows 64 bits")
			}
			x = x<<8 | uint64(c)
		}
		if x>>63 > 0 {
			return 0, errors.New("base-256 number overflows 64 bits")
		}
		if inv == 0xff {
			return ^int64(x), nil
		}
		return int64(x), nil
	}
	s := strings.Trim(string(b), " \x00")
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	if s == "" {
		return 0, nil
	}
	x, err := strconv.ParseUint(s, 8, 64)
	if err != nil {
		return 0, errors.New("not an octal number")
	}
	return int64(x), nil
}

// parsePAXRecords parses the data of a PAX header at offset off with the
// rules of archive/tar (and POSIX pax, "pax Extended Header File Format"):
// each record is "LENGTH KEYWORD=VALUE\n", LENGTH counting the whole
// record in decimal. It also checks the values of the keywords archive/tar
// parses. It returns the records in order, or a description of the first
// malformed one.
func parsePAXRecords(data []byte, off int64, global bool) ([]paxRecord, string) {
	var recs []paxRecord
	var sparse []string
	s := string(data)
	for at := 0; at < len(s); {
		rest := s[at:]
		bad := func(why string, n int) ([]paxRecord, string) {
			raw := rest
			if n > 0 && n <= len(raw) {
				raw = raw[:n]
			} else if i := strings.IndexByte(raw, '\n'); i >= 0 {
				raw = raw[:i+1]
			}
			if len(raw) > 64 {
				raw = raw[:64] + "..."
			}
			return nil, fmt.Sprintf("malformed PAX record %q at offset %d: %s", raw, off+int64(at), why)
		}
		nStr, body, ok := strings.Cut(rest, " ")
		if !ok {
			return bad("no space after the length", 0)
		}
		n, err := strconv.ParseInt(nStr, 10, 0)
		if err != nil {
			return bad(fmt.Sprintf("length %q is not a decimal number", nStr), 0)
		}
		if n < 5 || n <= int64(len(nStr)+1) {
			return bad(fmt.Sprintf("length %d is too short for a record", n), 0)
		}
		if n > int64(len(rest)) {
			return bad(fmt.Sprintf("length %d runs past the end of the header's %d bytes of records", n, len(s)), 0)
		}
		rec := body[:int(n)-len(nStr)-1]
		if !strings.HasSuffix(rec, "\n") {
			return bad(fmt.Sprintf("length %d does not end the record at a newline", n), int(n))
		}
		k, v, ok := strings.Cut(rec[:len(rec)-1], "=")
		if !ok {
			return bad("no '=' between keyword and value", int(n))
		}
		switch {
		case k == "":
			return bad("empty keyword", int(n))
		case (k == "path" || k == "linkpath" || k == "uname" || k == "gname") && strings.IndexByte(v, 0) >= 0:
			return bad("NUL byte in the value", int(n))
		case strings.IndexByte(k, 0) >= 0:
			return bad("NUL byte in the keyword", int(n))
		}
		if v != "" {
			var verr error
			switch k {
			case "uid", "gid", "size":
				var x int64
				x, verr = strconv.ParseInt(v, 10, 64)
				if verr == nil && k == "size" && x < 0 {
					verr = errors.New("negative")
				}
			case "mtime", "atime", "ctime":
				_, verr = parsePAXTime(v)
			}
			if verr != nil {
				return bad(fmt.Sprintf("%s value %q is invalid", k, v), int(n))
			}
		}
		if !global && (k == "GNU.sparse.offset" || k == "GNU.sparse.numbytes") {
			if (len(sparse)%2 == 0) != (k == "GNU.sparse.offset") || strings.Contains(v, ",") {
				return bad("GNU.sparse.offset and GNU.sparse.numbytes records out of order", int(n))
			}
			sparse = append(sparse, v)
		}
		recs = append(recs, paxRecord{k, v})
		at += int(n)
	}
	return recs, ""
}

// parsePAXTime parses a PAX time ("SECONDS[.FRACTION]", the seconds possibly
// negative) as archive/tar does: digits past nanoseconds are dropped, and
// the fraction of a negative time counts towards the past.
func parsePAXTime(s string) (time.Time, error) {
	ss, sn, _ := strings.Cut(s, ".")
	secs, err := strconv.ParseInt(ss, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	if sn == "" {
		return time.Unix(secs, 0), nil
	}
	nano := []byte("000000000")
	for i := range len(sn) {
		c := sn[i]
		if c < '0' || c > '9' {
			return time.Time{}, fmt.Errorf("fraction %q is not decimal", sn)
		}
		if i < len(nano) {
			nano[i] = c
		}
	}
	ns, _ := strconv.ParseInt(string(nano), 10, 64)
	if strings.HasPrefix(ss, "-") {
		ns = -ns
	}
	return time.Unix(secs, ns), nil
}

// explainHeaderError describes what is wrong with the header blocks in buf
// (the archive from offset base on) that tar.Reader.Next refused with err,
// or returns "" when it cannot tell.
func explainHeaderError(buf []byte, base int64, err error) string {
	if !errors.Is(err, tar.ErrHeader) && !errors.Is(err, tar.ErrFieldTooLong) {
		return ""
	}
	c, problem, complete := walkHeaders(buf, base)
	if problem != "" || !complete {
		return problem
	}
	for _, r := range c.records {
		if strings.HasPrefix(r.key, "GNU.sparse.") {
			return fmt.Sprintf("the GNU sparse map of the entry at offset %d is invalid", c.final)
		}
	}
	if c.final-base+512 <= int64(len(buf)) && buf[c.final-base+hdrTypeflag] == 'S' {
		return fmt.Sprintf("the old GNU sparse map of the entry at offset %d is invalid", c.final)
	}
	return ""
}
