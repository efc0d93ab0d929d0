package erofs

// Decompressors for the reader and the compression configuration records
// that follow the superblock when EROFS_FEATURE_INCOMPAT_COMPR_CFGS is set
// (struct z_erofs_lz4_cfgs, z_erofs_lzma_cfgs, z_erofs_deflate_cfgs and
// z_erofs_zstd_cfgs in the kernel's fs/erofs/erofs_fs.h).

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zstd"
	"github.com/rafs-dev/rafs/erofs/internal/lzma"
	"github.com/rafs-dev/rafs/erofs/lz4"
)

// zConfig is the image-wide compression configuration: the available
// algorithms and the parameters of their configuration records.
type zConfig struct {
	algs              uint16 // bit n set: algorithm n may be used
	lz4MaxDistance    uint16 // 0: LZ4's default 64 KiB window
	lz4MaxPclusterBlk uint16
	lzmaDictSize      uint32
	deflateWindowBits uint8
	zstdWindowLog     uint8 // log2(window) - 10
}

// algName names a compression algorithm id for messages.
func algName(alg uint8) string {
	switch alg {
	case AlgLZ4:
		return "lz4"
	case AlgLZMA:
		return "lzma"
	case AlgDeflate:
		return "deflate"
	case AlgZstd:
		return "zstd"
	}
	return fmt.Sprintf("algorithm %d", alg)
}

// readComprConfigs decodes the superblock's compression fields: with
// COMPR_CFGS the algorithm bitmap in u1 and one configuration record per
// algorithm at 1024+sb_size; otherwise LZ4 only, with u1 holding
// lz4_max_distance.
func (f *FS) readComprConfigs() error {
	sb := &f.sb
	c := &f.zcfg
	if sb.FeatureIncompat&FeatureIncompatComprCfgs == 0 {
		c.algs = 1 << AlgLZ4
		c.lz4MaxDistance = sb.U1
		c.lz4MaxPclusterBlk = 1
		return nil
	}
	c.algs = sb.U1
	if unknown := c.algs &^ (1<<(algMax+1) - 1); unknown != 0 {
		return unsupportedf("superblock: unknown compression algorithms %#x", unknown)
	}
	pos := int64(SuperblockOffset + superblockSize + 16*int(sb.ExtSlots))
	for alg := uint8(0); alg <= algMax; alg++ {
		if c.algs&(1<<alg) == 0 {
			continue
		}
		pos = roundUp64(pos, 4)
		var hdr [2]byte
		if err := readFull(f.r, hdr[:], pos); err != nil {
			return ioErrorf(err, "superblock: %s configuration record", algName(alg))
		}
		n := sizedRecordSize(hdr[:])
		if n == 0 {
			n = 1 << 16 // as the kernel reads it
		}
		pos += 2
		if f.size >= 0 && pos+int64(n) > f.size {
			return corruptf("superblock: %s configuration record (%d bytes at %d) beyond end of image", algName(alg), n, pos)
		}
		// Only the fixed-size prefix of a record matters.
		b := make([]byte, min(n, 16))
		if err := readFull(f.r, b, pos); err != nil {
			return ioErrorf(err, "superblock: %s configuration record", algName(alg))
		}
		pos += int64(n)
		bad := func(what string, args ...any) error {
			return corruptf("superblock: %s configuration record: %s", algName(alg), fmt.Sprintf(what, args...))
		}
		if n < zAlgConfigSize(alg) {
			return bad("size %d too small", n)
		}
		cfg := decodeZAlgConfig(alg, b)
		switch alg {
		case AlgLZ4:
			c.lz4MaxDistance = cfg.lz4MaxDistance
			c.lz4MaxPclusterBlk = cfg.lz4MaxPclusterBlks
			if c.lz4MaxPclusterBlk == 0 {
				c.lz4MaxPclusterBlk = 1
			} else if int64(c.lz4MaxPclusterBlk) > maxPclusterSize>>f.blkBits {
				return bad("max_pclusterblks %d too large", c.lz4MaxPclusterBlk)
			}
		case AlgLZMA:
			c.lzmaDictSize = cfg.lzmaDictSize
			if cfg.format != 0 {
				return bad("unknown format %d", cfg.format)
			}
			if c.lzmaDictSize > maxLZMADictSize {
				return bad("dictionary size %d too large", c.lzmaDictSize)
			}
		case AlgDeflate:
			c.deflateWindowBits = cfg.deflateWindowBits
			if c.deflateWindowBits > 15 {
				return bad("window bits %d too large", c.deflateWindowBits)
			}
		case AlgZstd:
			if cfg.format != 0 {
				return bad("unknown format %d", cfg.format)
			}
			c.zstdWindowLog = cfg.zstdWindowLog
			if int(c.zstdWindowLog)+10 > maxZstdWindowLog {
				return bad("window log %d too large", c.zstdWindowLog)
			}
		}
	}
	return nil
}

// errShortOutput is returned by decompress when a stream ends before
// producing the bytes its extent needs.
var errShortOutput = errors.New("stream ends early")

// decompress decodes the compressed stream src (without its zero padding)
// of algorithm alg into exactly len(dst) bytes. The stream may decode to
// more than len(dst) bytes when partial is set (a partially referenced
// pcluster, Z_EROFS_LI_PARTIAL_REF in fs/erofs/erofs_fs.h): only its
// prefix is decoded. Otherwise an LZ4 (with zero padding) or LZMA stream
// must decode to exactly len(dst) bytes, while DEFLATE and zstd streams
// need only produce at least len(dst) bytes and the rest is ignored.
func (f *FS) decompress(alg uint8, dst, src []byte, partial bool) error {
	switch alg {
	case AlgLZ4:
		return decodeLZ4(dst, src, partial || f.sb.FeatureIncompat&FeatureIncompatZeroPadding == 0)
	case AlgLZMA:
		return decodeLZMA(dst, src, int(f.zcfg.lzmaDictSize), partial)
	case AlgDeflate:
		return decodeDeflate(dst, src)
	case AlgZstd:
		return decodeZstd(dst, src)
	}
	return unsupportedf("compression %s", algName(alg))
}

// flateReaders recycles DEFLATE decoders (their window and tables are
// sizeable).
var flateReaders sync.Pool

// decodeDeflate decodes a raw DEFLATE stream into dst.
func decodeDeflate(dst, src []byte) error {
	br := bytes.NewReader(src)
	var zr io.ReadCloser
	if v := flateReaders.Get(); v != nil {
		zr = v.(io.ReadCloser)
		if err := zr.(flate.Resetter).Reset(br, nil); err != nil {
			return err
		}
	} else {
		zr = flate.NewReader(br)
	}
	_, err := io.ReadFull(zr, dst)
	flateReaders.Put(zr)
	if errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF {
		return errShortOutput
	}
	return err
}

// zstdMaxDecoded bounds the output of one zstd frame: an extent is at most
// maxExtentSize bytes, and a partially referenced pcluster decodes to not
// much more than that in any sane image.
const zstdMaxDecoded = 16 << 20

// zstdDecoders recycles zstd decoders. With a concurrency of 1 and only
// DecodeAll in use, a decoder owns no goroutines, so dropped ones are
// simply garbage collected.
var zstdDecoders = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(zstdMaxDecoded),
		zstd.WithDecoderMaxWindow(zstdMaxDecoded),
		zstd.IgnoreChecksum(false))
	if err != nil {
		panic(err) // the options are constant
	}
	return d
}}

// decodeZstd decodes a zstd frame into dst.
func decodeZstd(dst, src []byte) error {
	if len(dst) == 0 {
		return nil
	}
	d := zstdDecoders.Get().(*zstd.Decoder)
	defer zstdDecoders.Put(d)
	out, err := d.DecodeAll(src, dst[:0])
	if err != nil {
		return err
	}
	if len(out) < len(dst) {
		return errShortOutput
	}
	if &out[0] != &dst[0] {
		copy(dst, out) // the decoder had to grow the buffer
	}
	return nil
}

// decodeLZ4 decodes an LZ4 block into dst. A block must decode to exactly
// len(dst) bytes unless only a prefix is wanted (partial), or unless the
// image predates zero padding, where the block is followed by zeros.
func decodeLZ4(dst, src []byte, partial bool) error {
	var n int
	var err error
	if partial {
		n, err = lz4.DecompressPartial(dst, src)
	} else {
		n, err = lz4.Decompress(dst, src)
	}
	if err != nil {
		return err
	}
	if n < len(dst) {
		return errShortOutput
	}
	return nil
}

// decodeLZMA decodes a MicroLZMA stream into dst. The whole stream must
// decode to exactly len(dst) bytes, unless only a prefix is wanted
// (partial): then decoding stops once dst is full and the rest of the
// stream is not looked at.
func decodeLZMA(dst, src []byte, dictSize int, partial bool) error {
	if partial {
		return lzma.DecodePrefix(dst, src, dictSize)
	}
	return lzma.Decode(dst, src, dictSize)
}
