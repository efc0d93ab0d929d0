package lz4

import "math/bits"

// High-compression parser. Matches are found with hash chains over 4-byte
// prefixes (a head table plus a chain of distances indexed by position modulo
// 64 KiB) and chosen with a lookahead of up to three overlapping matches: when
// a later search finds a longer match that starts inside the current one,
// the current match is shortened (or dropped) in its favour.
//
// From level 9 on (as liblz4's HC compressor does) searches also skip
// through runs of one byte value, zero padding in binaries mostly. Every
// position inside a run hashes alike, so the chain steps through a run one
// byte at a time and a search would spend its attempts there, never
// reaching candidates before the run. When the searched string starts with
// a run, a candidate inside a run moves the search straight to the one
// position of that run worth trying: where a run as long as the searched
// one ends with it (the bytes after both runs may match too), or else the
// run's start.

const (
	hcHashLog = 15
	// hcOptimalML is the longest match length that fits into the token.
	hcOptimalML = minMatch + runMask - 1
	// hcRunSkipAttempts is the number of attempts per search (level 9)
	// from which searches skip through runs.
	hcRunSkipAttempts = 256
)

type hcState struct {
	head     [1 << hcHashLog]uint32
	chain    [1 << 16]uint16
	base     uint32
	attempts int
	skipRuns bool

	// Per call.
	src        []byte
	dst        []byte
	gen        uint32 // table position of src[0]
	next       int    // first position not yet inserted
	matchlimit int    // matches end at or before this position
	mflimit    int    // matches start at or before this position
	fill       bool
	op, anchor int
	n, used    int // result once the block is finished early
}

func newHCState(attempts int) *hcState {
	return &hcState{base: genGap, attempts: attempts, skipRuns: attempts >= hcRunSkipAttempts}
}

func hash4(v uint32) uint32 { return (v * 2654435761) >> (32 - hcHashLog) }

// insert adds the positions before upto to the hash chains.
func (s *hcState) insert(upto int) {
	src := s.src
	for p := s.next; p < upto; p++ {
		h := hash4(load32(src, p))
		cur := s.gen + uint32(p)
		d := cur - s.head[h]
		if d > MaxDistance {
			d = MaxDistance
		}
		s.chain[uint16(cur)] = uint16(d)
		s.head[h] = cur
	}
	if upto > s.next {
		s.next = upto
	}
}

// find searches the chain of position ip for a match that, extended
// backwards down to iLow at most, is longer than longest. It returns the
// length, start and reference position of the best such match, or longest
// unchanged if there is none.
func (s *hcState) find(ip, iLow, longest int) (ml, start, ref int) {
	s.insert(ip)
	src := s.src
	cur := s.gen + uint32(ip)
	low := cur - MaxDistance
	if low < s.gen {
		low = s.gen
	}
	back := ip - iLow
	// A candidate can only beat longest if its forward length exceeds
	// longest-back, so the 4 bytes ending there must match.
	k := max(longest-back-3, 0)
	first := load32(src, ip)
	probe := load32(src, ip+k)
	matchlimit := s.matchlimit
	// run is the length of the run of one byte value at ip, found when
	// first needed: 0 until then, -1 if ip does not start with one.
	run := 0
	cand := s.head[hash4(first)]
	for n := s.attempts; n > 0 && cand >= low; n-- {
		m := ip - int(cur-cand)
		if load32(src, m+k) == probe && load32(src, m) == first {
			fwd := minMatch + matchLen(src, ip+minMatch, m+minMatch, matchlimit)
			b := 0
			for b < back && b < m && src[ip-b-1] == src[m-b-1] {
				b++
			}
			// Very long comparisons count as extra attempts, so that
			// highly repetitive data (where every candidate matches far)
			// costs time proportional to the attempts, not to attempts
			// times match length.
			n -= (b + fwd) >> 8
			if b+fwd > longest {
				longest, start, ref = b+fwd, ip-b, m-b
				if ip+fwd == matchlimit && b == back {
					break // nothing can be longer
				}
				k = max(longest-back-3, 0)
				probe = load32(src, ip+k)
			}
		}
		d := uint32(s.chain[uint16(cand)])
		if d != 1 || !s.skipRuns {
			cand -= d
			continue
		}
		// The position before cand has the same hash, so cand may be
		// inside a run; if ip starts with a run of the same byte, skip
		// to the one position of that run worth trying.
		if run == 0 {
			run = -1
			if first == first&0xff*0x01010101 {
				run = minMatch + runLen(src, ip+minMatch, matchlimit, byte(first))
			}
		}
		if run < 0 || cand-1 < low || load32(src, m-1) != first {
			cand--
			continue
		}
		// The run around m-1 is src[r:r+rl].
		after := minMatch + runLen(src, m-1+minMatch, matchlimit, byte(first))
		before := runLenBack(src, m-1, ip-int(cur-low), byte(first))
		r, rl := m-1-before, before+after
		if rl >= run && after <= run {
			// Try where a run as long as ip's ends with this one: the
			// bytes after both runs may match as well.
			cand -= uint32(m - (r + rl - run))
			continue
		}
		// Try the run's start. Without extension backwards, a match of
		// the shorter of both runs is certain there, so take it without
		// comparing and go on with the chain.
		cand -= uint32(m - r)
		if back == 0 {
			if l := min(rl, run); l > longest {
				longest, start, ref = l, ip, r
				k = max(longest-3, 0)
				probe = load32(src, ip+k)
			}
			cand -= uint32(s.chain[uint16(cand)])
		}
	}
	return longest, start, ref
}

// runLen returns how many bytes from src[i:limit] in a row equal v.
func runLen(src []byte, i, limit int, v byte) int {
	n := 0
	w := uint64(v) * 0x0101010101010101
	for i+n+8 <= limit {
		if x := load64(src, i+n) ^ w; x != 0 {
			return n + bits.TrailingZeros64(x)>>3
		}
		n += 8
	}
	for i+n < limit && src[i+n] == v {
		n++
	}
	return n
}

// runLenBack returns how many bytes before src[i], down to src[lo], in a
// row equal v.
func runLenBack(src []byte, i, lo int, v byte) int {
	n := 0
	w := uint64(v) * 0x0101010101010101
	for i-n-8 >= lo {
		if x := load64(src, i-n-8) ^ w; x != 0 {
			return n + bits.LeadingZeros64(x)>>3
		}
		n += 8
	}
	for i-n > lo && src[i-n-1] == v {
		n++
	}
	return n
}

// emit writes a sequence ending the pending literals with a match of ml bytes
// at start. It returns false when the block is finished (fill mode, output
// full) or has failed (output full); s.n and s.used then hold the result.
func (s *hcState) emit(start, ref, ml int) bool {
	if start > s.mflimit {
		// Lookahead corrections can push a match start into the last
		// mfLimit bytes, where the format forbids matches: end with literals.
		s.n, s.used = finishLast(s.dst, s.op, s.src, s.anchor, s.fill)
		return false
	}
	off := start - ref
	cost := seqCost(start-s.anchor, ml)
	if s.fill {
		if s.op+cost+fillReserve(ml) > len(s.dst) {
			s.n, s.used = finishFill(s.dst, s.op, s.src, s.anchor, start, off, ml)
			return false
		}
	} else if s.op+cost > len(s.dst) {
		s.n, s.used = 0, 0
		return false
	}
	s.op = writeSeq(s.dst, s.op, s.src, s.anchor, start, off, ml)
	s.anchor = start + ml
	return true
}

func (s *hcState) compress(dst, src []byte, fill bool) (int, int) {
	s.gen = beginGen(&s.base, len(src), func() { s.head = [1 << hcHashLog]uint32{} })
	s.src, s.dst, s.fill = src, dst, fill
	s.next, s.op, s.anchor = 0, 0, 0
	defer func() { s.src, s.dst = nil, nil }()
	if len(src) < minInputForMatch {
		return finishLast(dst, 0, src, 0, fill)
	}
	s.mflimit = len(src) - mfLimit
	s.matchlimit = len(src) - lastLiterals
	if !s.parse() {
		return s.n, s.used
	}
	return finishLast(dst, s.op, src, s.anchor, fill)
}

// parse runs the parser over the input; it returns false if the block was
// finished early (see emit).
func (s *hcState) parse() bool {
	mflimit := s.mflimit
	ip := 1
	for ip <= mflimit {
		if s.fill && ip-s.anchor > len(s.dst)-s.op {
			// The pending literals alone overflow dst: stop searching.
			break
		}
		// m1 = (s1, r1, l1): the match to write next; m0 its first version.
		l1, s1, r1 := s.find(ip, ip, minMatch-1)
		if l1 < minMatch {
			ip++
			continue
		}
		s0, r0, l0 := s1, r1, l1
	search2:
		for {
			// m2: a longer match starting inside or just after m1.
			l2, s2, r2 := l1, 0, 0
			if s1+l1 <= mflimit {
				l2, s2, r2 = s.find(s1+l1-2, s1, l1)
			}
			if l2 == l1 {
				if !s.emit(s1, r1, l1) {
					return false
				}
				ip = s1 + l1
				break search2
			}
			if s0 < s1 && s2 < s1+l0 {
				// m1 was replaced by a later match before; m2 now covers
				// that one, so go back to the original m1.
				s1, r1, l1 = s0, r0, l0
			}
			if s2-s1 < 3 {
				// m1 would be too short in front of m2: drop it.
				s1, r1, l1 = s2, r2, l2
				continue search2
			}
			for {
				if s2-s1 < hcOptimalML {
					// Let m1 keep up to hcOptimalML bytes (its cheapest
					// length), taking them from the front of m2.
					nl := min(l1, hcOptimalML)
					if s1+nl > s2+l2-minMatch {
						nl = s2 - s1 + l2 - minMatch
					}
					if c := nl - (s2 - s1); c > 0 {
						s2, r2, l2 = s2+c, r2+c, l2-c
					}
				}
				// m3: a longer match starting inside or just after m2.
				l3, s3, r3 := l2, 0, 0
				if s2+l2 <= mflimit {
					l3, s3, r3 = s.find(s2+l2-3, s2, l2)
				}
				if l3 == l2 {
					// No better m3: write m1 (cut at m2) and m2.
					if s2 < s1+l1 {
						l1 = s2 - s1
					}
					if !s.emit(s1, r1, l1) || !s.emit(s2, r2, l2) {
						return false
					}
					ip = s2 + l2
					break search2
				}
				if s3 < s1+l1+3 {
					// m3 starts within or right after m1: m2 is not needed.
					if s3 >= s1+l1 {
						if s2 < s1+l1 {
							c := s1 + l1 - s2
							s2, r2, l2 = s2+c, r2+c, l2-c
							if l2 < minMatch {
								s2, r2, l2 = s3, r3, l3
							}
						}
						if !s.emit(s1, r1, l1) {
							return false
						}
						s1, r1, l1 = s3, r3, l3
						s0, r0, l0 = s2, r2, l2
						continue search2
					}
					s2, r2, l2 = s3, r3, l3
					continue
				}
				// m1 < m2 < m3 ascending: write m1, cut to end where m2 starts.
				if s2 < s1+l1 {
					if s2-s1 < hcOptimalML {
						l1 = min(l1, hcOptimalML)
						if s1+l1 > s2+l2-minMatch {
							l1 = s2 - s1 + l2 - minMatch
						}
						if c := l1 - (s2 - s1); c > 0 {
							s2, r2, l2 = s2+c, r2+c, l2-c
						}
					} else {
						l1 = s2 - s1
					}
				}
				if !s.emit(s1, r1, l1) {
					return false
				}
				s1, r1, l1 = s2, r2, l2
				s2, r2, l2 = s3, r3, l3
			}
		}
	}
	return true
}
