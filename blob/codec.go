package blob

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/klauspost/compress/zstd"
	"github.com/zeebo/blake3"

	"github.com/rafs-dev/rafs/erofs/lz4"
)

// castagnoli is the CRC-32C table used for chunk CRCs.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c returns the CRC-32C (Castagnoli) of b.
func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// Sum returns the chunk digest of b: its BLAKE3-256 or SHA-256.
func (d Digester) Sum(b []byte) [DigestSize]byte {
	if d == DigesterSHA256 {
		return sha256.Sum256(b)
	}
	return blake3.Sum256(b)
}

// zstdMagic starts every zstd frame.
var zstdMagic = []byte{0x28, 0xB5, 0x2F, 0xFD}

// metaZstdLevel is the zstd level for the CI array and the bootstrap (both
// small; libzstd level 3 is what nydus-image uses).
const metaZstdLevel = zstd.SpeedDefault

// newZstdEncoder returns an encoder for one goroutine's EncodeAll calls.
// Frames carry the content size and no checksum, like libzstd's defaults
// in nydus-image.
func newZstdEncoder(level zstd.EncoderLevel) (*zstd.Encoder, error) {
	return zstd.NewWriter(nil,
		zstd.WithEncoderLevel(level),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false),
	)
}

// chunkCompressor compresses chunks for one goroutine.
type chunkCompressor struct {
	kind Compressor
	zenc *zstd.Encoder
	lz   *lz4.Compressor
}

// newChunkCompressor returns a compressor for kind at level (0: the
// compressor's default; zstd levels follow libzstd numbering, lz4 levels
// those of erofs/lz4).
func newChunkCompressor(kind Compressor, level int) (*chunkCompressor, error) {
	c := &chunkCompressor{kind: kind}
	var err error
	switch kind {
	case CompressorNone:
	case CompressorZstd:
		c.zenc, err = newZstdEncoder(zstdLevel(level))
	case CompressorLZ4Block:
		c.lz, err = lz4.NewCompressor(level)
	default:
		err = fmt.Errorf("unsupported chunk compressor %v", kind)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// zstdLevel maps a libzstd level (0 = default) to a klauspost level.
func zstdLevel(level int) zstd.EncoderLevel {
	if level == 0 {
		return DefaultZstdLevel
	}
	return zstd.EncoderLevelFromZstd(level)
}

// compress compresses src into *buf (reusing and growing its capacity)
// and returns the compressed bytes, or nil when the result is not strictly
// smaller than src (the chunk is then stored raw).
func (c *chunkCompressor) compress(buf *[]byte, src []byte) []byte {
	switch c.kind {
	case CompressorZstd:
		out := c.zenc.EncodeAll(src, (*buf)[:0])
		*buf = out[:0]
		if len(out) >= len(src) {
			return nil
		}
		return out
	case CompressorLZ4Block:
		if len(src) < 2 {
			return nil
		}
		if cap(*buf) < len(src)-1 {
			*buf = make([]byte, 0, lz4.CompressBound(len(src)))
		}
		// A destination one byte short of src makes Compress fail unless
		// the result is strictly smaller.
		n := c.lz.Compress((*buf)[:len(src)-1], src)
		if n == 0 {
			return nil
		}
		return (*buf)[:n]
	}
	return nil
}

// decompressChunk decodes a stored chunk into dst[:size] with kind.
func decompressChunk(dec *zstd.Decoder, kind Compressor, dst, src []byte, size int) ([]byte, error) {
	switch kind {
	case CompressorZstd:
		out, err := dec.DecodeAll(src, dst[:0:size])
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		if len(out) != size || (size > 0 && &out[0] != &dst[0]) {
			return nil, fmt.Errorf("zstd: decoded %d bytes, want %d", len(out), size)
		}
		return out, nil
	case CompressorLZ4Block:
		n, err := lz4.Decompress(dst[:size], src)
		if err != nil {
			return nil, err
		}
		if n != size {
			return nil, fmt.Errorf("lz4: decoded %d bytes, want %d", n, size)
		}
		return dst[:size], nil
	case CompressorNone:
		return nil, errors.New("chunk marked compressed but compressor is none")
	}
	return nil, fmt.Errorf("unsupported chunk compressor %v", kind)
}
