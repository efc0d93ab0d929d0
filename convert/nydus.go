package convert

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"syscall"

	"github.com/zeebo/blake3"

	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/chunker"
	"github.com/rafs-dev/rafs/erofs"
	"github.com/rafs-dev/rafs/rafs"
)

// PlaceholderBlobID is the blob id a per-layer bootstrap inlined in its own
// blob carries (spec §3.8): the blob's digest is not known while the blob
// is being written. Readers substitute the real id (ReadNydusLayer).
var PlaceholderBlobID = strings.Repeat("x", 64)

// NydusOptions configure TarToNydus. The zero value (or nil) gives what
// nydus-image gives by default: zstd, BLAKE3, 1 MiB chunks.
type NydusOptions struct {
	// Compressor compresses chunks: "zstd" (the default when empty),
	// "lz4_block" or "none".
	Compressor string
	// Level is the compression level (0: the compressor's default; see
	// blob.WriterOptions.Level).
	Level int
	// Digester hashes chunks: "blake3" (the default when empty) or
	// "sha256".
	Digester string
	// ChunkSize is the chunk size, a power of two from 4 KiB to 16 MiB;
	// 0 means 1 MiB.
	ChunkSize int
	// ChunkDict, when set, is a dictionary of chunks that already exist in
	// other blobs: a chunk found there is referenced from the dictionary's
	// blob instead of being stored again (spec §3.12). The dictionary
	// must have real blob ids and the same chunk size; only chunks of
	// blobs with the same digester are used.
	ChunkDict *rafs.ChunkDict
	// Workers is the number of goroutines hashing and compressing chunks
	// (0: one per CPU). The output does not depend on it.
	Workers int
}

// NydusResult describes a finished conversion.
type NydusResult struct {
	Entries     int         // tar entries read
	TarSize     int64       // bytes of uncompressed tar consumed
	Compression Compression // compression of the input stream

	// DroppedXattrs counts xattrs left out because their names are in no
	// namespace Linux has (user., trusted., security., system.), such as
	// the bare names macOS tar writes. RAFS cannot store them (nydus-image
	// fails on them); extraction drops them too.
	DroppedXattrs int

	// Blob describes the blob written; Blob.ID is its hex SHA-256.
	Blob *blob.Info
	// Bootstrap is the layer's bootstrap as inlined in the blob, except
	// that the layer's own blob-table entry carries the real blob id and
	// its ToC size and digest instead of the placeholder: what a separate
	// per-layer bootstrap file should hold. Its own blob is entry 0 when
	// the layer stored any chunk; chunk-dictionary blobs follow.
	Bootstrap *rafs.Bootstrap

	Files      int    // regular files (inodes, not names)
	FileBytes  uint64 // bytes of file data (each inode once)
	Chunks     int    // chunks of the files, dictionary ones included
	DictChunks int    // chunks referenced from the chunk dictionary
}

// TarToNydus reads an OCI layer — a tar stream, plain, gzip- or
// zstd-compressed — and writes it to blobOut as a Nydus data blob with the
// layer's RAFS v6 bootstrap inlined (the layout nydus-image builds with
// --blob-inline-meta --features blob-toc), in one pass. File data is cut
// into fixed-size chunks that are hashed and compressed in parallel;
// identical chunks are stored once. Only metadata is kept in memory.
//
// The bootstrap keeps OCI whiteouts as the plain files they are (like
// nydus-image --whiteout-spec none); MergeNydus applies them. Directories
// the tar only implies get mode 0755, owner 0:0 and mtime 0. Hard links
// share their target's inode and chunks. Xattrs outside the namespaces
// RAFS stores are dropped and counted.
//
// Errors name the tar entry and its offset in the uncompressed stream.
// The output is the same for the same input and options on any machine.
func TarToNydus(r io.Reader, blobOut io.Writer, opts *NydusOptions) (*NydusResult, error) {
	var o NydusOptions
	if opts != nil {
		o = *opts
	}
	wo, flags, err := o.writerOptions()
	if err != nil {
		return nil, err
	}
	t := &nydusTree{
		chunkSize: uint32(wo.ChunkSize),
		digester:  wo.Digester,
		dict:      o.ChunkDict,
		boot: &rafs.Bootstrap{
			ChunkSize: uint32(wo.ChunkSize),
			Flags:     flags,
			// Entry 0 is the layer's own blob, filled in at the end.
			Blobs: []rafs.BlobInfo{{ID: PlaceholderBlobID}},
		},
		root: newNydusDir(),
	}
	t.root.attr.Mode = erofs.ModeDir | 0o755
	if t.dict != nil {
		if err := t.dict.Compatible(t.boot); err != nil {
			return nil, fmt.Errorf("convert: chunk dictionary: %w", err)
		}
		for _, bi := range t.dict.Blobs() {
			if bi.ID == PlaceholderBlobID {
				return nil, errors.New("convert: chunk dictionary: a blob has the placeholder id (read a blob's bootstrap with ReadNydusLayer)")
			}
		}
	}
	if t.chunks, err = chunker.NewFixed(nil, wo.ChunkSize); err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}

	// Decompression runs ahead by up to 8 MiB, so that it keeps going
	// while the chunk workers catch up after a run of large files (and
	// the workers keep going through runs of small ones).
	src, comp, closeLayer, err := openLayer(r, 8<<20)
	if err != nil {
		return nil, err
	}
	defer closeLayer()
	if t.bw, err = blob.NewWriter(blobOut, wo); err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	res := &NydusResult{Compression: comp}
	cr := &countingReader{r: src}
	var st tarStats
	err = addTar(t, cr, WhiteoutKeep, &st)
	res.Entries, res.TarSize, res.DroppedXattrs = st.Entries, st.TarSize, st.DroppedXattrs
	if err == nil {
		if _, err = io.Copy(io.Discard, cr); err != nil {
			err = fmt.Errorf("convert: after the tar end at offset %d: %w", cr.n, err)
		}
	}
	if err != nil {
		t.bw.Close()
		return nil, err
	}
	info, err := t.bw.Finish(func(info *blob.Info) ([]byte, error) {
		b, err := t.export(info)
		if err != nil {
			return nil, err
		}
		res.Bootstrap = b
		return b.MarshalBinary()
	})
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	res.Blob = info
	if info.ChunkCount > 0 {
		own := &res.Bootstrap.Blobs[0]
		own.ID, own.TocSize, own.TocDigest = info.ID, info.TOCSize, info.TOCDigest
	}
	res.Files, res.FileBytes, res.Chunks, res.DictChunks = t.files, t.fileBytes, t.nchunks, t.dictChunks
	return res, nil
}

// writerOptions validates o and returns the blob writer options and the
// bootstrap's superblock flags.
func (o *NydusOptions) writerOptions() (*blob.WriterOptions, uint64, error) {
	wo := blob.DefaultWriterOptions()
	flags := rafs.FlagExplicitUIDGID | rafs.FlagInlinedChunkDigest | rafs.FlagEncryptionNone
	switch o.Compressor {
	case "", "zstd":
		wo.Compressor = blob.CompressorZstd
		flags |= rafs.FlagCompressionZstd
	case "lz4_block":
		wo.Compressor = blob.CompressorLZ4Block
		flags |= rafs.FlagCompressionLZ4
	case "none":
		wo.Compressor = blob.CompressorNone
		flags |= rafs.FlagCompressionNone
	default:
		return nil, 0, fmt.Errorf("convert: compressor %q: want zstd, lz4_block or none", o.Compressor)
	}
	switch o.Digester {
	case "", "blake3":
		wo.Digester = blob.DigesterBlake3
		flags |= rafs.FlagHashBlake3
	case "sha256":
		wo.Digester = blob.DigesterSHA256
		flags |= rafs.FlagHashSHA256
	default:
		return nil, 0, fmt.Errorf("convert: digester %q: want blake3 or sha256", o.Digester)
	}
	wo.ChunkSize = o.ChunkSize
	if wo.ChunkSize == 0 {
		wo.ChunkSize = chunker.DefaultSize
	}
	if err := chunker.ValidSize(wo.ChunkSize); err != nil {
		return nil, 0, fmt.Errorf("convert: chunk size %d: %w", o.ChunkSize, err)
	}
	wo.Level, wo.Workers = o.Level, o.Workers
	return wo, flags, nil
}

// nydusTree builds a layer's file tree from tar entries (it is the tar
// walker's sink), sending file data to the blob writer as it comes.
type nydusTree struct {
	root      *nydusNode
	bw        *blob.Writer
	chunks    *chunker.Fixed
	chunkSize uint32
	digester  blob.Digester
	dict      *rafs.ChunkDict
	boot      *rafs.Bootstrap // flags, chunk size, blobs (dictionary ones added by Use)
	err       error           // sticky: the blob writer may be broken

	files, nchunks, dictChunks int
	fileBytes                  uint64
}

// nydusNode is one inode of the tree being built. Hard links are the same
// *nydusNode under several names, as in erofs.Writer.
type nydusNode struct {
	attr   rafs.Node             // attributes only (no Name, Children, Chunks, Link)
	kids   map[string]*nydusNode // directories
	chunks []nydusChunk          // regular files
}

// nydusChunk is a file chunk: in the layer's own blob (pending until the
// blob writer has placed it) or in a chunk-dictionary blob.
type nydusChunk struct {
	own  *blob.Chunk
	dict rafs.Chunk
}

func newNydusDir() *nydusNode { return &nydusNode{kids: map[string]*nydusNode{}} }

func (n *nydusNode) isDir() bool { return n.attr.Mode&erofs.ModeTypeMask == erofs.ModeDir }

// isImplicitDir reports whether a directory has the attributes TarToNydus
// gives directories a tar only implies: mode 0755, owner 0:0, mtime 0 and
// no xattrs.
func isImplicitDir(n *rafs.Node) bool {
	return n.Link == nil && n.Mode == erofs.ModeDir|0o755 && n.UID == 0 && n.GID == 0 &&
		n.Mtime == 0 && n.MtimeNsec == 0 && len(n.Xattrs) == 0
}

// parent walks to the directory holding the last component of parts,
// creating missing directories as implicit ones.
func (t *nydusTree) parent(parts []string) (*nydusNode, error) {
	dir := t.root
	for i, c := range parts[:len(parts)-1] {
		child := dir.kids[c]
		if child == nil {
			child = newNydusDir()
			child.attr.Mode = erofs.ModeDir | 0o755
			dir.kids[c] = child
		} else if !child.isDir() {
			return nil, fmt.Errorf("%q is not a directory: %w", strings.Join(parts[:i+1], "/"), syscall.ENOTDIR)
		}
		dir = child
	}
	return dir, nil
}

// lookup finds the object at path p.
func (t *nydusTree) lookup(p string) (*nydusNode, error) {
	parts, err := erofs.SplitPath(p)
	if err != nil {
		return nil, err
	}
	n := t.root
	for _, c := range parts {
		if !n.isDir() || n.kids[c] == nil {
			return nil, fmt.Errorf("%q: %w", p, fs.ErrNotExist)
		}
		n = n.kids[c]
	}
	return n, nil
}

// Add adds an object; see tarSink.
func (t *nydusTree) Add(e *erofs.Entry, data io.Reader) error {
	if t.err != nil {
		return t.err
	}
	parts, err := erofs.SplitPath(e.Path)
	if err != nil {
		return fmt.Errorf("nydus: %w", err)
	}
	n, err := newNydusNode(e)
	if err != nil {
		return fmt.Errorf("nydus: %s: %w", e.Path, err)
	}
	if len(parts) == 0 {
		if !n.isDir() {
			return fmt.Errorf("nydus: %q: the root must be a directory", e.Path)
		}
		updateDir(t.root, n)
		return nil
	}
	dir, err := t.parent(parts)
	if err != nil {
		return fmt.Errorf("nydus: %s: %w", e.Path, err)
	}
	name := parts[len(parts)-1]
	if old := dir.kids[name]; old != nil && old.isDir() && n.isDir() {
		updateDir(old, n)
		return nil
	}
	if n.isDir() {
		n.kids = map[string]*nydusNode{}
	}
	if n.attr.Mode&erofs.ModeTypeMask == erofs.ModeRegular && n.attr.Size > 0 {
		if err := t.writeData(n, data); err != nil {
			t.err = fmt.Errorf("nydus: %s: %w", e.Path, err)
			return t.err
		}
	}
	dir.kids[name] = n
	return nil
}

// newNydusNode validates an entry and makes a node of its attributes.
func newNydusNode(e *erofs.Entry) (*nydusNode, error) {
	if e.Mode&^(erofs.ModeTypeMask|erofs.ModePermMask) != 0 {
		return nil, fmt.Errorf("invalid mode bits %#o", e.Mode)
	}
	n := &nydusNode{attr: rafs.Node{Mode: e.Mode, UID: e.UID, GID: e.GID}}
	if !e.ModTime.IsZero() {
		n.attr.Mtime, n.attr.MtimeNsec = e.ModTime.Unix(), uint32(e.ModTime.Nanosecond())
	}
	switch e.Mode & erofs.ModeTypeMask {
	case erofs.ModeRegular:
		if e.Size < 0 {
			return nil, fmt.Errorf("negative size %d", e.Size)
		}
		n.attr.Size = uint64(e.Size)
	case erofs.ModeDir, erofs.ModeFIFO, erofs.ModeSocket:
	case erofs.ModeSymlink:
		if e.Linkname == "" || len(e.Linkname) > rafs.MaxSymlinkLen {
			return nil, fmt.Errorf("symlink target of %d bytes (want 1 to %d)", len(e.Linkname), rafs.MaxSymlinkLen)
		}
		n.attr.Target = e.Linkname
	case erofs.ModeCharDevice, erofs.ModeBlockDevice:
		if e.Devmajor > 0xFFF || e.Devminor > 0xFFFFF {
			return nil, fmt.Errorf("device number %d:%d out of range", e.Devmajor, e.Devminor)
		}
		n.attr.RdevMajor, n.attr.RdevMinor = e.Devmajor, e.Devminor
	default:
		return nil, fmt.Errorf("unsupported file mode %#o", e.Mode)
	}
	if len(e.Xattrs) > 0 {
		n.attr.Xattrs = make(map[string][]byte, len(e.Xattrs))
		for name, value := range e.Xattrs {
			if err := checkNydusXattr(name, value); err != nil {
				return nil, err
			}
			n.attr.Xattrs[name] = []byte(value)
		}
	}
	return n, nil
}

// checkNydusXattr checks what RAFS can store of one xattr.
func checkNydusXattr(name, value string) error {
	if !erofs.StorableXattr(name) {
		return fmt.Errorf("xattr %q: RAFS stores only user.*, trusted.*, security.* and POSIX ACL attributes", name)
	}
	if len(name) > rafs.MaxXattrNameLen {
		return fmt.Errorf("xattr %.40q...: name of %d bytes, over %d", name, len(name), rafs.MaxXattrNameLen)
	}
	if len(value) > rafs.MaxXattrValueLen {
		return fmt.Errorf("xattr %q: value of %d bytes, over %d", name, len(value), rafs.MaxXattrValueLen)
	}
	return nil
}

// updateDir gives an existing directory a repeated entry's metadata,
// merging xattrs (later values win), as erofs.Writer does.
func updateDir(dst, src *nydusNode) {
	xs := dst.attr.Xattrs
	dst.attr = src.attr
	if len(xs) > 0 {
		maps.Copy(xs, src.attr.Xattrs)
		dst.attr.Xattrs = xs
	}
}

// writeData cuts a regular file's data into chunks and queues them.
func (t *nydusTree) writeData(n *nydusNode, data io.Reader) error {
	if data == nil {
		return errors.New("no data reader for a non-empty file")
	}
	lr := &io.LimitedReader{R: data, N: int64(n.attr.Size)}
	t.chunks.Reset(lr)
	n.chunks = make([]nydusChunk, 0, (n.attr.Size+uint64(t.chunkSize)-1)/uint64(t.chunkSize))
	var got uint64
	for {
		c, err := t.chunks.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("data: %w", err)
		}
		got += uint64(len(c.Data))
		if t.dict != nil {
			if dc, ok, err := t.fromDict(c); err != nil {
				return err
			} else if ok {
				n.chunks = append(n.chunks, nydusChunk{dict: dc})
				t.dictChunks++
				continue
			}
		}
		bc, err := t.bw.Add(c.Data)
		if err != nil {
			return err
		}
		n.chunks = append(n.chunks, nydusChunk{own: bc})
	}
	if got != n.attr.Size {
		return fmt.Errorf("data: %w after %d of %d bytes", io.ErrUnexpectedEOF, got, n.attr.Size)
	}
	return nil
}

// fromDict returns the dictionary's chunk for c, if it has one.
func (t *nydusTree) fromDict(c chunker.Chunk) (rafs.Chunk, bool, error) {
	var d [32]byte
	if t.digester == blob.DigesterSHA256 {
		d = sha256.Sum256(c.Data)
	} else {
		d = blake3.Sum256(c.Data)
	}
	dc, _, ok := t.dict.LookupDigester(d, uint32(len(c.Data)), rafs.Digester(t.digester))
	if !ok {
		return rafs.Chunk{}, false, nil
	}
	dc, err := t.dict.Use(t.boot, dc, uint64(c.Offset))
	if err != nil {
		return rafs.Chunk{}, false, fmt.Errorf("chunk dictionary: %w", err)
	}
	return dc, true, nil
}

// Link makes name another name of the object at target; see tarSink.
func (t *nydusTree) Link(name, target string) error {
	if t.err != nil {
		return t.err
	}
	parts, err := erofs.SplitPath(name)
	if err != nil {
		return fmt.Errorf("nydus: %w", err)
	}
	n, err := t.lookup(target)
	if err != nil {
		return fmt.Errorf("nydus: hard link %q: %w", name, err)
	}
	if n.isDir() {
		return fmt.Errorf("nydus: hard link %q: target %q is a directory", name, target)
	}
	if len(parts) == 0 {
		return fmt.Errorf("nydus: hard link %q: cannot replace the root", name)
	}
	dir, err := t.parent(parts)
	if err != nil {
		return fmt.Errorf("nydus: hard link %q: %w", name, err)
	}
	dir.kids[parts[len(parts)-1]] = n
	return nil
}

// Remove deletes the object at p; see tarSink.
func (t *nydusTree) Remove(p string) error {
	parts, err := erofs.SplitPath(p)
	if err != nil {
		return fmt.Errorf("nydus: %w", err)
	}
	if len(parts) == 0 {
		return errors.New("nydus: cannot remove the root")
	}
	n := t.root
	for _, c := range parts[:len(parts)-1] {
		if n = n.kids[c]; n == nil || !n.isDir() {
			return nil
		}
	}
	delete(n.kids, parts[len(parts)-1])
	return nil
}

// MkdirAll creates p and its missing parents; see tarSink.
func (t *nydusTree) MkdirAll(p string) error {
	parts, err := erofs.SplitPath(p)
	if err != nil {
		return fmt.Errorf("nydus: %w", err)
	}
	if _, err := t.parent(append(parts, "x")); err != nil {
		return fmt.Errorf("nydus: MkdirAll %q: %w", p, err)
	}
	return nil
}

// SetXattr sets an xattr on the directory at p; see tarSink.
func (t *nydusTree) SetXattr(p, name, value string) error {
	if err := checkNydusXattr(name, value); err != nil {
		return fmt.Errorf("nydus: %s: %w", p, err)
	}
	parts, err := erofs.SplitPath(p)
	if err != nil {
		return fmt.Errorf("nydus: %w", err)
	}
	n := t.root
	if len(parts) > 0 {
		dir, err := t.parent(parts)
		if err != nil {
			return fmt.Errorf("nydus: SetXattr %q: %w", p, err)
		}
		c := parts[len(parts)-1]
		if n = dir.kids[c]; n == nil {
			n = newNydusDir()
			n.attr.Mode = erofs.ModeDir | 0o755
			dir.kids[c] = n
		}
	}
	if !n.isDir() {
		return fmt.Errorf("nydus: SetXattr %q: %w", p, syscall.ENOTDIR)
	}
	if n.attr.Xattrs == nil {
		n.attr.Xattrs = map[string][]byte{}
	}
	n.attr.Xattrs[name] = []byte(value)
	return nil
}

// export turns the tree into the layer's bootstrap, with info (the blob's
// table fields, all chunks placed) as the own blob's entry under the
// placeholder id. It is called once, from the blob writer's Finish.
func (t *nydusTree) export(info *blob.Info) (*rafs.Bootstrap, error) {
	b := &rafs.Bootstrap{ChunkSize: t.boot.ChunkSize, Flags: t.boot.Flags, Blobs: slices.Clone(t.boot.Blobs)}
	shift := uint32(0) // dictionary blobs move down when the own blob is empty
	if info.ChunkCount > 0 {
		b.Blobs[0] = rafs.BlobInfo{
			ID:                 PlaceholderBlobID,
			ChunkCount:         info.ChunkCount,
			Compressor:         rafs.Compressor(info.Compressor),
			Digester:           rafs.Digester(info.Digester),
			Features:           uint32(info.Features),
			CompressedSize:     info.CompressedSize,
			UncompressedSize:   info.UncompressedSize,
			CIOffset:           info.CIOffset,
			CICompressedSize:   info.CICompressedSize,
			CIUncompressedSize: info.CIUncompressedSize,
			CICompressor:       rafs.Compressor(info.CICompressor),
		}
	} else {
		b.Blobs = b.Blobs[1:]
		shift = 1
	}
	for _, bi := range b.Blobs {
		if bi.Features&rafs.BlobFeatureInlinedChunkDigest == 0 {
			b.Flags &^= rafs.FlagInlinedChunkDigest
		}
	}
	made := map[*nydusNode]*rafs.Node{}
	node := func(name string, n *nydusNode) *rafs.Node {
		if first := made[n]; first != nil {
			return &rafs.Node{Name: name, Link: first}
		}
		rn := n.attr
		rn.Name = name
		if len(n.chunks) > 0 {
			t.files++
			t.fileBytes += rn.Size
			rn.Chunks = make([]rafs.Chunk, len(n.chunks))
			for i, c := range n.chunks {
				if c.own == nil {
					c.dict.BlobIndex -= shift
					rn.Chunks[i] = c.dict
					continue
				}
				o := c.own
				rc := rafs.Chunk{
					Digest:             o.Digest,
					CompressedOffset:   o.CompressedOffset,
					CompressedSize:     o.CompressedSize,
					UncompressedOffset: o.UncompressedOffset,
					UncompressedSize:   o.UncompressedSize,
					FileOffset:         uint64(i) * uint64(t.chunkSize),
					Index:              o.Index,
				}
				if o.Compressed {
					rc.Flags |= rafs.ChunkFlagCompressed
				}
				rn.Chunks[i] = rc
			}
			t.nchunks += len(n.chunks)
		} else if rn.Mode&erofs.ModeTypeMask == erofs.ModeRegular {
			t.files++
		}
		p := &rn
		if !n.isDir() {
			made[n] = p
		}
		return p
	}
	// Nodes are made in rafs visit order (a directory's children by name,
	// then its subdirectories), so the first name of a hard-linked inode
	// is the one Read will report as the inode.
	var fill func(dst *rafs.Node, src *nydusNode)
	fill = func(dst *rafs.Node, src *nydusNode) {
		names := slices.Sorted(maps.Keys(src.kids))
		dst.Children = make([]*rafs.Node, len(names))
		for i, name := range names {
			dst.Children[i] = node(name, src.kids[name])
		}
		for i, name := range names {
			if k := src.kids[name]; k.isDir() {
				fill(dst.Children[i], k)
			}
		}
	}
	root := t.root.attr
	b.Root = &root
	fill(b.Root, t.root)
	return b, nil
}
