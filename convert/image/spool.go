package image

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/stream"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// spool is a converted layer's blob in a temporary file. It is written
// once, either appended to in order (Write: a Nydus blob, which can be
// read while it grows) or at random (WriteAt: an EROFS image, readable
// only once sealed). Readers follow the writer: a reader opened while the
// blob is still being appended to blocks at the end of what is written
// until more arrives or the blob is sealed, so an upload can run while
// the conversion does.
type spool struct {
	f      *os.File
	append bool // written with Write, readable while growing

	mu     sync.Mutex
	cond   *sync.Cond
	n      int64 // bytes written (appended) or the final size
	hi     int64 // end of the furthest WriteAt
	sealed bool
	err    error   // the writer's failure, given to readers
	digest v1.Hash // known once sealed and hashed
}

func newSpool(dir string, appendOnly bool) (*spool, error) {
	f, err := os.CreateTemp(dir, "rafs-layer-*")
	if err != nil {
		return nil, fmt.Errorf("convert: temp file for a layer: %w", err)
	}
	s := &spool{f: f, append: appendOnly}
	s.cond = sync.NewCond(&s.mu)
	return s, nil
}

// Write appends p (append spools only).
func (s *spool) Write(p []byte) (int, error) {
	s.mu.Lock()
	off := s.n
	s.mu.Unlock()
	n, err := s.f.WriteAt(p, off)
	s.mu.Lock()
	s.n += int64(n)
	s.cond.Broadcast()
	s.mu.Unlock()
	return n, err
}

// WriteAt writes p at off (random-access spools only).
func (s *spool) WriteAt(p []byte, off int64) (int, error) {
	n, err := s.f.WriteAt(p, off)
	s.mu.Lock()
	s.hi = max(s.hi, off+int64(n))
	s.mu.Unlock()
	return n, err
}

// written returns how many bytes have been written: the end of the
// furthest write of a random-access spool.
func (s *spool) written() (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(s.n, s.hi), s.sealed
}

// seal ends writing. size is the blob's size for a random-access spool
// (ignored for an append spool); digest, if known, is the blob's digest.
// Readers may read a sealed spool to its end.
func (s *spool) seal(size int64, digest v1.Hash) {
	s.mu.Lock()
	if !s.append {
		s.n = size
	}
	if digest.Hex != "" {
		s.digest = digest
	}
	s.sealed = true
	s.cond.Broadcast()
	s.mu.Unlock()
}

// hash computes the digest of a sealed random-access spool by reading it
// back, unless a reader has already.
func (s *spool) hash() error {
	if _, err := s.Digest(); err == nil {
		return nil
	}
	size, _ := s.Size()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(s.f, 0, size)); err != nil {
		return fmt.Errorf("convert: hashing a converted layer: %w", err)
	}
	s.setDigest(v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))})
	return nil
}

func (s *spool) setDigest(h v1.Hash) {
	s.mu.Lock()
	if s.digest.Hex == "" {
		s.digest = h
	}
	s.mu.Unlock()
}

// fail ends writing with an error: readers waiting for more data get err.
func (s *spool) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.cond.Broadcast()
	s.mu.Unlock()
}

// Digest returns the blob's digest, or stream.ErrNotComputed while it is
// not known yet (go-containerregistry then uploads the layer as a stream).
func (s *spool) Digest() (v1.Hash, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.digest.Hex == "" {
		return v1.Hash{}, stream.ErrNotComputed
	}
	return s.digest, nil
}

// Size returns the blob's size once it is sealed, or
// stream.ErrNotComputed before.
func (s *spool) Size() (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.sealed {
		return 0, stream.ErrNotComputed
	}
	return s.n, nil
}

// open returns a reader of the whole blob that follows the writer. While
// the digest is unknown it hashes what it reads, so that a streamed upload
// of a random-access spool learns the digest at its end without another
// pass over the file.
func (s *spool) open() (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	if !s.append && !s.sealed {
		return nil, errors.New("convert: layer is not finished")
	}
	r := &spoolReader{s: s}
	if s.digest.Hex == "" && !s.append {
		r.h = sha256.New()
	}
	return r, nil
}

// remove deletes the temporary file.
func (s *spool) remove() error {
	s.f.Close()
	return os.Remove(s.f.Name())
}

type spoolReader struct {
	s   *spool
	off int64
	h   hash.Hash
}

func (r *spoolReader) Read(p []byte) (int, error) {
	s := r.s
	s.mu.Lock()
	for s.n <= r.off && !s.sealed && s.err == nil {
		s.cond.Wait()
	}
	avail, sealed, err := s.n-r.off, s.sealed, s.err
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if avail <= 0 && sealed {
		if r.h != nil {
			s.setDigest(v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(r.h.Sum(nil))})
			r.h = nil
		}
		return 0, io.EOF
	}
	if int64(len(p)) > avail {
		p = p[:avail]
	}
	n, rerr := s.f.ReadAt(p, r.off)
	r.off += int64(n)
	if r.h != nil {
		r.h.Write(p[:n])
	}
	if rerr == io.EOF {
		rerr = nil
	}
	return n, rerr
}

func (r *spoolReader) Close() error { return nil }

// spoolLayer is a converted layer backed by a spool: a
// go-containerregistry v1.Layer whose digest and size become known when
// its conversion ends.
type spoolLayer struct {
	s         *spool
	mediaType types.MediaType
}

func (l *spoolLayer) Digest() (v1.Hash, error)            { return l.s.Digest() }
func (l *spoolLayer) Size() (int64, error)                { return l.s.Size() }
func (l *spoolLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }
func (l *spoolLayer) Compressed() (io.ReadCloser, error)  { return l.s.open() }
func (l *spoolLayer) Uncompressed() (io.ReadCloser, error) {
	return l.s.open()
}

// DiffID is the digest: converted layers are stored uncompressed.
func (l *spoolLayer) DiffID() (v1.Hash, error) { return l.s.Digest() }
