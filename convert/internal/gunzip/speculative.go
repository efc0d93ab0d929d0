package gunzip

import (
	"encoding/binary"
	"errors"
)

// Speculative decoding of a chunk whose start and window are unknown.
//
// A chunk of the compressed stream, other than the first, is decoded
// before the data before it: its first block boundary is guessed by trying
// every bit offset where a dynamic or stored block header could start (a
// cheap filter on the header fields, then a decode of the next few blocks,
// validate). Validation only decodes and counts the output, checking that
// back-references reach no further than the 32 KiB window before the
// chunk. From a validated boundary the chunk is then decoded by the
// ordinary inflater, which tracks copies of the window (inflater.mark).

var errNoBoundary = errors.New("gunzip: no block boundary found in chunk")

// errDoomed means a guessed boundary's decoding reached a block header
// that an earlier, failed guess reached: it would fail the same way.
// Guesses often fall into the same stream of blocks, such as a gzip
// file stored in the layer, inside a stored block.
var errDoomed = errors.New("gunzip: decoding joins a failed guess")

// errTooMarked means a chunk's output copies the unknown window for more
// than maxMarked bytes: its worker stops there (job.susp), and the
// consumer fills in the window and finishes it, rather than a worker
// tracking so many copies.
var errTooMarked = errors.New("gunzip: chunk depends on its window for too long")

// errChunkLong means a chunk's output outgrew its cap: its worker stops
// there (job.susp), and the consumer finishes it.
var errChunkLong = errors.New("gunzip: chunk output too long")

// errOutOfInput means a chunk's input ended before its decoding did.
var errOutOfInput = errors.New("gunzip: chunk input ended")

// sliceBits reads bits from a byte slice padded with at least 16 bytes
// beyond end/8.
type sliceBits struct {
	buf []byte
	pos int64 // next bit
	end int64 // bits of real input
}

func (s *sliceBits) peek() uint64 {
	return binary.LittleEndian.Uint64(s.buf[s.pos>>3:]) >> (s.pos & 7)
}

func (s *sliceBits) bits(n uint) (uint32, bool) {
	if s.pos+int64(n) > s.end {
		return 0, false
	}
	v := uint32(s.peek() & (1<<n - 1))
	s.pos += int64(n)
	return v, true
}

func (s *sliceBits) decodeSym(t []uint32, pb uint) (uint32, bool) {
	v := s.peek()
	e := t[v&(1<<pb-1)]
	l := uint(e & lenMask)
	if e&flagSubtable != 0 {
		sb := uint(e>>12) & 15
		e = t[int(e>>16)+int((v>>pb)&(1<<sb-1))]
		if e&lenMask == 0 {
			return 0, false
		}
		l = uint(e&lenMask) + pb
	}
	if l == 0 || s.pos+int64(l) > s.end {
		return 0, false
	}
	s.pos += int64(l)
	return e, true
}

// key identifies where decoding resumes at a block header. Stored blocks
// are keyed by the byte of their LEN field and their final bit, since the
// header's three bits may sit anywhere in the padding before it and decode
// the same from any of those places.
type key struct {
	bit    int64
	stored bool
	final  bool
}

// keyAt is the key of a block header at bit b of buf (padded), base being
// the absolute bit of buf[0].
func keyAt(buf []byte, b, base int64) key {
	v := binary.LittleEndian.Uint64(buf[b>>3:]) >> (b & 7)
	if (v>>1)&3 == 0 {
		return key{bit: base + (b+3+7)&^7, stored: true, final: v&1 != 0}
	}
	return key{bit: base + b}
}

// candidate reports whether a dynamic or stored block header could start
// at bit b of buf: the header fields are in range, a dynamic block's code
// length code is complete, a stored block's LEN and NLEN agree.
func candidate(buf []byte, b int64) bool {
	v := binary.LittleEndian.Uint64(buf[b>>3:]) >> (b & 7)
	switch (v >> 1) & 3 {
	case 2:
		if (v>>3)&31 > 29 || (v>>8)&31 > 29 {
			return false
		}
		n3 := 3 * (int((v>>13)&15) + 4) // bits of code length code lengths
		c := b + 17
		w := binary.LittleEndian.Uint64(buf[c>>3:]) >> (c & 7)
		sum := 0
		for sh := 0; sh < n3; sh += 12 {
			g := w >> sh & 0xfff
			if rem := n3 - sh; rem < 12 {
				g &= 1<<rem - 1
			}
			sum += int(kraft4[g])
		}
		return sum == 128
	case 0:
		p := (b + 3 + 7) >> 3
		return binary.LittleEndian.Uint16(buf[p:]) == ^binary.LittleEndian.Uint16(buf[p+2:])
	}
	return false
}

// nextCandidate returns the first bit from b on, before end, where
// candidate holds, or end. buf holds at least 16 bytes beyond end/8.
// It tests both kinds of header at every bit with few branches: which
// kind the bits start is as good as random, so a branch on it would be
// mispredicted half the time.
func nextCandidate(buf []byte, b, end int64) int64 {
	for ; b < end; b++ {
		w := binary.LittleEndian.Uint64(buf[b>>3:]) >> (b & 7)
		kind := hdr[w&(1<<13-1)]
		// A stored block's LEN and NLEN, at the byte after the header.
		x := binary.LittleEndian.Uint32(buf[(b+10)>>3:])
		var lenOK uint8
		if (x^x>>16)&0xffff == 0xffff {
			lenOK = hdrStored
		}
		// A dynamic block's code length code lengths: complete.
		c := b + 17
		k := binary.LittleEndian.Uint64(buf[c>>3:]) >> (c & 7)
		k &= 1<<((3*((w>>13)&15+4))&63) - 1
		sum := int(kraft4[k&0xfff]) + int(kraft4[k>>12&0xfff]) + int(kraft4[k>>24&0xfff]) + int(kraft4[k>>36&0xfff]) + int(kraft4[k>>48&0xfff])
		var kraftOK uint8
		if sum == 128 {
			kraftOK = hdrDynamic
		}
		if kind&(lenOK|kraftOK) != 0 {
			return b
		}
	}
	return end
}

// hdr[v] says what header the 13 bits v could begin: hdrStored,
// hdrDynamic (type 2, at most 286 literal/length and 30 distance codes),
// or neither (0).
var hdr = func() (t [1 << 13]uint8) {
	for v := range t {
		switch (v >> 1) & 3 {
		case 0:
			t[v] = hdrStored
		case 2:
			if (v>>3)&31 <= 29 && (v>>8)&31 <= 29 {
				t[v] = hdrDynamic
			}
		}
	}
	return t
}()

const (
	hdrStored  = 1
	hdrDynamic = 2
)

// kraft4[g] is the Kraft sum, in 128ths, of the four 3-bit code lengths
// in g (a length of 0 counts for nothing).
var kraft4 = func() (t [1 << 12]uint8) {
	for g := range t {
		sum := 0
		for i := 0; i < 4; i++ {
			if l := g >> (3 * i) & 7; l != 0 {
				sum += 128 >> l
			}
		}
		t[g] = uint8(min(sum, 255))
	}
	return t
}()

// storedFinalShadow reports whether a candidate at b is a final stored
// block whose LEN field could also follow a non-final stored header at a
// later bit: the later one is the likelier (and is tried later).
func storedFinalShadow(buf []byte, b int64) bool {
	v := binary.LittleEndian.Uint64(buf[b>>3:]) >> (b & 7)
	if (v>>1)&3 != 0 || v&1 == 0 {
		return false
	}
	last := (b+3+7)&^7 - 3
	for c := b + 1; c <= last; c++ {
		if (v>>(c-b))&7 == 0 {
			return true
		}
	}
	return false
}

// storedShifted reports whether a stored candidate at b has a second
// stored candidate one byte later: LEN and NLEN at byte p agree, and so
// do those at p+1 whenever byte p+4 equals byte p, as at a real stored
// block of 65535 bytes after a zero byte (00 ff ff 00 00 reads as LEN
// 0xff00 a byte early). The later one is the likelier.
func storedShifted(buf []byte, b int64) bool {
	v := binary.LittleEndian.Uint64(buf[b>>3:]) >> (b & 7)
	if (v>>1)&3 != 0 {
		return false
	}
	p := (b + 3 + 7) >> 3
	return buf[p+4] == buf[p]
}

// validateBlocks is how many blocks a guessed boundary must decode, and
// maxValidateSyms the most symbols each may hold: random bits can decode
// as a complete code's symbols for megabytes, while encoders end blocks
// after at most tens of thousands of symbols (zlib after 16K at the
// default memory level).
const (
	validateBlocks  = 3
	maxValidateSyms = 1 << 17
)

// validate decodes from a guessed block boundary b: up to validateBlocks
// blocks must decode, none of them a non-final fixed-code block (rare in
// real streams, and random bits often decode as one for a while), unless
// decoding reaches stop or a final block first, which must be followed by
// the 8-byte trailer and nothing else (a member ending inside a chunk, as
// in a multi-member stream, is left to the consumer).
func (d *specDecoder) validate(b, stop int64, doomed map[int64]struct{}) bool {
	d.pos, d.n, d.final = b, 0, false
	d.maxSyms = maxValidateSyms
	defer func() { d.maxSyms = 0 }()
	for i := 0; i < validateBlocks; i++ {
		fixed := (d.peek()>>1)&3 == 1
		if d.block() != nil || fixed && !d.final {
			return false
		}
		if _, ok := doomed[d.pos]; ok {
			return false
		}
		if d.final {
			// A final block must end the input but for the trailer:
			// random bits pass for a final stored block all too often.
			return d.end/8-(d.pos+7)/8 == 8
		}
		if stop >= 0 && d.pos >= stop {
			return true
		}
	}
	return true
}

// specDecoder decodes blocks, counting their output.
type specDecoder struct {
	sliceBits
	n         int // bytes decoded
	final     bool
	maxOut    int
	maxSyms   int // symbols a Huffman block may hold; 0: no limit
	lit, dist []uint32
	dynLit    []uint32
	dynDist   []uint32
	clen      []uint32
	lens      [numLitLen + numDist]uint8
}

func newSpecDecoder(buf []byte, end int64, maxOut int) *specDecoder {
	return &specDecoder{
		sliceBits: sliceBits{buf: buf, end: end},
		maxOut:    maxOut,
		dynLit:    make([]uint32, litTableSize),
		dynDist:   make([]uint32, distTableSize),
		clen:      make([]uint32, 1<<7),
	}
}

// block decodes one block, header included, at the current position.
func (d *specDecoder) block() error {
	h, ok := d.bits(3)
	if !ok {
		return errOutOfInput
	}
	d.final = h&1 != 0
	switch h >> 1 {
	case 0:
		d.pos = (d.pos + 7) &^ 7
		v, ok := d.bits(16)
		nv, ok2 := d.bits(16)
		if !ok || !ok2 {
			return errOutOfInput
		}
		if v != ^nv&0xffff {
			return errCorrupt
		}
		n := int64(v)
		if d.pos+8*n > d.end {
			return errOutOfInput
		}
		if d.n+int(n) > d.maxOut {
			return errOutOfInput
		}
		d.n += int(n)
		d.pos += 8 * n
		return nil
	case 1:
		d.lit, d.dist = fixedLit, fixedDist
	case 2:
		if err := readDynamic(&d.sliceBits, d.lens[:], d.clen, d.dynLit, d.dynDist); err != nil {
			if err == errCorrupt && d.pos >= d.end {
				return errOutOfInput
			}
			return err
		}
		d.lit, d.dist = d.dynLit, d.dynDist
	default:
		return errCorrupt
	}
	return d.huffman()
}

// huffman decodes the symbols of a Huffman block.
func (d *specDecoder) huffman() error {
	lit, dist := (*[litTableSize]uint32)(d.lit), (*[distTableSize]uint32)(d.dist)
	buf := d.buf
	pos, end := d.pos, d.end
	op := d.n
	defer func() { d.n = op }()
	const litMask = 1<<litBits - 1
	const distMask = 1<<distBits - 1
	syms := d.maxSyms
	if syms == 0 {
		syms = -1
	}
	for {
		if pos > end {
			return errOutOfInput
		}
		if syms--; syms == 0 {
			return errCorrupt
		}
		if op > d.maxOut {
			return errOutOfInput
		}
		v := binary.LittleEndian.Uint64(buf[pos>>3:]) >> (pos & 7)
		e := lit[v&litMask]
		l := uint(e & lenMask)
		if e&flagSubtable != 0 {
			e = lit[(int(e>>16)+int((v>>litBits)&(1<<(e>>12&15)-1)))&(litTableSize-1)]
			l = uint(e&lenMask) + litBits
			if e&lenMask == 0 {
				return errCorrupt
			}
		}
		if l == 0 {
			return errCorrupt
		}
		v >>= l
		pos += int64(l)
		if e&flagLiteral != 0 {
			op++
			continue
		}
		if e&flagEOB != 0 {
			if pos > end {
				return errOutOfInput
			}
			d.pos = pos
			return nil
		}
		if e>>16 == 0 {
			return errCorrupt
		}
		x := uint(e>>8) & 15
		length := int(e>>16) + int(v&(1<<x-1))
		pos += int64(x)
		v = binary.LittleEndian.Uint64(buf[pos>>3:]) >> (pos & 7)
		de := dist[v&distMask]
		dl := uint(de & lenMask)
		if de&flagSubtable != 0 {
			de = dist[(int(de>>16)+int((v>>distBits)&(1<<(de>>12&15)-1)))&(distTableSize-1)]
			dl = uint(de&lenMask) + distBits
			if de&lenMask == 0 {
				return errCorrupt
			}
		}
		if dl == 0 || de>>16 == 0 {
			return errCorrupt
		}
		v >>= dl
		dx := uint(de>>8) & 15
		distance := int(de>>16) + int(v&(1<<dx-1))
		pos += int64(dl + dx)
		if distance > op+windowSize {
			return errCorrupt
		}
		op += length
	}
}
