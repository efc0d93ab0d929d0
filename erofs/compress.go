package erofs

// Compressors for compressed images. Each one compresses "to a destination
// size": it encodes the longest prefix of its input that fits into a
// physical cluster, the way mkfs.erofs fills pclusters. LZ4 and LZMA have
// native destination-size encoders; DEFLATE and Zstandard search for the
// input length with ordinary encoders.

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zstd"
)

// Compression configures a compressed image. Algorithm must be set; the
// zero value of every other field is mkfs.erofs's default for it (the
// algorithm's default level, one-block physical clusters, no tail packing,
// fragments or dedupe, compact indexes). Regular files are compressed;
// directories, symlinks and files too small to gain stay uncompressed.
type Compression struct {
	// Algorithm is one of "lz4", "lz4hc", "lzma", "deflate" and "zstd".
	Algorithm string

	// Level is the algorithm's compression level, with mkfs.erofs's
	// meaning and range: lz4hc 1-12, lzma 1-9, deflate 1-9, zstd 1-22;
	// lz4 has none. 0 means the algorithm's default, mkfs.erofs's
	// (lz4hc 9, lzma 6, deflate 1, zstd 3), so that
	// Compression{Algorithm: "zstd"} is a complete configuration. The
	// level 0 mkfs.erofs takes for lzma and deflate (their fastest) is
	// not available: ParseCompression reads level=0 as the default, which
	// is what mkfs.erofs makes of it for lz4hc.
	Level int

	// PclusterSize is the largest physical cluster in bytes, like
	// mkfs.erofs -C: a multiple of the block size up to 1 MiB. 0 means one
	// block. Larger clusters compress better and read more per miss.
	PclusterSize int

	// Ztailpacking stores each file's last compressed cluster inline in
	// its inode's block when it is smaller than a block
	// (mkfs.erofs -E ztailpacking).
	Ztailpacking bool

	// FullIndexes writes 8-byte logical cluster indexes instead of the
	// compact 2- and 4-byte ones (mkfs.erofs -E legacy-compress).
	FullIndexes bool

	// Fragments packs file tails into the packed inode, a hidden file
	// whose compressed content is the concatenation of such fragments
	// (mkfs.erofs -E fragments): the data at a file's end that would fill
	// only part of a physical cluster, and so whole files that compress to
	// less than one. Fragments of neighbouring files then share clusters
	// instead of each wasting part of a block.
	Fragments bool

	// AllFragments packs whole files into the packed inode
	// (mkfs.erofs -E all-fragments). It implies Fragments.
	AllFragments bool

	// PackedPclusterSize is the largest physical cluster of the packed
	// inode (the SIZE of -E fragments=SIZE or all-fragments=SIZE); 0 means
	// PclusterSize.
	PackedPclusterSize int

	// FragDedupe says which fragments are stored once when several files
	// have the same ones (mkfs.erofs -E fragdedupe=).
	FragDedupe FragDedupe

	// Dedupe shares compressed data between extents (mkfs.erofs -E
	// dedupe): an extent whose bytes are already at the start of an
	// earlier physical cluster, in this file or another, points at that
	// cluster, partially when it uses only a prefix of its output. Files
	// with such extents get full lcluster indexes.
	Dedupe bool

	// Workers is the number of goroutines compressing; 0 means GOMAXPROCS.
	// The image does not depend on it. They run from NewWriter until
	// Close, which must be called even after an error.
	Workers int
}

// FragDedupe says which identical fragments are stored once.
type FragDedupe uint8

const (
	// FragDedupeFull stores a fragment once: a file's fragment that equals
	// an earlier fragment, or its end, points there (mkfs.erofs -E
	// fragdedupe=full, its default).
	FragDedupeFull FragDedupe = iota
	// FragDedupeInode shares only fragments that are whole files
	// (fragdedupe=inode).
	FragDedupeInode
	// FragDedupeOff stores every fragment (-E ^fragdedupe).
	FragDedupeOff
)

// String returns the mkfs.erofs spelling: full, inode or off.
func (d FragDedupe) String() string {
	switch d {
	case FragDedupeFull:
		return "full"
	case FragDedupeInode:
		return "inode"
	case FragDedupeOff:
		return "off"
	}
	return fmt.Sprintf("FragDedupe(%d)", uint8(d))
}

// algorithms maps the algorithm names to their on-disk id and default
// level, and the level range.
var algorithms = map[string]struct {
	id                    uint8
	def, minLevel, maxLvl int
}{
	"lz4":     {AlgLZ4, 0, 0, 0},
	"lz4hc":   {AlgLZ4, 9, 1, 12},
	"lzma":    {AlgLZMA, 6, 1, 9},
	"deflate": {AlgDeflate, 1, 1, 9},
	"zstd":    {AlgZstd, 3, 1, 22},
}

// DefaultCompression returns the configuration mkfs.erofs uses for -z alg:
// its default level and one-block physical clusters.
func DefaultCompression(alg string) (*Compression, error) {
	a, ok := algorithms[alg]
	if !ok {
		return nil, fmt.Errorf("erofs: unknown compression algorithm %q (want lz4, lz4hc, lzma, deflate or zstd)", alg)
	}
	return &Compression{Algorithm: alg, Level: a.def}, nil
}

// ParseCompression parses a mkfs.erofs -z argument: "ALG" or
// "ALG,level=N" (also the older "ALG,N").
func ParseCompression(s string) (*Compression, error) {
	name, opts, _ := strings.Cut(s, ",")
	c, err := DefaultCompression(name)
	if err != nil {
		return nil, err
	}
	if opts == "" {
		return c, nil
	}
	for _, o := range strings.Split(opts, ",") {
		v, ok := strings.CutPrefix(o, "level=")
		if !ok && strings.Contains(o, "=") {
			return nil, fmt.Errorf("erofs: compression option %q: only level=N is supported", o)
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("erofs: compression level %q is not a number", v)
		}
		c.Level = n
	}
	return c, c.validate(DefaultBlockSize)
}

// String formats c the way ParseCompression reads it.
func (c *Compression) String() string {
	if c.Algorithm == "lz4" {
		return c.Algorithm
	}
	return fmt.Sprintf("%s,level=%d", c.Algorithm, c.level())
}

// Key formats every field that can change the image, for keys of caches
// of converted layers: two configurations with the same key write the
// same image from the same input. Workers, which changes no byte, is left
// out. Fields added after the first five appear only when set, so that
// keys made before them still name the same images.
func (c *Compression) Key() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s/%d/%d/%t/%t", c.Algorithm, c.level(), c.PclusterSize, c.Ztailpacking, c.FullIndexes)
	if c.Fragments {
		b.WriteString("/fragments")
	}
	if c.AllFragments {
		b.WriteString("/all-fragments")
	}
	if c.PackedPclusterSize != 0 {
		fmt.Fprintf(&b, "/packed=%d", c.PackedPclusterSize)
	}
	if c.FragDedupe != FragDedupeFull {
		fmt.Fprintf(&b, "/fragdedupe=%s", c.FragDedupe)
	}
	if c.Dedupe {
		b.WriteString("/dedupe")
	}
	return b.String()
}

func (c *Compression) validate(bs int) error {
	a, ok := algorithms[c.Algorithm]
	if !ok {
		return fmt.Errorf("erofs: unknown compression algorithm %q (want lz4, lz4hc, lzma, deflate or zstd)", c.Algorithm)
	}
	if l := c.level(); c.Level < 0 || l < a.minLevel || l > a.maxLvl {
		return fmt.Errorf("erofs: %s level %d out of range %d-%d", c.Algorithm, c.Level, a.minLevel, a.maxLvl)
	}
	p := c.PclusterSize
	if p != 0 && (p < bs || p%bs != 0 || p > maxPclusterSize) {
		return fmt.Errorf("erofs: physical cluster size %d is not a multiple of the block size %d up to %d", p, bs, maxPclusterSize)
	}
	if p != 0 && p/bs > deltaMax {
		return fmt.Errorf("erofs: physical cluster of %d blocks exceeds %d", p/bs, deltaMax)
	}
	if q := c.PackedPclusterSize; q != 0 && (q < bs || q%bs != 0 || q > maxPclusterSize || q/bs > deltaMax) {
		return fmt.Errorf("erofs: packed inode physical cluster size %d is not a multiple of the block size %d up to %d", q, bs, maxPclusterSize)
	}
	if c.FragDedupe > FragDedupeOff {
		return fmt.Errorf("erofs: unknown fragment dedupe mode %d", c.FragDedupe)
	}
	if c.Workers < 0 {
		return fmt.Errorf("erofs: negative worker count %d", c.Workers)
	}
	return nil
}

// level is the level to compress at: Level, or the algorithm's default
// for 0.
func (c *Compression) level() int {
	if c.Level == 0 {
		return algorithms[c.Algorithm].def
	}
	return c.Level
}

// algID is the on-disk algorithm id.
func (c *Compression) algID() uint8 { return algorithms[c.Algorithm].id }

// lzmaDictSize is the LZMA dictionary size recorded in the configuration, as
// mkfs.erofs chooses it: four physical clusters, at least 32 KiB.
func lzmaDictSize(pcluster int) int {
	return max(32<<10, min(maxLZMADictSize, 4*pcluster))
}

// zstdWindowLog is log2 of the Zstandard window: eight physical clusters
// up to 1 MiB, rounded down to a power of two.
func zstdWindowLog(pcluster int) int {
	w := min(1<<maxZstdWindowLog, 8*pcluster)
	lg := 0
	for 1<<(lg+1) <= w {
		lg++
	}
	return lg
}

// compressor encodes one physical cluster. Each worker has its own.
type compressor interface {
	// destSize encodes the longest prefix of src that fits into dst and
	// returns the encoded length and the number of bytes of src used; 0, 0
	// when nothing fits.
	destSize(dst, src []byte) (n, consumed int)

	// reset forgets what earlier calls learned, so a segment's encoding
	// does not depend on which worker compressed what before it.
	reset()
}

func newCompressor(c *Compression, pcluster int) (compressor, error) {
	switch c.Algorithm {
	case "lz4", "lz4hc", "lzma":
		return newNativeCompressor(c, pcluster)
	case "deflate":
		fw, err := flate.NewWriter(nil, c.level())
		if err != nil {
			return nil, fmt.Errorf("erofs: deflate: %w", err)
		}
		return &searchDestSize{enc: &deflateEncoder{w: fw}}, nil
	case "zstd":
		enc, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(c.level())),
			zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(1<<zstdWindowLog(pcluster)),
			zstd.WithEncoderCRC(false),
			zstd.WithZeroFrames(true),
			zstd.WithLowerEncoderMem(true))
		if err != nil {
			return nil, fmt.Errorf("erofs: zstd: %w", err)
		}
		stream, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(c.level())),
			zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(1<<zstdWindowLog(pcluster)),
			zstd.WithEncoderCRC(false),
			zstd.WithLowerEncoderMem(true))
		if err != nil {
			return nil, fmt.Errorf("erofs: zstd: %w", err)
		}
		return &zstdDestSize{small: &searchDestSize{enc: zstdEncoder{enc}}, stream: stream}, nil
	}
	return nil, fmt.Errorf("erofs: unknown compression algorithm %q", c.Algorithm)
}

// zstdDestSize compresses to a destination size with Zstandard. A budget
// of at most searchBigBudget bytes is searched for (searchDestSize). A
// larger one is filled in one pass: the input goes to a streaming encoder
// in pieces, each flushed as its own block (RFC 8878 section 3.1.1.2), and
// the frame is cut after the last block that fits and ended with an empty
// last raw block. The first piece is most of what the last pcluster's
// ratio says will fit, so that a pcluster's data is mostly in large
// blocks, and each piece after it is zstdPiece bytes.
type zstdDestSize struct {
	small  *searchDestSize
	stream *zstd.Encoder
	out    sliceWriter
	ratio  float64 // input bytes per output byte of the last result
}

// zstdPiece is the input of each block after the first of a pcluster.
const zstdPiece = 16 << 10

// zstdLastEmpty is an empty raw block with Last_Block set.
var zstdLastEmpty = []byte{1, 0, 0}

func (z *zstdDestSize) reset() {
	z.small.reset()
	z.ratio = 0
}

func (z *zstdDestSize) destSize(dst, src []byte) (int, int) {
	budget := len(dst)
	if budget <= searchBigBudget {
		return z.small.destSize(dst, src)
	}
	if len(src) == 0 {
		return 0, 0
	}
	limit := budget - len(zstdLastEmpty)
	z.out.b = z.out.b[:0]
	z.stream.Reset(&z.out)
	if z.ratio == 0 {
		z.ratio = 2
	}
	piece := min(len(src), max(zstdPiece, int(float64(limit)*z.ratio*0.8)))
	fitOut, fitIn := 0, 0
	for in := 0; in < len(src); {
		k := min(piece, len(src)-in)
		piece = zstdPiece
		// Writes to a sliceWriter cannot fail.
		z.stream.Write(src[in : in+k])
		z.stream.Flush()
		if len(z.out.b) > limit {
			break
		}
		in += k
		fitOut, fitIn = len(z.out.b), in
	}
	if fitIn == 0 {
		// Not even the first piece fits: search for a shorter prefix.
		return z.small.destSize(dst, src)
	}
	n := copy(dst, z.out.b[:fitOut])
	n += copy(dst[n:], zstdLastEmpty)
	z.ratio = float64(fitIn) / float64(n)
	return n, fitIn
}

// sliceWriter is an io.Writer appending to a byte slice.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// encoder compresses a whole input, appending to dst.
type encoder interface {
	encode(dst, src []byte) []byte
}

type zstdEncoder struct{ e *zstd.Encoder }

func (z zstdEncoder) encode(dst, src []byte) []byte { return z.e.EncodeAll(src, dst) }

type deflateEncoder struct {
	w   *flate.Writer
	buf bytes.Buffer
}

func (d *deflateEncoder) encode(dst, src []byte) []byte {
	d.buf.Reset()
	d.w.Reset(&d.buf)
	d.w.Write(src) // writes to a bytes.Buffer cannot fail
	d.w.Close()
	out := append(dst, d.buf.Bytes()...)
	// A stream starting with a non-final stored block begins with a zero
	// byte, which 0padding would skip; set one of the header byte's
	// unused padding bits instead.
	if len(out) > len(dst) && out[len(dst)] == 0 {
		out[len(dst)] |= 0x08
	}
	return out
}

// searchDestSize turns an ordinary encoder into a destination-size one by
// searching for a long input prefix whose encoding fits. Each guess scales
// the last tried length by how far its encoding was from the budget, and
// stays between the longest prefix known to fit and the shortest known not
// to. The search stops once the encoding fills the budget to within
// 1/searchSlack: the few bytes left would rarely hold another match. A
// budget of more than searchBigBudget bytes (a big pcluster) needs only
// to be filled to within 1/searchSlackBig: its blocks are stored as they
// are used, so a fuller pcluster saves at most the rounding of its last
// block while every extra encoding costs as much as the first.
type searchDestSize struct {
	enc   encoder
	buf   []byte
	best  []byte
	ratio float64 // input bytes per output byte of the last result
}

const (
	searchSlack     = 64
	searchSlackBig  = 10
	searchBigBudget = 16 << 10
)

func (s *searchDestSize) reset() { s.ratio = 0 }

func (s *searchDestSize) destSize(dst, src []byte) (int, int) {
	budget := len(dst)
	if budget == 0 || len(src) == 0 {
		return 0, 0
	}
	lo, hi := 0, len(src)+1 // lo fits (0 trivially), hi does not
	loSize := 0
	if s.ratio == 0 {
		s.ratio = 2
	}
	slack, aim := searchSlack, 0.97
	if budget > searchBigBudget {
		slack, aim = searchSlackBig, 1-0.5/searchSlackBig
	}
	guess := int(float64(budget) * s.ratio * aim)
	for hi-lo > 1 {
		m := min(max(guess, lo+1), hi-1)
		s.buf = s.enc.encode(s.buf[:0], src[:m])
		c := len(s.buf)
		if c <= budget {
			lo, loSize = m, c
			s.best, s.buf = s.buf, s.best
			if c >= budget-budget/slack {
				break
			}
		} else {
			hi = m
		}
		// Aim a little short of the budget: a guess that fits narrows
		// the search as much and ends it sooner.
		target := float64(budget) * (1 - 0.5/float64(slack))
		guess = int(float64(m) * target / float64(max(c, 1)))
		if guess <= lo || guess >= hi {
			guess = lo + (hi-lo)/2
		}
	}
	if lo == 0 {
		return 0, 0
	}
	s.ratio = float64(lo) / float64(loSize)
	copy(dst, s.best[:loSize])
	return loSize, lo
}
