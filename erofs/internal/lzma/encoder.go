package lzma

import "math/bits"

// numOpts is the size of the optimal-parsing window.
const numOpts = 1 << 12

// litMarker is the "back" value of a literal step.
const litMarker = ^uint32(0)

// step is one coding decision: a literal (back == litMarker, len 1), a
// repeated match (back < numReps; back 0 with len 1 is a "short rep") or a
// new match (back = distance + numReps, distance zero-based).
type step struct {
	len  uint32
	back uint32
}

// optimal is one node of the optimal-parsing graph.
type optimal struct {
	price     uint32
	state     uint32
	posPrev   uint32
	backPrev  uint32
	posPrev2  uint32
	backPrev2 uint32
	prev1Lit  bool // reached by: [prev2 item], literal, rep0 of backPrev
	prev2     bool
	reps      [numReps]uint32
}

// lenPrices caches the price of every length for every pos state.
type lenPrices struct {
	prices   [maxPosStates][matchLenMax - matchLenMin + 1]uint32
	counters [maxPosStates]int
	size     int // number of lengths priced
}

// encoderState is the mutable part of an Encoder.
type encoderState struct {
	src   []byte
	mf    matchFinder
	rc    rangeEncoder
	m     model
	state uint32
	reps  [numReps]uint32
	out   []byte

	matchLen, repLen lenPrices
	posSlotPrices    [numLenToPosStates][numPosSlots]uint32
	distPrices       [numLenToPosStates][numFullDistances]uint32
	alignPrices      [alignSize]uint32
	distTableSize    uint32
	matchPriceCount  int
	alignPriceCount  int

	opt       [numOpts + 1]optimal
	ms        []match
	cached    []match
	cachedPos int
	steps     []step
}

func (e *Encoder) litProbs(pos int, prev byte) []prob {
	ctx := ((uint32(pos)&e.lpMask)<<e.lc + uint32(prev)>>(8-e.lc)) * literalCoderSize
	return e.m.literal[ctx : ctx+literalCoderSize : ctx+literalCoderSize]
}

func posSlot(dist uint32) uint32 {
	if dist < startPosModel {
		return dist
	}
	n := uint32(bits.Len32(dist)) - 1
	return n<<1 | (dist>>(n-1))&1
}

// reset prepares for a new stream over src.
func (e *Encoder) reset(src []byte, outCap int) {
	e.src = src
	dict := e.dictSize
	if dict > len(src) {
		dict = len(src)
	}
	e.mf.reset(src, dict, e.niceLen, e.depth)
	if cap(e.out) < outCap {
		e.out = make([]byte, 0, outCap)
	}
	e.rc.reset(e.out)
	e.m.reset(int(e.lc), int(e.lp))
	e.state = 0
	e.reps = [numReps]uint32{}
	e.cachedPos = -1
	e.steps = e.steps[:0]
	if dict < 1 {
		dict = 1
	}
	e.distTableSize = posSlot(uint32(dict-1)) + 1
	size := e.niceLen + 1 - matchLenMin
	e.matchLen.size = size
	e.repLen.size = size
	for ps := uint32(0); ps <= e.pbMask; ps++ {
		e.updateLenPrices(&e.matchLen, &e.m.matchLen, ps)
		e.updateLenPrices(&e.repLen, &e.m.repLen, ps)
	}
	e.fillDistPrices()
	e.fillAlignPrices()
}

func (e *Encoder) updateLenPrices(t *lenPrices, lm *lenModel, ps uint32) {
	a0 := price0(lm.choice)
	a1 := price1(lm.choice)
	b0 := a1 + price0(lm.choice2)
	b1 := a1 + price1(lm.choice2)
	p := &t.prices[ps]
	for i := 0; i < t.size; i++ {
		switch {
		case i < lenLowSymbols:
			p[i] = a0 + priceTree(lm.low[ps][:], lenLowBits, uint32(i))
		case i < lenLowSymbols+lenMidSymbols:
			p[i] = b0 + priceTree(lm.mid[ps][:], lenMidBits, uint32(i-lenLowSymbols))
		default:
			p[i] = b1 + priceTree(lm.high[:], lenHighBits, uint32(i-lenLowSymbols-lenMidSymbols))
		}
	}
	t.counters[ps] = t.size
}

func (e *Encoder) fillDistPrices() {
	for ls := 0; ls < numLenToPosStates; ls++ {
		probs := e.m.posSlot[ls][:]
		sp := &e.posSlotPrices[ls]
		for s := uint32(0); s < e.distTableSize; s++ {
			sp[s] = priceTree(probs, numPosSlotBits, s)
			if s >= endPosModel {
				sp[s] += ((s >> 1) - 1 - alignBits) << priceShiftBits
			}
		}
		dp := &e.distPrices[ls]
		for d := uint32(0); d < startPosModel; d++ {
			dp[d] = sp[d]
		}
		for d := uint32(startPosModel); d < numFullDistances; d++ {
			s := posSlot(d)
			footer := (s >> 1) - 1
			base := (2 | s&1) << footer
			dp[d] = sp[s] + priceReverseTree(e.m.specPos[base-s:], footer, d-base)
		}
	}
	e.matchPriceCount = 0
}

func (e *Encoder) fillAlignPrices() {
	for i := uint32(0); i < alignSize; i++ {
		e.alignPrices[i] = priceReverseTree(e.m.align[:], alignBits, i)
	}
	e.alignPriceCount = 0
}

// --- symbol coding -------------------------------------------------------

func (e *Encoder) encodeLiteral(pos int) {
	src := e.src
	var prev byte
	if pos > 0 {
		prev = src[pos-1]
	}
	rc := &e.rc
	rc.encodeBit(&e.m.isMatch[e.state][uint32(pos)&e.pbMask], 0)
	probs := e.litProbs(pos, prev)
	b := uint32(src[pos])
	m := uint32(1)
	i := 8
	if e.state >= numLitStates {
		mb := uint32(src[pos-int(e.reps[0])-1])
		for i > 0 {
			i--
			bit := (b >> uint(i)) & 1
			mbit := (mb >> uint(i)) & 1
			rc.encodeBit(&probs[0x100+mbit<<8+m], bit)
			m = m<<1 | bit
			if bit != mbit {
				break
			}
		}
	}
	for i > 0 {
		i--
		bit := (b >> uint(i)) & 1
		rc.encodeBit(&probs[m], bit)
		m = m<<1 | bit
	}
	e.state = stateAfterLiteral(e.state)
}

func (e *Encoder) encodeLen(t *lenPrices, lm *lenModel, l, ps uint32) {
	rc := &e.rc
	l -= matchLenMin
	switch {
	case l < lenLowSymbols:
		rc.encodeBit(&lm.choice, 0)
		rc.encodeTree(lm.low[ps][:], lenLowBits, l)
	case l < lenLowSymbols+lenMidSymbols:
		rc.encodeBit(&lm.choice, 1)
		rc.encodeBit(&lm.choice2, 0)
		rc.encodeTree(lm.mid[ps][:], lenMidBits, l-lenLowSymbols)
	default:
		rc.encodeBit(&lm.choice, 1)
		rc.encodeBit(&lm.choice2, 1)
		rc.encodeTree(lm.high[:], lenHighBits, l-lenLowSymbols-lenMidSymbols)
	}
	t.counters[ps]--
	if t.counters[ps] <= 0 {
		e.updateLenPrices(t, lm, ps)
	}
}

func (e *Encoder) encodeMatch(pos int, dist, l uint32) {
	rc := &e.rc
	ps := uint32(pos) & e.pbMask
	rc.encodeBit(&e.m.isMatch[e.state][ps], 1)
	rc.encodeBit(&e.m.isRep[e.state], 0)
	e.state = stateAfterMatch(e.state)
	e.encodeLen(&e.matchLen, &e.m.matchLen, l, ps)
	s := posSlot(dist)
	rc.encodeTree(e.m.posSlot[lenToPosState(l)][:], numPosSlotBits, s)
	if s >= startPosModel {
		footer := (s >> 1) - 1
		base := (2 | s&1) << footer
		red := dist - base
		if s < endPosModel {
			rc.encodeReverseTree(e.m.specPos[base-s:], footer, red)
		} else {
			rc.encodeDirect(red>>alignBits, footer-alignBits)
			rc.encodeReverseTree(e.m.align[:], alignBits, red&alignMask)
			e.alignPriceCount++
		}
	}
	e.reps[3], e.reps[2], e.reps[1], e.reps[0] = e.reps[2], e.reps[1], e.reps[0], dist
	e.matchPriceCount++
}

func (e *Encoder) encodeRep(pos int, rep, l uint32) {
	rc := &e.rc
	ps := uint32(pos) & e.pbMask
	st := e.state
	rc.encodeBit(&e.m.isMatch[st][ps], 1)
	rc.encodeBit(&e.m.isRep[st], 1)
	if rep == 0 {
		rc.encodeBit(&e.m.isRepG0[st], 0)
		if l == 1 {
			rc.encodeBit(&e.m.isRep0Long[st][ps], 0)
			e.state = stateAfterShortRep(st)
			return
		}
		rc.encodeBit(&e.m.isRep0Long[st][ps], 1)
	} else {
		rc.encodeBit(&e.m.isRepG0[st], 1)
		d := e.reps[rep]
		if rep == 1 {
			rc.encodeBit(&e.m.isRepG1[st], 0)
		} else {
			rc.encodeBit(&e.m.isRepG1[st], 1)
			rc.encodeBit(&e.m.isRepG2[st], rep-2)
			if rep == 3 {
				e.reps[3] = e.reps[2]
			}
			e.reps[2] = e.reps[1]
		}
		e.reps[1] = e.reps[0]
		e.reps[0] = d
	}
	e.encodeLen(&e.repLen, &e.m.repLen, l, ps)
	e.state = stateAfterRep(st)
}

func (e *Encoder) encodeStep(pos int, s step) {
	switch {
	case s.back == litMarker:
		e.encodeLiteral(pos)
	case s.back < numReps:
		e.encodeRep(pos, s.back, s.len)
	default:
		e.encodeMatch(pos, s.back-numReps, s.len)
	}
}

// encode runs the destsize loop: parse, encode step by step, and stop at the
// first step whose flushed output would not fit into len(dst).
func (e *Encoder) encode(dst, src []byte) (n, consumed int) {
	limit := len(dst)
	e.reset(src, limit+256)
	pos := 0
	si := 0
	for pos < len(src) {
		if si == len(e.steps) {
			e.parse(pos)
			si = 0
		}
		s := e.steps[si]
		snap := e.rc.snapshot()
		e.encodeStep(pos, s)
		if e.rc.flushedSize() > limit {
			e.rc.restore(snap)
			break
		}
		si++
		pos += int(s.len)
	}
	if pos == 0 {
		return 0, 0
	}
	e.rc.flush()
	out := e.rc.buf
	e.out = out[:0]
	n = copy(dst, out)
	dst[0] = ^e.props
	return n, pos
}

// --- prices --------------------------------------------------------------

func (e *Encoder) literalPrice(pos int, prev, b byte, matched bool, mb byte) uint32 {
	probs := e.litProbs(pos, prev)
	var price uint32
	m := uint32(1)
	bb := uint32(b)
	i := 8
	if matched {
		mbb := uint32(mb)
		for i > 0 {
			i--
			bit := (bb >> uint(i)) & 1
			mbit := (mbb >> uint(i)) & 1
			price += priceBit(probs[0x100+mbit<<8+m], bit)
			m = m<<1 | bit
			if bit != mbit {
				break
			}
		}
	}
	for i > 0 {
		i--
		bit := (bb >> uint(i)) & 1
		price += priceBit(probs[m], bit)
		m = m<<1 | bit
	}
	return price
}

func (e *Encoder) repLen1Price(st, ps uint32) uint32 {
	return price0(e.m.isRepG0[st]) + price0(e.m.isRep0Long[st][ps])
}

func (e *Encoder) pureRepPrice(rep, st, ps uint32) uint32 {
	if rep == 0 {
		return price0(e.m.isRepG0[st]) + price1(e.m.isRep0Long[st][ps])
	}
	p := price1(e.m.isRepG0[st])
	if rep == 1 {
		return p + price0(e.m.isRepG1[st])
	}
	return p + price1(e.m.isRepG1[st]) + priceBit(e.m.isRepG2[st], rep-2)
}

func (e *Encoder) distPrice(dist, l uint32) uint32 {
	ls := lenToPosState(l)
	if dist < numFullDistances {
		return e.distPrices[ls][dist]
	}
	return e.posSlotPrices[ls][posSlot(dist)] + e.alignPrices[dist&alignMask]
}

// --- optimal parsing -----------------------------------------------------

// matchesAt returns the matches at position p (advancing the match finder
// past p), with the longest one extended beyond niceLen when possible.
func (e *Encoder) matchesAt(p int) []match {
	if e.cachedPos == p {
		e.cachedPos = -1
		e.ms = append(e.ms[:0], e.cached...)
		return e.ms
	}
	if e.mf.pos < p {
		e.mf.skip(p - e.mf.pos)
	}
	ms := e.mf.find(e.ms[:0])
	if n := len(ms); n > 0 && int(ms[n-1].len) == e.niceLen {
		limit := len(e.src) - p
		if limit > matchLenMax {
			limit = matchLenMax
		}
		ms[n-1].len = uint32(matchLen(e.src, p, p-int(ms[n-1].dist)-1, e.niceLen, limit))
	}
	e.ms = ms
	return ms
}

// skipTo advances the match finder to position p.
func (e *Encoder) skipTo(p int) {
	if e.mf.pos < p {
		e.mf.skip(p - e.mf.pos)
	}
}

func (e *Encoder) single(p int, s step) {
	e.steps = append(e.steps, s)
	e.skipTo(p + int(s.len))
}

// applyBack returns the rep distances after coding back with reps.
func applyBack(reps [numReps]uint32, back uint32) [numReps]uint32 {
	if back >= numReps {
		return [numReps]uint32{back - numReps, reps[0], reps[1], reps[2]}
	}
	d := reps[back]
	copy(reps[1:back+1], reps[:back])
	reps[0] = d
	return reps
}

// parse computes the next coding steps starting at pos into e.steps.
func (e *Encoder) parse(pos int) {
	e.steps = e.steps[:0]
	if e.matchPriceCount >= 1<<7 {
		e.fillDistPrices()
	}
	if e.alignPriceCount >= alignSize {
		e.fillAlignPrices()
	}
	src := e.src
	if pos == 0 {
		// The first symbol is always a literal (no history yet).
		e.matchesAt(0)
		e.single(0, step{1, litMarker})
		return
	}
	ms := e.matchesAt(pos)
	availFull := len(src) - pos
	avail := availFull
	if avail > matchLenMax {
		avail = matchLenMax
	}
	if avail < 2 {
		e.single(pos, step{1, litMarker})
		return
	}
	var repLens [numReps]int
	repMax := 0
	for i := 0; i < numReps; i++ {
		d := int(e.reps[i]) + 1
		if src[pos] != src[pos-d] || src[pos+1] != src[pos+1-d] {
			continue
		}
		repLens[i] = matchLen(src, pos, pos-d, 2, avail)
		if repLens[i] > repLens[repMax] {
			repMax = i
		}
	}
	if repLens[repMax] >= e.niceLen {
		e.single(pos, step{uint32(repLens[repMax]), uint32(repMax)})
		return
	}
	mainLen := 0
	if len(ms) > 0 {
		mainLen = int(ms[len(ms)-1].len)
	}
	if mainLen >= e.niceLen {
		e.single(pos, step{uint32(mainLen), ms[len(ms)-1].dist + numReps})
		return
	}
	cb := src[pos]
	mb := src[pos-int(e.reps[0])-1]
	if mainLen < 2 && cb != mb && repLens[repMax] < 2 {
		e.single(pos, step{1, litMarker})
		return
	}

	opt := &e.opt
	st := e.state
	ps := uint32(pos) & e.pbMask
	opt[0].state = st
	opt[0].reps = e.reps
	o1 := &opt[1]
	o1.price = price0(e.m.isMatch[st][ps]) + e.literalPrice(pos, src[pos-1], cb, st >= numLitStates, mb)
	o1.posPrev = 0
	o1.backPrev = litMarker
	o1.prev1Lit = false
	matchPrice := price1(e.m.isMatch[st][ps])
	repMatchPrice := matchPrice + price1(e.m.isRep[st])
	if mb == cb {
		if sr := repMatchPrice + e.repLen1Price(st, ps); sr < o1.price {
			o1.price = sr
			o1.backPrev = 0
		}
	}
	lenEnd := max(mainLen, repLens[repMax])
	if lenEnd < 2 {
		e.single(pos, step{1, o1.backPrev})
		return
	}
	for l := 2; l <= lenEnd; l++ {
		opt[l].price = infinityPrice
	}
	for i := 0; i < numReps; i++ {
		rl := repLens[i]
		if rl < 2 {
			continue
		}
		price := repMatchPrice + e.pureRepPrice(uint32(i), st, ps)
		lp := &e.repLen.prices[ps]
		for l := rl; l >= 2; l-- {
			if p := price + lp[l-2]; p < opt[l].price {
				o := &opt[l]
				o.price = p
				o.posPrev = 0
				o.backPrev = uint32(i)
				o.prev1Lit = false
			}
		}
	}
	normalMatchPrice := matchPrice + price0(e.m.isRep[st])
	l := 2
	if repLens[0] >= 2 {
		l = repLens[0] + 1
	}
	if l <= mainLen {
		offs := 0
		for uint32(l) > ms[offs].len {
			offs++
		}
		lp := &e.matchLen.prices[ps]
		for ; ; l++ {
			d := ms[offs].dist
			if p := normalMatchPrice + lp[l-2] + e.distPrice(d, uint32(l)); p < opt[l].price {
				o := &opt[l]
				o.price = p
				o.posPrev = 0
				o.backPrev = d + numReps
				o.prev1Lit = false
			}
			if uint32(l) == ms[offs].len {
				offs++
				if offs == len(ms) {
					break
				}
			}
		}
	}

	cur := 0
	for {
		cur++
		if cur == lenEnd {
			e.backward(pos, cur)
			return
		}
		p := pos + cur
		ms := e.matchesAt(p)
		newLen := 0
		if len(ms) > 0 {
			newLen = int(ms[len(ms)-1].len)
		}
		if newLen >= e.niceLen {
			e.cached = append(e.cached[:0], ms...)
			e.cachedPos = p
			e.backward(pos, cur)
			return
		}
		o := &opt[cur]
		// Derive the state and rep distances at cur from the path into it.
		var st uint32
		var reps [numReps]uint32
		if o.prev1Lit {
			if o.prev2 {
				from := &opt[o.posPrev2]
				reps = applyBack(from.reps, o.backPrev2)
				if o.backPrev2 < numReps {
					st = stateAfterRep(from.state)
				} else {
					st = stateAfterMatch(from.state)
				}
			} else {
				from := &opt[o.posPrev-1]
				st = from.state
				reps = from.reps
			}
			st = stateAfterRep(stateAfterLiteral(st))
		} else {
			from := &opt[o.posPrev]
			st = from.state
			if int(o.posPrev) == cur-1 {
				reps = from.reps
				if o.backPrev == 0 {
					st = stateAfterShortRep(st)
				} else {
					st = stateAfterLiteral(st)
				}
			} else {
				reps = applyBack(from.reps, o.backPrev)
				if o.backPrev < numReps {
					st = stateAfterRep(st)
				} else {
					st = stateAfterMatch(st)
				}
			}
		}
		o.state = st
		o.reps = reps

		curPrice := o.price
		cb := src[p]
		d0 := int(reps[0]) + 1
		mb := src[p-d0]
		ps := uint32(p) & e.pbMask
		curAnd1Price := curPrice + price0(e.m.isMatch[st][ps]) + e.literalPrice(p, src[p-1], cb, st >= numLitStates, mb)
		next := &opt[cur+1]
		nextIsLit := false
		if curAnd1Price < next.price {
			next.price = curAnd1Price
			next.posPrev = uint32(cur)
			next.backPrev = litMarker
			next.prev1Lit = false
			nextIsLit = true
		}
		matchPrice := curPrice + price1(e.m.isMatch[st][ps])
		repMatchPrice := matchPrice + price1(e.m.isRep[st])
		if mb == cb && !(int(next.posPrev) < cur && next.backPrev == 0) {
			if sr := repMatchPrice + e.repLen1Price(st, ps); sr <= next.price {
				next.price = sr
				next.posPrev = uint32(cur)
				next.backPrev = 0
				next.prev1Lit = false
				nextIsLit = true
			}
		}
		availFull := len(src) - p
		if availFull > numOpts-1-cur {
			availFull = numOpts - 1 - cur
		}
		if availFull < 2 {
			continue
		}
		avail := min(availFull, e.niceLen)

		if !nextIsLit && mb != cb {
			// literal + rep0
			lim := min(availFull, e.niceLen+1)
			t := matchLen(src, p+1, p+1-d0, 0, lim-1)
			if t >= 2 {
				st2 := stateAfterLiteral(st)
				ps2 := uint32(p+1) & e.pbMask
				price := curAnd1Price + price1(e.m.isMatch[st2][ps2]) + price1(e.m.isRep[st2]) +
					e.repLen.prices[ps2][t-2] + e.pureRepPrice(0, st2, ps2)
				off := cur + 1 + t
				for lenEnd < off {
					lenEnd++
					opt[lenEnd].price = infinityPrice
				}
				if o := &opt[off]; price < o.price {
					o.price = price
					o.posPrev = uint32(cur + 1)
					o.backPrev = 0
					o.prev1Lit = true
					o.prev2 = false
				}
			}
		}

		startLen := 2
		for ri := uint32(0); ri < numReps; ri++ {
			d := int(reps[ri]) + 1
			if src[p] != src[p-d] || src[p+1] != src[p+1-d] {
				continue
			}
			lt := matchLen(src, p, p-d, 2, avail)
			for lenEnd < cur+lt {
				lenEnd++
				opt[lenEnd].price = infinityPrice
			}
			price := repMatchPrice + e.pureRepPrice(ri, st, ps)
			lp := &e.repLen.prices[ps]
			for l := lt; l >= 2; l-- {
				if pr := price + lp[l-2]; pr < opt[cur+l].price {
					o := &opt[cur+l]
					o.price = pr
					o.posPrev = uint32(cur)
					o.backPrev = ri
					o.prev1Lit = false
				}
			}
			if ri == 0 {
				startLen = lt + 1
			}
			// rep + literal + rep0
			lim := min(lt+1+e.niceLen, availFull)
			if lt+1 < lim {
				t := matchLen(src, p+lt+1, p+lt+1-d, 0, lim-lt-1)
				if t >= 2 {
					st2 := stateAfterRep(st)
					ps2 := uint32(p+lt) & e.pbMask
					pr := price + lp[lt-2] + price0(e.m.isMatch[st2][ps2]) +
						e.literalPrice(p+lt, src[p+lt-1], src[p+lt], true, src[p+lt-d])
					st2 = stateAfterLiteral(st2)
					ps2 = uint32(p+lt+1) & e.pbMask
					pr += price1(e.m.isMatch[st2][ps2]) + price1(e.m.isRep[st2]) +
						e.repLen.prices[ps2][t-2] + e.pureRepPrice(0, st2, ps2)
					off := cur + lt + 1 + t
					for lenEnd < off {
						lenEnd++
						opt[lenEnd].price = infinityPrice
					}
					if o := &opt[off]; pr < o.price {
						o.price = pr
						o.posPrev = uint32(cur + lt + 1)
						o.backPrev = 0
						o.prev1Lit = true
						o.prev2 = true
						o.posPrev2 = uint32(cur)
						o.backPrev2 = ri
					}
				}
			}
		}

		if newLen > avail {
			newLen = avail
			i := 0
			for uint32(newLen) > ms[i].len {
				i++
			}
			ms[i].len = uint32(newLen)
			ms = ms[:i+1]
		}
		if newLen < startLen {
			continue
		}
		normalMatchPrice := matchPrice + price0(e.m.isRep[st])
		for lenEnd < cur+newLen {
			lenEnd++
			opt[lenEnd].price = infinityPrice
		}
		offs := 0
		for uint32(startLen) > ms[offs].len {
			offs++
		}
		lp := &e.matchLen.prices[ps]
		dist := ms[offs].dist
		for l := startLen; ; l++ {
			pr := normalMatchPrice + lp[l-2] + e.distPrice(dist, uint32(l))
			if o := &opt[cur+l]; pr < o.price {
				o.price = pr
				o.posPrev = uint32(cur)
				o.backPrev = dist + numReps
				o.prev1Lit = false
			}
			if uint32(l) != ms[offs].len {
				continue
			}
			// match + literal + rep0
			d := int(dist) + 1
			lim := min(l+1+e.niceLen, availFull)
			if l+1 < lim {
				t := matchLen(src, p+l+1, p+l+1-d, 0, lim-l-1)
				if t >= 2 {
					st2 := stateAfterMatch(st)
					ps2 := uint32(p+l) & e.pbMask
					pr2 := pr + price0(e.m.isMatch[st2][ps2]) +
						e.literalPrice(p+l, src[p+l-1], src[p+l], true, src[p+l-d])
					st2 = stateAfterLiteral(st2)
					ps2 = uint32(p+l+1) & e.pbMask
					pr2 += price1(e.m.isMatch[st2][ps2]) + price1(e.m.isRep[st2]) +
						e.repLen.prices[ps2][t-2] + e.pureRepPrice(0, st2, ps2)
					off := cur + l + 1 + t
					for lenEnd < off {
						lenEnd++
						opt[lenEnd].price = infinityPrice
					}
					if o := &opt[off]; pr2 < o.price {
						o.price = pr2
						o.posPrev = uint32(cur + l + 1)
						o.backPrev = 0
						o.prev1Lit = true
						o.prev2 = true
						o.posPrev2 = uint32(cur)
						o.backPrev2 = dist + numReps
					}
				}
			}
			offs++
			if offs == len(ms) {
				break
			}
			dist = ms[offs].dist
		}
	}
}

// backward turns the path ending at opt[end] into e.steps (in coding order)
// and makes sure the match finder has passed every position they cover.
func (e *Encoder) backward(pos, end int) {
	opt := &e.opt
	e.steps = e.steps[:0]
	i := uint32(end)
	for i > 0 {
		o := &opt[i]
		if o.prev1Lit {
			e.steps = append(e.steps, step{i - o.posPrev, o.backPrev}, step{1, litMarker})
			if o.prev2 {
				e.steps = append(e.steps, step{o.posPrev - 1 - o.posPrev2, o.backPrev2})
				i = o.posPrev2
			} else {
				i = o.posPrev - 1
			}
		} else {
			e.steps = append(e.steps, step{i - o.posPrev, o.backPrev})
			i = o.posPrev
		}
	}
	s := e.steps
	for a, b := 0, len(s)-1; a < b; a, b = a+1, b-1 {
		s[a], s[b] = s[b], s[a]
	}
	if e.cachedPos < 0 {
		e.skipTo(pos + end)
	}
}
