package convert

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"

	"github.com/rafs-dev/rafs/convert/internal/gunzip"
)

// Compression is the compression of a layer stream.
type Compression int

// Layer stream compressions Decompress recognises.
const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

func (c Compression) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return "none"
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// Decompress detects by its magic number whether r is gzip- or
// zstd-compressed and returns a reader of the uncompressed stream, which
// the caller must close. Other streams are returned as they are.
func Decompress(r io.Reader) (io.ReadCloser, Compression, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return nil, Uncompressed, fmt.Errorf("convert: reading stream header: %w", err)
	}
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		zr, err := gunzip.NewReader(br)
		if err != nil {
			return nil, Gzip, fmt.Errorf("convert: gzip header: %w", err)
		}
		return zr, Gzip, nil
	case bytes.HasPrefix(magic, zstdMagic):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, Zstd, fmt.Errorf("convert: zstd header: %w", err)
		}
		return zr.IOReadCloser(), Zstd, nil
	}
	return io.NopCloser(br), Uncompressed, nil
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

// openLayer detects and undoes a layer's compression. Decompression runs
// in its own goroutine up to ahead bytes in front of the reader, in
// 256 KiB or larger pieces. close releases both.
func openLayer(r io.Reader, ahead int) (src io.Reader, comp Compression, close func(), err error) {
	dr, comp, err := Decompress(r)
	if err != nil {
		return nil, 0, nil, err
	}
	if comp == Uncompressed {
		return dr, comp, func() { dr.Close() }, nil
	}
	piece := max(256<<10, ahead/8)
	ra := newReadahead(dr, piece, max(ahead/piece, 2))
	return ra, comp, func() { ra.Close(); dr.Close() }, nil
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
