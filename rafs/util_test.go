package rafs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/erofs"
)

// compareBootstraps returns "" when a and b describe the same bootstrap:
// settings, blob table and trees (paths, attributes, xattrs, chunks and
// hard-link groups), independent of child order and of which name of a
// hard-linked inode carries the attributes.
func compareBootstraps(a, b *Bootstrap) string {
	if a.ChunkSize != b.ChunkSize || a.Flags != b.Flags {
		return fmt.Sprintf("chunk size %#x/%#x flags %#x/%#x", a.ChunkSize, b.ChunkSize, a.Flags, b.Flags)
	}
	if !slices.Equal(a.Blobs, b.Blobs) {
		return fmt.Sprintf("blobs differ:\n%+v\n%+v", a.Blobs, b.Blobs)
	}
	la, lb := describe(a), describe(b)
	if la != lb {
		return "trees differ:\n" + firstDiff(la, lb)
	}
	return ""
}

// describe renders a tree as text, one line per path in sorted order.
func describe(b *Bootstrap) string {
	groups := map[*Node][]string{}
	var lines []string
	b.Walk(func(path string, n *Node) error {
		in := n.inode()
		groups[in] = append(groups[in], path)
		lines = append(lines, path+" "+describeInode(in, b.Blobs))
		return nil
	})
	for _, paths := range groups {
		if len(paths) > 1 {
			slices.Sort(paths)
			lines = append(lines, "link "+strings.Join(paths, " "))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// describeInode renders an inode's attributes; chunks name their blob by
// id prefix when it is known.
func describeInode(n *Node, blobs []BlobInfo) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "mode=%o uid=%d gid=%d mtime=%d.%09d", n.Mode, n.UID, n.GID, n.Mtime, n.MtimeNsec)
	switch {
	case n.IsRegular():
		fmt.Fprintf(&sb, " size=%d", n.Size)
		for _, c := range n.Chunks {
			blob := fmt.Sprint(c.BlobIndex)
			if int(c.BlobIndex) < len(blobs) {
				blob = blobs[c.BlobIndex].ID[:12]
			}
			fmt.Fprintf(&sb, " chunk{%x b%s f%x c%d+%d u%d+%d fo%d i%d crc%x}", c.Digest[:6], blob, c.Flags,
				c.CompressedOffset, c.CompressedSize, c.UncompressedOffset, c.UncompressedSize, c.FileOffset, c.Index, c.CRC32)
		}
	case n.Mode&0o170000 == 0o120000:
		fmt.Fprintf(&sb, " target=%q", n.Linkname)
	case n.Mode&0o170000 == 0o020000 || n.Mode&0o170000 == 0o060000:
		fmt.Fprintf(&sb, " rdev=%d:%d", n.Devmajor, n.Devminor)
	}
	for _, k := range slices.Sorted(maps.Keys(n.Xattrs)) {
		fmt.Fprintf(&sb, " x[%s]=%q", k, n.Xattrs[k])
	}
	return sb.String()
}

func firstDiff(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range max(len(la), len(lb)) {
		var x, y string
		if i < len(la) {
			x = la[i]
		}
		if i < len(lb) {
			y = lb[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i, x, y)
		}
	}
	return ""
}

// testFS builds Bootstraps whose chunks point at real data: each blob's
// "uncompressed cache file" (every chunk at its uncompressed offset,
// zero-filled), as nydus materialises it for the kernel.
type testFS struct {
	b        *Bootstrap
	data     [][]byte                  // per blob: the uncompressed cache file
	counts   []uint32                  // per blob: chunks so far
	dedup    map[[2]string]ChunkRecord // (digest, blob) → chunk
	contents map[*Node][]byte          // regular file contents
}

func newTestFS(chunkSize uint32, nblobs int) *testFS {
	return &testFS{
		b: &Bootstrap{
			ChunkSize: chunkSize,
			Flags:     FlagCompressionNone | FlagHashSHA256 | FlagExplicitUIDGID | FlagEncryptionNone,
			Root:      &Node{Mode: erofs.ModeDir | 0o755},
		},
		data:     make([][]byte, nblobs),
		counts:   make([]uint32, nblobs),
		dedup:    map[[2]string]ChunkRecord{},
		contents: map[*Node][]byte{},
	}
}

var castagnoliTab = crc32.MakeTable(crc32.Castagnoli)

// file returns a regular file node holding data, its i-th chunk stored in
// blob blobOf(i).
func (f *testFS) file(name string, mode uint32, data []byte, blobOf func(i int) int) *Node {
	n := &Node{Name: name, Mode: erofs.ModeRegular | mode, Size: uint64(len(data)), Mtime: 1700000000}
	cs := int(f.b.ChunkSize)
	for i := 0; i*cs < len(data); i++ {
		part := data[i*cs : min((i+1)*cs, len(data))]
		blob := blobOf(i)
		d := sha256.Sum256(part)
		k := [2]string{string(d[:]), fmt.Sprint(blob)}
		c, ok := f.dedup[k]
		if !ok {
			uoff := len(f.data[blob])
			f.data[blob] = append(f.data[blob], part...)
			f.data[blob] = append(f.data[blob], make([]byte, int(alignUp(int64(len(f.data[blob])), BlockSize))-len(f.data[blob]))...)
			c = ChunkRecord{
				Digest: d, BlobIndex: uint32(blob), Flags: ChunkFlagHasCRC32,
				CompressedOffset: uint64(uoff) / 2, CompressedSize: uint32(len(part)),
				UncompressedOffset: uint64(uoff), UncompressedSize: uint32(len(part)),
				Index: f.counts[blob], CRC32: crc32.Checksum(part, castagnoliTab),
			}
			f.counts[blob]++
			f.dedup[k] = c
		}
		c.FileOffset = uint64(i * cs)
		n.Chunks = append(n.Chunks, c)
	}
	f.contents[n] = data
	return n
}

// finish fills in the blob table.
func (f *testFS) finish() *Bootstrap {
	f.b.Blobs = nil
	for i, d := range f.data {
		sum := sha256.Sum256(d)
		f.b.Blobs = append(f.b.Blobs, BlobInfo{
			ID: hex.EncodeToString(sum[:]), ChunkCount: f.counts[i], Compressor: blob.CompressorNone,
			Digester: blob.DigesterSHA256, Features: blob.FeatureAligned | blob.FeatureCapTarTOC | blob.FeatureHasTOC,
			CompressedSize: uint64(len(d)), UncompressedSize: uint64(len(d)),
			CIOffset: uint64(len(d)), CICompressedSize: 16 * uint64(f.counts[i]), CIUncompressedSize: 16 * uint64(f.counts[i]),
		})
	}
	return f.b
}

func dir(name string, mode uint32, kids ...*Node) *Node {
	return &Node{Name: name, Mode: erofs.ModeDir | mode, Mtime: 1600000000, Children: kids}
}

func symlink(name, target string) *Node {
	return &Node{Name: name, Mode: erofs.ModeSymlink | 0o777, Linkname: target, Mtime: 1500000000}
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// richFS builds a tree with every file type, hard links, xattrs, long names,
// multi-block directories, deep paths and files with many chunks across
// two blobs.
func richFS() *testFS {
	r := rand.New(rand.NewPCG(1, 2))
	f := newTestFS(4096, 2)
	blob0 := func(int) int { return 0 }
	blob1 := func(int) int { return 1 }
	alt := func(i int) int { return i % 2 }

	big := randBytes(r, 700*4096+123) // 701 chunks: index array > 1 block
	shared := f.file("shared", 0o644, []byte("hard-linked content\n"), blob0)
	shared.UID, shared.GID = 1000, 1000
	shared.Xattrs = map[string][]byte{"user.tag": []byte("v")}
	contig := f.file("contiguous", 0o600, randBytes(r, 5*4096+7), blob1)

	root := f.b.Root
	root.Mtime, root.MtimeNsec = 1234567890, 123456789
	root.Xattrs = map[string][]byte{"trusted.overlay.opaque": []byte("y"), "user.root": []byte("r")}
	root.Children = []*Node{
		f.file("empty", 0o644, nil, blob0),
		f.file("small", 0o4755, []byte("hello, world\n"), blob0),
		f.file("exact", 0o644, randBytes(r, 4096), blob1),
		f.file("big", 0o644, big, alt),
		f.file("big-copy", 0o644, big, alt), // same chunks (dedup)
		contig,
		shared,
		{Name: "shared-link", Link: shared},
		symlink("link", "small"),
		symlink("link-long", strings.Repeat("x/", 2000)+"end"),
		symlink("link-4095", strings.Repeat("y", 4095)),
		{Name: "chr", Mode: erofs.ModeCharDevice | 0o600, Devmajor: 4095, Devminor: 1048575},
		{Name: "blk", Mode: erofs.ModeBlockDevice | 0o660, Devmajor: 8, Devminor: 1, GID: 6},
		{Name: "fifo", Mode: erofs.ModeFIFO | 0o644},
		{Name: "sock", Mode: erofs.ModeSocket | 0o755},
		{Name: "whiteout", Mode: erofs.ModeCharDevice},
		{Name: "!bang", Mode: erofs.ModeFIFO | 0o600},
		{Name: ".-between-dots", Mode: erofs.ModeFIFO | 0o600},
		{Name: "...", Mode: erofs.ModeFIFO | 0o600},
		{Name: strings.Repeat("L", 255), Mode: erofs.ModeRegular | 0o644, Mtime: -5, UID: 70000, GID: 80000},
		{Name: "old", Mode: erofs.ModeRegular | 0o1777, Mtime: -86400, MtimeNsec: 999999999},
	}
	// Xattrs of every namespace, one big value.
	acl := []byte{2, 0, 0, 0, 1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff, 4, 0, 4, 0, 0xff, 0xff, 0xff, 0xff, 0x20, 0, 4, 0, 0xff, 0xff, 0xff, 0xff}
	xdir := dir("xattrs", 0o750,
		&Node{Name: "acl", Mode: erofs.ModeRegular | 0o644, Xattrs: map[string][]byte{
			"system.posix_acl_access": acl, "security.capability": {1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
			"user.empty": {}, "trusted.t": []byte("t")}},
		&Node{Name: "bigval", Mode: erofs.ModeRegular | 0o644, Xattrs: map[string][]byte{"user.big": randBytes(r, 3000)}},
		&Node{Name: "link-again", Link: shared},
	)
	xdir.Xattrs = map[string][]byte{"system.posix_acl_default": acl, "user.d": bytes.Repeat([]byte("d"), 4000)}
	root.Children = append(root.Children, xdir)

	// A big directory (several blocks) with a subdirectory and hard links.
	var many []*Node
	for i := range 700 {
		name := fmt.Sprintf("entry-%04d-%s", i, strings.Repeat("n", i%40))
		switch i % 7 {
		case 0:
			many = append(many, f.file(name, 0o644, randBytes(r, i*13), blob0))
		case 1:
			many = append(many, symlink(name, strings.Repeat("t", 1+i%300)))
		case 2:
			many = append(many, &Node{Name: name, Link: shared})
		case 3:
			many = append(many, dir(name, 0o755))
		default:
			many = append(many, &Node{Name: name, Mode: erofs.ModeFIFO | 0o600})
		}
	}
	root.Children = append(root.Children, dir("many", 0o755, many...))

	// A deep path.
	leaf := f.file("leaf", 0o644, []byte("deep\n"), blob1)
	for i := 40; i > 0; i-- {
		leaf = dir(fmt.Sprintf("d%02d", i), 0o755, leaf)
	}
	root.Children = append(root.Children, leaf)
	return f
}
