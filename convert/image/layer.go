package image

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/erofs"
	"github.com/rafs-dev/rafs/erofs/verity"
	"github.com/rafs-dev/rafs/rafs"
)

// layer returns the conversion of source layer i of src, converting it
// unless another image of this Converter already has.
func (c *Converter) layer(ctx context.Context, src *sourceImage, i int) (*layerResult, error) {
	// A layer is shared by what it is said to be: an image whose manifest
	// gives it another size, or whose config another diff ID, has it
	// converted (and checked) again.
	key := fmt.Sprintf("%s %d %s", src.digests[i], src.layers[i].desc.Size, src.diffIDs[i])
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errors.New("convert: Converter is closed")
	}
	job := c.layers[key]
	if job == nil {
		job = &layerJob{done: make(chan struct{})}
		c.layers[key] = job
		c.mu.Unlock()
		job.res, job.err = c.runLayer(ctx, src, i)
		if job.err != nil {
			// A failed (or cancelled) conversion may be tried again.
			c.mu.Lock()
			delete(c.layers, key)
			c.mu.Unlock()
		}
		close(job.done)
		return job.res, job.err
	}
	c.mu.Unlock()
	select {
	case <-job.done:
		return job.res, job.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// cacheKey is the key of source layer i in the layer cache: the type, the
// options that change the output, and the source layer's chain ID (Nydus,
// as nydusify keys its cache) or diff ID (EROFS, whose layers stand
// alone, as containerd keys its layer cache).
func (c *Converter) cacheKey(src *sourceImage, i int) string {
	switch c.opts.Type {
	case TypeNydus:
		n := c.opts.Nydus
		dict := ""
		if c.opts.ChunkDict != nil {
			dict = c.opts.ChunkDict.Digest.String()
		}
		return fmt.Sprintf("nydus/v6/%s/%s/%d/%d/dict=%s/%s", orDefault(n.Compressor, "zstd"), orDefault(n.Digester, "blake3"),
			max(n.ChunkSize, 0), n.Level, dict, src.chainIDs[i])
	default:
		im := c.opts.EROFS.Image
		comp := "none"
		if z := im.Compression; z != nil {
			comp = z.Key()
		}
		kind := "erofs"
		if c.opts.EROFSTarIndex {
			kind = "erofs-tar-index"
		}
		if v := c.opts.EROFSVerity; v != nil {
			// NewConverter has set the block size; nil is the default salt.
			salt := "default"
			if v.Salt != nil {
				salt = fmt.Sprintf("%x", v.Salt)
			}
			kind += fmt.Sprintf("-dm-verity=%d,salt=%s,uuid=%x", v.BlockSize, salt, v.UUID)
		}
		if im.ChunkSize != 0 {
			kind += fmt.Sprintf("-chunk=%d", im.ChunkSize)
		}
		if im.Times != erofs.TimesKeep {
			kind += fmt.Sprintf("-times=%d", im.Times)
		}
		return fmt.Sprintf("%s/%s/bs=%d/%s/%t/%t/%t/t=%d/vol=%q/wh=%d/%s", kind, c.opts.EROFSMediaType, im.BlockSize, comp,
			im.NoInlineData, im.NoSharedXattrs, im.NoXattrFilter, im.BuildTime, im.VolumeName, c.opts.EROFS.Whiteouts, src.diffIDs[i])
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// runLayer converts source layer i of src, or takes it from the cache.
func (c *Converter) runLayer(ctx context.Context, src *sourceImage, i int) (*layerResult, error) {
	var key string
	if c.opts.Cache != nil {
		key = c.cacheKey(src, i)
		hit, err := c.opts.Cache.Lookup(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("layer cache: %w", err)
		}
		if hit != nil {
			return c.cachedLayer(src, i, hit)
		}
	}

	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	held := true
	release := func() {
		if held {
			held = false
			<-c.sem
		}
	}
	defer release()

	sl := src.layers[i]
	size := sl.desc.Size
	// vr checks the blob against the manifest as the conversion reads it.
	vr, err := sl.open()
	if err != nil {
		return nil, err
	}
	defer vr.Close()

	sp, err := newSpool(c.opts.TempDir, c.opts.Type == TypeNydus)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.spools = append(c.spools, sp)
	c.mu.Unlock()
	mt := MediaTypeNydusBlob
	if c.opts.Type == TypeEROFS {
		mt = c.opts.EROFSMediaType
	}
	layer := &spoolLayer{s: sp, mediaType: mt}

	pr := &progressReader{ctx: ctx, r: vr, rep: LayerProgress{Source: src.digests[i], Size: size}, fn: c.opts.Progress, written: func() int64 {
		n, _ := sp.written()
		return n
	}}
	ahead := convert.ReadAheadNydus // as TarToNydus and TarToEROFS read ahead
	if c.opts.Type == TypeEROFS {
		ahead = convert.ReadAheadEROFS
	}
	// Layers converted at a time share the cores in decoding gzip.
	cores := max(1, runtime.GOMAXPROCS(0)/min(c.opts.Jobs, len(src.layers)))
	in, err := openSource(pr, ahead, cores, sl, src.diffIDs[i])
	if err != nil {
		// A blob that is not the manifest's is the cause of a stream that
		// cannot be opened.
		if _, derr := io.Copy(io.Discard, pr); derr != nil && ctx.Err() == nil {
			err = derr
		}
		sp.fail(err)
		return nil, err
	}
	// checkSource ends reading the source: the blob is read to its end
	// and checked against the manifest, and, when the conversion read all
	// of it (converted), its uncompressed bytes against the diff ID. It
	// runs before the converted layer is sealed, so that an upload of a
	// layer converted from a blob that is not the manifest's never
	// completes.
	checkSource := func(converted bool) error {
		in.close()
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, pr); err != nil {
			return err
		}
		if !converted {
			return nil
		}
		return in.checkDiffID()
	}
	var pushed chan error
	startPush := func() {
		if c.opts.Push == nil {
			return
		}
		pushed = make(chan error, 1)
		go func() { pushed <- c.opts.Push(ctx, layer) }()
	}
	waitPush := func() error {
		if pushed == nil {
			return nil
		}
		select {
		case err := <-pushed:
			if err != nil {
				return fmt.Errorf("pushing: %w", err)
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	fail := func(err error) (*layerResult, error) {
		sp.fail(err)
		waitPush()
		return nil, err
	}

	res := &layerResult{layer: layer}
	var bootRaw []byte
	switch c.opts.Type {
	case TypeNydus:
		startPush()
		nr, err := convert.TarToNydus(in.dec, sp, &c.opts.Nydus)
		if cerr := checkSource(err == nil); cerr != nil && (err == nil || ctx.Err() == nil) {
			// A blob that is not what the manifest says is the cause of
			// whatever the conversion made of it.
			err = cerr
		}
		if err != nil {
			return fail(err)
		}
		// The blob writer hashed the blob (its id is its SHA-256).
		sp.seal(0, v1.Hash{Algorithm: "sha256", Hex: nr.Blob.ID})
		res.boot = nr.Bootstrap
		if c.opts.Cache != nil {
			if bootRaw, err = nr.Bootstrap.MarshalBinary(); err != nil {
				return fail(err)
			}
		}
	default:
		eo := c.opts.EROFS
		u := layerUUID(src.diffIDs[i])
		eo.Image.UUID = &u
		er, err := erofsLayer(in.dec, sp, &eo, c.opts.EROFSTarIndex)
		if cerr := checkSource(err == nil); cerr != nil && (err == nil || ctx.Err() == nil) {
			err = cerr
		}
		if err != nil {
			return fail(err)
		}
		size := er.ImageSize
		if v := c.opts.EROFSVerity; v != nil {
			vr, err := verity.Append(struct {
				io.ReaderAt
				io.WriterAt
			}{sp.f, sp}, size, v)
			if err != nil {
				return fail(fmt.Errorf("convert: layer %s: dm-verity tree: %w", src.digests[i], err))
			}
			meta, err := json.Marshal(verity.Metadata{RootHash: vr.RootHashHex(), HashOffset: uint64(vr.HashOffset)})
			if err != nil {
				return fail(err)
			}
			size = vr.Size
			res.annotations = map[string]string{AnnotationDmverity: string(meta)}
		}
		sp.seal(size, v1.Hash{})
		// A push hashes the image as it uploads it; without one, hash it
		// here.
		startPush()
	}
	release()
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	pr.done()
	// finish waits for the upload and records the layer in the cache. A
	// Nydus blob's digest is known already, so the image can be assembled
	// (its bootstraps merged) while the upload ends; an EROFS image's
	// digest is computed by its upload.
	finish := func() error {
		if err := waitPush(); err != nil {
			return err
		}
		if err := sp.hash(); err != nil {
			return err
		}
		if c.opts.Cache != nil {
			cl := &CachedLayer{Layer: layer, Bootstrap: bootRaw, Annotations: res.annotations}
			if err := c.opts.Cache.Store(ctx, key, cl); err != nil {
				return fmt.Errorf("layer cache: %w", err)
			}
		}
		return nil
	}
	if c.opts.Type == TypeNydus {
		res.finish = sync.OnceValue(finish)
	} else if err := finish(); err != nil {
		return nil, err
	}
	if res.digest, err = sp.Digest(); err != nil {
		return nil, err
	}
	if res.size, err = sp.Size(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.stats.Layers++
	c.stats.BytesIn += pr.n
	c.stats.BytesOut += res.size
	c.mu.Unlock()
	return res, nil
}

// cachedLayer makes the result of source layer i from a cache hit.
func (c *Converter) cachedLayer(src *sourceImage, i int, hit *CachedLayer) (*layerResult, error) {
	res := &layerResult{layer: hit.Layer, annotations: hit.Annotations}
	var err error
	if res.digest, err = hit.Layer.Digest(); err != nil {
		return nil, fmt.Errorf("layer cache: %w", err)
	}
	if res.size, err = hit.Layer.Size(); err != nil {
		return nil, fmt.Errorf("layer cache: %w", err)
	}
	if c.opts.Type == TypeNydus {
		if hit.Bootstrap == nil {
			return nil, fmt.Errorf("layer cache: Nydus layer %s has no bootstrap", res.digest)
		}
		if res.boot, err = rafs.Read(bytes.NewReader(hit.Bootstrap), int64(len(hit.Bootstrap))); err != nil {
			return nil, fmt.Errorf("layer cache: bootstrap of %s: %w", res.digest, err)
		}
	}
	c.mu.Lock()
	c.stats.Cached++
	c.mu.Unlock()
	if c.opts.Progress != nil {
		size, _ := src.layers[i].Size()
		c.opts.Progress(LayerProgress{Source: src.digests[i], Size: size, Read: size, Written: res.size, Done: true, Cached: true})
	}
	return res, nil
}

// layerUUID is the UUID of the EROFS image of a layer with the given diff
// ID: a name-based (SHA-1, version 5) UUID of "erofs:blobs/<diff ID>" in
// the URL namespace, as containerd's EROFS converter derives it.
func layerUUID(diffID v1.Hash) [16]byte {
	ns := [16]byte{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}
	h := sha1.New()
	h.Write(ns[:])
	h.Write([]byte("erofs:blobs/" + diffID.String()))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return u
}

// progressReader counts the source bytes read and reports them about
// every MiB.
type progressReader struct {
	ctx     context.Context
	r       io.Reader
	n       int64
	last    int64
	rep     LayerProgress
	fn      func(LayerProgress)
	written func() int64
	ended   atomic.Bool
}

func (p *progressReader) Read(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.fn != nil && p.n-p.last >= 1<<20 {
		p.last = p.n
		r := p.rep
		r.Read, r.Written = p.n, p.written()
		p.fn(r)
	}
	return n, err
}

func (p *progressReader) done() {
	if p.fn == nil || p.ended.Swap(true) {
		return
	}
	r := p.rep
	r.Read, r.Written, r.Done = p.n, p.written(), true
	p.fn(r)
}

// sourceStream is a source layer's tar stream, decompressed by the
// Converter rather than by TarToNydus or TarToEROFS (they take a
// convert.DecodedLayer as it is), so that the uncompressed bytes are
// hashed for the diff ID in the decompression goroutine, on their way, as
// the layer is read once.
type sourceStream struct {
	dec *convert.DecodedLayer // what the conversion reads
	dr  io.ReadCloser

	l      *verifiedLayer
	diffID v1.Hash   // what the config says
	h      hash.Hash // of the uncompressed stream; nil when the blob's digest is the diff ID
}

// openSource starts decompressing the layer blob r (of l) as TarToNydus
// and TarToEROFS would, up to ahead bytes in front of the reader, gzip on
// up to cores cores.
func openSource(r io.Reader, ahead, cores int, l *verifiedLayer, diffID v1.Hash) (*sourceStream, error) {
	name := "uncompressed " + l.name
	dr, enc, err := convert.DecompressWith(r, &convert.DecompressOptions{Cores: cores})
	if err != nil {
		return nil, err
	}
	s := &sourceStream{dr: dr, l: l, diffID: diffID}
	var tee io.Reader = dr
	// An uncompressed blob that is checked against a digest of the diff
	// ID's algorithm has its diff ID checked with it.
	if enc != convert.Tar || diffID.Algorithm != l.desc.Digest.Algorithm {
		if s.h, err = newHasher(diffID.Algorithm); err != nil {
			dr.Close()
			return nil, &blobError{name, fmt.Errorf("diff ID %s: %w", diffID, err)}
		}
		tee = io.TeeReader(dr, s.h)
	}
	s.dec = convert.NewDecodedLayer(tee, enc, ahead)
	return s, nil
}

// close stops decompression; the blob is not read any further by it.
func (s *sourceStream) close() {
	s.dec.Close()
	s.dr.Close()
}

// checkDiffID checks the diff ID, once the stream has been read to its
// end and the blob verified.
func (s *sourceStream) checkDiffID() error {
	got := s.l.desc.Digest
	if s.h != nil {
		got = sumOf(s.diffID.Algorithm, s.h)
	}
	if got != s.diffID {
		return &BlobMismatchError{Blob: "uncompressed " + s.l.name, Digest: s.diffID, Size: -1, Got: got}
	}
	return nil
}

// erofsLayer converts a layer to an EROFS image: a tar index with the tar
// appended when tarIndex is set (Options.EROFSTarIndex).
func erofsLayer(r io.Reader, w io.WriterAt, eo *convert.EROFSOptions, tarIndex bool) (*convert.EROFSResult, error) {
	if tarIndex {
		return convert.TarToEROFSIndex(r, w, &convert.TarIndexOptions{EROFS: *eo, Append: true})
	}
	return convert.TarToEROFS(r, w, eo)
}
