// Package lz4 implements the LZ4 block format (not the frame format) in pure
// Go, for EROFS compressed clusters and Nydus lz4_block chunks.
//
// Besides ordinary compression ([Compressor.Compress]) it provides
// output-size-bounded compression ([Compressor.CompressDestSize]), which
// compresses as long a prefix of the input as fits into a fixed output
// budget, the way liblz4's LZ4_compress_destSize and LZ4_compress_HC_destSize
// do; EROFS uses it to fill physical clusters.
//
// Every block the compressor produces follows the end-of-block rules of the
// format, so that strict decoders such as the Linux kernel's accept it: the
// last 5 bytes of the decoded data are literals, the last match starts at
// least 12 bytes before the end of the decoded data, every match is at least
// 4 bytes long and every offset is in 1..[MaxDistance].
//
// The first byte of a block that encodes at least one byte is never zero:
// the first sequence always starts with at least one literal (a match cannot
// start at position 0), so its token's high nibble is non-zero. EROFS relies
// on this to find the start of right-aligned compressed data by skipping
// leading zero bytes. Only the block for empty input, the single byte 0x00,
// starts with zero.
//
// Output is deterministic: the same level and input give the same bytes.
package lz4

import (
	"errors"
	"fmt"
)

// MaxDistance is the largest match offset the encoder uses (65535).
const MaxDistance = 65535

// Compression levels accepted by [NewCompressor].
const (
	// LevelFast selects the fast greedy compressor (like LZ4_compress_default
	// with acceleration 1).
	LevelFast = 0
	// LevelHCDefault is the high-compression level mkfs.erofs uses for
	// lz4hc when no level is given.
	LevelHCDefault = 9
	// LevelHCMax is the highest accepted level.
	LevelHCMax = 12
)

// CompressBound returns the worst-case compressed size of n input bytes, or
// 0 if n is negative or larger than the compressor accepts.
func CompressBound(n int) int {
	if n < 0 || n > maxInputSize {
		return 0
	}
	return n + n/255 + 16
}

// Compressor compresses LZ4 blocks. It reuses its tables between calls and is
// not safe for concurrent use.
//
// The zero value is not usable; create one with [NewCompressor].
type Compressor struct {
	level int
	fast  *fastState
	hc    *hcState
}

// NewCompressor returns a compressor for the given level.
//
// Level 0 ([LevelFast]) is the fast greedy compressor, comparable to
// LZ4_compress_default (acceleration 1) in speed and ratio.
//
// Levels 1..12 use a hash-chain match finder with multi-match lookahead
// parsing, comparable to lz4hc. The level sets how many chain candidates
// are examined per search: 2 for levels 1 and 2 (lz4hc also treats its
// levels below 3 alike), then doubling per level, from 4 at level 3 to 256
// at level 9 ([LevelHCDefault], what mkfs.erofs uses for lz4hc by default).
// From level 9 on, searches skip through runs of one byte value (such as
// zero padding) instead of spending their candidates inside them, as lz4hc
// does from its level 9 on. Levels 10, 11 and 12 search 1024, 4096 and 16384 candidates with the same
// parser; unlike lz4hc they do not switch to an optimal parser, so they
// are slower than level 9 but gain little.
func NewCompressor(level int) (*Compressor, error) {
	if level < 0 || level > LevelHCMax {
		return nil, fmt.Errorf("lz4: compression level %d out of range 0..%d", level, LevelHCMax)
	}
	c := &Compressor{level: level}
	if level == LevelFast {
		c.fast = newFastState()
	} else {
		c.hc = newHCState(hcAttempts(level))
	}
	return c, nil
}

// Level returns the compressor's level.
func (c *Compressor) Level() int { return c.level }

// hcAttempts maps an HC level to the number of chain candidates per search.
func hcAttempts(level int) int {
	switch {
	case level <= 2:
		return 2
	case level <= 9:
		return 1 << (level - 1)
	default:
		return 1024 << (2 * (level - 10))
	}
}

// Compress compresses all of src into dst and returns the bytes written, or 0
// if it does not fit into len(dst) (or src is longer than the compressor
// accepts). A dst of [CompressBound](len(src)) bytes always suffices. Empty
// src compresses to the single byte 0x00.
func (c *Compressor) Compress(dst, src []byte) int {
	if len(src) > maxInputSize {
		return 0
	}
	if len(src) == 0 {
		if len(dst) == 0 {
			return 0
		}
		dst[0] = 0
		return 1
	}
	var n int
	if c.fast != nil {
		n, _ = c.fast.compress(dst, src, false)
	} else {
		n, _ = c.hc.compress(dst, src, false)
	}
	return n
}

// CompressDestSize compresses the longest prefix of src it can fit into
// len(dst) bytes; returns bytes written and source bytes consumed.
// The output is a complete, valid LZ4 block that decodes to exactly
// src[:consumed].
//
// When all of src fits, the result equals that of [Compressor.Compress].
// When not even one source byte fits (len(dst) < 2) or src is empty, it
// writes nothing and returns 0, 0; so consumed > 0 whenever n > 0, and the
// first byte written is then never zero.
func (c *Compressor) CompressDestSize(dst, src []byte) (n, consumed int) {
	if len(src) == 0 || len(dst) < 2 {
		return 0, 0
	}
	// No block of len(dst) bytes can encode more than about 255 source bytes
	// per output byte; looking further ahead is wasted work (and would let a
	// single match scan an arbitrarily long run).
	if lim := min(len(dst), maxInputSize/256)*256 + 64; len(src) > lim {
		src = src[:lim]
	}
	if c.fast != nil {
		return c.fast.compress(dst, src, true)
	}
	return c.hc.compress(dst, src, true)
}

// Errors returned (wrapped) by [Decompress] and [DecompressPartial].
var (
	// ErrCorrupt reports a malformed block: truncated, a zero offset or a
	// match reaching before the start of the output.
	ErrCorrupt = errors.New("lz4: corrupt block")
	// ErrShortBuffer reports a block that decodes to more than len(dst) bytes.
	ErrShortBuffer = errors.New("lz4: output buffer too small")
)

// Decompress decodes one LZ4 block from src into dst and returns the number
// of bytes produced. It returns an error (never panics) for corrupt input, a
// match reaching before the start of the output, or output larger than
// len(dst). The block must span all of src. Bytes of dst past the returned
// count are left untouched.
func Decompress(dst, src []byte) (int, error) {
	return decompress(dst, src, false)
}

// DecompressPartial decodes the first len(dst) bytes of the LZ4 block in src
// (or all of it, if it is shorter) and returns the number of bytes produced.
// It stops as soon as dst is full, so corruption in the rest of the block
// goes unnoticed; corruption before that point gives an error. EROFS readers
// use it when they need only a prefix of a cluster's data.
func DecompressPartial(dst, src []byte) (int, error) {
	return decompress(dst, src, true)
}
