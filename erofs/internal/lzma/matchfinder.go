package lzma

import (
	"encoding/binary"
	"math/bits"
)

// matchFinder is a binary-tree match finder with 2-, 3- and 4-byte hash
// heads (the classic "bt4" scheme). It works on one input buffer; node
// positions are stored as base+pos so that tables can be reused across
// calls without clearing: any stored value below base is stale.
type matchFinder struct {
	buf        []byte
	pos        int    // next position to insert
	base       uint32 // stored value of position 0 of buf
	dictSize   int
	cyclicSize int
	niceLen    int
	depth      int

	hash2    []uint32 // indexed by the first two bytes
	hash3    []uint32
	hash4    []uint32
	hash4Sh  uint32 // 32 - log2(len(hash4))
	son      []uint32
	maxValue uint32 // largest value stored so far (for the next base)
}

const (
	hash2Size = 1 << 16
	hash3Bits = 16
	hash3Size = 1 << hash3Bits
)

// match is one (length, zero-based distance) pair found by the match finder.
type match struct {
	len  uint32
	dist uint32
}

// reset prepares the match finder for buf.
func (mf *matchFinder) reset(buf []byte, dictSize, niceLen, depth int) {
	mf.buf = buf
	mf.pos = 0
	mf.dictSize = dictSize
	mf.niceLen = niceLen
	mf.depth = depth
	win := dictSize
	if len(buf) < win {
		win = len(buf)
	}
	mf.cyclicSize = win + 1
	// hash4 size: about half the window, at least 64K entries.
	bits := 16
	for bits < 24 && 1<<uint(bits+1) <= win {
		bits++
	}
	if mf.hash2 == nil {
		mf.hash2 = make([]uint32, hash2Size)
		mf.hash3 = make([]uint32, hash3Size)
	}
	fresh := false
	if len(mf.hash4) < 1<<uint(bits) {
		mf.hash4 = make([]uint32, 1<<uint(bits))
		fresh = true
	}
	mf.hash4Sh = uint32(32 - bits)
	if cap(mf.son) < 2*mf.cyclicSize {
		mf.son = make([]uint32, 2*mf.cyclicSize)
	}
	mf.son = mf.son[:2*mf.cyclicSize]
	next := uint64(mf.maxValue) + 1
	if mf.base == 0 || next+uint64(len(buf))+1 >= 1<<32 {
		// First use or values would wrap: clear everything.
		clear(mf.hash2)
		clear(mf.hash3)
		if !fresh {
			clear(mf.hash4)
		}
		next = 1
	}
	mf.base = uint32(next)
	mf.maxValue = mf.base
	if len(buf) > 0 {
		mf.maxValue = mf.base + uint32(len(buf)) - 1
	}
}

func (mf *matchFinder) avail() int { return len(mf.buf) - mf.pos }

// hashes returns the hash heads of the 4 bytes at p.
func (mf *matchFinder) hashes(p int) (h2, h3, h4 uint32) {
	b := mf.buf[p : p+4]
	v := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
	h2 = v & 0xFFFF
	h3 = ((v & 0xFFFFFF) * 2654435761) >> (32 - hash3Bits)
	h4 = (v * 2246822519) >> mf.hash4Sh
	return
}

// maxDelta is the largest distance (1-based) usable from position p.
func (mf *matchFinder) maxDelta(p int) uint32 {
	if p < mf.dictSize {
		return uint32(p)
	}
	return uint32(mf.dictSize)
}

// matchLen returns the length of the common prefix of buf[a:] and buf[b:],
// starting the comparison at l and stopping at limit (a+limit <= len(buf)).
func matchLen(buf []byte, a, b, l, limit int) int {
	for l+8 <= limit {
		x := binary.LittleEndian.Uint64(buf[a+l:]) ^ binary.LittleEndian.Uint64(buf[b+l:])
		if x != 0 {
			return l + bits.TrailingZeros64(x)>>3
		}
		l += 8
	}
	for l < limit && buf[a+l] == buf[b+l] {
		l++
	}
	return l
}

// find inserts the current position and appends to ms all matches that are
// longer than every shorter one found before (strictly increasing lengths).
// It returns the extended slice.
func (mf *matchFinder) find(ms []match) []match {
	p := mf.pos
	mf.pos++
	limit := len(mf.buf) - p
	if limit > mf.niceLen {
		limit = mf.niceLen
	} else if limit < 4 {
		return ms
	}
	cur := mf.base + uint32(p)
	maxD := mf.maxDelta(p)
	h2, h3, h4 := mf.hashes(p)
	d2 := cur - mf.hash2[h2]
	d3 := cur - mf.hash3[h3]
	curMatch := mf.hash4[h4]
	mf.hash2[h2] = cur
	mf.hash3[h3] = cur
	mf.hash4[h4] = cur

	best := 1
	if d2 <= maxD {
		l := matchLen(mf.buf, p, p-int(d2), 0, limit)
		if l >= 2 {
			best = l
			ms = append(ms, match{uint32(l), d2 - 1})
		}
	}
	if d3 != d2 && d3 <= maxD {
		l := matchLen(mf.buf, p, p-int(d3), 0, limit)
		if l > best {
			best = l
			ms = append(ms, match{uint32(l), d3 - 1})
		}
	}
	if best == limit {
		mf.insert(p, cur, curMatch, limit, maxD)
		return ms
	}
	if best < 3 {
		best = 3
	}

	buf := mf.buf
	son := mf.son
	cyc := uint32(mf.cyclicSize)
	cpos := cur % cyc
	ptr0 := cpos<<1 + 1
	ptr1 := cpos << 1
	len0, len1 := 0, 0
	for depth := mf.depth; ; depth-- {
		delta := cur - curMatch
		if depth == 0 || delta > maxD {
			son[ptr0] = 0
			son[ptr1] = 0
			return ms
		}
		pair := (cpos - delta) << 1
		if delta > cpos {
			pair = (cpos - delta + cyc) << 1
		}
		pb := p - int(delta)
		l := min(len0, len1)
		if buf[pb+l] == buf[p+l] {
			l = matchLen(buf, p, pb, l+1, limit)
			if l > best {
				best = l
				ms = append(ms, match{uint32(l), delta - 1})
				if l == limit {
					son[ptr1] = son[pair]
					son[ptr0] = son[pair+1]
					return ms
				}
			}
		}
		if buf[pb+l] < buf[p+l] {
			son[ptr1] = curMatch
			ptr1 = pair + 1
			curMatch = son[ptr1]
			len1 = l
		} else {
			son[ptr0] = curMatch
			ptr0 = pair
			curMatch = son[ptr0]
			len0 = l
		}
	}
}

// skip inserts the next n positions without reporting matches.
func (mf *matchFinder) skip(n int) {
	for ; n > 0; n-- {
		p := mf.pos
		mf.pos++
		limit := len(mf.buf) - p
		if limit > mf.niceLen {
			limit = mf.niceLen
		} else if limit < 4 {
			continue
		}
		cur := mf.base + uint32(p)
		h2, h3, h4 := mf.hashes(p)
		curMatch := mf.hash4[h4]
		mf.hash2[h2] = cur
		mf.hash3[h3] = cur
		mf.hash4[h4] = cur
		mf.insert(p, cur, curMatch, limit, mf.maxDelta(p))
	}
}

// insert links position p (stored value cur) into the binary tree whose
// previous root is curMatch.
func (mf *matchFinder) insert(p int, cur, curMatch uint32, limit int, maxD uint32) {
	buf := mf.buf
	son := mf.son
	cyc := uint32(mf.cyclicSize)
	cpos := cur % cyc
	ptr0 := cpos<<1 + 1
	ptr1 := cpos << 1
	len0, len1 := 0, 0
	for depth := mf.depth; ; depth-- {
		delta := cur - curMatch
		if depth == 0 || delta > maxD {
			son[ptr0] = 0
			son[ptr1] = 0
			return
		}
		pair := (cpos - delta) << 1
		if delta > cpos {
			pair = (cpos - delta + cyc) << 1
		}
		pb := p - int(delta)
		l := min(len0, len1)
		if buf[pb+l] == buf[p+l] {
			l = matchLen(buf, p, pb, l+1, limit)
			if l == limit {
				son[ptr1] = son[pair]
				son[ptr0] = son[pair+1]
				return
			}
		}
		if buf[pb+l] < buf[p+l] {
			son[ptr1] = curMatch
			ptr1 = pair + 1
			curMatch = son[ptr1]
			len1 = l
		} else {
			son[ptr0] = curMatch
			ptr0 = pair
			curMatch = son[ptr0]
			len0 = l
		}
	}
}
