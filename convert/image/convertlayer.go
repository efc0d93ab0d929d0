package image

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/erofs"
)

// AnnotationUncompressed is the annotation (and content label) with
// which containerd records a layer's diff ID. Converted layers are stored
// uncompressed, so it is their own digest.
const AnnotationUncompressed = "containerd.io/uncompressed"

// ConvertLayer converts one layer blob — r reads it: a tar, plain, gzip-
// or zstd-compressed; desc describes it — into w and returns the
// descriptor of the converted blob: its media type, digest and size, with
// the annotations the converted layer carries (for a Nydus blob
// AnnotationNydusBlob) and AnnotationUncompressed, its diff ID, which for
// a converted layer is its own digest. It is the per-layer step of
// containerd's image converter; the module
// github.com/rafs-dev/rafs/convert/containerd wraps it as
// converter.ConvertFuncs.
//
// The bytes written are those Converter.Image writes for the same layer
// with the same options, so a layer converted here and in an image
// conversion has one digest. The EROFS UUID is derived from the layer's
// diff ID, which ConvertLayer computes from the bytes it reads. When desc
// has a digest, the blob read must have it (and desc's size, when it has
// one), and when desc carries the AnnotationUncompressed annotation, the
// diff ID must be its value; a mismatch is a *BlobMismatchError. Nothing
// else of desc is used.
//
// Of opts, Type, Nydus, ChunkDict, EROFS, EROFSMediaType, EROFSTarIndex
// and TempDir apply. A Nydus blob streams to w as it is made; an EROFS
// image is built in a temporary file in TempDir and then copied to w.
//
// ConvertLayer stops when ctx is done, even while a read from r blocks,
// and returns ctx.Err(); a read in progress then finishes in the
// background into a buffer of its own, so r must not be reused.
func ConvertLayer(ctx context.Context, desc ocispec.Descriptor, r io.Reader, w io.Writer, opts *Options) (ocispec.Descriptor, error) {
	c, err := NewConverter(opts)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if err := ctx.Err(); err != nil {
		return ocispec.Descriptor{}, err
	}
	out, err := c.convertStream(ctx, desc, r, w)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return ocispec.Descriptor{}, cerr
		}
		return ocispec.Descriptor{}, err
	}
	return out, nil
}

// convertStream is ConvertLayer with c's options.
func (c *Converter) convertStream(ctx context.Context, desc ocispec.Descriptor, r io.Reader, w io.Writer) (ocispec.Descriptor, error) {
	o := c.opts
	name := "layer " + string(desc.Digest)
	if desc.Digest == "" {
		name = "layer"
	}
	in, err := newLayerStream(ctx, desc, r, o.Type)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("convert: %s: %w", name, err)
	}
	defer in.close()

	out := ocispec.Descriptor{Annotations: map[string]string{}}
	switch o.Type {
	case TypeNydus:
		res, err := convert.TarToNydus(in.dec, w, &o.Nydus)
		if err == nil {
			_, err = in.finish()
		}
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("convert: %s: %w", name, err)
		}
		out.Digest = digest.NewDigestFromEncoded(digest.SHA256, res.Blob.ID)
		out.Size = res.Blob.Size
		out.MediaType = string(MediaTypeNydusBlob)
		out.Annotations[AnnotationNydusBlob] = "true"
	default:
		f, err := os.CreateTemp(o.TempDir, "rafs-layer-*")
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("convert: temp file for a layer: %w", err)
		}
		defer os.Remove(f.Name())
		defer f.Close()
		// The UUID is derived from the diff ID, known once the layer has
		// been read: the image is written with a zero UUID, which is then
		// set.
		eo := o.EROFS
		eo.Image.UUID = &[16]byte{}
		res, err := erofsLayer(in.dec, f, &eo, o.EROFSTarIndex)
		var diffID v1.Hash
		if err == nil {
			diffID, err = in.finish()
		}
		if err == nil {
			err = erofs.SetUUID(f, layerUUID(diffID))
		}
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("convert: %s: %w", name, err)
		}
		h := sha256.New()
		cw := &ctxWriter{ctx: ctx, w: io.MultiWriter(w, h)}
		if _, err := io.Copy(cw, io.NewSectionReader(f, 0, res.ImageSize)); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("convert: %s: writing: %w", name, err)
		}
		out.Digest = digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil))
		out.Size = res.ImageSize
		out.MediaType = string(o.EROFSMediaType)
	}
	out.Annotations[AnnotationUncompressed] = out.Digest.String()
	return out, nil
}

// layerStream is a layer blob being converted: read through a ctxReader,
// hashed as it is read (to check it against its descriptor) and, once
// decompressed, hashed again for its diff ID.
type layerStream struct {
	desc    ocispec.Descriptor
	cr      *ctxReader
	src     *countReader // cr, counted and hashed
	blob    hash.Hash    // of the blob; nil without a digest to check
	n       int64
	dr      io.ReadCloser
	dec     *convert.DecodedLayer
	diff    hash.Hash // of the uncompressed stream
	wantDID digest.Digest
	closed  bool // the decoder
}

func newLayerStream(ctx context.Context, desc ocispec.Descriptor, r io.Reader, typ Type) (*layerStream, error) {
	s := &layerStream{desc: desc, wantDID: digest.Digest(desc.Annotations[AnnotationUncompressed])}
	if desc.Digest != "" {
		if err := desc.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("descriptor digest: %w", err)
		}
		s.blob = desc.Digest.Algorithm().Hash()
	}
	if s.wantDID != "" {
		if err := s.wantDID.Validate(); err != nil {
			return nil, fmt.Errorf("%s annotation: %w", AnnotationUncompressed, err)
		}
	}
	s.cr = newCtxReader(ctx, r)
	s.src = &countReader{r: s.cr, n: &s.n, h: s.blob}
	dr, enc, err := convert.Decompress(s.src)
	if err != nil {
		s.cr.stop()
		return nil, err
	}
	s.dr = dr
	s.diff = sha256.New()
	if s.wantDID != "" {
		s.diff = s.wantDID.Algorithm().Hash()
	}
	ahead := convert.ReadAheadNydus
	if typ == TypeEROFS {
		ahead = convert.ReadAheadEROFS
	}
	s.dec = convert.NewDecodedLayer(io.TeeReader(dr, s.diff), enc, ahead)
	return s, nil
}

// finish reads the blob to its end, checks it against its descriptor and
// returns the layer's diff ID (SHA-256, or the algorithm of the diff ID
// annotation), checked against the annotation. The conversion has read
// the uncompressed stream to its end.
func (s *layerStream) finish() (v1.Hash, error) {
	alg := "sha256"
	if s.wantDID != "" {
		alg = string(s.wantDID.Algorithm())
	}
	diffID := v1.Hash{Algorithm: alg, Hex: fmt.Sprintf("%x", s.diff.Sum(nil))}
	// Decompression stops before the rest of the blob is read here.
	s.closeDecoder()
	if _, err := io.Copy(io.Discard, s.src); err != nil {
		return v1.Hash{}, err
	}
	if s.desc.Size > 0 && s.n != s.desc.Size {
		return v1.Hash{}, &BlobMismatchError{Blob: "layer " + string(s.desc.Digest), Digest: toHash(s.desc.Digest), Size: s.desc.Size, GotSize: s.n}
	}
	if s.blob != nil {
		if got := digest.NewDigestFromBytes(s.desc.Digest.Algorithm(), s.blob.Sum(nil)); got != s.desc.Digest {
			return v1.Hash{}, &BlobMismatchError{Blob: "layer " + string(s.desc.Digest), Digest: toHash(s.desc.Digest), Size: -1, Got: toHash(got)}
		}
	}
	if s.wantDID != "" && diffID.String() != string(s.wantDID) {
		return v1.Hash{}, &BlobMismatchError{Blob: "uncompressed layer " + string(s.desc.Digest), Digest: toHash(s.wantDID), Size: -1, Got: diffID}
	}
	return diffID, nil
}

// closeDecoder stops decompressing.
func (s *layerStream) closeDecoder() {
	if !s.closed {
		s.closed = true
		s.dec.Close()
		s.dr.Close()
	}
}

// close stops reading.
func (s *layerStream) close() {
	s.closeDecoder()
	s.cr.stop()
}

func toHash(d digest.Digest) v1.Hash {
	return v1.Hash{Algorithm: string(d.Algorithm()), Hex: d.Encoded()}
}

// countReader counts the bytes read through it into *n and, when h is
// set, hashes them.
type countReader struct {
	r io.Reader
	n *int64
	h hash.Hash
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	if c.h != nil {
		c.h.Write(p[:n])
	}
	return n, err
}

// A ctxReader reads r in a goroutine of its own, so that a Read returns
// ctx.Err() as soon as ctx is done, even while r's Read blocks. The
// goroutine reads into a buffer of its own, never into the caller's.
type ctxReader struct {
	ctx  context.Context
	reqs chan int
	res  chan ctxRead
	buf  []byte
	cur  []byte
	err  error
	done chan struct{}
}

type ctxRead struct {
	n   int
	err error
}

func newCtxReader(ctx context.Context, r io.Reader) *ctxReader {
	c := &ctxReader{ctx: ctx, reqs: make(chan int), res: make(chan ctxRead, 1), buf: make([]byte, 256<<10), done: make(chan struct{})}
	go func(buf []byte) {
		for {
			select {
			case n := <-c.reqs:
				m, err := r.Read(buf[:n])
				c.res <- ctxRead{m, err}
			case <-c.done:
				return
			}
		}
	}(c.buf)
	return c
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if len(c.cur) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		if err := c.ctx.Err(); err != nil {
			c.err = err
			return 0, err
		}
		if len(p) == 0 {
			return 0, nil
		}
		select {
		case c.reqs <- len(c.buf):
		case <-c.done:
			return 0, errors.New("convert: read after the layer was closed")
		}
		select {
		case r := <-c.res:
			c.cur = c.buf[:r.n]
			c.err = r.err
			if r.n == 0 {
				return 0, r.err
			}
		case <-c.ctx.Done():
			// The goroutine finishes its read into c.buf and exits; c
			// is not read from again.
			c.err = c.ctx.Err()
			c.stop()
			return 0, c.err
		}
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	return n, nil
}

// stop ends the reading goroutine once a read in progress returns.
func (c *ctxReader) stop() {
	select {
	case <-c.done:
	default:
		close(c.done)
	}
}

// A ctxWriter fails with ctx.Err() once ctx is done.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c *ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}
