package gunzip

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mathbits "math/bits"
	"unsafe"
)

// Table geometry. A decode table entry is a uint32:
//
//	bits 0-3   number of bits the entry consumes (code length, or the
//	           primary-table bits for a subtable pointer)
//	bits 4-5   zero, so that the entry's low six bits are a shift count
//	bit  6     literal
//	bit  7     subtable pointer
//	bits 8-11  extra bits to read after the code (lengths, distances)
//	bit  12    end of block; for a subtable pointer, bits 12-15 hold its
//	           index width
//	bits 16-31 value: the literal byte, a length or distance base, or the
//	           subtable's offset
const (
	litBits  = 11 // primary bits of the literal/length table
	distBits = 8  // primary bits of the distance table

	lenMask      = 15
	flagLiteral  = 1 << 6
	flagSubtable = 1 << 7
	flagEOB      = 1 << 12

	maxCodeLen = 15
	numLitLen  = 288
	numDist    = 32

	// The literal/length table needs at most 2342 entries for 11 primary
	// bits and the distance table 402 for 8 (zlib's enough tool); they
	// are rounded up to powers of two, so that the fast loop's masked
	// indexes need no bounds checks.
	litTableSize  = 4096
	distTableSize = 512
)

var lengthBase = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
var lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
var distBase = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
var distExtra = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}

// codeLenOrder is the order of the code length code lengths.
var codeLenOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

var (
	errCorrupt = errors.New("gunzip: corrupt deflate data")
	errBadTree = errors.New("gunzip: invalid Huffman code")
)

// buildTable fills table with a canonical Huffman decode table for lens,
// the entry of symbol s being syms[s] (flags, extra bits and value) plus
// its code length. It rejects over-subscribed codes and incomplete ones
// (except a code with a single symbol, as zlib allows for distances).
func buildTable(table []uint32, lens []uint8, bits uint, syms []uint32) error {
	var count [16]int
	for _, l := range lens {
		count[l&15]++
	}
	used := len(lens) - count[0]
	count[0] = 0
	left := 1
	for l := 1; l <= maxCodeLen; l++ {
		left <<= 1
		left -= count[l]
		if left < 0 {
			return errBadTree
		}
	}
	if left > 0 && used > 1 {
		return errBadTree
	}
	// Sort symbols by code length, then symbol.
	var offs [maxCodeLen + 2]int
	for l := 1; l <= maxCodeLen; l++ {
		offs[l+1] = offs[l] + count[l]
	}
	var sortedBuf [numLitLen]uint16
	sorted := sortedBuf[:used]
	syms = syms[:len(lens)]
	for s, l := range lens {
		if l != 0 {
			sorted[offs[l]] = uint16(s)
			offs[l]++
		}
	}
	primary := 1 << bits
	table[0] = 0 // an invalid entry: consumes 0 bits, no flags
	// Codes up to the primary width, in canonical order. A code of length
	// l owns the indexes whose low l bits are its reversed code: table[:n]
	// holds the entries for the low log2(n) bits, and doubling it makes
	// those for one more bit, to which the codes of that length are added.
	code, si := 0, 0
	for l, n := 1, 1; l <= int(bits); l, n = l+1, 2*n {
		copy(table[n:2*n], table[:n])
		for c := count[l]; c > 0; c-- {
			rev := mathbits.Reverse16(uint16(code)) >> (16 - l)
			table[rev] = syms[sorted[si]] | uint32(l)
			si++
			code++
		}
		code <<= 1
	}
	if si == used {
		return nil
	}
	// Longer codes go to subtables, pointed to by the primary entry of
	// their low bits.
	next := primary // next free subtable slot
	subPrefix := -1 // primary index of the current subtable
	subStart, subBits := 0, uint(0)
	for l := int(bits) + 1; l <= maxCodeLen; l++ {
		for n := 0; n < count[l]; n++ {
			s := sorted[si]
			si++
			rev := int(mathbits.Reverse16(uint16(code)) >> (16 - l))
			prefix := rev & (primary - 1)
			if prefix != subPrefix {
				// Size the subtable for the codes sharing this prefix:
				// count codes at this and longer lengths that fall under
				// it, growing until it is full.
				subBits = uint(l) - bits
				rem := 1 << subBits
				for cl := l; cl <= maxCodeLen; cl++ {
					c := count[cl]
					if cl == l {
						c -= n
					}
					rem -= c
					if rem <= 0 {
						break
					}
					rem <<= 1
					subBits++
				}
				subStart = next
				next += 1 << subBits
				if next > len(table) {
					return errBadTree
				}
				subPrefix = prefix
				table[prefix] = flagSubtable | uint32(bits) | uint32(subBits)<<12 | uint32(subStart)<<16
				clear(table[subStart : subStart+1<<subBits])
			}
			e := syms[s] | uint32(uint(l)-bits)
			step := 1 << (uint(l) - bits)
			sub := table[subStart : subStart+1<<subBits]
			for i := rev >> bits; i < len(sub); i += step {
				sub[i] = e
			}
			code++
		}
		code <<= 1
	}
	return nil
}

// litSyms, distSyms and clenSyms are the decode table entries of the
// symbols of each alphabet, but for their code lengths.
var litSyms, distSyms, clenSyms = symTable(numLitLen, litSym), symTable(numDist, distSym), symTable(19, clenSym)

func symTable(n int, sym func(s int) uint32) []uint32 {
	t := make([]uint32, n)
	for s := range t {
		t[s] = sym(s)
	}
	return t
}

func litSym(s int) uint32 {
	switch {
	case s < 256:
		return flagLiteral | uint32(s)<<16
	case s == 256:
		return flagEOB
	case s < 286:
		i := s - 257
		return uint32(lengthExtra[i])<<8 | uint32(lengthBase[i])<<16
	}
	return 0 // 286, 287: invalid
}

func distSym(s int) uint32 {
	if s < 30 {
		return uint32(distExtra[s])<<8 | uint32(distBase[s])<<16
	}
	return 0 // 30, 31: invalid
}

var fixedLit, fixedDist []uint32

func init() {
	var lens [numLitLen]uint8
	for i := range lens {
		switch {
		case i < 144:
			lens[i] = 8
		case i < 256:
			lens[i] = 9
		case i < 280:
			lens[i] = 7
		default:
			lens[i] = 8
		}
	}
	fixedLit = make([]uint32, litTableSize)
	if err := buildTable(fixedLit, lens[:], litBits, litSyms); err != nil {
		panic(err)
	}
	var dl [numDist]uint8
	for i := range dl {
		dl[i] = 5
	}
	fixedDist = make([]uint32, distTableSize)
	if err := buildTable(fixedDist, dl[:], distBits, distSyms); err != nil {
		panic(err)
	}
}

// Window and buffer sizes. out holds windowSize bytes of history followed
// by up to outChunk new bytes, plus slack for the 8-byte match copies.
const (
	windowSize = 32 << 10
	outChunk   = 256 << 10
	outSlack   = 16
	inSize     = 128 << 10
	maxMatch   = 258
)

// inflater decodes one raw DEFLATE stream.
type inflater struct {
	r      io.Reader
	in     []byte // input buffer; in[ip:iend] unread
	ip     int
	iend   int
	eof    bool  // r returned EOF
	inRead int64 // bytes consumed from r into in
	// borrowed means in is a caller's buffer, read in place: once it
	// runs out, fill copies what is left into a buffer of the
	// inflater's own and reads on from r.
	borrowed bool
	bitbuf   uint64 // low nbits bits are valid
	nbits    uint

	out  []byte // window + chunk
	op   int    // write position in out
	rp   int    // read position: out[rp:op] not yet returned
	done bool   // final block finished

	state    int // stateHeader, stateStored, stateHuffman
	final    bool
	stored   int // bytes left in a stored block
	lit      []uint32
	dist     []uint32
	dynLit   []uint32
	dynDist  []uint32
	err      error // read error from r
	lensBuf  [numLitLen + numDist]uint8
	clenTbl  []uint32
	pendLen  int // match bytes still to copy when out filled up
	pendDist int

	// limit is the output position at which step stops filling out; out
	// has maxMatch+outSlack bytes beyond it.
	limit int
	// noSlide keeps all output in out (a chunk decoded into one buffer).
	noSlide bool
	// floor is where output starts in out: before it is a placeholder
	// for a window shorter than 32 KiB, which no distance may reach.
	// While it is not 0, the careful loop decodes (huffmanSlow): the
	// fast one checks distances against op alone.
	floor int
	// stopAt, when >= 0, is a bit position in the input (counted from the
	// first bit the inflater read): decoding stops, stopped and done set,
	// at the first block header at or after it.
	stopAt  int64
	stopped bool
	// doomed, if not nil, holds block header positions (bitBase plus
	// bitPos) that a failed attempt at a chunk reached: decoding that
	// reaches one fails with errDoomed. seen collects the header
	// positions reached.
	doomed  map[int64]struct{}
	seen    []int64
	bitBase int64

	// Marker tracking, for a chunk decoded before the window before it is
	// known (see markWindow): orig[i], for i < lastMarker, is 1+j if
	// out[i] is a copy of byte j of the unknown window, else 0; no byte
	// from lastMarker on is such a copy. lastMarker is 0 when nothing is
	// unknown.
	orig       []uint16
	lastMarker int
	// maxMarked bounds the marked region (maxMarked if 0).
	maxMarked int
	// tooMany means the marked region would outgrow maxMarked: decoding
	// stops after the match at redoAt, which copied from distance
	// redoDist bytes not tracked, until resume fills in the window.
	tooMany  bool
	redoAt   int
	redoLen  int
	redoDist int
}

// maxMarked bounds the output of a chunk up to its last copy of the
// unknown window (orig takes two bytes per output byte). On the Debian
// layer most chunks need under a megabyte, but a few highly compressible
// ones copy window bytes to their end (9 MB each): tracking those costs
// more, in copies and memory, than the consumer finishing them once the
// window is known (resume).
const maxMarked = 1 << 20

// markWindow treats out[:windowSize] as the unknown window before the
// data: output copied from it is tracked in orig.
func (f *inflater) markWindow(orig []uint16) {
	f.op, f.rp = windowSize, windowSize
	if cap(orig) < 2*windowSize {
		orig = make([]uint16, 2*windowSize)
	}
	orig = orig[:windowSize]
	for i := range orig {
		orig[i] = uint16(i + 1)
	}
	f.orig = orig
	f.lastMarker = windowSize
}

// mark tracks a match of n bytes at dst copied from distance d whose
// source starts before lastMarker, and returns the new lastMarker. orig
// ends where its last marker does (it is zero beyond) and grows, zeroed,
// when a copy carries markers further.
func (f *inflater) mark(dst, d, n int) int {
	s := dst - d
	m := min(d, n) // the source proper; the rest repeats it
	src := f.orig[s:min(s+m, len(f.orig))]
	var any uint64
	i := 0
	for ; i+4 <= len(src); i += 4 {
		any |= binary.LittleEndian.Uint64((*[8]byte)(unsafe.Pointer(&src[i]))[:])
	}
	for ; i < len(src); i++ {
		any |= uint64(src[i])
	}
	if any == 0 {
		return f.lastMarker // copies of known bytes only
	}
	end := dst + n
	if l := len(f.orig); end > l {
		if end > cmp.Or(f.maxMarked, maxMarked) {
			f.tooMany = true
			f.redoAt, f.redoLen, f.redoDist = dst, n, d
			return f.lastMarker
		}
		grow := min(max(end, 2*l), cmp.Or(f.maxMarked, maxMarked))
		if grow > cap(f.orig) {
			bigger := make([]uint16, l, grow)
			copy(bigger, f.orig)
			f.orig = bigger
		}
		f.orig = f.orig[:grow]
		clear(f.orig[l:])
	}
	if d >= n {
		copy(f.orig[dst:end], f.orig[s:s+n])
	} else {
		o := f.orig[s:end]
		for i := d; i < len(o); i++ {
			o[i] = o[i-d]
		}
	}
	f.lastMarker = end
	return end
}

// resume ends the marker tracking of an inflater stopped by tooMany, win
// being the real output before the chunk (its last 32 KiB, or all of it
// if less): it fills in the window and the bytes copied from it, redoes
// the match that stopped decoding, all of the output from rp on being
// unread. It fails if the data reached back beyond win.
func (f *inflater) resume(win []byte) error {
	out := f.out
	copy(out[windowSize-len(win):windowSize], win)
	f.floor = windowSize - len(win)
	if err := resolve(out[windowSize:f.lastMarker], f.orig[windowSize:f.lastMarker], win); err != nil {
		return err
	}
	if f.tooMany {
		dst, src := f.redoAt, f.redoAt-f.redoDist
		if src < windowSize-len(win) {
			return fmt.Errorf("%w: distance beyond the window", errCorrupt)
		}
		for i := 0; i < f.redoLen; i++ {
			out[dst+i] = out[src+i]
		}
	}
	f.orig, f.lastMarker, f.tooMany = nil, 0, false
	f.doomed, f.seen = nil, nil
	return nil
}

const (
	stateHeader = iota
	stateStored
	stateHuffman
)

func newInflater(r io.Reader) *inflater {
	return newInflaterOut(r, make([]byte, windowSize+outChunk+maxMatch+outSlack))
}

// newInflaterOut returns an inflater writing into out, whose last
// maxMatch+outSlack bytes are slack.
func newInflaterOut(r io.Reader, out []byte) *inflater {
	var in []byte
	if r != nil {
		in = make([]byte, inSize+16)
	}
	return &inflater{
		r:       r,
		in:      in,
		out:     out,
		limit:   len(out) - maxMatch - outSlack,
		dynLit:  make([]uint32, litTableSize),
		dynDist: make([]uint32, distTableSize),
		clenTbl: make([]uint32, 1<<7),
		stopAt:  -1,
	}
}

// newInflaterBuf returns an inflater of all of in, which it reads in
// place, writing into out as newInflaterOut does.
func newInflaterBuf(in, out []byte) *inflater {
	f := newInflaterOut(nil, out)
	f.in, f.iend, f.inRead, f.eof = in, len(in), int64(len(in)), true
	return f
}

// newInflaterBorrow returns an inflater that reads in in place, then r,
// writing into out as newInflaterOut does.
func newInflaterBorrow(in []byte, r io.Reader, out []byte) *inflater {
	f := newInflaterBuf(in, out)
	f.r, f.eof, f.borrowed = r, false, true
	return f
}

// bitPos is the number of input bits consumed so far.
func (f *inflater) bitPos() int64 {
	return (f.inRead-int64(f.iend-f.ip))*8 - int64(f.nbits)
}

// skipBits drops n < 8 bits of input.
func (f *inflater) skipBits(n uint) bool {
	_, ok := f.bits(n)
	return ok
}

// reset starts a new stream on the same buffers, keeping unread input.
func (f *inflater) reset() {
	f.bitbuf, f.nbits = 0, 0
	f.op, f.rp = 0, 0
	f.done, f.state, f.final, f.err = false, stateHeader, false, nil
	f.pendLen = 0
	f.stopped = false
	f.lastMarker, f.tooMany = 0, false
}

// fill moves unread input to the front and reads more. It returns false
// when no more input can be had.
func (f *inflater) fill() bool {
	if f.eof {
		return false
	}
	if f.borrowed {
		own := make([]byte, inSize+16)
		n := copy(own, f.in[f.ip:f.iend])
		f.in, f.ip, f.iend, f.borrowed = own, 0, n, false
	}
	n := copy(f.in, f.in[f.ip:f.iend])
	f.ip, f.iend = 0, n
	for f.iend < inSize && !f.eof {
		m, err := f.r.Read(f.in[f.iend:inSize])
		f.iend += m
		f.inRead += int64(m)
		if err == io.EOF {
			f.eof = true
		} else if err != nil {
			f.err = err
			return f.iend > 0
		}
		if m == 0 && err == nil {
			continue
		}
		if f.iend-f.ip >= 8 {
			break
		}
	}
	return f.iend > f.ip
}

// need makes sure at least n bits (n <= 57) are in the bit buffer, reading
// byte by byte; it is the slow path used near the end of the input.
func (f *inflater) need(n uint) bool {
	for f.nbits < n {
		if f.ip >= f.iend && !f.fill() {
			return false
		}
		f.bitbuf |= uint64(f.in[f.ip]) << f.nbits
		f.ip++
		f.nbits += 8
	}
	return true
}

func (f *inflater) bits(n uint) (uint32, bool) {
	if !f.need(n) {
		return 0, false
	}
	v := uint32(f.bitbuf & (1<<n - 1))
	f.bitbuf >>= n
	f.nbits -= n
	return v, true
}

// decodeSym decodes one symbol with table t of primary width pb, slowly.
func (f *inflater) decodeSym(t []uint32, pb uint) (uint32, bool) {
	// Make sure enough bits are there for the longest code, if possible.
	f.need(maxCodeLen)
	e := t[f.bitbuf&(1<<pb-1)]
	if e&flagSubtable != 0 {
		sb := uint(e>>12) & 15
		idx := int(e>>16) + int((f.bitbuf>>pb)&(1<<sb-1))
		if e&lenMask > uint32(f.nbits) {
			return 0, false
		}
		e = t[idx]
		l := uint(e&lenMask) + pb
		if l > f.nbits || e&lenMask == 0 {
			return 0, false
		}
		f.bitbuf >>= l
		f.nbits -= l
		return e, true
	}
	l := uint(e & lenMask)
	if l == 0 || l > f.nbits {
		return 0, false
	}
	f.bitbuf >>= l
	f.nbits -= l
	return e, true
}

// readHeader reads a block header and prepares its tables.
func (f *inflater) readHeader() error {
	h, ok := f.bits(3)
	if !ok {
		return io.ErrUnexpectedEOF
	}
	f.final = h&1 != 0
	switch h >> 1 {
	case 0:
		// Stored: skip to a byte boundary, then LEN and NLEN.
		f.bitbuf >>= f.nbits & 7
		f.nbits -= f.nbits & 7
		v, ok := f.bits(16)
		nv, ok2 := f.bits(16)
		if !ok || !ok2 {
			return io.ErrUnexpectedEOF
		}
		if v != ^nv&0xffff {
			return errCorrupt
		}
		f.stored = int(v)
		f.state = stateStored
	case 1:
		f.lit, f.dist = fixedLit, fixedDist
		f.state = stateHuffman
	case 2:
		if err := f.readDynamic(); err != nil {
			return err
		}
		f.lit, f.dist = f.dynLit, f.dynDist
		f.state = stateHuffman
	default:
		return errCorrupt
	}
	return nil
}

func (f *inflater) readDynamic() error {
	return readDynamic(f, f.lensBuf[:], f.clenTbl, f.dynLit, f.dynDist)
}

// bitSource is what readDynamic reads a dynamic block header from.
type bitSource interface {
	bits(n uint) (uint32, bool)
	decodeSym(t []uint32, pb uint) (uint32, bool)
}

// readDynamic reads the code lengths of a dynamic block from f (after the
// three header bits) and builds its decode tables into lit and dist, using
// lensBuf and clenTbl as scratch.
func readDynamic(f bitSource, lensBuf []uint8, clenTbl, lit, dist []uint32) error {
	v, ok := f.bits(14)
	if !ok {
		return io.ErrUnexpectedEOF
	}
	nlit := int(v&31) + 257
	ndist := int(v>>5&31) + 1
	nclen := int(v>>10) + 4
	if nlit > 286 || ndist > 30 {
		return errCorrupt
	}
	var clens [19]uint8
	for i := 0; i < nclen; i++ {
		c, ok := f.bits(3)
		if !ok {
			return io.ErrUnexpectedEOF
		}
		clens[codeLenOrder[i]] = uint8(c)
	}
	if err := buildTable(clenTbl, clens[:], 7, clenSyms); err != nil {
		return err
	}
	lens := lensBuf[:nlit+ndist]
	for i := 0; i < len(lens); {
		e, ok := f.decodeSym(clenTbl, 7)
		if !ok {
			return errCorrupt
		}
		sym := e >> 16
		var rep int
		var val uint8
		switch {
		case sym < 16:
			lens[i] = uint8(sym)
			i++
			continue
		case sym == 16:
			if i == 0 {
				return errCorrupt
			}
			r, ok := f.bits(2)
			if !ok {
				return io.ErrUnexpectedEOF
			}
			rep, val = 3+int(r), lens[i-1]
		case sym == 17:
			r, ok := f.bits(3)
			if !ok {
				return io.ErrUnexpectedEOF
			}
			rep = 3 + int(r)
		default:
			r, ok := f.bits(7)
			if !ok {
				return io.ErrUnexpectedEOF
			}
			rep = 11 + int(r)
		}
		if i+rep > len(lens) {
			return errCorrupt
		}
		for ; rep > 0; rep-- {
			lens[i] = val
			i++
		}
	}
	if lens[256] == 0 {
		return errCorrupt // no end-of-block code
	}
	if err := buildTable(lit, lens[:nlit], litBits, litSyms); err != nil {
		return err
	}
	return buildTable(dist, lens[nlit:], distBits, distSyms)
}

func clenSym(s int) uint32 { return uint32(s) << 16 }

// slide moves the last windowSize bytes of output to the front once the
// reader has taken everything before them.
func (f *inflater) slide() {
	if f.noSlide || f.op < f.limit || f.rp < f.op-windowSize {
		return
	}
	f.moveWindow(f.out)
}

// moveWindow moves the last windowSize bytes of output to the front of
// to, which becomes the output buffer (to may be out itself).
func (f *inflater) moveWindow(to []byte) {
	shift := f.op - windowSize
	copy(to, f.out[shift:f.op])
	f.out = to
	f.op -= shift
	f.rp -= shift
	f.floor = max(f.floor-shift, 0)
}

// step decodes until the output chunk is full, the stream ends, or an error.
func (f *inflater) step() error {
	f.slide()
	limit := f.limit // stop filling at this output position
	if f.op >= limit {
		return nil
	}
	for f.op < limit && !f.done && !f.tooMany {
		if f.pendLen > 0 {
			f.copyMatch(f.pendLen, f.pendDist, limit)
			continue
		}
		switch f.state {
		case stateHeader:
			if f.stopAt >= 0 && f.bitPos() >= f.stopAt {
				f.done, f.stopped = true, true
				return nil
			}
			if f.doomed != nil {
				p := f.bitBase + f.bitPos()
				if _, ok := f.doomed[p]; ok {
					return errDoomed
				}
				f.seen = append(f.seen, p)
			}
			if err := f.readHeader(); err != nil {
				return err
			}
		case stateStored:
			if err := f.copyStored(limit); err != nil {
				return err
			}
		case stateHuffman:
			decode := huffman[plain]
			if f.lastMarker > 0 {
				decode = huffman[marked]
			}
			if err := decode(f, limit); err != nil {
				return err
			}
		}
	}
	return nil
}

// blockDone ends a block.
func (f *inflater) blockDone() {
	f.state = stateHeader
	if f.final {
		f.done = true
	}
}

func (f *inflater) copyStored(limit int) error {
	// Bits left in the buffer are whole bytes after the header.
	for f.stored > 0 && f.nbits >= 8 && f.op < limit {
		f.out[f.op] = byte(f.bitbuf)
		f.op++
		f.bitbuf >>= 8
		f.nbits -= 8
		f.stored--
	}
	for f.stored > 0 && f.op < limit {
		if f.ip >= f.iend && !f.fill() {
			return io.ErrUnexpectedEOF
		}
		n := min(f.stored, f.iend-f.ip, limit-f.op)
		copy(f.out[f.op:], f.in[f.ip:f.ip+n])
		f.op += n
		f.ip += n
		f.stored -= n
	}
	if f.stored == 0 {
		f.blockDone()
	}
	return nil
}

// copyMatch copies a match of length n at distance d, up to limit; what
// does not fit stays pending.
func (f *inflater) copyMatch(n, d, limit int) {
	if room := limit + maxMatch - f.op; n > room {
		f.pendLen, f.pendDist = n-room, d
		n = room
	} else {
		f.pendLen = 0
	}
	out := f.out
	op := f.op
	src := op - d
	if src < f.lastMarker {
		f.mark(op, d, n)
	}
	if d >= 8 {
		end := op + n
		for op < end {
			binary.LittleEndian.PutUint64(out[op:], binary.LittleEndian.Uint64(out[src:]))
			op += 8
			src += 8
		}
		f.op = end
		return
	}
	if d == 1 {
		b := out[src]
		s := out[op : op+n]
		for i := range s {
			s[i] = b
		}
		f.op = op + n
		return
	}
	for i := 0; i < n; i++ {
		out[op+i] = out[src+i]
	}
	f.op = op + n
}

// plain and marked are the modes of huffman.
type (
	plain  [0]struct{}
	marked [1]struct{}
)

// Unchecked access to the input and output buffers in the fast loop,
// whose conditions keep every index in range: input is read at ip while
// ip+fastInput <= len(in), and output is written from op < limit, which
// leaves maxMatch+outSlack bytes of slack (a match's eight-byte copies
// write at most seven bytes past its end).
// They go through byte arrays so that byte order is right on every
// architecture; the compiler turns them into single loads and stores.
func load64(p unsafe.Pointer, i int) uint64 {
	return binary.LittleEndian.Uint64((*[8]byte)(unsafe.Add(p, i))[:])
}

func store64(p unsafe.Pointer, i int, v uint64) {
	binary.LittleEndian.PutUint64((*[8]byte)(unsafe.Add(p, i))[:], v)
}

func load8(p unsafe.Pointer, i int) byte { return *(*byte)(unsafe.Add(p, i)) }

func store8(p unsafe.Pointer, i int, v byte) { *(*byte)(unsafe.Add(p, i)) = v }

// refill tops up the bit buffer to at least 56 bits from input at ip,
// reading eight bytes and taking the whole ones that fit. Shift counts
// are masked to spare the compiler's checks for counts of 64 and more;
// nbits is below 64.
func refill(in unsafe.Pointer, ip int, bitbuf uint64, nbits uint) (uint64, int, uint) {
	bitbuf |= load64(in, ip) << (nbits & 63)
	return bitbuf, ip + int(63-nbits)>>3, nbits | 56
}

// fastInput is the input the fast loop needs at the top of an iteration:
// two refills of at most seven bytes, each reading eight.
const fastInput = 16

// huffman decodes a Huffman block: a fast loop while input and output have
// room, then a careful one.
//
// The fast loop keeps the next literal/length entry looked up ahead (e):
// after a refill the bit buffer holds at least 56 bits, enough for a
// length code with its extra bits and a distance code with its extra bits
// (15+5+15+13); the entry for the next symbol is looked up before a
// match is copied, so that the lookup overlaps the copy. A refill only
// adds bits above those in the buffer, so an entry looked up with at
// least litBits bits in the buffer stays right across it.
//
// The mode M is plain when no output is marked (f.lastMarker is 0), for
// a fast loop without the check for copies of marked bytes: the
// compiler makes a copy of the function for each mode, in which len(m)
// is a constant.
func huffman[M plain | marked](f *inflater, limit int) error {
	var m M
	lit, dist := (*[litTableSize]uint32)(f.lit), (*[distTableSize]uint32)(f.dist)
	out := f.out
	in := f.in[:f.iend]
	op := f.op
	ip := f.ip
	bitbuf, nbits := f.bitbuf, f.nbits
	const litMask = 1<<litBits - 1
	const distMask = 1<<distBits - 1
	lastMarker := f.lastMarker
	eob := false
	// A floor is left to the careful loop, for the first 32 KiB after it.
	f.dropFloor()
	if op < limit && ip+fastInput <= len(in) && limit+maxMatch+outSlack <= len(out) && f.floor == 0 {
		pin, pout := unsafe.Pointer(unsafe.SliceData(in)), unsafe.Pointer(unsafe.SliceData(out))
		inEnd := len(in) - fastInput
		bitbuf, ip, nbits = refill(pin, ip, bitbuf, nbits)
		e := lit[bitbuf&litMask]
		for {
			// Here nbits >= 56 and e is the entry of the next symbol.
			if e&flagSubtable != 0 {
				bitbuf >>= litBits
				nbits -= litBits
				e = lit[(int(e>>16)+int(bitbuf&(1<<(e>>12&15)-1)))&(litTableSize-1)]
			}
			// The entry's low six bits are its length: shifting by
			// them spares a mask on the path from one lookup to the
			// next.
			bitbuf >>= e & 63
			l := uint(e & lenMask)
			nbits -= l
			if e&flagLiteral != 0 {
				store8(pout, op, byte(e>>16))
				op++
				// More literals often follow; 56-15 bits remain,
				// enough for three primary entries of 11 bits: two
				// more literals, and the entry after them.
				e = lit[bitbuf&litMask]
				for k := 0; k < 2 && e&(flagLiteral|flagSubtable) == flagLiteral; k++ {
					bitbuf >>= e & 63
					nbits -= uint(e & lenMask)
					store8(pout, op, byte(e>>16))
					op++
					e = lit[bitbuf&litMask]
				}
				if op >= limit || ip > inEnd {
					break
				}
				bitbuf, ip, nbits = refill(pin, ip, bitbuf, nbits)
				continue
			}
			if e&flagEOB != 0 {
				eob = true
				break
			}
			if l == 0 || e>>16 == 0 {
				f.op, f.ip, f.bitbuf, f.nbits = op, ip, bitbuf, nbits
				return errCorrupt
			}
			x := uint(e>>8) & 15
			length := int(e>>16) + int(bitbuf&(1<<x-1))
			bitbuf >>= x
			nbits -= x
			d := dist[bitbuf&distMask]
			if d&flagSubtable != 0 {
				bitbuf >>= distBits
				nbits -= distBits
				d = dist[(int(d>>16)+int(bitbuf&(1<<(d>>12&15)-1)))&(distTableSize-1)]
			}
			dl := uint(d & lenMask)
			if dl == 0 || d>>16 == 0 {
				f.op, f.ip, f.bitbuf, f.nbits = op, ip, bitbuf, nbits
				return errCorrupt
			}
			bitbuf >>= d & 63
			nbits -= dl
			dx := uint(d>>8) & 15
			distance := int(d>>16) + int(bitbuf&(1<<dx-1))
			bitbuf >>= dx
			nbits -= dx
			if distance > op {
				f.op, f.ip, f.bitbuf, f.nbits = op, ip, bitbuf, nbits
				return fmt.Errorf("%w: distance %d beyond the window", errCorrupt, distance)
			}
			// Refill and look up the next symbol before the copy.
			bitbuf, ip, nbits = refill(pin, ip, bitbuf, nbits)
			e = lit[bitbuf&litMask]
			src := op - distance
			if len(m) > 0 && src < lastMarker {
				lastMarker = f.mark(op, distance, length)
				if f.tooMany {
					// Stop after this match (resume redoes it).
					for i := 0; i < length; i++ {
						store8(pout, op+i, load8(pout, src+i))
					}
					op += length
					break
				}
			}
			if distance >= 8 {
				// Most matches are short: three words without a loop
				// (written in order, so that a word reads what the one
				// before wrote when the distance is under 24), then the
				// rest.
				end := op + length
				store64(pout, op, load64(pout, src))
				store64(pout, op+8, load64(pout, src+8))
				store64(pout, op+16, load64(pout, src+16))
				op += 24
				src += 24
				for op < end {
					store64(pout, op, load64(pout, src))
					op += 8
					src += 8
				}
				op = end
			} else if distance == 1 {
				// A run of one byte: eight at a time.
				v := uint64(load8(pout, src)) * 0x0101010101010101
				for i := 0; i < length; i += 8 {
					store64(pout, op+i, v)
				}
				op += length
			} else {
				// A short period: bytes up to a multiple of it of at
				// least eight, then words from that distance.
				dd := distance * ((8 + distance - 1) / distance)
				i := 0
				for ; i < dd && i < length; i++ {
					store8(pout, op+i, load8(pout, src+i))
				}
				for ; i < length; i += 8 {
					store64(pout, op+i, load64(pout, op+i-dd))
				}
				op += length
			}
			if op >= limit || ip > inEnd {
				break
			}
		}
	}
	// Return whole unused bytes to the input, keeping the bit position.
	for nbits >= 8 && ip > 0 {
		ip--
		nbits -= 8
	}
	bitbuf &= 1<<nbits - 1
	f.op, f.ip, f.bitbuf, f.nbits = op, ip, bitbuf, nbits
	if eob {
		f.blockDone()
		return nil
	}
	if op >= limit {
		return nil
	}
	return f.huffmanSlow(limit)
}

// dropFloor forgets the floor once 32 KiB of output follow it, when no
// distance can reach it.
func (f *inflater) dropFloor() {
	if f.floor > 0 && f.op-f.floor >= windowSize {
		f.floor = 0
	}
}

// huffmanSlow decodes symbols one at a time with careful input handling,
// for the last bytes of the input buffer.
func (f *inflater) huffmanSlow(limit int) error {
	for f.op < limit && !f.tooMany {
		f.dropFloor()
		if f.iend-f.ip >= 16 && f.floor == 0 {
			return nil // back to the fast loop
		}
		if !f.eof && f.iend-f.ip < 16 {
			f.fill()
			if f.iend-f.ip >= 16 && f.floor == 0 {
				return nil
			}
		}
		e, ok := f.decodeSym(f.lit, litBits)
		if !ok {
			if f.err != nil {
				return f.err
			}
			return io.ErrUnexpectedEOF
		}
		switch {
		case e&flagLiteral != 0:
			f.out[f.op] = byte(e >> 16)
			f.op++
		case e&flagEOB != 0:
			f.blockDone()
			return nil
		default:
			if e>>16 == 0 {
				return errCorrupt
			}
			x, ok := f.bits(uint(e>>8) & 15)
			if !ok {
				return io.ErrUnexpectedEOF
			}
			length := int(e>>16) + int(x)
			d, ok := f.decodeSym(f.dist, distBits)
			if !ok || d>>16 == 0 {
				if !ok && f.err == nil && !f.need(1) {
					return io.ErrUnexpectedEOF
				}
				return errCorrupt
			}
			dx, ok := f.bits(uint(d>>8) & 15)
			if !ok {
				return io.ErrUnexpectedEOF
			}
			distance := int(d>>16) + int(dx)
			if distance > f.op-f.floor {
				return fmt.Errorf("%w: distance %d beyond the window", errCorrupt, distance)
			}
			f.copyMatch(length, distance, limit)
		}
	}
	return nil
}

// readByte reads one whole byte after the deflate data (or before it):
// first from the bit buffer, aligned to a byte, then from the input.
func (f *inflater) readByte() (byte, error) {
	if f.nbits&7 != 0 {
		f.bitbuf >>= f.nbits & 7
		f.nbits -= f.nbits & 7
	}
	if f.nbits >= 8 {
		b := byte(f.bitbuf)
		f.bitbuf >>= 8
		f.nbits -= 8
		return b, nil
	}
	if f.ip >= f.iend && !f.fill() {
		if f.err != nil {
			return 0, f.err
		}
		return 0, io.EOF
	}
	b := f.in[f.ip]
	f.ip++
	return b, nil
}
