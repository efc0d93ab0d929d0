package rafs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/erofs"
)

// tarfsFlags are the flags of a tarfs bootstrap as nydus-image writes
// them.
const tarfsFlags = FlagCompressionNone | FlagHashSHA256 | FlagExplicitUIDGID | FlagTarfsMode | FlagEncryptionNone

// tarfsFS builds a tarfs bootstrap whose blob is a stand-in for a tar:
// file data at 512-byte boundaries, the chunks of a file not
// necessarily in order or contiguous.
type tarfsFS struct {
	b        *Bootstrap
	tar      []byte
	chunks   uint32
	contents map[*Node][]byte
}

func newTarfsFS(chunkSize uint32) *tarfsFS {
	return &tarfsFS{
		b:        &Bootstrap{ChunkSize: chunkSize, Flags: tarfsFlags, Root: &Node{Mode: erofs.ModeDir | 0o755}},
		tar:      make([]byte, 512), // a "header" first
		contents: map[*Node][]byte{},
	}
}

// file returns a regular file holding data. With scatter, its chunks are
// placed in the tar in reverse order, with a gap between them.
func (f *tarfsFS) file(name string, data []byte, scatter bool) *Node {
	n := &Node{Name: name, Mode: erofs.ModeRegular | 0o644, Size: uint64(len(data)), Mtime: 1700000000}
	cs := int(f.b.ChunkSize)
	count := (len(data) + cs - 1) / cs
	n.Chunks = make([]ChunkRecord, count)
	place := func(i int) {
		part := data[i*cs : min((i+1)*cs, len(data))]
		at := uint64(len(f.tar))
		f.tar = append(f.tar, part...)
		f.tar = append(f.tar, make([]byte, int(alignUp(int64(len(f.tar)), TarfsBlockSize))-len(f.tar))...)
		if scatter {
			f.tar = append(f.tar, make([]byte, TarfsBlockSize)...)
		}
		n.Chunks[i] = ChunkRecord{Index: f.chunks, CompressedOffset: at, CompressedSize: uint32(len(part)),
			UncompressedOffset: at, UncompressedSize: uint32(len(part)), FileOffset: uint64(i * cs)}
		f.chunks++
	}
	f.tar = append(f.tar, make([]byte, TarfsBlockSize)...) // its "header"
	if scatter {
		for i := count - 1; i >= 0; i-- {
			place(i)
		}
	} else {
		for i := range count {
			place(i)
		}
	}
	f.contents[n] = data
	return n
}

func (f *tarfsFS) finish() *Bootstrap {
	f.tar = append(f.tar, make([]byte, 1024)...) // the end blocks
	sum := sha256.Sum256(f.tar)
	f.b.Blobs = []BlobInfo{{
		ID: hex.EncodeToString(sum[:]), ChunkCount: f.chunks, Compressor: blob.CompressorNone, Digester: blob.DigesterSHA256,
		Features: blob.FeatureTarfs | blob.FeatureCapTarTOC, CompressedSize: uint64(len(f.tar)), UncompressedSize: uint64(len(f.tar)),
	}}
	return f.b
}

// richTarfs builds a tarfs tree with what 512-byte blocks change:
// directories of many blocks, inline tails up to the 448 bytes an
// extended inode leaves in a block, symlinks too long to be inline,
// xattrs, and files contiguous (one kernel chunk) or scattered.
func richTarfs() *tarfsFS {
	r := rand.New(rand.NewPCG(1, 2))
	f := newTarfsFS(4096)
	var many []*Node
	for i := range 120 {
		many = append(many, f.file(strings.Repeat("n", 1+i%40)+string(rune('a'+i%26))+strings.Repeat("x", i/26), randBytes(r, i*37), false))
	}
	big := f.file("big", randBytes(r, 5*4096+100), false)
	scattered := f.file("scattered", randBytes(r, 3*4096+7), true)
	withX := f.file("xattrs", []byte("x"), false)
	withX.Xattrs = map[string][]byte{"user.a": []byte("1"), "security.b": bytes.Repeat([]byte("v"), 300)}
	link := &Node{Name: "link", Link: big}
	f.b.Root.Children = []*Node{
		dir("many", 0o755, many...),
		big, scattered, withX, link,
		symlink("short", strings.Repeat("s", 440)),
		symlink("long", strings.Repeat("l/", 600)),  // 2 blocks and an inline tail
		symlink("plain", strings.Repeat("p/", 500)), // a tail of 488 bytes: no room inline
		&Node{Name: "fifo", Mode: erofs.ModeFIFO | 0o600},
		&Node{Name: "chr", Mode: erofs.ModeCharDevice | 0o600, Devmajor: 4, Devminor: 1},
		dir("empty", 0o700),
		f.file("zero", nil, false),
	}
	f.b.Flags |= FlagHasXattr // as WriteTo sets it, so that Read gives f.b back
	f.finish()
	return f
}

// TestTarfsRoundTrip writes a tarfs bootstrap and reads it back: the
// same tree, the same bytes again, 512-byte blocks, and the chunks found
// from their chunk indexes alone (the chunk table is one record). The
// EROFS reader, with the tar as device 1, reads every file's data.
func TestTarfsRoundTrip(t *testing.T) {
	f := richTarfs()
	img, err := f.b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if img[sbOffset+12] != tarfsBlockBits || len(img)%BlockSize != 0 {
		t.Errorf("blkszbits %d, size %d", img[sbOffset+12], len(img))
	}
	ext, _ := decodeExtSuperblock(img[extSBOffset:])
	if ext.chunkTableSize != chunkRecordSize || ext.prefetchTableSize != 0 {
		t.Errorf("chunk table of %d bytes (want one record), prefetch table of %d (want none)", ext.chunkTableSize, ext.prefetchTableSize)
	}
	b, err := Read(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if d := compareBootstraps(f.b, b); d != "" {
		t.Fatalf("read back: %s", d)
	}
	again, err := b.MarshalBinary()
	if err != nil || !bytes.Equal(again, img) {
		t.Fatalf("re-encoding differs (%v)", err)
	}
	var w bytes.Buffer
	if _, err := f.b.WriteTo(&w); err != nil || !bytes.Equal(w.Bytes(), img) {
		t.Fatalf("WriteTo differs from MarshalBinary (%v)", err)
	}

	fsys, err := erofs.Open(bytes.NewReader(img), erofs.WithDevices(bytes.NewReader(f.tar)))
	if err != nil {
		t.Fatal(err)
	}
	if sb := fsys.Superblock(); sb.BlockSize != TarfsBlockSize || len(sb.Devices) != 1 || sb.Devices[0].Blocks != uint64(len(f.tar)/512) {
		t.Errorf("EROFS reader: block size %d, devices %+v", sb.BlockSize, sb.Devices)
	}
	checkTarfsContents(t, f, func(p string) ([]byte, error) { return fs.ReadFile(fsys, p) })
	if got, err := fsys.ReadLink("long"); err != nil || got != strings.Repeat("l/", 600) {
		t.Errorf("EROFS reader: long symlink %d bytes, %v", len(got), err)
	}
	for _, name := range []string{"short", "many", "long"} {
		fi, err := fsys.Lstat(name)
		if err != nil || fi.Sys().(*erofs.Stat).Layout != erofs.LayoutFlatInline {
			t.Errorf("%s: not inline (%v)", name, err)
		}
	}
	if fi, err := fsys.Lstat("plain"); err != nil || fi.Sys().(*erofs.Stat).Layout != erofs.LayoutFlatPlain {
		t.Errorf("plain: not plain (%v)", err)
	}
	if got, err := fsys.ReadLink("plain"); err != nil || got != strings.Repeat("p/", 500) {
		t.Errorf("EROFS reader: plain symlink %d bytes, %v", len(got), err)
	}
}

// checkTarfsContents compares every regular file of f with what read
// returns for its path.
func checkTarfsContents(t *testing.T, f *tarfsFS, read func(p string) ([]byte, error)) {
	t.Helper()
	f.b.Walk(func(p string, n *Node) error {
		if n.Link != nil || !n.IsRegular() {
			return nil
		}
		got, err := read(strings.TrimPrefix(p, "/"))
		if err != nil || !bytes.Equal(got, f.contents[n]) {
			t.Errorf("%s: %d bytes, want %d (%v)", p, len(got), len(f.contents[n]), err)
		}
		return nil
	})
}

// TestTarfsErrors checks what a tarfs bootstrap must be: TARFS_MODE and
// its blob features go together, blobs hold whole 512-byte blocks,
// chunks start on them, and the superblock's block size follows the
// flags.
func TestTarfsErrors(t *testing.T) {
	write := func(mod func(b *Bootstrap)) error {
		f := richTarfs()
		mod(f.b)
		_, err := f.b.MarshalBinary()
		return err
	}
	for _, c := range []struct {
		name, want string
		mod        func(b *Bootstrap)
	}{
		{"aligned", "ALIGNED", func(b *Bootstrap) { b.Blobs[0].Features |= blob.FeatureAligned }},
		{"no TARFS feature", "lack TARFS", func(b *Bootstrap) { b.Blobs[0].Features &^= blob.FeatureTarfs }},
		{"no TARFS_MODE", "TARFS", func(b *Bootstrap) { b.Flags &^= FlagTarfsMode }},
		{"compressed", "compression", func(b *Bootstrap) { b.Flags = b.Flags&^FlagCompressionNone | FlagCompressionZstd }},
		{"partial block", "multiple of 512", func(b *Bootstrap) { b.Blobs[0].UncompressedSize -= 100 }},
		{"unaligned chunk", "512-aligned", func(b *Bootstrap) {
			c := &b.Lookup("big").Chunks[1]
			c.UncompressedOffset += 8
		}},
		{"digests", "chunk-info", func(b *Bootstrap) { b.Blobs[0].Features |= blob.FeatureInlinedChunkDigest }},
	} {
		if err := write(c.mod); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one with %q", c.name, err, c.want)
		}
	}

	// The block size follows the flags.
	img, err := richTarfs().b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(img)
	bad[sbOffset+12] = blockBits
	if _, err := Read(bytes.NewReader(bad), int64(len(bad))); err == nil || !strings.Contains(err.Error(), "blkszbits") {
		t.Errorf("tarfs flags with blkszbits 12: error %v", err)
	}
	plain, err := smallFS().b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	plain[sbOffset+12] = tarfsBlockBits
	if _, err := Read(bytes.NewReader(plain), int64(len(plain))); err == nil || !strings.Contains(err.Error(), "blkszbits") {
		t.Errorf("blkszbits 9 without TARFS_MODE: error %v", err)
	}

	// Tarfs layers merge only with tarfs layers, and are no chunk
	// dictionaries.
	if _, err := Merge([]*Bootstrap{richTarfs().b, smallFS().finish()}, nil); err == nil || !strings.Contains(err.Error(), "TARFS_MODE") {
		t.Errorf("merging tarfs and non-tarfs: error %v", err)
	}
	if _, err := NewChunkDict(richTarfs().b); err == nil {
		t.Error("NewChunkDict took a tarfs bootstrap")
	}
}

// TestTarfsMerge merges two tarfs layers: the result is tarfs, its blobs
// the layers' tars, and reads back.
func TestTarfsMerge(t *testing.T) {
	a, b := richTarfs(), newTarfsFS(4096)
	b.b.Root.Children = []*Node{b.file("upper", []byte("upper data"), false), {Name: ".wh.big", Mode: erofs.ModeRegular}}
	b.finish()
	m, err := Merge([]*Bootstrap{a.b, b.b}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Flags&FlagTarfsMode == 0 || len(m.Blobs) != 2 || m.Lookup("big") != nil || m.Lookup("upper") == nil {
		t.Fatalf("merged: flags %#x, %d blobs, big %v", m.Flags, len(m.Blobs), m.Lookup("big") != nil)
	}
	img, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Read(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if d := compareBootstraps(m, back); d != "" {
		t.Fatalf("read back: %s", d)
	}
	ext, _ := decodeExtSuperblock(img[extSBOffset:])
	if ext.chunkTableSize != 2*chunkRecordSize {
		t.Errorf("chunk table of %d bytes, want one record per blob", ext.chunkTableSize)
	}
}
