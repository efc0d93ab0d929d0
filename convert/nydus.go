package convert

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"syscall"

	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/chunker"
	"github.com/rafs-dev/rafs/erofs"
	"github.com/rafs-dev/rafs/rafs"
)

// PlaceholderBlobID is the blob id a per-layer bootstrap inlined in its own
// blob carries, 64 'x': the blob's digest is not known while the blob is
// being written. Readers substitute the real id (ReadNydusLayer).
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
	// blob instead of being stored again. The dictionary must have real
	// blob ids and the same chunk size; only chunks of blobs with the same
	// digester are used.
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
		root: newDir(""),
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
		wo.Compressor = blob.CompressorNone
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
// walker's sink), sending file data to the blob writer as it comes. It
// keeps a node of 64 bytes per entry (bnode) while the tar is read, and
// turns the tree into the bootstrap's tree of rafs.Node (144 bytes a node)
// at the end, letting each bnode go as its rafs.Node is made.
type nydusTree struct {
	root      *bnode
	bw        *blob.Writer
	chunks    *chunker.Fixed
	chunkSize uint32
	digester  blob.Digester
	dict      *rafs.ChunkDict
	boot      *rafs.Bootstrap // flags, chunk size, blobs (dictionary ones added by Use)
	err       error           // sticky: the blob writer may be broken

	// index finds the children of large directories by name. Small
	// directories are scanned.
	index map[*bnode]*dirIndex
	// pending are the chunks stored in the layer's own blob, to copy
	// into their files once the blob writer has placed them.
	pending []pendingChunk
	// linked holds the inodes hard links point to.
	linked map[*bnode]bool
	// lastDir and lastDirPath remember the directory the last entry was
	// added to, so that a run of entries in one directory does not walk
	// from the root for each.
	lastDir     *bnode
	lastDirPath string

	files, nchunks, dictChunks int
	fileBytes                  uint64
}

// bnode is an entry of the tree being built: an inode's attributes, or a
// hard link (link set, nothing else). What only some entries have is in
// ext: 64 bytes for an empty file, where a rafs.Node takes 144.
type bnode struct {
	name  string
	mode  uint32
	uid   uint32
	gid   uint32
	nsec  uint32
	mtime int64
	size  uint64 // regular files: the size; devices: major<<32 | minor
	link  *bnode // a hard link: the inode it names
	ext   *bext
}

// bext holds what a bnode needs beyond its attributes.
type bext struct {
	xattrs map[string][]byte
	target string             // symlinks
	chunks []rafs.ChunkRecord // regular files
	kids   []*bnode           // directories, in no order until export
}

func (n *bnode) isDir() bool { return n.link == nil && n.mode&erofs.ModeTypeMask == erofs.ModeDir }

func (n *bnode) kids() []*bnode {
	if n.ext == nil {
		return nil
	}
	return n.ext.kids
}

// x returns n's ext, made if missing.
func (n *bnode) x() *bext {
	if n.ext == nil {
		n.ext = &bext{}
	}
	return n.ext
}

// pendingChunk is chunk i of file n, stored in the layer's own blob.
type pendingChunk struct {
	n   *bnode
	i   int
	own *blob.StoredChunk
}

// dirIndex finds the children of a large directory by name: by binary
// search while they came in name order (as tars made from a directory
// walk have them), else through a map of their positions.
type dirIndex struct {
	sorted bool
	names  map[string]int32
}

// indexFrom is the number of children from which a directory gets a name
// index.
const indexFrom = 16

// unsort turns directory d's index into a map.
func (x *dirIndex) unsort(d *bnode) {
	x.sorted = false
	x.names = make(map[string]int32, len(d.kids()))
	for k, c := range d.kids() {
		x.names[c.name] = int32(k)
	}
}

func compareName(c *bnode, name string) int { return strings.Compare(c.name, name) }

func newDir(name string) *bnode { return &bnode{name: name, mode: erofs.ModeDir | 0o755} }

// isDir reports whether n is a directory (and not a hard link).
func isDir(n *rafs.Node) bool { return n.Link == nil && n.IsDir() }

// isImplicitDir reports whether a directory has the attributes TarToNydus
// gives directories a tar only implies: mode 0755, owner 0:0, mtime 0 and
// no xattrs.
func isImplicitDir(n *rafs.Node) bool {
	return n.Link == nil && n.Mode == erofs.ModeDir|0o755 && n.UID == 0 && n.GID == 0 &&
		n.Mtime == 0 && n.MtimeNsec == 0 && len(n.Xattrs) == 0
}

// child returns the position and node of directory d's child name, or -1
// and nil.
func (t *nydusTree) child(d *bnode, name string) (int, *bnode) {
	kids := d.kids()
	if x := t.index[d]; x != nil {
		if x.sorted {
			if i, ok := slices.BinarySearchFunc(kids, name, compareName); ok {
				return i, kids[i]
			}
		} else if i, ok := x.names[name]; ok {
			return int(i), kids[i]
		}
		return -1, nil
	}
	for i, c := range kids {
		if c.name == name {
			return i, c
		}
	}
	return -1, nil
}

// setChild puts n into directory d under n.name, in place of the child at
// position i if i >= 0.
func (t *nydusTree) setChild(d *bnode, i int, n *bnode) {
	x := d.x()
	if i >= 0 {
		if x.kids[i].isDir() {
			t.lastDir = nil // it may be the one remembered, or above it
		}
		x.kids[i] = n
		return
	}
	if len(x.kids) == cap(x.kids) {
		// Double (append grows large slices by a quarter, which leaves
		// four times the final size behind as garbage).
		x.kids = append(make([]*bnode, 0, max(4, 2*cap(x.kids))), x.kids...)
	}
	x.kids = append(x.kids, n)
	kids := x.kids
	last := len(kids) - 1
	idx := t.index[d]
	switch {
	case idx == nil && last+1 >= indexFrom:
		idx = &dirIndex{sorted: true}
		if !slices.IsSortedFunc(kids, func(a, b *bnode) int { return strings.Compare(a.name, b.name) }) {
			idx.unsort(d)
		}
		if t.index == nil {
			t.index = map[*bnode]*dirIndex{}
		}
		t.index[d] = idx
	case idx == nil:
	case idx.sorted:
		if kids[last-1].name > n.name {
			idx.unsort(d)
		}
	default:
		idx.names[n.name] = int32(last)
	}
}

// removeChild removes the child at position i of directory d, moving the
// last child into its place (the order of children is settled later).
func (t *nydusTree) removeChild(d *bnode, i int) {
	kids := d.ext.kids
	if kids[i].isDir() {
		t.lastDir = nil
	}
	last := len(kids) - 1
	if x := t.index[d]; x != nil {
		if x.sorted {
			x.unsort(d)
		}
		delete(x.names, kids[i].name)
		if i != last {
			x.names[kids[last].name] = int32(i)
		}
	}
	kids[i] = kids[last]
	kids[last] = nil
	d.ext.kids = kids[:last]
}

// parent walks to the directory holding the last component of parts,
// creating missing directories as implicit ones. p is the path parts
// come from ("" if none).
func (t *nydusTree) parent(p string, parts []string) (*bnode, error) {
	dirPath, ok := "", false
	if k := strings.LastIndexByte(p, '/'); k >= 0 && p[k+1:] == parts[len(parts)-1] {
		dirPath, ok = p[:k], true
		if t.lastDir != nil && dirPath == t.lastDirPath {
			return t.lastDir, nil
		}
	}
	dir := t.root
	for i, c := range parts[:len(parts)-1] {
		k, child := t.child(dir, c)
		if child == nil {
			child = newDir(strings.Clone(c))
			t.setChild(dir, k, child)
		} else if !child.isDir() {
			return nil, fmt.Errorf("%q is not a directory: %w", strings.Join(parts[:i+1], "/"), syscall.ENOTDIR)
		}
		dir = child
	}
	if ok {
		t.lastDir, t.lastDirPath = dir, dirPath
	}
	return dir, nil
}

// lookup finds the object at path p.
func (t *nydusTree) lookup(p string) (*bnode, error) {
	parts, err := erofs.SplitPath(p)
	if err != nil {
		return nil, err
	}
	n := t.root
	for _, c := range parts {
		var child *bnode
		if n.isDir() {
			_, child = t.child(n, c)
		}
		if child == nil {
			return nil, fmt.Errorf("%q: %w", p, fs.ErrNotExist)
		}
		n = child
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
	dir, err := t.parent(e.Path, parts)
	if err != nil {
		return fmt.Errorf("nydus: %s: %w", e.Path, err)
	}
	name := parts[len(parts)-1]
	i, old := t.child(dir, name)
	if old != nil && old.isDir() && n.isDir() {
		updateDir(old, n)
		return nil
	}
	if n.mode&erofs.ModeTypeMask == erofs.ModeRegular && n.size > 0 {
		if err := t.writeData(n, data); err != nil {
			t.err = fmt.Errorf("nydus: %s: %w", e.Path, err)
			return t.err
		}
	}
	n.name = strings.Clone(name)
	t.setChild(dir, i, n)
	return nil
}

// newNydusNode validates an entry and makes a node of its attributes.
func newNydusNode(e *erofs.Entry) (*bnode, error) {
	if e.Mode&^(erofs.ModeTypeMask|erofs.ModePermMask) != 0 {
		return nil, fmt.Errorf("invalid mode bits %#o", e.Mode)
	}
	n := &bnode{mode: e.Mode, uid: e.UID, gid: e.GID}
	if !e.ModTime.IsZero() {
		n.mtime, n.nsec = e.ModTime.Unix(), uint32(e.ModTime.Nanosecond())
	}
	switch e.Mode & erofs.ModeTypeMask {
	case erofs.ModeRegular:
		if e.Size < 0 {
			return nil, fmt.Errorf("negative size %d", e.Size)
		}
		n.size = uint64(e.Size)
	case erofs.ModeDir, erofs.ModeFIFO, erofs.ModeSocket:
	case erofs.ModeSymlink:
		if e.Linkname == "" || len(e.Linkname) > rafs.MaxSymlinkLen {
			return nil, fmt.Errorf("symlink target of %d bytes (want 1 to %d)", len(e.Linkname), rafs.MaxSymlinkLen)
		}
		n.x().target = e.Linkname
	case erofs.ModeCharDevice, erofs.ModeBlockDevice:
		if e.Devmajor > 0xFFF || e.Devminor > 0xFFFFF {
			return nil, fmt.Errorf("device number %d:%d out of range", e.Devmajor, e.Devminor)
		}
		n.size = uint64(e.Devmajor)<<32 | uint64(e.Devminor)
	default:
		return nil, fmt.Errorf("unsupported file mode %#o", e.Mode)
	}
	if len(e.Xattrs) > 0 {
		xs := make(map[string][]byte, len(e.Xattrs))
		for name, value := range e.Xattrs {
			if err := checkNydusXattr(name, value); err != nil {
				return nil, err
			}
			xs[name] = []byte(value)
		}
		n.x().xattrs = xs
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
func updateDir(dst, src *bnode) {
	var xs map[string][]byte
	var kids []*bnode
	if dst.ext != nil {
		xs, kids = dst.ext.xattrs, dst.ext.kids
	}
	name := dst.name
	*dst = *src
	dst.name, dst.ext = name, nil
	if len(xs) > 0 && src.ext != nil {
		maps.Copy(xs, src.ext.xattrs)
	}
	if len(xs) == 0 && src.ext != nil {
		xs = src.ext.xattrs
	}
	if len(xs) > 0 || len(kids) > 0 {
		dst.ext = &bext{xattrs: xs, kids: kids}
	}
}

// writeData cuts a regular file's data into chunks and queues them.
func (t *nydusTree) writeData(n *bnode, data io.Reader) error {
	if data == nil {
		return errors.New("no data reader for a non-empty file")
	}
	lr := &io.LimitedReader{R: data, N: int64(n.size)}
	t.chunks.Reset(lr)
	x := n.x()
	x.chunks = make([]rafs.ChunkRecord, 0, (n.size+uint64(t.chunkSize)-1)/uint64(t.chunkSize))
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
				x.chunks = append(x.chunks, dc)
				t.dictChunks++
				continue
			}
		}
		bc, err := t.bw.Add(c.Data)
		if err != nil {
			return err
		}
		t.pending = append(t.pending, pendingChunk{n: n, i: len(x.chunks), own: bc})
		x.chunks = append(x.chunks, rafs.ChunkRecord{})
	}
	if got != n.size {
		return fmt.Errorf("data: %w after %d of %d bytes", io.ErrUnexpectedEOF, got, n.size)
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
	dir, err := t.parent(name, parts)
	if err != nil {
		return fmt.Errorf("nydus: hard link %q: %w", name, err)
	}
	in := n
	if n.link != nil {
		in = n.link
	}
	last := parts[len(parts)-1]
	i, old := t.child(dir, last)
	if old != nil && (old == in || old.link == in) {
		return nil // a name of that inode already
	}
	if t.linked == nil {
		t.linked = map[*bnode]bool{}
	}
	t.linked[in] = true
	t.setChild(dir, i, &bnode{name: strings.Clone(last), link: in})
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
		if _, n = t.child(n, c); n == nil || !n.isDir() {
			return nil
		}
	}
	if i, _ := t.child(n, parts[len(parts)-1]); i >= 0 {
		t.removeChild(n, i)
	}
	return nil
}

// MkdirAll creates p and its missing parents; see tarSink.
func (t *nydusTree) MkdirAll(p string) error {
	parts, err := erofs.SplitPath(p)
	if err != nil {
		return fmt.Errorf("nydus: %w", err)
	}
	if _, err := t.parent("", append(parts, "x")); err != nil {
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
		dir, err := t.parent(p, parts)
		if err != nil {
			return fmt.Errorf("nydus: SetXattr %q: %w", p, err)
		}
		last := parts[len(parts)-1]
		var i int
		if i, n = t.child(dir, last); n == nil {
			n = newDir(strings.Clone(last))
			t.setChild(dir, i, n)
		}
	}
	if !n.isDir() {
		return fmt.Errorf("nydus: SetXattr %q: %w", p, syscall.ENOTDIR)
	}
	x := n.x()
	if x.xattrs == nil {
		x.xattrs = map[string][]byte{}
	}
	x.xattrs[name] = []byte(value)
	return nil
}

// export turns the tree into the layer's bootstrap, with info (the blob's
// table fields, all chunks placed) as the own blob's entry under the
// placeholder id. It is called once, from the blob writer's Finish.
//
// It fills in the chunks the blob writer placed and makes a rafs.Node
// for every entry, directory by directory in the bootstrap's visit order
// (nydus-image's: a directory's children in name order, then its
// subdirectories), dropping each directory's bnodes once they are made,
// so that the two trees are never held whole at once. A hard-linked
// inode's attributes go to its first name in that order, the others
// link to it, as Read returns them.
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
		p.n.ext.chunks[p.i] = rafs.NewChunkRecord(p.own, 0, uint64(p.i)*uint64(t.chunkSize))
	}
	t.pending, t.index, t.lastDir = nil, nil, nil

	// inode makes the rafs.Node of an inode's first name.
	inode := func(n *bnode, name string) *rafs.Node {
		rn := &rafs.Node{Name: name, Mode: n.mode, UID: n.uid, GID: n.gid, Mtime: n.mtime, MtimeNsec: n.nsec}
		switch n.mode & erofs.ModeTypeMask {
		case erofs.ModeRegular:
			rn.Size = n.size
		case erofs.ModeCharDevice, erofs.ModeBlockDevice:
			rn.Devmajor, rn.Devminor = uint32(n.size>>32), uint32(n.size)
		}
		if x := n.ext; x != nil {
			rn.Xattrs, rn.Linkname, rn.Chunks = x.xattrs, x.target, x.chunks
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
	var first map[*bnode]*rafs.Node // hard-linked inode → its first name
	if len(t.linked) > 0 {
		first = make(map[*bnode]*rafs.Node, len(t.linked))
	}
	type dir struct {
		src *bnode
		dst *rafs.Node
	}
	root := inode(t.root, "")
	stack := []dir{{t.root, root}}
	for len(stack) > 0 {
		d := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		kids := d.src.kids()
		slices.SortFunc(kids, func(a, b *bnode) int { return strings.Compare(a.name, b.name) })
		d.dst.Children = make([]*rafs.Node, len(kids))
		for i, c := range kids {
			in := c
			if c.link != nil {
				in = c.link
			}
			var rn *rafs.Node
			switch p := first[in]; {
			case p != nil:
				rn = &rafs.Node{Name: c.name, Link: p}
			default:
				rn = inode(in, c.name)
				if t.linked[in] {
					first[in] = rn
				}
			}
			d.dst.Children[i] = rn
		}
		for i := len(kids) - 1; i >= 0; i-- {
			if kids[i].isDir() {
				stack = append(stack, dir{kids[i], d.dst.Children[i]})
			}
		}
		if d.src.ext != nil {
			d.src.ext.kids = nil // the made nodes replace them
		}
	}
	t.linked, t.root = nil, nil
	b.Root = root
	return b, nil
}
