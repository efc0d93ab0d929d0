package convert

// Nydus tarfs: a RAFS v6 bootstrap whose one blob is the layer's plain
// tar, its regular files' data referenced in place — what
// nydus-image create --type tar-tarfs writes for nydus-snapshotter's
// tarfs mode (see "tarfs" in nydus-snapshotter's docs), where the kernel
// mounts the bootstrap with the tar as its EROFS device. It is the Nydus
// counterpart of the tar index (TarToEROFSIndex): the same tar walk, the
// same 512-byte blocks.

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/erofs"
	"github.com/rafs-dev/rafs/rafs"
)

// TarfsFlags are the superblock flags of a tarfs bootstrap as
// nydus-image writes them: no compression, SHA-256, explicit uid/gid,
// tarfs mode, no encryption. WriteTo adds rafs.FlagHasXattr when an
// inode has xattrs.
const TarfsFlags = rafs.FlagCompressionNone | rafs.FlagHashSHA256 | rafs.FlagExplicitUIDGID |
	rafs.FlagTarfsMode | rafs.FlagEncryptionNone

// TarfsBlobFeatures are the features of a tarfs blob's table entry:
// TARFS and the nydus-image ≥ 2.2 marker, and no ALIGNED, CI array, TOC
// or digests.
const TarfsBlobFeatures = blob.FeatureTarfs | blob.FeatureCapTarTOC

// ErrTarfsNoBlobOutput is the error (matched with errors.Is) of
// TarToNydusTarfs given a compressed layer and no output for its
// uncompressed tar.
var ErrTarfsNoBlobOutput = errors.New("a tarfs bootstrap's blob is the uncompressed tar, and no output was given for it")

// NydusTarfsOptions configure TarToNydusTarfs. The zero value (or nil)
// gives what nydus-image create --type tar-tarfs gives by default.
type NydusTarfsOptions struct {
	// ChunkSize is the filesystem chunk size, a power of two from 4 KiB
	// to 16 MiB; 0 means 1 MiB. Files get one chunk index per chunk, but
	// since a file's data is contiguous in the tar, the kernel sees each
	// file larger than a chunk as one chunk.
	ChunkSize int
	// BlobID is the blob's id in the bootstrap (its device tag): 64
	// characters. Empty means the hex SHA-256 of the uncompressed tar.
	// nydus-snapshotter passes the layer's digest (nydus-image
	// --blob-id), which for a compressed layer is not the tar's.
	BlobID string
}

// NydusTarfsResult describes a finished TarToNydusTarfs.
type NydusTarfsResult struct {
	Entries  int           // tar entries read
	TarSize  int64         // bytes of uncompressed tar: the blob
	Encoding LayerEncoding // how the input stream was encoded

	// DroppedXattrs counts xattrs left out because their names are in
	// no namespace Linux has (see NydusResult).
	DroppedXattrs int

	// BlobID is the blob's id: NydusTarfsOptions.BlobID, or the hex
	// SHA-256 of the uncompressed tar. The bootstrap has no blob (and
	// needs no device) when no file has data; BlobID is set anyway.
	BlobID string
	// Bootstrap is the bootstrap written.
	Bootstrap *rafs.Bootstrap
	// BootstrapSize is its size in bytes.
	BootstrapSize int64

	Files     int    // regular files (inodes, not names)
	FileBytes uint64 // bytes of file data (each inode once)
	Chunks    int    // chunk indexes of the files
}

// TarToNydusTarfs reads an OCI layer — a tar stream, plain, gzip- or
// zstd-compressed (decompressed once) — and writes to boot its tarfs
// bootstrap: RAFS v6 with 512-byte blocks (flag TARFS_MODE) whose one
// blob, device 1, is the uncompressed tar. Regular files' chunk indexes
// point straight at their data in the tar (block = offset / 512); there
// is no chunk data, chunk-info array or digest of its own, as
// nydus-image create --type tar-tarfs makes it. The tree is built as
// TarToNydus builds it: OCI whiteouts stay plain files (MergeNydus
// applies them), implied directories get mode 0755, owner 0:0, mtime 0,
// hard links share their target's inode.
//
// The uncompressed tar is the blob, so it must exist as a file for the
// bootstrap to be mounted: when tarOut is not nil, the uncompressed tar
// is copied to it as it is read; a compressed input without tarOut is an
// error. A plain tar input that is a file may be used as the blob
// itself, with tarOut nil. The blob id (NydusTarfsResult.BlobID) is
// hashed from the same pass, unless opts gives one.
//
// GNU sparse entries are refused: their data in the tar is not the
// file's bytes in order. Errors name the tar entry and its offset.
func TarToNydusTarfs(r io.Reader, boot, tarOut io.Writer, opts *NydusTarfsOptions) (*NydusTarfsResult, error) {
	var o NydusTarfsOptions
	if opts != nil {
		o = *opts
	}
	cs := o.ChunkSize
	if cs == 0 {
		cs = blob.DefaultChunkSize
	}
	if cs < 0 || !blob.ValidChunkSize(uint64(cs)) {
		return nil, fmt.Errorf("convert: tarfs: chunk size %d: want a power of two from %d to %d", o.ChunkSize, blob.MinChunkSize, blob.MaxChunkSize)
	}
	if o.BlobID != "" && len(o.BlobID) != 64 {
		return nil, fmt.Errorf("convert: tarfs: blob id %q: want 64 characters (a hex SHA-256)", o.BlobID)
	}

	// With nothing to hash or copy, file data is skipped by seeking.
	src, seeker, enc, closeTar, err := openTarData(r, tarOut == nil && o.BlobID != "")
	if err != nil {
		return nil, err
	}
	defer closeTar()
	if enc != Tar && tarOut == nil {
		return nil, fmt.Errorf("convert: tarfs: the input is %s-compressed: %w", enc, ErrTarfsNoBlobOutput)
	}
	var h hash.Hash
	var tee []io.Writer
	if o.BlobID == "" {
		h = sha256.New()
		tee = append(tee, h)
	}
	if tarOut != nil {
		tee = append(tee, tarOut)
	}
	if len(tee) > 0 {
		src = io.TeeReader(src, io.MultiWriter(tee...))
	}

	t := &nydusTree{
		chunkSize: uint32(cs),
		boot: &rafs.Bootstrap{
			ChunkSize: uint32(cs),
			Flags:     TarfsFlags,
			Blobs:     []rafs.BlobInfo{{ID: PlaceholderBlobID}},
		},
		tree: erofs.NewTree(0),
	}
	res := &NydusTarfsResult{Encoding: enc}
	cr := &countingReader{r: src, seeker: seeker}
	s := &tarfsSink{nydusTree: t}
	var st tarStats
	err = addTar(s, cr, WhiteoutKeep, &st)
	res.Entries, res.DroppedXattrs = st.Entries, st.DroppedXattrs
	if err == nil {
		// The rest of the stream (the tar's end blocks and padding) is
		// part of the blob; a corrupt compressed stream is an error.
		if _, err = io.Copy(io.Discard, cr); err != nil {
			err = fmt.Errorf("convert: tarfs: after the tar end at offset %d: %w", cr.n, err)
		}
	}
	if err != nil {
		return nil, err
	}
	res.TarSize = cr.n
	if cr.n%rafs.TarfsBlockSize != 0 {
		return nil, fmt.Errorf("convert: tarfs: the tar is %d bytes, not a whole number of %d-byte blocks", cr.n, rafs.TarfsBlockSize)
	}
	res.BlobID = o.BlobID
	if h != nil {
		res.BlobID = hex.EncodeToString(h.Sum(nil))
	}
	b, err := t.export(&blob.Info{ChunkCount: s.chunks})
	if err != nil {
		return nil, err
	}
	if len(b.Blobs) > 0 {
		b.Blobs[0] = rafs.BlobInfo{
			ID:               res.BlobID,
			ChunkCount:       s.chunks,
			Compressor:       blob.CompressorNone,
			Digester:         blob.DigesterSHA256,
			Features:         TarfsBlobFeatures,
			CompressedSize:   uint64(res.TarSize),
			UncompressedSize: uint64(res.TarSize),
		}
	}
	res.Bootstrap = b
	res.Files, res.FileBytes, res.Chunks = t.files, t.fileBytes, t.nchunks
	n, err := b.WriteTo(boot)
	res.BootstrapSize = n
	if err != nil {
		return nil, fmt.Errorf("convert: tarfs: %w", err)
	}
	return res, nil
}

// tarfsSink builds a tarfs layer's tree from tar entries: the Nydus tree
// (nydusTree), with regular files' chunks placed at their data's offset
// in the tar instead of being stored.
type tarfsSink struct {
	*nydusTree
	sparse  bool   // the entry being added is a GNU sparse file
	dataOff int64  // where its data starts in the tar
	chunks  uint32 // CI indexes given out: one per chunk, in tar order
}

// beginEntry is told before each entry is added whether it is a GNU
// sparse file and where its data starts in the tar.
func (s *tarfsSink) beginEntry(sparse bool, dataOff int64) {
	s.sparse, s.dataOff = sparse, dataOff
}

// Add adds an object; a regular file's data is the tar's, from the offset
// the tar has been read to.
func (s *tarfsSink) Add(e *erofs.Entry, _ io.Reader) error {
	t := s.nydusTree
	id, ok, err := t.tree.Add(e)
	if err != nil {
		return nydusError(err)
	}
	if !ok || e.Mode&erofs.ModeTypeMask != erofs.ModeRegular || e.Size == 0 {
		return nil
	}
	if s.sparse {
		return errors.New("GNU sparse file: its data in the tar is not the file's bytes in order, so a tarfs bootstrap cannot refer to it")
	}
	off := uint64(s.dataOff)
	if off%rafs.TarfsBlockSize != 0 {
		return fmt.Errorf("data at tar offset %d, not on a %d-byte block", off, rafs.TarfsBlockSize)
	}
	size, cs := uint64(e.Size), uint64(t.chunkSize)
	n := (size + cs - 1) / cs
	if uint64(s.chunks)+n > rafs.MaxChunksPerBlob {
		return fmt.Errorf("more than %d chunks in the tar", rafs.MaxChunksPerBlob)
	}
	chunks := make([]rafs.ChunkRecord, n)
	for i := range chunks {
		fo := uint64(i) * cs
		at, k := off+fo, uint32(min(cs, size-fo))
		// As nydus-image records them: no digest, not compressed, both
		// offsets the data's in the tar.
		chunks[i] = rafs.ChunkRecord{Index: s.chunks, CompressedOffset: at, CompressedSize: k,
			UncompressedOffset: at, UncompressedSize: k, FileOffset: fo}
		s.chunks++
	}
	t.fileChunks = append(t.fileChunks, chunks)
	t.tree.SetPayload(id, int64(len(t.fileChunks)))
	return nil
}

// UnpackNydusTarfs writes the tree of the tarfs bootstrap boot to w as a
// PAX tar, as UnpackNydus does, reading file contents from the blobs,
// which are tars: tars[i] is the tar of boot.Blobs[i] (it may be nil if
// no file has a chunk there). A tarfs bootstrap has no chunk digests, so
// the data is not verified beyond its offsets and sizes.
func UnpackNydusTarfs(boot *rafs.Bootstrap, tars []io.ReaderAt, w io.Writer) (*UnpackResult, error) {
	if boot != nil && boot.Flags&rafs.FlagTarfsMode == 0 {
		return nil, errors.New("convert: unpack: not a tarfs bootstrap (its blobs are Nydus blobs: use UnpackNydus)")
	}
	if boot != nil && len(tars) != len(boot.Blobs) {
		return nil, fmt.Errorf("convert: unpack: %d tars for %d blobs", len(tars), len(boot.Blobs))
	}
	return unpackNydus(boot, nil, tars, w)
}

// tarfsChunk reads chunk c from its blob, a tar.
func (u *unpacker) tarfsChunk(c rafs.ChunkRecord) ([]byte, error) {
	if int(c.BlobIndex) >= len(u.tars) {
		return nil, fmt.Errorf("blob index %d, but there are %d blobs", c.BlobIndex, len(u.tars))
	}
	ra := u.tars[c.BlobIndex]
	bi := u.boot.Blobs[c.BlobIndex]
	if ra == nil {
		return nil, fmt.Errorf("tar %s is not available", bi.ID)
	}
	if c.UncompressedOffset+uint64(c.UncompressedSize) > bi.UncompressedSize {
		return nil, fmt.Errorf("chunk at %#x+%d is beyond the %d-byte tar %s", c.UncompressedOffset, c.UncompressedSize, bi.UncompressedSize, bi.ID)
	}
	buf := u.buf[:0]
	if cap(buf) < int(c.UncompressedSize) {
		buf = make([]byte, c.UncompressedSize)
	}
	buf = buf[:c.UncompressedSize]
	if n, err := ra.ReadAt(buf, int64(c.UncompressedOffset)); n < len(buf) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("tar %s at offset %d: %w", bi.ID, c.UncompressedOffset, err)
	}
	u.buf = buf
	return buf, nil
}
