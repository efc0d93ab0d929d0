// Package chunker splits a byte stream into chunks for Nydus blobs.
//
// [Chunker] is the interface a splitter implements; [Fixed] cuts the
// stream at fixed multiples of a chunk size, which is what RAFS v6
// (nydus-image) does for every regular file: each chunk is exactly the
// chunk size except the last, which holds the remainder, and an empty
// stream has no chunks. A content-defined chunker could implement the
// same interface. The chunk sizes a Nydus blob allows are package blob's
// (blob.ValidChunkSize); this package takes any positive size.
//
// Chunkers stream: they never read more than one chunk ahead of what they
// returned, and reuse one buffer, so memory stays at one chunk.
package chunker

import (
	"errors"
	"fmt"
	"io"
)

// Cut is one piece of the stream, as a Chunker cuts it.
type Cut struct {
	// Offset is the position of the chunk's first byte in the stream.
	Offset int64
	// Data is the chunk's content. It is only valid until the next call
	// to Next or Reset.
	Data []byte
}

// Chunker splits a stream into chunks.
type Chunker interface {
	// Next returns the next chunk, or io.EOF after the last one. Errors
	// from the underlying reader are returned as they are (never
	// io.ErrUnexpectedEOF for a short final chunk). The returned Data is
	// only valid until the next call.
	Next() (Cut, error)
	// Reset starts splitting r from offset 0, keeping buffers.
	Reset(r io.Reader)
}

// Fixed splits a stream into chunks of a fixed size.
type Fixed struct {
	r    io.Reader
	size int
	buf  []byte
	off  int64
	err  error
}

var _ Chunker = (*Fixed)(nil)

// NewFixed returns a chunker cutting r into size-byte chunks; size must be
// positive.
func NewFixed(r io.Reader, size int) (*Fixed, error) {
	if size <= 0 {
		return nil, fmt.Errorf("chunker: chunk size %d is not positive", size)
	}
	return &Fixed{r: r, size: size}, nil
}

// Size returns the chunk size.
func (f *Fixed) Size() int { return f.size }

// Reset starts splitting r from offset 0, keeping the buffer.
func (f *Fixed) Reset(r io.Reader) {
	f.r, f.off, f.err = r, 0, nil
}

// Next returns the next chunk: size bytes, or fewer for the last one. It
// returns io.EOF when the stream is exhausted (at once for an empty
// stream), and a read error as soon as it happens (the partial chunk is
// dropped); after an error every call returns it again. The buffer grows
// only as data arrives, so a short stream does not cost a whole chunk of
// memory.
func (f *Fixed) Next() (Cut, error) {
	if f.err != nil {
		return Cut{}, f.err
	}
	if f.r == nil {
		return Cut{}, errors.New("chunker: no reader")
	}
	n, err := f.fill()
	switch {
	case err != nil && err != io.EOF:
		f.err = err
		return Cut{}, err
	case n == 0:
		f.err = io.EOF
		return Cut{}, io.EOF
	case n < f.size:
		f.err = io.EOF // a short chunk is the last one
	}
	c := Cut{Offset: f.off, Data: f.buf[:n]}
	f.off += int64(n)
	return c, nil
}

// maxEmptyReads is how many (0, nil) reads in a row count as no progress.
const maxEmptyReads = 100

// fill reads up to f.size bytes into f.buf, growing it as needed, and
// returns how many it read and the reader's error (io.EOF at the end).
func (f *Fixed) fill() (int, error) {
	n, empty := 0, 0
	for n < f.size {
		if n == len(f.buf) {
			// Grow geometrically from 64 KiB up to the chunk size.
			f.buf = append(f.buf, make([]byte, min(max(len(f.buf), 64<<10), f.size-len(f.buf)))...)
		}
		m, err := f.r.Read(f.buf[n:min(len(f.buf), f.size)])
		n += m
		if err != nil {
			return n, err
		}
		if m > 0 {
			empty = 0
		} else if empty++; empty == maxEmptyReads {
			return n, io.ErrNoProgress
		}
	}
	return n, nil
}
