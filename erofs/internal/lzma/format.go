package lzma

// This file collects the constants of the LZMA1 format that both the encoder
// and the decoder depend on: the properties byte, the state machine and the
// sizes of the adaptive probability model.

const (
	// Probabilities are 11-bit fixed-point numbers; probInit is one half.
	probBits  = 11
	probTotal = 1 << probBits
	probInit  = probTotal / 2
	// moveBits is the adaptation speed of a probability.
	moveBits = 5
	// rcTop is the range below which the range coder shifts out a byte.
	rcTop = 1 << 24

	// numStates is the number of states of the LZMA state machine.
	numStates = 12
	// numLitStates: states below it mean "the previous symbol was a literal".
	numLitStates = 7

	// numReps is the number of remembered match distances.
	numReps = 4

	// maxPosBits bounds pb and lp.
	maxPosBits   = 4
	maxPosStates = 1 << maxPosBits
	// maxLC bounds lc; MicroLZMA decoders additionally need lc+lp <= 4.
	maxLC = 8
	// maxLCLP is the largest lc+lp the Linux kernel's MicroLZMA decoder accepts.
	maxLCLP = 4

	// literalCoderSize is the number of probabilities of one literal context:
	// 0x100 for the plain bit tree plus 0x200 for the "matched" trees.
	literalCoderSize = 0x300

	// Match lengths.
	matchLenMin = 2
	matchLenMax = 273

	// Length coder: 8 low symbols, 8 mid symbols, 256 high symbols.
	lenLowBits     = 3
	lenMidBits     = 3
	lenHighBits    = 8
	lenLowSymbols  = 1 << lenLowBits
	lenMidSymbols  = 1 << lenMidBits
	lenHighSymbols = 1 << lenHighBits
	lenSymbols     = lenLowSymbols + lenMidSymbols + lenHighSymbols

	// Distance coder.
	numLenToPosStates = 4 // distance slot contexts, by min(len-2, 3)
	numPosSlotBits    = 6
	numPosSlots       = 1 << numPosSlotBits
	startPosModel     = 4  // slots below this code the distance directly
	endPosModel       = 14 // slots from this on use direct bits + align bits
	numFullDistances  = 1 << (endPosModel >> 1)
	numSpecPos        = numFullDistances - endPosModel // 114
	alignBits         = 4
	alignSize         = 1 << alignBits
	alignMask         = alignSize - 1

	// Prices are in 1/16 bit.
	priceShiftBits = 4
	infinityPrice  = 1 << 30
)

// propsByte returns the LZMA properties byte for lc, lp, pb.
func propsByte(lc, lp, pb int) byte { return byte((pb*5+lp)*9 + lc) }

// parseProps splits an LZMA properties byte into lc, lp, pb.
func parseProps(b byte) (lc, lp, pb int, ok bool) {
	v := int(b)
	if v >= 9*5*5 {
		return 0, 0, 0, false
	}
	lc = v % 9
	v /= 9
	lp = v % 5
	pb = v / 5
	return lc, lp, pb, true
}

// prob is one adaptive bit probability (probability of a 0 bit, out of probTotal).
type prob uint16

// lenModel holds the probabilities of one length coder.
type lenModel struct {
	choice  prob
	choice2 prob
	low     [maxPosStates][lenLowSymbols]prob
	mid     [maxPosStates][lenMidSymbols]prob
	high    [lenHighSymbols]prob
}

// model is the complete adaptive probability model of an LZMA1 stream.
type model struct {
	isMatch    [numStates][maxPosStates]prob
	isRep      [numStates]prob
	isRepG0    [numStates]prob
	isRepG1    [numStates]prob
	isRepG2    [numStates]prob
	isRep0Long [numStates][maxPosStates]prob
	posSlot    [numLenToPosStates][numPosSlots]prob
	// specPos[base-slot:] is the reverse bit tree of a distance slot below
	// endPosModel (trees are indexed from 1, so entry 0 is unused).
	specPos  [numSpecPos + 1]prob
	align    [alignSize]prob
	matchLen lenModel
	repLen   lenModel
	literal  []prob // literalCoderSize << (lc+lp)
}

// reset sets every probability to one half, sizing the literal coder for lc+lp.
func (m *model) reset(lc, lp int) {
	lit := m.literal
	n := literalCoderSize << uint(lc+lp)
	if cap(lit) < n {
		lit = make([]prob, n)
	}
	lit = lit[:n]
	*m = model{}
	m.literal = lit
	fill := func(p []prob) { initProbs(p) }
	for i := range m.isMatch {
		fill(m.isMatch[i][:])
		fill(m.isRep0Long[i][:])
	}
	fill(m.isRep[:])
	fill(m.isRepG0[:])
	fill(m.isRepG1[:])
	fill(m.isRepG2[:])
	for i := range m.posSlot {
		fill(m.posSlot[i][:])
	}
	fill(m.specPos[:])
	fill(m.align[:])
	for _, lm := range []*lenModel{&m.matchLen, &m.repLen} {
		lm.choice = probInit
		lm.choice2 = probInit
		for i := range lm.low {
			fill(lm.low[i][:])
			fill(lm.mid[i][:])
		}
		fill(lm.high[:])
	}
	fill(m.literal)
}

func initProbs(p []prob) {
	for i := range p {
		p[i] = probInit
	}
}

// State transitions.
func stateAfterLiteral(s uint32) uint32 {
	switch {
	case s < 4:
		return 0
	case s < 10:
		return s - 3
	default:
		return s - 6
	}
}

func stateAfterMatch(s uint32) uint32 {
	if s < numLitStates {
		return 7
	}
	return 10
}

func stateAfterRep(s uint32) uint32 {
	if s < numLitStates {
		return 8
	}
	return 11
}

func stateAfterShortRep(s uint32) uint32 {
	if s < numLitStates {
		return 9
	}
	return 11
}

// lenToPosState maps a match length to its distance-slot context.
func lenToPosState(l uint32) uint32 {
	l -= matchLenMin
	if l < numLenToPosStates {
		return l
	}
	return numLenToPosStates - 1
}
