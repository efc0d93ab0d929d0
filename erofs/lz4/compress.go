package lz4

import (
	"encoding/binary"
	"math/bits"
)

// Fast compressor: a greedy parser over a single-entry hash table of 5-byte
// prefixes. After a miss the step between probed positions grows by one
// every 1<<skipTrigger misses, so incompressible data is skipped quickly.

const (
	fastHashLog  = 13
	fastHashMask = 1<<fastHashLog - 1
	skipTrigger  = 6
	// genGap separates the positions of consecutive calls in the tables, so
	// that entries left by an earlier call are always farther away than
	// MaxDistance and never need clearing.
	genGap = 1 << 17
	// genMax bounds the table generation base before the tables are reset.
	genMax = 1 << 31
)

type fastState struct {
	table [1 << fastHashLog]uint32
	base  uint32
}

func newFastState() *fastState { return &fastState{base: genGap} }

func load32(b []byte, i int) uint32 { return binary.LittleEndian.Uint32(b[i : i+4]) }
func load64(b []byte, i int) uint64 { return binary.LittleEndian.Uint64(b[i : i+8]) }

// fastHash hashes the low 5 bytes of v, or only the low 4 if short is set.
// Hashing 4 bytes finds more matches; on longer inputs, where the table
// fills up, hashing 5 keeps the table from being crowded by 4-byte
// prefixes that rarely start long matches.
func fastHash(v uint64, short bool) uint32 {
	if short {
		return (uint32(v) * 2654435761) >> (32 - fastHashLog)
	}
	return uint32(((v << 24) * 0x9E3779B97F4A7C15) >> (64 - fastHashLog))
}

// matchLen returns how many bytes src[a:] and src[b:] have in common, looking
// no further than a reaches limit (b < a).
func matchLen(src []byte, a, b, limit int) int {
	n := 0
	for a+n+8 <= limit {
		x := load64(src, a+n) ^ load64(src, b+n)
		if x != 0 {
			return n + bits.TrailingZeros64(x)>>3
		}
		n += 8
	}
	for a+n < limit && src[a+n] == src[b+n] {
		n++
	}
	return n
}

// beginGen returns the generation base for a call using n input positions
// and advances *base past them, clearing the table when the base would grow
// too large.
func beginGen(base *uint32, n int, clear func()) uint32 {
	if uint64(*base)+uint64(n)+genGap >= genMax {
		clear()
		*base = genGap
	}
	b := *base
	*base += uint32(n) + genGap
	return b
}

// lenExtra returns the number of extension bytes a literal length or a
// match length minus minMatch of v needs.
func lenExtra(v int) int {
	if v < runMask {
		return 0
	}
	return (v-runMask)/255 + 1
}

// seqCost returns the encoded size of a sequence with lit literals and a
// match of ml bytes.
func seqCost(lit, ml int) int {
	return 1 + lenExtra(lit) + lit + 2 + lenExtra(ml-minMatch)
}

// fillReserve returns the output that must stay free after a sequence whose
// match is ml bytes long, in fill mode: a final literal-only sequence long
// enough that the match ends at least lastLiterals bytes and starts at least
// mfLimit bytes before the end of the block.
func fillReserve(ml int) int {
	f := mfLimit - ml
	if f < lastLiterals {
		f = lastLiterals
	}
	return 1 + f
}

// maxLiterals returns the largest literal count whose final sequence (token,
// length extension and literals) fits into room bytes.
func maxLiterals(room int) int {
	l := room - 1 - (room-1)/256
	for l > 0 && 1+lenExtra(l)+l > room {
		l--
	}
	if l < 0 {
		return 0
	}
	return l
}

// putLen writes the extension bytes of a length whose nibble is runMask.
func putLen(dst []byte, op, v int) int {
	v -= runMask
	for v >= 255 {
		dst[op] = 255
		op++
		v -= 255
	}
	dst[op] = byte(v)
	return op + 1
}

// writeSeq writes a sequence of literals src[anchor:ip] and a match of ml
// bytes at offset off. The caller has checked that it fits.
func writeSeq(dst []byte, op int, src []byte, anchor, ip, off, ml int) int {
	lit := ip - anchor
	tp := op
	op++
	var tok byte
	if lit >= runMask {
		tok = runMask << 4
		op = putLen(dst, op, lit)
	} else {
		tok = byte(lit << 4)
	}
	if lit <= 8 && op+8 <= len(dst) && anchor+8 <= len(src) {
		// Copy 8 bytes; the ones past the literals are overwritten by the
		// offset and what follows it (at least a final token and literals).
		binary.LittleEndian.PutUint64(dst[op:op+8], binary.LittleEndian.Uint64(src[anchor:anchor+8]))
		op += lit
	} else {
		op += copy(dst[op:], src[anchor:ip])
	}
	dst[op] = byte(off)
	dst[op+1] = byte(off >> 8)
	op += 2
	m := ml - minMatch
	if m >= runMask {
		tok |= runMask
		op = putLen(dst, op, m)
	} else {
		tok |= byte(m)
	}
	dst[tp] = tok
	return op
}

// writeLast writes the final literal-only sequence src[anchor:end].
func writeLast(dst []byte, op int, src []byte, anchor, end int) int {
	lit := end - anchor
	if lit >= runMask {
		dst[op] = runMask << 4
		op = putLen(dst, op+1, lit)
	} else {
		dst[op] = byte(lit << 4)
		op++
	}
	return op + copy(dst[op:], src[anchor:end])
}

// finishLast ends a block at op with the literals from anchor on: all of
// src[anchor:] if they fit, otherwise (fill mode only) as many as fit. It
// returns the block size and the input consumed, or 0, 0 on failure.
func finishLast(dst []byte, op int, src []byte, anchor int, fill bool) (int, int) {
	lit := len(src) - anchor
	if op+1+lenExtra(lit)+lit > len(dst) {
		if !fill {
			return 0, 0
		}
		lit = maxLiterals(len(dst) - op)
	}
	end := anchor + lit
	if end == 0 {
		return 0, 0
	}
	return writeLast(dst, op, src, anchor, end), end
}

// finishFill ends a block in fill mode when the sequence (literals
// src[anchor:ip], match of ml bytes at offset off) does not fit with its
// reserve: it writes the sequence with the match shortened as far as needed,
// if the match can still be useful, and then as many final literals as fit.
func finishFill(dst []byte, op int, src []byte, anchor, ip, off, ml int) (int, int) {
	lit := ip - anchor
	room := len(dst) - op - (1 + lenExtra(lit) + lit + 2)
	// Longest m <= ml with lenExtra(m-minMatch)+fillReserve(m) <= room.
	m := 0
	if room >= 1+lastLiterals {
		m = min(ml, minMatch+runMask-1+255*(room-1-lastLiterals))
		if room < fillReserve(m) {
			m = 0
		}
	}
	if m >= minMatch {
		op = writeSeq(dst, op, src, anchor, ip, off, m)
		anchor = ip + m
	}
	return finishLast(dst, op, src, anchor, true)
}

// compress compresses src into dst with the fast parser. In fill mode it
// stops when dst is full and reports how much of src it consumed; otherwise
// it returns 0, 0 if the block does not fit.
func (s *fastState) compress(dst, src []byte, fill bool) (int, int) {
	// Hash 4 bytes when the part of src likely to be compressed is short.
	short := len(src) <= 1<<16 || (fill && len(dst) <= 1<<14)
	base := beginGen(&s.base, len(src), func() { s.table = [1 << fastHashLog]uint32{} })
	op, anchor := 0, 0
	if len(src) < minInputForMatch {
		return finishLast(dst, op, src, anchor, fill)
	}
	table := &s.table
	mflimit := len(src) - mfLimit
	matchlimit := len(src) - lastLiterals

	table[fastHash(load64(src, 0), short)&fastHashMask] = base
	ip := 1
	for {
		// Look for a match at ip, with growing steps after misses.
		var ref int
		limit := mflimit
		if fill && anchor+len(dst)-op < limit {
			// Past this point the pending literals alone overflow dst.
			limit = anchor + len(dst) - op
		}
		ip, ref = s.search(src, base, ip, limit, short)
		if ref < 0 {
			return finishLast(dst, op, src, anchor, fill)
		}
		// Extend backwards over pending literals.
		for ip > anchor && ref > 0 && src[ip-1] == src[ref-1] {
			ip--
			ref--
		}
		for {
			ml := minMatch + matchLen(src, ip+minMatch, ref+minMatch, matchlimit)
			off := ip - ref
			cost := seqCost(ip-anchor, ml)
			if fill {
				if op+cost+fillReserve(ml) > len(dst) {
					return finishFill(dst, op, src, anchor, ip, off, ml)
				}
			} else if op+cost > len(dst) {
				return 0, 0
			}
			op = writeSeq(dst, op, src, anchor, ip, off, ml)
			ip += ml
			anchor = ip
			if ip > mflimit {
				return finishLast(dst, op, src, anchor, fill)
			}
			table[fastHash(load64(src, ip-2), short)&fastHashMask] = base + uint32(ip-2)
			// Try for an immediate match at the end of this one.
			v := load64(src, ip)
			h := fastHash(v, short) & fastHashMask
			cur := base + uint32(ip)
			cand := table[h]
			table[h] = cur
			d := cur - cand
			if d > MaxDistance || load32(src, ip-int(d)) != uint32(v) {
				break
			}
			ref = ip - int(d)
		}
		ip++
	}
}

// search looks for a match candidate at ip and the positions after it, up to
// limit. It returns the position and its candidate, or ref < 0 if there is
// none. The step between probes grows by one every 1<<skipTrigger misses.
func (s *fastState) search(src []byte, base uint32, ip, limit int, short bool) (pos, ref int) {
	if ip > limit {
		return ip, -1
	}
	table := &s.table
	misses := 1 << skipTrigger
	v := load64(src, ip)
	h := fastHash(v, short) & fastHashMask
	for {
		cur := base + uint32(ip)
		cand := table[h]
		table[h] = cur
		next := ip + misses>>skipTrigger
		if next > limit {
			if d := cur - cand; d <= MaxDistance && load32(src, ip-int(d)) == uint32(v) {
				return ip, ip - int(d)
			}
			return ip, -1
		}
		// Hash the next probe before checking this candidate, so that
		// their memory accesses overlap.
		nv := load64(src, next)
		nh := fastHash(nv, short) & fastHashMask
		if d := cur - cand; d <= MaxDistance && load32(src, ip-int(d)) == uint32(v) {
			return ip, ip - int(d)
		}
		ip, v, h = next, nv, nh
		misses++
	}
}
