// Package tarhdr reads the headers of a tar archive the way archive/tar's
// Reader (Go 1.26) does, to the byte: the same *tar.Header values, the
// same data, the same errors, the same bytes read from the stream. It
// parses each header block in place, allocating only the Header and its
// strings, and tells what archive/tar does not: where each entry's header
// chain starts, where its own header block and its data lie, its PAX
// records in order, and the raw header bytes, from which Explain says
// what is wrong with a header archive/tar only calls invalid, and Walk
// checks a global PAX header whole.
//
// GNU sparse files (old GNU type 'S', PAX GNU.sparse 0.0, 0.1 and 1.0)
// are handed to archive/tar itself: their header chain and the stream go
// to a tar.Reader, which reads the sparse map and expands the holes.
package tarhdr

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"io"
	"strings"
	"time"
)

// Block and field layout of a tar header (POSIX ustar; GNU; star).
const (
	blockSize = 512

	// MaxSpecial is archive/tar's limit on the data of a PAX header or a
	// GNU long name or link name.
	MaxSpecial = 1 << 20

	// MaxRaw bounds the header bytes Raw keeps for one entry.
	MaxRaw = 4 << 20
)

// Format bits as archive/tar numbers them (tar.Format): formatV7 and
// formatSTAR are unexported there.
const (
	formatV7    tar.Format = 1
	formatSTAR  tar.Format = 16
	formatUSPAX            = tar.FormatUSTAR | tar.FormatPAX
)

// Record is one "LENGTH KEYWORD=VALUE\n" record of a PAX header.
type Record struct {
	Key, Value string
}

// Reader reads a tar archive's entries. Its zero value is not usable;
// use NewReader.
type Reader struct {
	r      io.Reader
	seeker io.Seeker // r's, if it has one
	off    int64     // bytes consumed from r (read or sought)
	err    error     // sticky, as archive/tar's

	remain int64       // data bytes of the current entry not yet read
	pad    int64       // padding after them
	sparse *tar.Reader // archive/tar reading a sparse entry's data
	end    int64       // where a sparse entry's data ends

	// Facts of the entry Next last returned.
	start   int64 // where its chain of header blocks starts
	final   int64 // offset of its own header block
	dataOff int64 // where its data starts
	dataEnd int64 // where its data ends, before padding
	recs    []Record

	// raw holds the bytes Next read from start on; rawPartial says that
	// some were dropped (more than MaxRaw). rawOff is the offset of
	// raw[0]; segs locate the last PAX extended header, GNU long name
	// and long link name in raw, blocks and padded data.
	raw        []byte
	cur        int // where the block being read starts in raw
	rawPartial bool
	recording  bool
	segX       seg
	segL       seg
	segK       seg

	scratch []byte          // for skipping data without seeking
	pads    [blockSize]byte // for reading padding

	// The last user and group names, returned again when a header
	// repeats them, instead of a new string.
	uname, gname string
}

// seg is a header block with its padded data in Reader.raw.
type seg struct{ from, to int }

// NewReader returns a Reader of the archive in r. When r is an io.Seeker
// whose Seek works, file data that is not read is skipped by seeking, as
// archive/tar does.
func NewReader(r io.Reader) *Reader {
	tr := &Reader{r: r}
	tr.seeker, _ = r.(io.Seeker)
	return tr
}

// Offset returns the number of bytes of the stream consumed so far.
func (tr *Reader) Offset() int64 { return tr.off }

// Start returns the offset where the header chain of the entry Next
// last read (or failed to read) begins.
func (tr *Reader) Start() int64 { return tr.start }

// HeaderOffset returns the offset of the last entry's own header block,
// after its PAX extended header and GNU long names (for a global PAX
// header, the offset of its block).
func (tr *Reader) HeaderOffset() int64 { return tr.final }

// DataOffset returns where the last entry's data starts in the stream:
// after its header block and an old GNU sparse file's extension blocks.
func (tr *Reader) DataOffset() int64 { return tr.dataOff }

// DataEnd returns where the last entry's data ends, before its padding.
// Types archive/tar reads no data of (links, directories, devices,
// FIFOs) have none, whatever their size field says.
func (tr *Reader) DataEnd() int64 { return tr.dataEnd }

// Sparse reports whether the last entry may be a GNU sparse file: an old
// GNU sparse file (type 'S'), or one with PAX records named GNU.sparse.*.
// archive/tar reads its data, filling holes with zeros, when it is one.
func (tr *Reader) Sparse() bool { return tr.sparse != nil }

// Records returns the records of the last entry's PAX header (its
// extended header, or the global header it is), in order, duplicates
// included, valid until the next call of Next.
func (tr *Reader) Records() []Record { return tr.recs }

// Raw returns the bytes Next last read, from Start on: the header blocks,
// the data of PAX headers and GNU long names, and whatever it read before
// failing. It is nil when they were more than MaxRaw bytes. It is valid
// until the next call of Next.
func (tr *Reader) Raw() []byte {
	if tr.rawPartial {
		return nil
	}
	return tr.raw
}

// Next advances to the next entry, skipping what is left of the current
// one's data, and returns its header. At the end of the archive it
// returns io.EOF. Errors are those archive/tar returns for the same
// stream, and are sticky.
func (tr *Reader) Next() (*tar.Header, error) {
	if tr.err != nil {
		return nil, tr.err
	}
	hdr, err := tr.next()
	tr.recording = false
	tr.err = err
	return hdr, err
}

// Read reads the current entry's data, returning io.EOF at its end. A
// sparse file's holes read as zeros.
func (tr *Reader) Read(p []byte) (int, error) {
	if tr.err != nil {
		return 0, tr.err
	}
	var n int
	var err error
	if tr.sparse != nil {
		n, err = tr.sparse.Read(p)
	} else {
		if int64(len(p)) > tr.remain {
			p = p[:tr.remain]
		}
		if len(p) > 0 {
			n, err = tr.r.Read(p)
			tr.remain -= int64(n)
			tr.off += int64(n)
		}
		switch {
		case err == io.EOF && tr.remain > 0:
			err = io.ErrUnexpectedEOF
		case err == nil && tr.remain == 0:
			err = io.EOF
		}
	}
	if err != nil && err != io.EOF {
		tr.err = err
	}
	return n, err
}

func (tr *Reader) next() (*tar.Header, error) {
	remain := tr.remain
	if tr.sparse != nil {
		remain = tr.end - tr.off
		tr.sparse = nil
	}
	tr.start = tr.off + remain + tr.pad
	tr.raw, tr.rawPartial, tr.cur = tr.raw[:0], false, 0
	tr.segX, tr.segL, tr.segK = seg{}, seg{}, seg{}
	tr.recs = tr.recs[:0]
	tr.remain = 0
	if err := tr.discard(remain, true); err != nil {
		return nil, err
	}
	if err := tr.skipPad(tr.pad); err != nil {
		return nil, err
	}
	tr.pad = 0
	tr.recording = true

	var pax map[string]string
	var sparseRecs bool // pax has GNU.sparse.* records
	var longName, longLink string
	format := tar.FormatUSTAR | tar.FormatPAX | tar.FormatGNU
	for {
		// The padding after a PAX header's or long name's data.
		if tr.pad > 0 {
			if _, err := tr.fill(int(tr.pad), true); err != nil {
				return nil, err
			}
			tr.pad = 0
		}
		b, err := tr.readBlock()
		if err != nil {
			return nil, err
		}
		blkOff := tr.off - blockSize
		tr.cur = len(tr.raw) - blockSize
		var h block
		typ := b[156]
		special := typ == tar.TypeXHeader || typ == tar.TypeXGlobalHeader || typ == tar.TypeGNULongName || typ == tar.TypeGNULongLink
		full := !special || typ == tar.TypeXGlobalHeader
		if err := h.parse(b, full, tr); err != nil {
			return nil, err
		}
		if h.size < 0 && !headerOnly(typ) {
			return nil, tar.ErrHeader
		}
		format &= h.format

		if special {
			if typ == tar.TypeXHeader || typ == tar.TypeXGlobalHeader {
				format &= tar.FormatPAX
			} else {
				format &= tar.FormatGNU
			}
			data, err := tr.readSpecial(h.size)
			if err != nil {
				return nil, err
			}
			s := seg{tr.cur, len(tr.raw) + int(tr.pad)}
			switch typ {
			case tar.TypeXHeader, tar.TypeXGlobalHeader:
				tr.segX = s
				tr.recs = tr.recs[:0]
				if pax, sparseRecs, err = tr.parsePAX(data); err != nil {
					return nil, err
				}
				if typ == tar.TypeXGlobalHeader {
					hdr := &tar.Header{Name: h.name, Typeflag: typ, Format: format}
					mergeGlobal(hdr, pax)
					tr.final = blkOff
					tr.dataOff = blkOff + blockSize
					tr.dataEnd = tr.dataOff + h.size
					return hdr, nil
				}
			case tar.TypeGNULongName:
				tr.segL = s
				longName = cString(data)
			case tar.TypeGNULongLink:
				tr.segK = s
				longLink = cString(data)
			}
			continue
		}

		hdr := h.header(typ)
		tr.final = blkOff
		if err := mergePAX(hdr, pax); err != nil {
			return nil, err
		}
		if longName != "" {
			hdr.Name = longName
		}
		if longLink != "" {
			hdr.Linkname = longLink
		}
		if hdr.Typeflag == '\x00' { // the old regular file type
			if strings.HasSuffix(hdr.Name, "/") {
				hdr.Typeflag = tar.TypeDir
			} else {
				hdr.Typeflag = tar.TypeReg
			}
		}
		size := hdr.Size
		if headerOnly(hdr.Typeflag) {
			size = 0
		}
		if size < 0 {
			return nil, tar.ErrHeader
		}
		if format&tar.FormatUSTAR != 0 && format&tar.FormatPAX != 0 {
			format &= tar.FormatUSTAR
		}
		if typ == tar.TypeGNUSparse || sparseRecs {
			hdr, err := tr.readSparse(size)
			if err != nil {
				return nil, err
			}
			hdr.Format = format
			return hdr, nil
		}
		hdr.Format = format
		tr.remain = size
		tr.pad = -size & (blockSize - 1)
		tr.dataOff = tr.off
		tr.dataEnd = tr.off + size
		return hdr, nil
	}
}

// readSparse has archive/tar read the entry whose own header block is at
// raw[cur:] (after the header blocks the chain needs), and its data from
// the stream. size is the data size the headers give.
func (tr *Reader) readSparse(size int64) (*tar.Header, error) {
	at := tr.cur
	var chain []byte
	if !tr.rawPartial {
		chain = tr.raw[:at+blockSize]
	} else {
		// The blocks that decide the entry: the last PAX extended
		// header and long names (each replaces the one before), in
		// order, then the entry's own.
		for _, s := range sortSegs(&tr.segX, &tr.segL, &tr.segK) {
			if s.to > s.from {
				chain = append(chain, tr.raw[s.from:s.to]...)
			}
		}
		chain = append(chain, tr.raw[at:at+blockSize]...)
	}
	sr := tar.NewReader(io.MultiReader(bytes.NewReader(chain), streamReader{tr}))
	hdr, err := sr.Next()
	if err != nil {
		return nil, err
	}
	tr.sparse = sr
	tr.dataOff = tr.final + blockSize
	if hdr.Typeflag == tar.TypeGNUSparse {
		// archive/tar has read the extension blocks after the header.
		tr.dataOff = tr.off
	}
	tr.dataEnd = tr.dataOff + size
	tr.end = tr.dataEnd
	tr.pad = -size & (blockSize - 1)
	return hdr, nil
}

// streamReader reads the stream for archive/tar, counting (and while Next
// runs, recording) what it reads.
type streamReader struct{ tr *Reader }

func (s streamReader) Read(p []byte) (int, error) {
	n, err := s.tr.r.Read(p)
	s.tr.off += int64(n)
	if s.tr.recording && n > 0 {
		s.tr.keep(p[:n])
	}
	return n, err
}

// keep appends b to raw, unless raw would grow past MaxRaw.
func (tr *Reader) keep(b []byte) {
	if len(tr.raw)+len(b) > MaxRaw {
		tr.rawPartial = true
		return
	}
	tr.raw = append(tr.raw, b...)
}

// readBlock reads a header block as archive/tar does: two zero blocks end
// the archive (io.EOF), one followed by anything else is an ErrHeader.
func (tr *Reader) readBlock() ([]byte, error) {
	b, err := tr.fill(blockSize, false)
	if err != nil {
		return nil, err
	}
	if isZero(b) {
		b, err = tr.fill(blockSize, false)
		if err != nil {
			return nil, err
		}
		if isZero(b) {
			return nil, io.EOF
		}
		return nil, tar.ErrHeader
	}
	return b, nil
}

var zeroBlock [blockSize]byte

func isZero(b []byte) bool { return string(b) == string(zeroBlock[:]) }

// fill reads n bytes onto the end of raw and returns them. Like
// io.ReadFull, it returns io.EOF when it reads nothing and
// io.ErrUnexpectedEOF when it reads some; with try (archive/tar's
// tryReadFull) it returns io.EOF either way.
func (tr *Reader) fill(n int, try bool) ([]byte, error) {
	if len(tr.raw)+n > MaxRaw {
		tr.compact()
	}
	at := len(tr.raw)
	if cap(tr.raw)-at < n {
		grown := make([]byte, at, max(2*cap(tr.raw), at+n, 4*blockSize))
		copy(grown, tr.raw)
		tr.raw = grown
	}
	got, err := io.ReadFull(tr.r, tr.raw[at:at+n])
	tr.off += int64(got)
	tr.raw = tr.raw[:at+got]
	if err != nil {
		if try && err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		return nil, err
	}
	return tr.raw[at:], nil
}

// compact makes room in raw, which has grown to MaxRaw: it keeps the
// blocks that decide the entry (the last PAX extended header and GNU long
// names, in stream order) and the block being read, and Raw no longer
// returns it.
func (tr *Reader) compact() {
	tr.rawPartial = true
	var out []byte
	for _, s := range sortSegs(&tr.segX, &tr.segL, &tr.segK) {
		if s.to <= s.from || s.from >= tr.cur {
			continue
		}
		from := len(out)
		out = append(out, tr.raw[s.from:min(s.to, tr.cur)]...)
		s.from, s.to = from, from+(s.to-s.from)
	}
	cur := len(out)
	for _, s := range []*seg{&tr.segX, &tr.segL, &tr.segK} {
		if s.from >= tr.cur && s.to > s.from {
			s.from, s.to = s.from-tr.cur+cur, s.to-tr.cur+cur
		}
	}
	out = append(out, tr.raw[tr.cur:]...)
	tr.raw, tr.cur = append(tr.raw[:0], out...), cur
}

// sortSegs returns the segments in stream order.
func sortSegs(segs ...*seg) []*seg {
	for i := range segs {
		for j := i + 1; j < len(segs); j++ {
			if segs[j].from < segs[i].from {
				segs[i], segs[j] = segs[j], segs[i]
			}
		}
	}
	return segs
}

// skipPad reads the padding after the previous entry's data, as
// archive/tar does: a stream that ends in it ends the archive.
func (tr *Reader) skipPad(n int64) error {
	if n == 0 {
		return nil
	}
	got, err := io.ReadFull(tr.r, tr.pads[:n])
	tr.off += int64(got)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	return err
}

// discard skips n bytes of data as archive/tar does: with seek, by
// seeking to the last byte, when the stream seeks, and reading it, so
// that a truncated file is noticed.
func (tr *Reader) discard(n int64, seek bool) error {
	var sought int64
	if seek && tr.seeker != nil && n > 1 {
		pos1, err := tr.seeker.Seek(0, io.SeekCurrent)
		if pos1 >= 0 && err == nil {
			pos2, err := tr.seeker.Seek(n-1, io.SeekCurrent)
			if pos2 < 0 || err != nil {
				return err
			}
			sought = pos2 - pos1
			tr.off += sought
		}
	}
	left := n - sought
	for left > 0 {
		if tr.scratch == nil {
			tr.scratch = make([]byte, 32<<10)
		}
		got, err := tr.r.Read(tr.scratch[:min(left, int64(len(tr.scratch)))])
		tr.off += int64(got)
		left -= int64(got)
		if err == io.EOF {
			if left > 0 {
				return io.ErrUnexpectedEOF
			}
			break
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// readSpecial reads the data of a PAX header or GNU long name of size
// bytes as archive/tar does: more than MaxSpecial bytes are
// tar.ErrFieldTooLong.
func (tr *Reader) readSpecial(size int64) ([]byte, error) {
	if size > MaxSpecial {
		// Read as far as archive/tar does, keeping none of it: the
		// header block says what is wrong.
		err := tr.discard(MaxSpecial+1, false)
		if err == nil {
			return nil, tar.ErrFieldTooLong
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	data, err := tr.fill(int(size), false)
	if err == io.EOF && size > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, err
	}
	tr.pad = -size & (blockSize - 1)
	return data, nil
}

// headerOnly reports whether archive/tar reads no data for an entry of
// type typ, whatever its size field says.
func headerOnly(typ byte) bool {
	switch typ {
	case tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo:
		return true
	}
	return false
}

// cString returns b up to its first NUL.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// parseNumeric parses a numeric header field as archive/tar does: octal,
// padded with spaces and NULs, or base-256 (two's complement, big-endian)
// when the first byte's top bit is set.
func parseNumeric(b []byte) (int64, bool) {
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
				return 0, false
			}
			x = x<<8 | uint64(c)
		}
		if x>>63 > 0 {
			return 0, false
		}
		if inv == 0xff {
			return ^int64(x), true
		}
		return int64(x), true
	}
	return parseOctal(b)
}

// parseOctal parses an octal field: leading and trailing spaces and NULs
// are dropped, and the digits end at a NUL.
func parseOctal(b []byte) (int64, bool) {
	i, j := 0, len(b)
	for i < j && (b[i] == ' ' || b[i] == 0) {
		i++
	}
	for j > i && (b[j-1] == ' ' || b[j-1] == 0) {
		j--
	}
	if i == j {
		return 0, true
	}
	var x uint64
	for _, c := range b[i:j] {
		if c == 0 {
			break
		}
		if c < '0' || c > '7' || x>>61 != 0 {
			return 0, false
		}
		x = x<<3 | uint64(c-'0')
	}
	return int64(x), true
}

// block is what one header block says.
type block struct {
	format             tar.Format
	name, linkname     string
	size, mode         int64
	uid, gid           int64
	mtime              int64
	uname, gname       string
	devmajor, devminor int64
	atime, ctime       time.Time
	typ                byte
}

// parse parses the header block b as archive/tar's readHeader does. With
// full false (a PAX extended header or GNU long name, whose fields other
// than the size archive/tar drops), it checks the fields but keeps no
// strings.
func (h *block) parse(b []byte, full bool, tr *Reader) error {
	// The checksum: the sum of the block's bytes, the checksum field
	// taken as spaces, unsigned (POSIX) or signed (old Sun tar).
	// Eight bytes at a time: four 16-bit lanes of byte sums (64 words
	// of at most 510 a lane fit), and the OR of every byte for the
	// ASCII check.
	var lanes, or uint64
	for i := 0; i < blockSize; i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		or |= w
		lanes += w&0x00ff00ff00ff00ff + w>>8&0x00ff00ff00ff00ff
	}
	unsigned := int64(lanes&0xffff + lanes>>16&0xffff + lanes>>32&0xffff + lanes>>48)
	for _, c := range b[148:156] {
		unsigned -= int64(c)
	}
	unsigned += 8 * ' '
	nonASCII := or&0x8080808080808080 != 0
	stored, ok := parseOctal(b[148:156])
	if !ok || stored != unsigned && (!nonASCII || stored != signedSum(b)) {
		return tar.ErrHeader
	}
	magic, version, trailer := b[257:263], b[263:265], b[508:512]
	switch {
	case string(magic) == "ustar\x00" && string(trailer) == "tar\x00":
		h.format = formatSTAR
	case string(magic) == "ustar\x00":
		h.format = formatUSPAX
	case string(magic) == "ustar " && string(version) == " \x00":
		h.format = tar.FormatGNU
	default:
		h.format = formatV7
	}
	h.typ = b[156]
	bad := false
	num := func(f []byte) int64 {
		x, ok := parseNumeric(f)
		bad = bad || !ok
		return x
	}
	h.size = num(b[124:136])
	h.mode = num(b[100:108])
	h.uid = num(b[108:116])
	h.gid = num(b[116:124])
	h.mtime = num(b[136:148])
	if full {
		h.name = cString(b[0:100])
		h.linkname = cString(b[157:257])
	}
	if h.format == formatV7 {
		h.format = 0 // archive/tar leaves a V7 header's Format unknown
		if bad {
			return tar.ErrHeader
		}
		return nil
	}
	h.devmajor = num(b[329:337])
	h.devminor = num(b[337:345])
	if full {
		h.uname = tr.intern(&tr.uname, b[265:297])
		h.gname = tr.intern(&tr.gname, b[297:329])
	}
	var prefix []byte
	switch h.format {
	case formatUSPAX:
		prefix = cut(b[345:500])
		if nonASCII ||
			b[135] != 0 || b[107] != 0 || b[115] != 0 || b[123] != 0 ||
			b[147] != 0 || b[336] != 0 || b[344] != 0 {
			h.format = 0 // not strictly USTAR
		}
	case formatSTAR:
		h.format = 0
		prefix = cut(b[345:476])
		h.atime = time.Unix(num(b[476:488]), 0)
		h.ctime = time.Unix(num(b[488:500]), 0)
	case tar.FormatGNU:
		// The GNU access and change times; archive/tar written by Go
		// before 1.8 put a prefix there, which is taken when the times
		// do not parse.
		ok := true
		if b[345] != 0 {
			var x int64
			x, ok = parseNumeric(b[345:357])
			h.atime = time.Unix(x, 0)
		}
		if b[357] != 0 {
			x, ok2 := parseNumeric(b[357:369])
			h.ctime = time.Unix(x, 0)
			ok = ok && ok2
		}
		if !ok {
			h.atime, h.ctime = time.Time{}, time.Time{}
			if p := cut(b[345:500]); ascii(p) {
				prefix = p
			}
			h.format = 0
		}
	}
	if bad {
		return tar.ErrHeader
	}
	if full && len(prefix) > 0 {
		h.name = string(prefix) + "/" + h.name
	}
	return nil
}

// signedSum is the checksum of b as old Sun tar computed it, summing
// signed bytes.
func signedSum(b []byte) int64 {
	var s int64
	for i, c := range b {
		if i >= 148 && i < 156 {
			c = ' '
		}
		s += int64(int8(c))
	}
	return s
}

// cut returns b up to its first NUL.
func cut(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

func ascii(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// intern returns the string of the NUL-terminated field f, the same one
// as last time when it has not changed.
func (tr *Reader) intern(last *string, f []byte) string {
	f = cut(f)
	if string(f) != *last {
		*last = string(f)
	}
	return *last
}

// header returns the tar.Header of an entry's own block.
func (h *block) header(typ byte) *tar.Header {
	return &tar.Header{
		Typeflag:   typ,
		Name:       h.name,
		Linkname:   h.linkname,
		Size:       h.size,
		Mode:       h.mode,
		Uid:        int(h.uid),
		Gid:        int(h.gid),
		Uname:      h.uname,
		Gname:      h.gname,
		ModTime:    time.Unix(h.mtime, 0),
		AccessTime: h.atime,
		ChangeTime: h.ctime,
		Devmajor:   h.devmajor,
		Devminor:   h.devminor,
	}
}

// parsePAX parses a PAX header's records as archive/tar does (and POSIX
// pax, "pax Extended Header File Format"): each is "LENGTH
// KEYWORD=VALUE\n", LENGTH counting the whole record in decimal. A later
// record replaces an earlier one of the same keyword; GNU sparse 0.0's
// repeated GNU.sparse.offset and GNU.sparse.numbytes records become one
// GNU.sparse.map, as in 0.1. The records are also kept in order. sparse
// says whether there are GNU.sparse.* records.
func (tr *Reader) parsePAX(data []byte) (pax map[string]string, sparse bool, err error) {
	s := string(data)
	pax = make(map[string]string)
	var sparseMap []string
	for len(s) > 0 {
		k, v, rest, ok := parseRecord(s)
		if !ok {
			return nil, false, tar.ErrHeader
		}
		s = rest
		tr.recs = append(tr.recs, Record{k, v})
		sparse = sparse || strings.HasPrefix(k, "GNU.sparse.")
		switch k {
		case "GNU.sparse.offset", "GNU.sparse.numbytes":
			if (len(sparseMap)%2 == 0) != (k == "GNU.sparse.offset") || strings.Contains(v, ",") {
				return nil, false, tar.ErrHeader
			}
			sparseMap = append(sparseMap, v)
		default:
			pax[k] = v
		}
	}
	if len(sparseMap) > 0 {
		pax["GNU.sparse.map"] = strings.Join(sparseMap, ",")
	}
	return pax, sparse, nil
}

// parseRecord parses the PAX record s starts with.
func parseRecord(s string) (k, v, rest string, ok bool) {
	nStr, body, ok := strings.Cut(s, " ")
	if !ok {
		return "", "", s, false
	}
	n, ok := parseDec(nStr)
	if !ok || n < 5 || n > int64(len(s)) {
		return "", "", s, false
	}
	n -= int64(len(nStr) + 1)
	if n <= 0 || body[n-1] != '\n' {
		return "", "", s, false
	}
	k, v, ok = strings.Cut(body[:n-1], "=")
	if !ok || k == "" {
		return "", "", s, false
	}
	switch k {
	case "path", "linkpath", "uname", "gname":
		ok = strings.IndexByte(v, 0) < 0
	default:
		ok = strings.IndexByte(k, 0) < 0
	}
	return k, v, body[n:], ok
}

// mergePAX sets the fields of hdr the PAX records give, as archive/tar
// does: an empty value keeps the header block's.
func mergePAX(hdr *tar.Header, pax map[string]string) error {
	for k, v := range pax {
		if v == "" {
			continue
		}
		var err error
		var id int64
		var ok bool
		switch k {
		case "path":
			hdr.Name = v
		case "linkpath":
			hdr.Linkname = v
		case "uname":
			hdr.Uname = v
		case "gname":
			hdr.Gname = v
		case "uid":
			id, ok = parseDec(v)
			hdr.Uid, err = int(id), decErr(ok)
		case "gid":
			id, ok = parseDec(v)
			hdr.Gid, err = int(id), decErr(ok)
		case "atime":
			hdr.AccessTime, err = ParsePAXTime(v)
		case "mtime":
			hdr.ModTime, err = ParsePAXTime(v)
		case "ctime":
			hdr.ChangeTime, err = ParsePAXTime(v)
		case "size":
			hdr.Size, ok = parseDec(v)
			err = decErr(ok)
		default:
			if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				if hdr.Xattrs == nil {
					hdr.Xattrs = make(map[string]string)
				}
				hdr.Xattrs[name] = v
			}
		}
		if err != nil {
			return tar.ErrHeader
		}
	}
	hdr.PAXRecords = pax
	return nil
}

// mergeGlobal sets what archive/tar returns of a global PAX header: its
// records, unless one of their values does not parse (archive/tar then
// drops them), the path record as its name, and its SCHILY.xattr records
// as Xattrs.
func mergeGlobal(hdr *tar.Header, pax map[string]string) {
	probe := &tar.Header{Name: hdr.Name}
	if err := mergePAX(probe, pax); err != nil {
		// archive/tar stops at the first value that does not parse, in
		// map order; which fields it set before then is chance.
		return
	}
	hdr.Name = probe.Name
	hdr.Xattrs = probe.Xattrs
	hdr.PAXRecords = pax
}

// ParsePAXTime parses a PAX time ("SECONDS[.FRACTION]", the seconds
// possibly negative) as archive/tar does: digits past nanoseconds are
// dropped, and the fraction of a negative time counts towards the past.
func ParsePAXTime(s string) (time.Time, error) {
	ss, sn, _ := strings.Cut(s, ".")
	secs, ok := parseDec(ss)
	if !ok {
		return time.Time{}, tar.ErrHeader
	}
	if sn == "" {
		return time.Unix(secs, 0), nil
	}
	// Nine digits of nanoseconds, the rest checked and dropped.
	var ns int64
	for i := range len(sn) {
		c := sn[i]
		if c < '0' || c > '9' {
			return time.Time{}, tar.ErrHeader
		}
		if i < 9 {
			ns = ns*10 + int64(c-'0')
		}
	}
	for i := len(sn); i < 9; i++ {
		ns *= 10
	}
	if ss != "" && ss[0] == '-' {
		ns = -ns
	}
	return time.Unix(secs, ns), nil
}

// parseDec parses a signed decimal number as strconv.ParseInt(s, 10, 64)
// does, reporting whether it is one that fits.
func parseDec(s string) (int64, bool) {
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg, s = s[0] == '-', s[1:]
	}
	if s == "" {
		return 0, false
	}
	var x uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' || x > (1<<64-1)/10 {
			return 0, false
		}
		x = x*10 + uint64(c-'0')
		if x < uint64(c-'0') {
			return 0, false
		}
	}
	switch {
	case !neg && x <= 1<<63-1:
		return int64(x), true
	case neg && x <= 1<<63:
		return -int64(x), true
	}
	return 0, false
}

func decErr(ok bool) error {
	if !ok {
		return tar.ErrHeader
	}
	return nil
}
