package lzma

import "math"

// rangeEncoder is the LZMA binary range encoder. Output bytes are appended
// to buf; cache and cacheSize hold bytes that may still receive a carry.
type rangeEncoder struct {
	low       uint64
	rng       uint32
	cache     byte
	cacheSize int
	buf       []byte
}

// rcSnapshot is the complete range encoder state, for undoing a symbol.
type rcSnapshot struct {
	low       uint64
	rng       uint32
	cache     byte
	cacheSize int
	n         int
}

func (rc *rangeEncoder) reset(buf []byte) {
	rc.low = 0
	rc.rng = 0xFFFFFFFF
	rc.cache = 0
	rc.cacheSize = 1
	rc.buf = buf[:0]
}

func (rc *rangeEncoder) snapshot() rcSnapshot {
	return rcSnapshot{rc.low, rc.rng, rc.cache, rc.cacheSize, len(rc.buf)}
}

func (rc *rangeEncoder) restore(s rcSnapshot) {
	rc.low, rc.rng, rc.cache, rc.cacheSize = s.low, s.rng, s.cache, s.cacheSize
	rc.buf = rc.buf[:s.n]
}

// flushedSize is the stream length that flush would produce now.
func (rc *rangeEncoder) flushedSize() int {
	return len(rc.buf) + rc.cacheSize + 4
}

func (rc *rangeEncoder) shiftLow() {
	if uint32(rc.low) < 0xFF000000 || rc.low >= 1<<32 {
		carry := byte(rc.low >> 32)
		b := rc.cache
		for {
			rc.buf = append(rc.buf, b+carry)
			b = 0xFF
			rc.cacheSize--
			if rc.cacheSize == 0 {
				break
			}
		}
		rc.cache = byte(rc.low >> 24)
	}
	rc.cacheSize++
	rc.low = (rc.low & 0x00FFFFFF) << 8
}

// flush writes out the remaining state; afterwards the stream is complete.
func (rc *rangeEncoder) flush() {
	for i := 0; i < 5; i++ {
		rc.shiftLow()
	}
}

func (rc *rangeEncoder) encodeBit(p *prob, bit uint32) {
	bound := (rc.rng >> probBits) * uint32(*p)
	if bit == 0 {
		rc.rng = bound
		*p += (probTotal - *p) >> moveBits
	} else {
		rc.low += uint64(bound)
		rc.rng -= bound
		*p -= *p >> moveBits
	}
	if rc.rng < rcTop {
		rc.rng <<= 8
		rc.shiftLow()
	}
}

// encodeDirect writes the low n bits of v, most significant first, with
// probability one half each.
func (rc *rangeEncoder) encodeDirect(v uint32, n uint32) {
	for n > 0 {
		n--
		rc.rng >>= 1
		if (v>>n)&1 != 0 {
			rc.low += uint64(rc.rng)
		}
		if rc.rng < rcTop {
			rc.rng <<= 8
			rc.shiftLow()
		}
	}
}

// encodeTree writes the low nbits of sym through a bit tree, MSB first.
func (rc *rangeEncoder) encodeTree(probs []prob, nbits uint32, sym uint32) {
	m := uint32(1)
	for i := nbits; i > 0; {
		i--
		b := (sym >> i) & 1
		rc.encodeBit(&probs[m], b)
		m = m<<1 | b
	}
}

// encodeReverseTree writes the low nbits of sym through a bit tree, LSB first.
func (rc *rangeEncoder) encodeReverseTree(probs []prob, nbits uint32, sym uint32) {
	m := uint32(1)
	for i := uint32(0); i < nbits; i++ {
		b := sym & 1
		sym >>= 1
		rc.encodeBit(&probs[m], b)
		m = m<<1 | b
	}
}

// rangeDecoder is the LZMA binary range decoder. Reading past the end of
// the input sets eof (and feeds zero bytes) instead of failing at once, so
// the hot path has a single, cheap bounds check.
type rangeDecoder struct {
	in   []byte
	pos  int
	rng  uint32
	code uint32
	eof  bool
}

// init starts decoding at in[1:5]; in[0] (the properties byte in MicroLZMA)
// is not part of the range coder state.
func (rd *rangeDecoder) init(in []byte) bool {
	if len(in) < 5 {
		return false
	}
	rd.in = in
	rd.code = uint32(in[1])<<24 | uint32(in[2])<<16 | uint32(in[3])<<8 | uint32(in[4])
	rd.rng = 0xFFFFFFFF
	rd.pos = 5
	rd.eof = false
	return true
}

func (rd *rangeDecoder) normalize() {
	if rd.rng < rcTop {
		rd.rng <<= 8
		var b byte
		if rd.pos < len(rd.in) {
			b = rd.in[rd.pos]
		} else {
			rd.eof = true
		}
		rd.pos++
		rd.code = rd.code<<8 | uint32(b)
	}
}

func (rd *rangeDecoder) decodeBit(p *prob) uint32 {
	bound := (rd.rng >> probBits) * uint32(*p)
	var bit uint32
	if rd.code < bound {
		rd.rng = bound
		*p += (probTotal - *p) >> moveBits
	} else {
		rd.code -= bound
		rd.rng -= bound
		*p -= *p >> moveBits
		bit = 1
	}
	rd.normalize()
	return bit
}

func (rd *rangeDecoder) decodeDirect(n uint32) uint32 {
	var v uint32
	for ; n > 0; n-- {
		rd.rng >>= 1
		var b uint32
		if rd.code >= rd.rng {
			rd.code -= rd.rng
			b = 1
		}
		v = v<<1 | b
		rd.normalize()
	}
	return v
}

func (rd *rangeDecoder) decodeTree(probs []prob, nbits uint32) uint32 {
	m := uint32(1)
	for i := uint32(0); i < nbits; i++ {
		m = m<<1 | rd.decodeBit(&probs[m])
	}
	return m - (1 << nbits)
}

func (rd *rangeDecoder) decodeReverseTree(probs []prob, nbits uint32) uint32 {
	m := uint32(1)
	var sym uint32
	for i := uint32(0); i < nbits; i++ {
		b := rd.decodeBit(&probs[m])
		m = m<<1 | b
		sym |= b << i
	}
	return sym
}

// bitPrices[p>>priceShiftBits] is the cost in 1/16 bit of coding a 0 bit
// with probability p (taken at the middle of each 16-wide bucket).
var bitPrices = func() (t [probTotal >> priceShiftBits]uint32) {
	for i := range t {
		p := float64(i<<priceShiftBits) + float64(1<<priceShiftBits)/2
		t[i] = uint32(math.Round(-math.Log2(p/probTotal) * (1 << priceShiftBits)))
	}
	return t
}()

func price0(p prob) uint32 { return bitPrices[p>>priceShiftBits] }
func price1(p prob) uint32 { return bitPrices[(p^(probTotal-1))>>priceShiftBits] }

// priceBit is the cost of coding bit (0 or 1) with probability p.
func priceBit(p prob, bit uint32) uint32 {
	return bitPrices[(uint32(p)^(-bit&(probTotal-1)))>>priceShiftBits]
}

func priceTree(probs []prob, nbits uint32, sym uint32) uint32 {
	var price uint32
	m := uint32(1)
	for i := nbits; i > 0; {
		i--
		b := (sym >> i) & 1
		price += priceBit(probs[m], b)
		m = m<<1 | b
	}
	return price
}

func priceReverseTree(probs []prob, nbits uint32, sym uint32) uint32 {
	var price uint32
	m := uint32(1)
	for i := uint32(0); i < nbits; i++ {
		b := sym & 1
		sym >>= 1
		price += priceBit(probs[m], b)
		m = m<<1 | b
	}
	return price
}
