// Package lzma implements the LZMA1 compression format in the "MicroLZMA"
// framing used by EROFS pclusters.
//
// A MicroLZMA stream is a raw LZMA1 range-coder stream without an
// end-of-payload marker whose first byte (always 0x00 in raw LZMA1) is
// replaced by the bitwise NOT of the properties byte (pb*5+lp)*9+lc. The
// decoder must know both the exact compressed size and the exact
// uncompressed size (Decode), unless it wants only a prefix of the output
// (DecodePrefix). The Linux kernel decodes such streams with
// xz_dec_microlzma; liblzma writes them with lzma_microlzma_encoder.
//
// The encoder is output-size bounded ("destsize"): it encodes the longest
// prefix of its input that fits into a fixed output budget and reports how
// much input it consumed. It uses a binary-tree match finder and
// price-based near-optimal parsing, like liblzma's "normal" mode.
package lzma

import (
	"errors"
	"fmt"
)

// Options configure an Encoder. Zero values mean: Level 6, DictSize 8 MiB
// capped to what is needed, LC 3, LP 0, PB 2.
//
// Level (1…9) selects the match finder effort: the "nice" match length
// (16 for levels 1–4, 32 for 5, 64 for 6–8, 273 for 9) and the binary-tree
// search depth. DictSize (4 KiB…8 MiB) bounds match distances and must not
// exceed the dict_size a reader is told. LC+LP must not exceed 4 (a
// MicroLZMA requirement of the kernel decoder), PB must not exceed 4.
type Options struct {
	Level    int
	DictSize int
	LC, LP   int
	PB       int
}

// DefaultDictSize is the dictionary size used when Options.DictSize is 0.
const DefaultDictSize = 8 << 20

// MaxDictSize is the largest dictionary EROFS readers accept.
const MaxDictSize = 8 << 20

// maxInput bounds how much of src one call looks at (the match finder
// stores 32-bit positions).
const maxInput = 1 << 30

// MinDictSize is the smallest dictionary size an Encoder accepts.
const MinDictSize = 4096

// Encoder is a MicroLZMA encoder. It reuses its buffers between calls; it
// is not safe for concurrent use.
type Encoder struct {
	lc, lp, pb     uint32
	lpMask, pbMask uint32
	props          byte
	dictSize       int
	niceLen        int
	depth          int

	encoderState
}

// NewEncoder returns an Encoder for the given options.
func NewEncoder(o Options) (*Encoder, error) {
	if o.Level == 0 {
		o.Level = 6
	}
	if o.DictSize == 0 {
		o.DictSize = DefaultDictSize
	}
	if o.LC == 0 && o.LP == 0 && o.PB == 0 {
		o.LC, o.PB = 3, 2
	}
	if o.Level < 1 || o.Level > 9 {
		return nil, fmt.Errorf("lzma: level %d out of range 1…9", o.Level)
	}
	if o.DictSize < MinDictSize || o.DictSize > MaxDictSize {
		return nil, fmt.Errorf("lzma: dictionary size %d out of range %d…%d", o.DictSize, MinDictSize, MaxDictSize)
	}
	if o.LC < 0 || o.LP < 0 || o.PB < 0 || o.LC+o.LP > maxLCLP || o.PB > maxPosBits {
		return nil, errors.New("lzma: invalid lc/lp/pb (need lc+lp <= 4, pb <= 4)")
	}
	e := &Encoder{
		lc: uint32(o.LC), lp: uint32(o.LP), pb: uint32(o.PB),
		lpMask:   1<<uint(o.LP) - 1,
		pbMask:   1<<uint(o.PB) - 1,
		props:    propsByte(o.LC, o.LP, o.PB),
		dictSize: o.DictSize,
	}
	switch {
	case o.Level <= 3:
		e.niceLen, e.depth = 16, 8
	case o.Level == 4:
		e.niceLen, e.depth = 16, 24
	case o.Level == 5:
		e.niceLen, e.depth = 32, 32
	case o.Level <= 8:
		e.niceLen, e.depth = 64, 48
	default:
		e.niceLen, e.depth = matchLenMax, 512
	}
	return e, nil
}

// EncodeDestSize encodes the longest prefix of src that fits into len(dst)
// bytes as one MicroLZMA stream. It returns the stream length n (≤ len(dst))
// and the number of source bytes consumed: the stream decodes to exactly
// src[:consumed]. If not even one byte fits (len(dst) < 6, or src is
// empty), it returns 0, 0.
func (e *Encoder) EncodeDestSize(dst, src []byte) (n, consumed int) {
	if len(src) == 0 || len(dst) < 6 {
		return 0, 0
	}
	if len(src) > maxInput {
		src = src[:maxInput]
	}
	return e.encode(dst, src)
}
