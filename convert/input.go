package convert

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"

	"github.com/rafs-dev/rafs/convert/internal/gunzip"
	"github.com/rafs-dev/rafs/convert/internal/tarhdr"
)

// LayerEncoding is how a layer's tar stream arrives: plain or compressed
// as a whole, as the suffix of an OCI layer media type says (".tar",
// ".tar+gzip", ".tar+zstd"). It describes the input; erofs.Compression is
// the compression of the image written.
type LayerEncoding int

// The layer encodings Decompress recognises and undoes.
const (
	Tar     LayerEncoding = iota // a plain tar
	TarGzip                      // a gzip-compressed tar
	TarZstd                      // a zstd-compressed tar
)

// String gives the compression of the stream: "none", "gzip" or "zstd".
func (e LayerEncoding) String() string {
	switch e {
	case TarGzip:
		return "gzip"
	case TarZstd:
		return "zstd"
	}
	return "none"
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// unsupportedMagic are the magic numbers of compressed formats a layer
// might arrive in that Decompress does not undo.
var unsupportedMagic = []struct {
	format string
	magic  []byte
}{
	{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}}, // xz file format 1.1.0, 2.1.1.1
	{"lz4", []byte{0x04, 0x22, 0x4d, 0x18}},        // LZ4 frame format
	{"lz4-legacy", []byte{0x02, 0x21, 0x4c, 0x18}}, // LZ4 legacy frame
	{"lzip", []byte{'L', 'Z', 'I', 'P'}},           // lzip member header
	{"compress(1)", []byte{0x1f, 0x9d}},            // compress(1) LZW
	{"bzip2", []byte{'B', 'Z', 'h'}},               // then a block size digit, checked below
}

// UnsupportedCompressionError is the error Decompress returns for a stream
// compressed in a format it does not undo (xz, bzip2, lz4, lzip or
// compress(1)), which tar.Reader would only report as an invalid header.
type UnsupportedCompressionError struct {
	Format string // "xz", "bzip2", ...
}

// Error names the format and what is supported.
func (e *UnsupportedCompressionError) Error() string {
	return fmt.Sprintf("convert: %s-compressed input is not supported (want tar, tar+gzip or tar+zstd)", e.Format)
}

// unsupportedCompression returns the compressed format head, the start of
// a stream, begins with, unless head begins with a valid tar header (whose
// first bytes are a file name, which may look like anything).
func unsupportedCompression(head []byte) string {
	if tarhdr.IsHeader(head) {
		return ""
	}
	for _, u := range unsupportedMagic {
		if !bytes.HasPrefix(head, u.magic) {
			continue
		}
		if u.format == "bzip2" && (len(head) < 4 || head[3] < '1' || head[3] > '9') {
			continue
		}
		return u.format
	}
	return ""
}

// isZstdSkippable reports whether head begins with a Zstandard skippable
// frame (RFC 8878, 3.1.2: magic 0x184D2A50 to 0x184D2A5F, little-endian),
// which may precede the first data frame.
func isZstdSkippable(head []byte) bool {
	return len(head) >= 4 && head[0]&0xf0 == 0x50 && head[1] == 0x2a && head[2] == 0x4d && head[3] == 0x18 &&
		!tarhdr.IsHeader(head)
}

// Decompress detects by its magic number whether r is gzip- or
// zstd-compressed and returns a reader of the uncompressed stream, which
// the caller must close. Other streams are returned as they are, except
// that a stream in another compressed format Decompress recognises (xz,
// bzip2, lz4, lzip, compress(1)) is an *UnsupportedCompressionError.
// A large gzip stream is decoded on up to four cores.
func Decompress(r io.Reader) (io.ReadCloser, LayerEncoding, error) {
	return DecompressWith(r, nil)
}

// DecompressOptions tune DecompressWith.
type DecompressOptions struct {
	// Cores is how many cores decoding a gzip stream may use: 0 for all
	// of them (up to four), 1 for decoding in order. A caller that
	// decompresses several layers at a time gives each its share.
	Cores int
}

// DecompressWith is Decompress with options; nil opts are the zero
// options.
func DecompressWith(r io.Reader, opts *DecompressOptions) (io.ReadCloser, LayerEncoding, error) {
	var o DecompressOptions
	if opts != nil {
		o = *opts
	}
	if o.Cores < 0 {
		return nil, Tar, fmt.Errorf("convert: DecompressOptions.Cores is %d", o.Cores)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(512)
	if err != nil && err != io.EOF {
		return nil, Tar, fmt.Errorf("convert: reading stream header: %w", err)
	}
	switch {
	case unsupportedCompression(magic) != "":
		return nil, Tar, &UnsupportedCompressionError{Format: unsupportedCompression(magic)}
	case bytes.HasPrefix(magic, gzipMagic):
		zr, err := gunzip.NewReaderCores(br, o.Cores)
		if err != nil {
			return nil, TarGzip, fmt.Errorf("convert: gzip header: %w", err)
		}
		return zr, TarGzip, nil
	case bytes.HasPrefix(magic, zstdMagic) || isZstdSkippable(magic):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, TarZstd, fmt.Errorf("convert: zstd header: %w", err)
		}
		return zstdReader{zr.IOReadCloser()}, TarZstd, nil
	}
	return io.NopCloser(br), Tar, nil
}

// zstdReader names the errors of the zstd decoder, which do not say where
// they come from ("CRC check failed").
type zstdReader struct{ io.ReadCloser }

func (z zstdReader) Read(p []byte) (int, error) {
	n, err := z.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("zstd: %w", err)
	}
	return n, err
}

// readahead reads from r in a goroutine into a few large buffers, so that
// decompression runs on one core while the tar is parsed and written on
// another.
type readahead struct {
	full  chan []byte
	empty chan []byte
	buf   []byte // buffer being consumed
	cur   []byte // unread part of buf
	err   error
	done  chan struct{}
	errc  chan error
}

// A DecodedLayer is a layer's tar stream whose encoding has been undone
// (Decompress), read ahead in a goroutine of its own when it was
// compressed. TarToEROFS and TarToNydus read a DecodedLayer as the tar it
// is, without detecting an encoding again: a caller that decompresses a
// layer itself (to hash the uncompressed bytes for its diff ID on their
// way, say) hands them the stream this way.
type DecodedLayer struct {
	src io.Reader // ra, or the decoded stream when there is no read-ahead
	ra  *readahead
	enc LayerEncoding
}

// NewDecodedLayer returns the decoded stream dr of a layer that was
// encoded as enc. Unless enc is Tar, a goroutine reads dr up to ahead
// bytes in front of the reader, in 256 KiB or larger pieces, so that
// decompression runs on one core while the tar is parsed and written on
// another; not when dr reads ahead itself (a gzip stream decoded on
// several cores). Close stops it; closing dr is the caller's.
func NewDecodedLayer(dr io.Reader, enc LayerEncoding, ahead int) *DecodedLayer {
	d := &DecodedLayer{src: dr, enc: enc}
	if ra, ok := dr.(interface{ ReadsAhead() bool }); ok && ra.ReadsAhead() {
		// The decoder runs ahead of its reader already (gzip decoded
		// on several cores), with the output in the buffers it was
		// decoded into: a read-ahead would only copy it.
		return d
	}
	if enc != Tar {
		piece := max(256<<10, ahead/8)
		d.ra = newReadahead(dr, piece, max(ahead/piece, 2))
		d.src = d.ra
	}
	return d
}

// Read reads the decoded tar stream.
func (d *DecodedLayer) Read(p []byte) (int, error) { return d.src.Read(p) }

// Encoding returns the encoding the layer arrived in.
func (d *DecodedLayer) Encoding() LayerEncoding { return d.enc }

// Close stops the read-ahead, after a read in progress ends. It does not
// close the decoded stream.
func (d *DecodedLayer) Close() error {
	if d.ra != nil {
		return d.ra.Close()
	}
	return nil
}

// How far TarToEROFS and TarToNydus decompress a layer ahead of the tar
// walker (NewDecodedLayer). Decompression runs megabytes ahead to keep
// going while the walker catches up: a Nydus layer's chunk workers take
// file data in bursts, and an EROFS image's writes of large files stall
// the walker in the kernel: 8 MiB rather than 1 MiB ahead made the EROFS
// build of a 470 MB gzip layer 7% faster (issue 15), measured when this
// read-ahead still took the output of gzip decoded on two cores. Such a
// stream is no longer read ahead this way: its decoder hands out the
// buffers it decodes into, up to 16 MiB ahead, and copying them into a
// read-ahead's took 8% of the EROFS build's CPU time on the Debian
// layer. These sizes serve zstd, and gzip decoded on one core.
const (
	ReadAheadEROFS = 8 << 20
	ReadAheadNydus = 8 << 20
)

// openLayer detects and undoes a layer's encoding, reading ahead by up to
// ahead bytes (NewDecodedLayer), unless r is a DecodedLayer already.
// close releases both.
func openLayer(r io.Reader, ahead int) (src io.Reader, enc LayerEncoding, close func(), err error) {
	if d, ok := r.(*DecodedLayer); ok {
		// The caller decompresses the layer itself.
		return d.src, d.enc, func() {}, nil
	}
	dr, enc, err := Decompress(r)
	if err != nil {
		return nil, 0, nil, err
	}
	d := NewDecodedLayer(dr, enc, ahead)
	return d.src, enc, func() { d.Close(); dr.Close() }, nil
}

func newReadahead(r io.Reader, bufSize, bufs int) *readahead {
	ra := &readahead{
		full:  make(chan []byte, bufs),
		empty: make(chan []byte, bufs),
		done:  make(chan struct{}),
		errc:  make(chan error, 1),
	}
	for i := 0; i < bufs; i++ {
		ra.empty <- make([]byte, bufSize)
	}
	go func() {
		defer close(ra.full)
		for {
			var buf []byte
			select {
			case buf = <-ra.empty:
			case <-ra.done:
				return
			}
			buf = buf[:cap(buf)]
			n := 0
			var err error
			for n < len(buf) && err == nil {
				var m int
				m, err = r.Read(buf[n:])
				n += m
			}
			if n > 0 {
				select {
				case ra.full <- buf[:n]:
				case <-ra.done:
					return
				}
			}
			if err != nil {
				ra.errc <- err
				return
			}
		}
	}()
	return ra
}

func (ra *readahead) Read(p []byte) (int, error) {
	for len(ra.cur) == 0 {
		if ra.buf != nil {
			ra.empty <- ra.buf[:cap(ra.buf)]
			ra.buf = nil
		}
		if ra.err != nil {
			return 0, ra.err
		}
		buf, ok := <-ra.full
		if !ok {
			ra.err = <-ra.errc
			return 0, ra.err
		}
		ra.buf, ra.cur = buf, buf
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

// Close stops the reading goroutine. It does not close the source.
func (ra *readahead) Close() error {
	select {
	case <-ra.done:
	default:
		close(ra.done)
	}
	// Let the goroutine finish a read in progress before the source is
	// closed by the caller.
	for range ra.full {
	}
	return nil
}
