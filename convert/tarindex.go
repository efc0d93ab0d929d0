package convert

// Tar index: an EROFS image of a layer's metadata whose regular files'
// data is the tar's own, referenced in place. The tar is the image's
// extra device 1 (mkfs.erofs --tar=i); appended to the image, it makes
// one file that mounts alone (containerd's EROFS differ with
// enable_tar_index writes that form).

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/rafs-dev/rafs/convert/internal/tarhdr"
	"github.com/rafs-dev/rafs/erofs"
)

// TarIndexBlockSize is the block size of a tar index: a tar's header
// and data blocks are 512 bytes, so every file's data starts on a block.
const TarIndexBlockSize = 512

// TarIndexOptions configure TarToEROFSIndex. The zero value (or nil)
// indexes a plain tar that stays separate, as mkfs.erofs --tar=i does,
// with overlayfs whiteouts.
type TarIndexOptions struct {
	// EROFS are the image and whiteout options, as for TarToEROFS. The
	// block size is TarIndexBlockSize (0 means it; another is an error),
	// compression is refused, and the device table is the tar's.
	EROFS EROFSOptions

	// Append writes the uncompressed tar right after the index, in the
	// same output: the image then mounts alone. Without Append, the
	// input must be the uncompressed tar itself, the image's device 1.
	Append bool

	// DeviceTag is the tag of the tar's device slot (at most 64 bytes;
	// mkfs.erofs leaves it empty).
	DeviceTag string
}

// TarToEROFSIndex reads a layer's tar stream and writes to w an EROFS
// image of its metadata alone, with 512-byte blocks: each regular file
// is chunk-based, one chunk (the file's size rounded up to a power of
// two) on device 1 at the block where its data lies in the tar, as
// mkfs.erofs --tar=i makes them. The tar is device 1, and its slot's
// mapped_blkaddr is the image's size in blocks, so that the tar
// appended to the image is found there when the image is mounted with
// no device= option.
//
// With opts.Append, the input may be gzip- or zstd-compressed: it is
// decompressed once, spooled to a temporary file (in
// opts.EROFS.Image.TempDir) while the index is built, and appended to
// the image. EROFSResult.ImageSize is then the size of both. Without
// it, the input must be the plain tar the image refers to.
//
// GNU sparse entries are refused: their data in the tar is not the
// file's bytes in order.
func TarToEROFSIndex(r io.Reader, w io.WriterAt, opts *TarIndexOptions) (*EROFSResult, error) {
	var o TarIndexOptions
	if opts != nil {
		o = *opts
	}
	img := o.EROFS.Image
	switch {
	case img.BlockSize != 0 && img.BlockSize != TarIndexBlockSize:
		return nil, fmt.Errorf("convert: tar index: block size %d: a tar index has %d-byte blocks", img.BlockSize, TarIndexBlockSize)
	case img.Compression != nil:
		return nil, errors.New("convert: tar index: compression: a tar index refers to the tar's data as it is")
	case len(img.Devices) > 0:
		return nil, errors.New("convert: tar index: the device table is the tar's; give no Devices")
	}
	img.BlockSize = TarIndexBlockSize
	if err := o.EROFS.checkWhiteoutOrigin(); err != nil {
		return nil, err
	}
	img.WhiteoutOrigin = o.EROFS.Whiteouts == WhiteoutOverlay
	img.Devices = []erofs.SuperblockDevice{{Tag: o.DeviceTag}}
	img.DevicesAppended = true

	src, seeker, enc, closeTar, err := openTarData(r, !o.Append)
	if err != nil {
		return nil, err
	}
	defer closeTar()
	if enc != Tar && !o.Append {
		return nil, fmt.Errorf("convert: tar index: the input is %s-compressed, but the index refers to the uncompressed tar: give the plain tar, or append it to the index", enc)
	}
	var spool *os.File
	if o.Append {
		if spool, err = os.CreateTemp(img.TempDir, "rafs-tar-*"); err != nil {
			return nil, fmt.Errorf("convert: tar index: spool for the tar: %w", err)
		}
		os.Remove(spool.Name())
		defer spool.Close()
		src = io.TeeReader(src, spool)
	}

	iw, err := erofs.NewWriter(w, &img)
	if err != nil {
		return nil, err
	}
	res := &EROFSResult{Encoding: enc}
	cr := &countingReader{r: src, seeker: seeker}
	sink := &tarIndexSink{Writer: iw}
	var st tarStats
	err = addTar(sink, cr, o.EROFS.Whiteouts, &st)
	res.Entries, res.TarSize, res.DroppedXattrs = st.Entries, st.TarSize, st.DroppedXattrs
	if err == nil {
		// The rest of the stream (the tar's end blocks and padding) is
		// part of the device; a corrupt compressed stream is an error.
		if _, err = io.Copy(io.Discard, cr); err != nil {
			err = fmt.Errorf("convert: after the tar end at offset %d: %w", cr.n, err)
		}
	}
	if err == nil {
		res.TarSize = cr.n
		err = iw.SetDeviceBlocks(1, uint64((cr.n+TarIndexBlockSize-1)/TarIndexBlockSize))
	}
	if err != nil {
		iw.Close()
		return nil, err
	}
	if err := iw.Close(); err != nil {
		return nil, err
	}
	res.ImageSize = iw.Size()
	if o.Append {
		n, err := appendFile(w, res.ImageSize, spool)
		if err != nil {
			return nil, fmt.Errorf("convert: tar index: appending the tar at offset %d: %w", res.ImageSize, err)
		}
		if n != cr.n {
			return nil, fmt.Errorf("convert: tar index: appended %d bytes of tar, read %d", n, cr.n)
		}
		res.ImageSize += n
	}
	return res, nil
}

// openTarData opens a layer's tar stream for a sink that needs no file
// data: when skip is set and r is a plain tar in a file, file data is
// skipped by seeking (seeker is then the stream's), else r is read and
// decompressed as any layer. close ends the decompression.
func openTarData(r io.Reader, skip bool) (src io.Reader, seeker io.Seeker, enc LayerEncoding, close func(), err error) {
	if rs, ok := plainSeekableTar(r); ok && skip {
		b := &bufSeeker{rs: rs, buf: make([]byte, 0, 64<<10)}
		return b, b, Tar, func() {}, nil
	}
	src, enc, close, err = openLayer(r, ReadAheadEROFS)
	return src, nil, enc, close, err
}

// plainSeekableTar returns r as an io.ReadSeeker when it is one whose
// seeking works (a regular file) and whose content from the current
// position starts with a tar header: a plain tar, not compressed.
func plainSeekableTar(r io.Reader) (io.ReadSeeker, bool) {
	rs, ok := r.(io.ReadSeeker)
	if !ok {
		return nil, false
	}
	pos, err := rs.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, false
	}
	head := make([]byte, 512)
	n, _ := io.ReadFull(rs, head)
	if _, err := rs.Seek(pos, io.SeekStart); err != nil {
		// Seeking worked a moment ago; fail rather than read on from a
		// position past the start.
		return nil, false
	}
	return rs, n == len(head) && tarhdr.IsHeader(head)
}

// bufSeeker buffers reads from rs and seeks within what it holds. After
// a seek past what it holds, it reads one page only: the tar reader
// seeks over a file's data to read its last byte, the padding and the
// next header, and most likely seeks on from there. Reads that go on
// from the end of the buffer read twice as much each time, up to the
// whole buffer.
type bufSeeker struct {
	rs  io.ReadSeeker
	buf []byte // buffered bytes
	off int    // read position in buf
	pos int64  // rs's position: the end of buf, once known (known false)

	known bool
	fill  int // how much the next refill reads; 0 means the whole buffer
}

// seekFill is how much bufSeeker reads after a seek past its buffer.
const seekFill = 4 << 10

func (b *bufSeeker) Read(p []byte) (int, error) {
	if b.off == len(b.buf) {
		fill := cap(b.buf)
		if b.fill > 0 {
			fill = min(fill, b.fill)
			b.fill *= 2
		}
		if len(p) >= fill {
			n, err := b.rs.Read(p)
			b.pos += int64(n)
			return n, err
		}
		n, err := b.rs.Read(b.buf[:fill])
		b.buf, b.off = b.buf[:n], 0
		b.pos += int64(n)
		if n == 0 {
			return 0, err
		}
	}
	n := copy(p, b.buf[b.off:])
	b.off += n
	return n, nil
}

// Seek moves by offset bytes from the current position (whence must be
// io.SeekCurrent) and returns the new position.
func (b *bufSeeker) Seek(offset int64, whence int) (int64, error) {
	if whence != io.SeekCurrent {
		return 0, errors.New("convert: bufSeeker seeks from the current position only")
	}
	if !b.known {
		pos, err := b.rs.Seek(0, io.SeekCurrent)
		if err != nil {
			return 0, err
		}
		b.pos, b.known = pos, true
	}
	left := int64(len(b.buf) - b.off)
	if offset >= 0 && offset <= left {
		b.off += int(offset)
		return b.pos - (left - offset), nil
	}
	pos, err := b.rs.Seek(offset-left, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	b.buf, b.off, b.pos, b.fill = b.buf[:0], 0, pos, seekFill
	return pos, nil
}

// appendFile copies f from its start to w at offset off.
func appendFile(w io.WriterAt, off int64, f *os.File) (int64, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	if of, ok := w.(*os.File); ok {
		// copy_file_range where the kernel can.
		if _, err := of.Seek(off, io.SeekStart); err != nil {
			return 0, err
		}
		return io.Copy(of, f)
	}
	return io.CopyBuffer(io.NewOffsetWriter(w, off), f, make([]byte, 1<<20))
}

// tarIndexSink adds a tar's entries to an EROFS writer, regular files as
// chunks of device 1 at their data's offset in the tar.
type tarIndexSink struct {
	*erofs.Writer
	sparse  bool  // the entry being added is a GNU sparse file
	dataOff int64 // where its data starts in the tar
}

// beginEntry is told before each entry is added whether it is a GNU
// sparse file and where its data starts in the tar.
func (s *tarIndexSink) beginEntry(sparse bool, dataOff int64) {
	s.sparse, s.dataOff = sparse, dataOff
}

// Add adds e; a regular file's data is the tar's, from the offset the
// tar has been read to.
func (s *tarIndexSink) Add(e *erofs.Entry, data io.Reader) error {
	if e.Mode&erofs.ModeTypeMask != erofs.ModeRegular || e.Size == 0 {
		return s.Writer.Add(e, data)
	}
	if s.sparse {
		return errors.New("GNU sparse file: its data in the tar is not the file's bytes in order, so a tar index cannot refer to it")
	}
	off := s.dataOff
	if off%TarIndexBlockSize != 0 {
		return fmt.Errorf("data at tar offset %d, not on a %d-byte block", off, TarIndexBlockSize)
	}
	return s.Writer.AddChunks(e, tarIndexChunks(e.Size, off))
}

// tarIndexChunks returns the chunks of a file of size bytes (more than
// 0) whose data is at offset off of device 1, as mkfs.erofs --tar=i
// lays them out: one chunk of the size rounded up to a power of two,
// from one block up to the largest chunk size.
func tarIndexChunks(size, off int64) erofs.ChunkedFile {
	bits := 9 // log2 TarIndexBlockSize
	for bits < 9+erofs.ChunkFormatBlkBits && int64(1)<<bits < size {
		bits++
	}
	cs := int64(1) << bits
	f := erofs.ChunkedFile{ChunkSize: cs, Indexes: true}
	for pos := int64(0); pos < size; pos += cs {
		f.Chunks = append(f.Chunks, erofs.Chunk{Device: 1, Block: uint64((off + pos) / TarIndexBlockSize)})
	}
	return f
}
