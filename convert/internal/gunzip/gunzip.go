// Package gunzip decompresses gzip streams. It does what compress/gzip's
// Reader does for a layer stream (multiple members, header fields skipped,
// CRC-32 and size checked at the end of each member) with a faster
// DEFLATE decoder: a 64-bit bit buffer refilled eight bytes at a time,
// two-level decode tables whose entries carry lengths, extra-bit counts and
// bases, eight-byte match copies and no bounds checks in the fast loop.
// With more than one core (runtime.GOMAXPROCS) and a first member of more
// than one chunk of compressed data, that member is decoded on every core
// (parallel.go): a consumer goroutine decodes chunks in order, and
// GOMAXPROCS-1 workers decode later ones before the data before them is
// known.
package gunzip

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"runtime"
)

// Errors for malformed gzip framing.
var (
	ErrHeader   = errors.New("gunzip: invalid gzip header")
	ErrChecksum = errors.New("gunzip: invalid checksum")
)

const (
	flagText    = 1 << 0
	flagHdrCrc  = 1 << 1
	flagExtra   = 1 << 2
	flagName    = 1 << 3
	flagComment = 1 << 4
)

// Reader is an io.Reader of the decompressed data of a gzip stream.
type Reader struct {
	f    *inflater
	crc  uint32 // CRC-32 of the member's data so far
	size uint32
	hcrc uint32 // CRC-32 of the header bytes so far
	err  error
	p    *parallel // the first member's parallel decoding, while it lasts
}

// NewReader reads the first gzip header from r and returns a Reader of the
// decompressed data. The Reader reads r in large blocks and may read past
// the end of the gzip data; while it decodes a member on every core, it
// reads r in a goroutine of its own, which ends with the member, at
// Close, or once the Reader is dropped.
func NewReader(r io.Reader) (*Reader, error) {
	return NewReaderCores(r, 0)
}

// NewReaderCores is NewReader with a member decoded on at most cores
// cores, 0 meaning all of them, and never more than runtime.GOMAXPROCS
// or maxCores; 1 decodes in order. A caller decoding several streams at
// a time gives each its share.
func NewReaderCores(r io.Reader, cores int) (*Reader, error) {
	all := min(runtime.GOMAXPROCS(0), maxCores)
	if cores <= 0 || cores > all {
		cores = all
	}
	return newReader(r, config{workers: cores, sequential: !parallelByDefault})
}

// maxCores is the most cores NewReader decodes a member on. The consumer
// decodes in order what the workers do not, fills in and checks all of
// it, so that more workers than three add less and less, while each
// holds about queueDepth chunks' buffers (24 MiB).
const maxCores = 4

// parallelByDefault makes NewReader decode a large first member on every
// core. On two cores the decoder alone is 20-25% faster with it (the
// Debian layer 0.30 -> 0.24 s, a 470 MB layer 0.68 -> 0.52 s), and the
// EROFS build of those layers 14% and 12% faster (0.42 -> 0.36 s, 0.87 ->
// 0.77 s), for about 12% more CPU and 50-60 MB more peak RSS.
const parallelByDefault = true

func newReader(r io.Reader, c config) (*Reader, error) {
	z := &Reader{f: newInflater(r)}
	if err := z.header(); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	// The consumer decodes the chunks no worker has started (with their
	// window known, at less cost), so it counts as one of the cores.
	procs, workers := c.workers, c.workers-1
	if c.workers <= 0 {
		procs = runtime.GOMAXPROCS(0)
		workers = procs - 1
	}
	workers = max(workers, 1)
	f := z.f
	if c.sequential || procs < 2 && !c.force || f.nbits != 0 || f.err != nil {
		return z, nil
	}
	// Hand the input after the header to the parallel decoder.
	left := append([]byte(nil), f.in[f.ip:f.iend]...)
	src := io.MultiReader(bytes.NewReader(left), r)
	if f.eof {
		src = bytes.NewReader(left)
	}
	p := newParallel(src, c, workers)
	p.startReading()
	if p.chunk(1) == nil && !c.force {
		// Too small to split: decode what was read, and the rest.
		z.f = newInflater(p.rest0())
		return z, nil
	}
	p.posKey = p.keyAt(0)
	z.p = p
	go p.produce()
	// A Reader dropped before the member's end stops the reading
	// goroutine, as Close does.
	runtime.AddCleanup(z, (*stopper).stop, p.abandon)
	return z, nil
}

func (z *Reader) byte() (byte, error) {
	b, err := z.f.readByte()
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	z.hcrc = crc32.Update(z.hcrc, crc32.IEEETable, []byte{b})
	return b, err
}

// header reads a member header. It returns io.EOF if the input ends
// before its first byte.
func (z *Reader) header() error {
	first, err := z.f.readByte()
	if err != nil {
		return err
	}
	var h [10]byte
	h[0] = first
	z.hcrc = crc32.Update(0, crc32.IEEETable, h[:1])
	for i := 1; i < 10; i++ {
		if h[i], err = z.byte(); err != nil {
			return err
		}
	}
	if h[0] != 0x1f || h[1] != 0x8b || h[2] != 8 {
		return ErrHeader
	}
	flg := h[3]
	if flg&flagExtra != 0 {
		lo, err := z.byte()
		if err != nil {
			return err
		}
		hi, err := z.byte()
		if err != nil {
			return err
		}
		for n := int(lo) | int(hi)<<8; n > 0; n-- {
			if _, err := z.byte(); err != nil {
				return err
			}
		}
	}
	for _, fl := range []byte{flagName, flagComment} {
		if flg&fl == 0 {
			continue
		}
		for {
			// The input ending inside the name or comment ends the
			// stream, as it does for compress/gzip and
			// klauspost/compress (which read these fields a byte at a
			// time and pass io.EOF on).
			b, err := z.f.readByte()
			if err != nil {
				return err
			}
			z.hcrc = crc32.Update(z.hcrc, crc32.IEEETable, []byte{b})
			if b == 0 {
				break
			}
		}
	}
	if flg&flagHdrCrc != 0 {
		want := uint16(z.hcrc)
		lo, err := z.byte()
		if err != nil {
			return err
		}
		hi, err := z.byte()
		if err != nil {
			return err
		}
		if uint16(lo)|uint16(hi)<<8 != want {
			return ErrHeader
		}
	}
	// Reserved flags are refused after the fields, as klauspost/compress
	// does: input ending in them ends the stream first.
	if flg&0xe0 != 0 {
		return ErrHeader
	}
	z.f.reset()
	z.crc, z.size = 0, 0
	return nil
}

// trailer checks a member's CRC-32 and size.
func (z *Reader) trailer() error {
	var t [8]byte
	for i := range t {
		b, err := z.byte()
		if err != nil {
			return err
		}
		t[i] = b
	}
	crc := uint32(t[0]) | uint32(t[1])<<8 | uint32(t[2])<<16 | uint32(t[3])<<24
	size := uint32(t[4]) | uint32(t[5])<<8 | uint32(t[6])<<16 | uint32(t[7])<<24
	if crc != z.crc || size != z.size {
		return ErrChecksum
	}
	return nil
}

// readParallel reads from the parallel decoding of the first member, and
// once it is over checks the trailer and goes on with the next member.
func (z *Reader) readParallel(b []byte) (int, error) {
	p := z.p
	n, err := p.read(b)
	if err != io.EOF {
		return n, err
	}
	z.p = nil
	z.f = newInflater(p.rest())
	z.crc, z.size = p.crc, uint32(p.total)
	if err := z.trailer(); err != nil {
		z.err = err
		return 0, err
	}
	if err := z.header(); err != nil {
		if err != io.EOF {
			err = fmt.Errorf("gunzip: after a member: %w", err)
		}
		z.err = err
		return 0, err
	}
	return z.Read(b)
}

// Read reads decompressed data.
func (z *Reader) Read(p []byte) (int, error) {
	if z.p != nil {
		return z.readParallel(p)
	}
	f := z.f
	for {
		if f.rp < f.op {
			n := copy(p, f.out[f.rp:f.op])
			z.crc = crc32.Update(z.crc, crc32.IEEETable, p[:n])
			z.size += uint32(n)
			f.rp += n
			return n, nil
		}
		if z.err != nil {
			return 0, z.err
		}
		if f.done {
			if err := z.trailer(); err != nil {
				z.err = err
				continue
			}
			// Another member may follow.
			if err := z.header(); err != nil {
				if err != io.EOF {
					err = fmt.Errorf("gunzip: after a member: %w", err)
				}
				z.err = err
			}
			continue
		}
		if err := f.step(); err != nil {
			if err == io.ErrUnexpectedEOF && f.err != nil {
				err = f.err
			}
			z.err = err
		}
	}
}

// ReadsAhead reports whether the Reader decodes ahead of Read in
// goroutines of its own, as it does a large first member on more than
// one core: a caller need not read ahead of it.
func (z *Reader) ReadsAhead() bool { return z.p != nil }

// Close stops the goroutines of a parallel decoding still under way (the
// reading one at once, workers after the chunk they decode); the Reader
// is not to be read after it. It does nothing otherwise: it lets Reader
// stand in for an io.ReadCloser.
func (z *Reader) Close() error {
	if z.p != nil {
		z.p.abandon.stop()
		z.p, z.err = nil, errClosed
	}
	return nil
}

// errClosed is what a Reader closed during a parallel decoding returns.
var errClosed = errors.New("gunzip: read after Close")
