package erofs

import (
	"bufio"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// seqWriter writes sequentially to an io.WriterAt through a buffer, keeping
// track of the offset. The buffer starts small, so small images stay cheap,
// and doubles at each flush up to its maximum. Errors are sticky.
type seqWriter struct {
	w   io.WriterAt
	off int64 // offset of buf[0]
	buf []byte
	max int
	n   int
	err error
}

func newSeqWriter(w io.WriterAt, off int64, max int) *seqWriter {
	return &seqWriter{w: w, off: off, buf: make([]byte, min(64<<10, max)), max: max}
}

// pos is the offset the next byte will be written at.
func (s *seqWriter) pos() int64 { return s.off + int64(s.n) }

func (s *seqWriter) flush() error {
	if s.err != nil {
		return s.err
	}
	if s.n > 0 {
		if _, err := s.w.WriteAt(s.buf[:s.n], s.off); err != nil {
			s.err = fmt.Errorf("erofs: write at offset %d: %w", s.off, err)
			return s.err
		}
		s.off += int64(s.n)
		s.n = 0
		if len(s.buf) < s.max {
			s.buf = make([]byte, min(2*len(s.buf), s.max))
		}
	}
	return nil
}

func (s *seqWriter) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		if s.err != nil {
			return total - len(p), s.err
		}
		if s.n == 0 && len(p) >= len(s.buf) {
			if _, err := s.w.WriteAt(p, s.off); err != nil {
				s.err = fmt.Errorf("erofs: write at offset %d: %w", s.off, err)
				return total - len(p), s.err
			}
			s.off += int64(len(p))
			return total, nil
		}
		c := copy(s.buf[s.n:], p)
		s.n += c
		p = p[c:]
		if s.n == len(s.buf) {
			s.flush()
		}
	}
	return total, s.err
}

// zero writes n zero bytes.
func (s *seqWriter) zero(n int64) error {
	for n > 0 && s.err == nil {
		if s.n == len(s.buf) {
			s.flush()
			continue
		}
		c := int64(len(s.buf) - s.n)
		if c > n {
			c = n
		}
		clear(s.buf[s.n : s.n+int(c)])
		s.n += int(c)
		n -= c
	}
	return s.err
}

// padTo writes zeros up to the next multiple of align.
func (s *seqWriter) padTo(align int64) error {
	if r := s.pos() % align; r != 0 {
		return s.zero(align - r)
	}
	return s.err
}

// readFrom copies exactly n bytes from r, reading straight into the buffer.
// It updates crc with the bytes copied and returns it.
func (s *seqWriter) readFrom(r io.Reader, n int64, crc uint32) (uint32, error) {
	for n > 0 {
		if s.err != nil {
			return crc, s.err
		}
		if s.n == len(s.buf) {
			if err := s.flush(); err != nil {
				return crc, err
			}
		}
		want := len(s.buf) - s.n
		if int64(want) > n {
			want = int(n)
		}
		got, err := io.ReadFull(r, s.buf[s.n:s.n+want])
		crc = crc32.Update(crc, castagnoli, s.buf[s.n:s.n+got])
		s.n += got
		n -= int64(got)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return crc, err
		}
	}
	return crc, nil
}

// spool holds the inline tails of regular files and the extents of
// compressed ones until the metadata is laid out, in an unlinked temporary
// file: its pages live in the page cache, not in the process's memory,
// however many files a layer has and however large they are.
type spool struct {
	dir  string
	file *os.File
	bw   *bufio.Writer
	size int64
}

func (s *spool) write(p []byte) (int64, error) {
	if s.file == nil {
		f, err := os.CreateTemp(s.dir, "rafs-spool-*")
		if err != nil {
			return 0, fmt.Errorf("erofs: spool: %w", err)
		}
		// The file is only ever reached through its descriptor.
		os.Remove(f.Name())
		s.file, s.bw = f, bufio.NewWriterSize(f, 64<<10)
	}
	off := s.size
	if _, err := s.bw.Write(p); err != nil {
		return 0, fmt.Errorf("erofs: spool: %w", err)
	}
	s.size += int64(len(p))
	return off, nil
}

func (s *spool) readAt(p []byte, off int64) error {
	if err := s.flush(); err != nil {
		return err
	}
	if _, err := s.file.ReadAt(p, off); err != nil {
		return fmt.Errorf("erofs: spool: %w", err)
	}
	return nil
}

// flush writes what is buffered to the file, so it can be read through
// s.file.
func (s *spool) flush() error {
	if s.bw != nil && s.bw.Buffered() > 0 {
		if err := s.bw.Flush(); err != nil {
			return fmt.Errorf("erofs: spool: %w", err)
		}
	}
	return nil
}

func (s *spool) close() {
	if s.file != nil {
		s.file.Close()
		s.file, s.bw = nil, nil
	}
}
