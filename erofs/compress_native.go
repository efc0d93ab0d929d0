package erofs

// The compressors with native destination-size encoders, both in this
// module: LZ4 (and its high-compression mode) and MicroLZMA.

import (
	"fmt"

	"github.com/rafs-dev/rafs/erofs/internal/lzma"
	"github.com/rafs-dev/rafs/erofs/lz4"
)

func newNativeCompressor(c *Compression, pcluster int) (compressor, error) {
	if c.Algorithm == "lzma" {
		e, err := lzma.NewEncoder(lzma.Options{Level: c.level(), DictSize: lzmaDictSize(pcluster)})
		if err != nil {
			return nil, fmt.Errorf("erofs: %w", err)
		}
		return lzmaDestSize{e}, nil
	}
	level := 0
	if c.Algorithm == "lz4hc" {
		level = c.level()
	}
	z, err := lz4.NewCompressor(level)
	if err != nil {
		return nil, fmt.Errorf("erofs: %w", err)
	}
	return lz4DestSize{z}, nil
}

type lz4DestSize struct{ c *lz4.Compressor }

func (l lz4DestSize) destSize(dst, src []byte) (int, int) { return l.c.CompressDestSize(dst, src) }

// reset does nothing: the LZ4 encoder's output depends only on its input.
func (l lz4DestSize) reset() {}

type lzmaDestSize struct{ e *lzma.Encoder }

func (l lzmaDestSize) destSize(dst, src []byte) (int, int) { return l.e.EncodeDestSize(dst, src) }

// reset does nothing: the LZMA encoder's output depends only on its input.
func (l lzmaDestSize) reset() {}
