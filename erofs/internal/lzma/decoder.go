package lzma

import (
	"errors"
	"fmt"
)

// ErrCorrupt is wrapped by every error Decode returns for malformed input.
var ErrCorrupt = errors.New("lzma: corrupt MicroLZMA stream")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

// decoderState is the per-call state of Decode.
type decoderState struct {
	rd    rangeDecoder
	m     model
	lc    uint32
	lpMsk uint32
	pbMsk uint32
}

func (d *decoderState) decodeLen(lm *lenModel, posState uint32) uint32 {
	rd := &d.rd
	if rd.decodeBit(&lm.choice) == 0 {
		return matchLenMin + rd.decodeTree(lm.low[posState][:], lenLowBits)
	}
	if rd.decodeBit(&lm.choice2) == 0 {
		return matchLenMin + lenLowSymbols + rd.decodeTree(lm.mid[posState][:], lenMidBits)
	}
	return matchLenMin + lenLowSymbols + lenMidSymbols + rd.decodeTree(lm.high[:], lenHighBits)
}

// decodeDist returns the zero-based distance (rep0 value) of a new match.
func (d *decoderState) decodeDist(l uint32) uint32 {
	rd := &d.rd
	slot := rd.decodeTree(d.m.posSlot[lenToPosState(l)][:], numPosSlotBits)
	if slot < startPosModel {
		return slot
	}
	footer := (slot >> 1) - 1
	dist := (2 | slot&1) << footer
	if slot < endPosModel {
		return dist + rd.decodeReverseTree(d.m.specPos[dist-slot:], footer)
	}
	dist += rd.decodeDirect(footer-alignBits) << alignBits
	return dist + rd.decodeReverseTree(d.m.align[:], alignBits)
}

// Decode decodes one MicroLZMA stream (all of src) into exactly len(dst)
// bytes. dictSize bounds the match distance (the EROFS configuration
// record's dict_size); dictSize <= 0 means no bound beyond the output
// itself. The properties come from the stream's first byte. Every malformed
// input (bad properties, truncation, distances out of range, trailing
// garbage, wrong sizes) yields an error wrapping ErrCorrupt.
func Decode(dst, src []byte, dictSize int) error {
	return decode(dst, src, dictSize, true)
}

// DecodePrefix decodes the first len(dst) bytes of the MicroLZMA stream
// src, which may decode to more: it stops as soon as dst is full, cutting
// the last match short if need be, and ignores the rest of the stream. This
// is how a partially referenced pcluster is read (Z_EROFS_LI_PARTIAL_REF in
// the kernel's fs/erofs/erofs_fs.h: the extent uses only a prefix of the
// pcluster's output). Malformed input met before dst is full (bad
// properties, truncation, distances out of range) yields an error wrapping
// ErrCorrupt; nothing after that point is checked.
func DecodePrefix(dst, src []byte, dictSize int) error {
	return decode(dst, src, dictSize, false)
}

// decode implements Decode (exact) and DecodePrefix (!exact).
func decode(dst, src []byte, dictSize int, exact bool) error {
	if len(src) < 5 {
		return corrupt("stream is %d bytes, shorter than the 5-byte minimum", len(src))
	}
	lc, lp, pb, ok := parseProps(^src[0])
	if !ok || pb > maxPosBits || lp > maxPosBits || lc+lp > maxLCLP {
		return corrupt("invalid properties byte %#02x", ^src[0])
	}
	d := &decoderState{lc: uint32(lc), lpMsk: 1<<uint(lp) - 1, pbMsk: 1<<uint(pb) - 1}
	d.m.reset(lc, lp)
	rd := &d.rd
	rd.init(src)
	maxDist := uint64(1) << 62
	if dictSize > 0 {
		maxDist = uint64(dictSize)
	}

	m := &d.m
	var state uint32
	var rep0, rep1, rep2, rep3 uint32
	out := 0
	for out < len(dst) {
		posState := uint32(out) & d.pbMsk
		if rd.decodeBit(&m.isMatch[state][posState]) == 0 {
			var prev uint32
			if out > 0 {
				prev = uint32(dst[out-1])
			}
			ctx := ((uint32(out)&d.lpMsk)<<d.lc + prev>>(8-d.lc)) * literalCoderSize
			probs := m.literal[ctx : ctx+literalCoderSize]
			sym := uint32(1)
			if state >= numLitStates {
				// rep0 < out holds: every match checked it.
				mb := uint32(dst[out-int(rep0)-1])
				for sym < 0x100 {
					mbit := (mb >> 7) & 1
					mb <<= 1
					bit := rd.decodeBit(&probs[0x100+mbit<<8+sym])
					sym = sym<<1 | bit
					if bit != mbit {
						break
					}
				}
			}
			for sym < 0x100 {
				sym = sym<<1 | rd.decodeBit(&probs[sym])
			}
			dst[out] = byte(sym)
			out++
			state = stateAfterLiteral(state)
			if rd.eof {
				return corrupt("truncated after %d of %d output bytes", out, len(dst))
			}
			continue
		}
		var l uint32
		if rd.decodeBit(&m.isRep[state]) == 0 {
			l = d.decodeLen(&m.matchLen, posState)
			state = stateAfterMatch(state)
			rep3, rep2, rep1 = rep2, rep1, rep0
			rep0 = d.decodeDist(l)
		} else {
			if rd.decodeBit(&m.isRepG0[state]) == 0 {
				if rd.decodeBit(&m.isRep0Long[state][posState]) == 0 {
					state = stateAfterShortRep(state)
					l = 1
				}
			} else {
				var dist uint32
				if rd.decodeBit(&m.isRepG1[state]) == 0 {
					dist = rep1
				} else {
					if rd.decodeBit(&m.isRepG2[state]) == 0 {
						dist = rep2
					} else {
						dist = rep3
						rep3 = rep2
					}
					rep2 = rep1
				}
				rep1 = rep0
				rep0 = dist
			}
			if l == 0 {
				l = d.decodeLen(&m.repLen, posState)
				state = stateAfterRep(state)
			}
		}
		if rd.eof {
			return corrupt("truncated after %d of %d output bytes", out, len(dst))
		}
		dist := uint64(rep0) + 1
		if dist > uint64(out) || dist > maxDist {
			if rep0 == 0xFFFFFFFF {
				return corrupt("unexpected end-of-payload marker at output byte %d", out)
			}
			return corrupt("match distance %d out of range at output byte %d", dist, out)
		}
		if uint64(l) > uint64(len(dst)-out) {
			if exact {
				return corrupt("match of length %d overruns the %d-byte output at byte %d", l, len(dst), out)
			}
			l = uint32(len(dst) - out) // the rest is not wanted
		}
		src := out - int(dist)
		if int(dist) >= int(l) {
			copy(dst[out:out+int(l)], dst[src:src+int(l)])
			out += int(l)
		} else {
			for i := 0; i < int(l); i++ {
				dst[out] = dst[src+i]
				out++
			}
		}
	}
	if !exact {
		return nil
	}
	if rd.pos != len(src) {
		return corrupt("stream is %d bytes but decoding %d output bytes used %d", len(src), len(dst), rd.pos)
	}
	if rd.code != 0 {
		return corrupt("range coder not finished after %d output bytes", len(dst))
	}
	return nil
}
