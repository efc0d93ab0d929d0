package convert

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/chunker"
	"github.com/rafs-dev/rafs/erofs"
	"github.com/rafs-dev/rafs/rafs"
)

// PlaceholderBlobID is the blob id a per-layer bootstrap inlined in its own
// blob carries, 64 'x's as nydus-image --blob-inline-meta writes it (in
// nydus's builder/src/lib.rs): the blob's digest is not known while the
// blob is being written. Readers substitute the real id (ReadNydusLayer).
const PlaceholderBlobID = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

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
	// blob instead of being stored again (nydus-image --chunk-dict; see
	// "Build Nydus Image With Chunk-Dict" in Nydus's docs/nydus-image.md).
	// The dictionary must have real blob ids and the same chunk size; only
	// chunks of blobs with the same digester are used.
	ChunkDict *rafs.ChunkDict
	// Workers is the number of goroutines hashing and compressing chunks
	// (0: one per CPU). The output does not depend on it.
	Workers int
}

// NydusResult describes a finished conversion.
type NydusResult struct {
	Entries  int           // tar entries read
	TarSize  int64         // bytes of uncompressed tar consumed
	Encoding LayerEncoding // how the input stream was encoded

	// DroppedXattrs counts xattrs left out because their names are in no
	// namespace Linux has (user., trusted., security., system.), such as
	// the bare names macOS tar writes. RAFS cannot store them (nydus-image
	// fails on them); extraction drops them too.
	DroppedXattrs int

	// Blob describes the blob written; Blob.ID is its hex SHA-256.
	Blob *blob.Info
	// Bootstrap is the layer's bootstrap as inlined in the blob, except
	// that the layer's own blob-table entry carries the real blob id and
	// its TOC size and digest instead of the placeholder: what a separate
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
// An error about one tar entry is an *EntryError naming the entry and its
// offset in the uncompressed stream.
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
		tree: erofs.NewTree(0),
	}
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
	src, enc, closeLayer, err := openLayer(r, ReadAheadNydus)
	if err != nil {
		return nil, err
	}
	defer closeLayer()
	if t.bw, err = blob.NewWriter(blobOut, wo); err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	res := &NydusResult{Encoding: enc}
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
		own.ID, own.TOCSize, own.TOCDigest = info.ID, info.TOCSize, info.TOCDigest
	}
	res.Files, res.FileBytes, res.Chunks, res.DictChunks = t.files, t.fileBytes, t.nchunks, t.dictChunks
	return res, nil
}

// Validate reports whether TarToNydus accepts o: a known compressor and
// digester and a valid chunk size.
func (o *NydusOptions) Validate() error {
	_, _, err := o.writerOptions()
	return err
}

// writerOptions validates o and returns the blob writer options and the
// bootstrap's superblock flags.
func (o *NydusOptions) writerOptions() (*blob.WriterOptions, uint64, error) {
	wo := blob.DefaultWriterOptions()
	switch o.Compressor {
	case "", "zstd":
		wo.Compressor = blob.CompressorZstd
	case "lz4_block":
		wo.Compressor = blob.CompressorLZ4Block
	case "none":
		wo.Compressor, wo.Uncompressed = 0, true
	default:
		return nil, 0, fmt.Errorf("convert: compressor %q: want zstd, lz4_block or none", o.Compressor)
	}
	switch o.Digester {
	case "", "blake3":
		wo.Digester = blob.DigesterBlake3
	case "sha256":
		wo.Digester = blob.DigesterSHA256
	default:
		return nil, 0, fmt.Errorf("convert: digester %q: want blake3 or sha256", o.Digester)
	}
	flags := rafs.FlagExplicitUIDGID | rafs.FlagInlinedChunkDigest | rafs.FlagEncryptionNone |
		rafs.AlgorithmFlags(wo.Compressor, wo.Digester)
	wo.ChunkSize = o.ChunkSize
	if wo.ChunkSize == 0 {
		wo.ChunkSize = blob.DefaultChunkSize
	}
	if wo.ChunkSize < 0 || !blob.ValidChunkSize(uint64(wo.ChunkSize)) {
		return nil, 0, fmt.Errorf("convert: chunk size %d: want a power of two from %d to %d", o.ChunkSize, blob.MinChunkSize, blob.MaxChunkSize)
	}
	wo.Level, wo.Workers = o.Level, o.Workers
	return wo, flags, nil
}

// nydusTree builds a layer's file tree from tar entries (it is the tar
// walker's sink), sending file data to the blob writer as it comes. The
// namespace is an erofs.Tree, the one erofs.Writer keeps, so that both
// apply the same rules to the same entries; the chunk lists of regular
// files are kept beside it. At the end, export turns it into the
// bootstrap's tree of rafs.Node (144 bytes a node).
type nydusTree struct {
	tree      *erofs.Tree
	bw        *blob.Writer
	chunks    *chunker.Fixed
	chunkSize uint32
	digester  blob.Digester
	dict      *rafs.ChunkDict
	boot      *rafs.Bootstrap // flags, chunk size, blobs (dictionary ones added by Use)
	err       error           // sticky: the blob writer may be broken

	// fileChunks are the chunk lists of regular files with data; a
	// file's tree payload is its index plus one.
	fileChunks [][]rafs.ChunkRecord
	// pending are the chunks stored in the layer's own blob, to copy
	// into their files once the blob writer has placed them.
	pending []pendingChunk

	files, nchunks, dictChunks int
	fileBytes                  uint64
}

// pendingChunk is chunk i of fileChunks[file], stored in the layer's own
// blob.
type pendingChunk struct {
	file int
	i    int
	own  *blob.StoredChunk
}

// isDir reports whether n is a directory (and not a hard link).
func isDir(n *rafs.Node) bool { return n.Link == nil && n.IsDir() }

// isImplicitDir reports whether a directory has the attributes TarToNydus
// gives directories a tar only implies: mode 0755, owner 0:0, mtime 0 and
// no xattrs.
func isImplicitDir(n *rafs.Node) bool {
	return n.Link == nil && n.Mode == erofs.ModeDir|0o755 && n.UID == 0 && n.GID == 0 &&
		n.Mtime == 0 && n.MtimeNsec == 0 && len(n.Xattrs) == 0
}

// Add adds an object; see tarSink.
func (t *nydusTree) Add(e *erofs.Entry, data io.Reader) error {
	if t.err != nil {
		return t.err
	}
	id, ok, err := t.tree.Add(e)
	if err != nil {
		return fmt.Errorf("nydus: %w", err)
	}
	if ok && e.Mode&erofs.ModeTypeMask == erofs.ModeRegular && e.Size > 0 {
		if err := t.writeData(id, uint64(e.Size), data); err != nil {
			t.err = fmt.Errorf("nydus: %s: %w", e.Path, err)
			return t.err
		}
	}
	return nil
}

// writeData cuts the data of the regular file id, size bytes, into chunks
// and queues them.
func (t *nydusTree) writeData(id uint32, size uint64, data io.Reader) error {
	if data == nil {
		return errors.New("no data reader for a non-empty file")
	}
	lr := &io.LimitedReader{R: data, N: int64(size)}
	t.chunks.Reset(lr)
	file := len(t.fileChunks)
	t.fileChunks = append(t.fileChunks, make([]rafs.ChunkRecord, 0, (size+uint64(t.chunkSize)-1)/uint64(t.chunkSize)))
	t.tree.SetPayload(id, int64(file)+1)
	x := &t.fileChunks[file]
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
				*x = append(*x, dc)
				t.dictChunks++
				continue
			}
		}
		bc, err := t.bw.Add(c.Data)
		if err != nil {
			return err
		}
		t.pending = append(t.pending, pendingChunk{file: file, i: len(*x), own: bc})
		*x = append(*x, rafs.ChunkRecord{})
	}
	if got != size {
		return fmt.Errorf("data: %w after %d of %d bytes", io.ErrUnexpectedEOF, got, size)
	}
	return nil
}

// fromDict returns the dictionary's chunk for c, if it has one.
func (t *nydusTree) fromDict(c chunker.Cut) (rafs.ChunkRecord, bool, error) {
	d := t.digester.Sum(c.Data)
	dc, _, ok := t.dict.LookupDigester(d, uint32(len(c.Data)), t.digester)
	if !ok {
		return rafs.ChunkRecord{}, false, nil
	}
	dc, err := t.dict.Use(t.boot, dc, uint64(c.Offset))
	if err != nil {
		return rafs.ChunkRecord{}, false, fmt.Errorf("chunk dictionary: %w", err)
	}
	return dc, true, nil
}

// Link makes name another name of the object at target; see tarSink.
func (t *nydusTree) Link(name, target string) error {
	if t.err != nil {
		return t.err
	}
	return nydusError(t.tree.Link(name, target))
}

// Remove deletes the object at p; see tarSink.
func (t *nydusTree) Remove(p string) error { return nydusError(t.tree.Remove(p)) }

// MkdirAll creates p and its missing parents; see tarSink.
func (t *nydusTree) MkdirAll(p string) error { return nydusError(t.tree.MkdirAll(p)) }

// SetXattr sets an xattr on the directory at p; see tarSink.
func (t *nydusTree) SetXattr(p, name, value string) error {
	return nydusError(t.tree.SetXattr(p, name, value))
}

// nydusError names the Nydus builder in an error of its tree.
func nydusError(err error) error {
	if err != nil {
		return fmt.Errorf("nydus: %w", err)
	}
	return nil
}

// export turns the tree into the layer's bootstrap, with info (the blob's
// table fields, all chunks placed) as the own blob's entry under the
// placeholder id. It is called once, from the blob writer's Finish.
//
// It fills in the chunks the blob writer placed and makes a rafs.Node
// for every entry, directory by directory in the bootstrap's visit order
// (a directory's children in name order, then its subdirectories). A
// hard-linked inode's attributes go to its first name in that order, the
// others link to it, as Read returns them.
func (t *nydusTree) export(info *blob.Info) (*rafs.Bootstrap, error) {
	b := &rafs.Bootstrap{ChunkSize: t.boot.ChunkSize, Flags: t.boot.Flags, Blobs: slices.Clone(t.boot.Blobs)}
	shift := uint32(0) // dictionary blobs move down when the own blob is empty
	if info.ChunkCount > 0 {
		b.Blobs[0] = rafs.NewBlobInfo(PlaceholderBlobID, info)
	} else {
		b.Blobs = b.Blobs[1:]
		shift = 1
	}
	for _, bi := range b.Blobs {
		if bi.Features&blob.FeatureInlinedChunkDigest == 0 {
			b.Flags &^= rafs.FlagInlinedChunkDigest
		}
	}
	for _, p := range t.pending {
		t.fileChunks[p.file][p.i] = rafs.NewChunkRecord(p.own, 0, uint64(p.i)*uint64(t.chunkSize))
	}
	t.pending = nil
	t.tree.Sort()

	// inode makes the rafs.Node of an inode's first name.
	inode := func(id uint32, name string) *rafs.Node {
		st := t.tree.Stat(id)
		rn := &rafs.Node{Name: name, Mode: st.Mode, UID: st.UID, GID: st.GID, Mtime: st.Mtime, MtimeNsec: st.MtimeNsec}
		switch st.Mode & erofs.ModeTypeMask {
		case erofs.ModeRegular:
			rn.Size = uint64(st.Size)
			if k := t.tree.Payload(id); k > 0 {
				rn.Chunks = t.fileChunks[k-1]
			}
		case erofs.ModeSymlink:
			rn.Linkname = t.tree.Linkname(id)
		case erofs.ModeCharDevice, erofs.ModeBlockDevice:
			rn.Devmajor, rn.Devminor = st.Devmajor, st.Devminor
		}
		if nx := t.tree.NumXattrs(id); nx > 0 {
			rn.Xattrs = make(map[string][]byte, nx)
			for i := range nx {
				k, v := t.tree.Xattr(id, i)
				rn.Xattrs[k] = []byte(v)
			}
		}
		if rn.IsRegular() {
			t.files++
			t.fileBytes += rn.Size
			t.nchunks += len(rn.Chunks)
		}
		for j := range rn.Chunks {
			rn.Chunks[j].BlobIndex -= shift
		}
		return rn
	}
	var first map[uint32]*rafs.Node // hard-linked inode → its first name
	type dir struct {
		id  uint32
		dst *rafs.Node
	}
	root := inode(erofs.TreeRoot, "")
	stack := []dir{{erofs.TreeRoot, root}}
	for len(stack) > 0 {
		d := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		ents := t.tree.Entries(d.id)
		d.dst.Children = make([]*rafs.Node, len(ents))
		for i, de := range ents {
			name, id := t.tree.Entry(de)
			var rn *rafs.Node
			switch p := first[id]; {
			case p != nil:
				rn = &rafs.Node{Name: name, Link: p}
			default:
				rn = inode(id, name)
				if t.tree.Linked(id) {
					if first == nil {
						first = map[uint32]*rafs.Node{}
					}
					first[id] = rn
				}
			}
			d.dst.Children[i] = rn
		}
		for i := len(ents) - 1; i >= 0; i-- {
			if _, id := t.tree.Entry(ents[i]); t.tree.IsDir(id) {
				stack = append(stack, dir{id, d.dst.Children[i]})
			}
		}
	}
	t.tree, t.fileChunks = nil, nil
	b.Root = root
	return b, nil
}
