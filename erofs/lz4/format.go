package lz4

// LZ4 block format constants.
//
// A block is a sequence of sequences. Each sequence is a token byte, an
// optional literal-length extension, the literals, a 2-byte little-endian
// match offset, and an optional match-length extension. The high nibble of
// the token is the literal length and the low nibble the match length minus
// minMatch; a nibble of 15 is continued by bytes that are added to it, every
// 255 byte being followed by another one. The last sequence of a block has
// literals only: the block ends right after them.
const (
	// minMatch is the shortest match the format can express.
	minMatch = 4
	// runMask is the nibble value that announces a length extension.
	runMask = 15
	// lastLiterals is how many bytes at the end of a block must be literals.
	lastLiterals = 5
	// mfLimit is how far before the end of a block the last match must start
	// at the latest.
	mfLimit = 12
	// minInputForMatch is the shortest input that can contain a match:
	// a match starts at offset 1 at the earliest and at len-mfLimit at the latest.
	minInputForMatch = mfLimit + 1
	// maxInputSize is the largest input the compressor accepts (as liblz4's
	// LZ4_MAX_INPUT_SIZE).
	maxInputSize = 0x7E000000
)
