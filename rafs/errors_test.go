package rafs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/erofs"
)

// smallFS is a valid two-blob bootstrap to break in tests.
func smallFS() *testFS {
	f := newTestFS(4096, 2)
	f.b.Root.Children = []*Node{
		f.file("a", 0o644, bytes.Repeat([]byte("a"), 5000), func(i int) int { return i % 2 }),
		f.file("b", 0o644, []byte("b"), func(int) int { return 1 }),
		dir("d", 0o755, symlink("s", "a")),
	}
	f.finish()
	return f
}

func TestWriteErrors(t *testing.T) {
	cases := []struct {
		name string
		edit func(b *Bootstrap)
		want string
	}{
		{"long name", func(b *Bootstrap) { b.Root.Children[0].Name = strings.Repeat("n", 256) }, "longer than 255"},
		{"slash", func(b *Bootstrap) { b.Root.Children[0].Name = "a/b" }, "contains '/'"},
		{"empty name", func(b *Bootstrap) { b.Root.Children[0].Name = "" }, "empty name"},
		{"dot", func(b *Bootstrap) { b.Root.Children[0].Name = ".." }, "reserved"},
		{"duplicate", func(b *Bootstrap) { b.Root.Children[1].Name = "a" }, "duplicate"},
		{"xattr namespace", func(b *Bootstrap) { b.Root.Xattrs = map[string][]byte{"system.foo": nil} }, "no prefix EROFS can store"},
		{"xattr no suffix", func(b *Bootstrap) { b.Root.Xattrs = map[string][]byte{"user.": nil} }, "no prefix EROFS can store"},
		{"xattr value", func(b *Bootstrap) { b.Root.Xattrs = map[string][]byte{"user.x": make([]byte, 65536)} }, "exceeds 65535"},
		{"too many blobs", func(b *Bootstrap) {
			for len(b.Blobs) <= MaxBlobs {
				bi := b.Blobs[0]
				bi.ID = strings.Repeat("0", 60) + string(rune('a'+len(b.Blobs)%26)) + strings.Repeat("f", 3)
				b.Blobs = append(b.Blobs, bi)
			}
		}, "at most 254"},
		{"chunk count", func(b *Bootstrap) { b.Root.Children[0].Size = 9000 }, "needs 3 chunks"},
		{"chunk size", func(b *Bootstrap) { b.ChunkSize = 3000 }, "chunk size"},
		{"blob index", func(b *Bootstrap) { b.Root.Children[1].Chunks[0].BlobIndex = 2 }, "blob index 2"},
		{"ci index", func(b *Bootstrap) { b.Root.Children[1].Chunks[0].Index = 99 }, "CI index 99"},
		{"unaligned", func(b *Bootstrap) { b.Root.Children[1].Chunks[0].UncompressedOffset = 100 }, "not 4096-aligned"},
		{"file offset", func(b *Bootstrap) { b.Root.Children[0].Chunks[1].FileOffset = 0 }, "file offset"},
		{"crc without flag", func(b *Bootstrap) { b.Root.Children[1].Chunks[0].Flags = 0 }, "HAS_CRC32"},
		{"blob id", func(b *Bootstrap) { b.Blobs[0].ID = "abc" }, "must be 64"},
		{"same blob id", func(b *Bootstrap) { b.Blobs[1].ID = b.Blobs[0].ID }, "already used"},
		{"empty blob", func(b *Bootstrap) { b.Blobs[0].ChunkCount = 0 }, "chunk count 0"},
		{"not aligned", func(b *Bootstrap) { b.Blobs[0].Features &^= blob.FeatureAligned }, "lack ALIGNED"},
		{"ci size", func(b *Bootstrap) { b.Blobs[0].CIUncompressedSize++ }, "CI uncompressed size"},
		{"no compression flag", func(b *Bootstrap) { b.Flags &^= FlagCompressionNone }, "compression flag"},
		{"two hash flags", func(b *Bootstrap) { b.Flags |= FlagHashBlake3 }, "hash flag"},
		{"inlined digest", func(b *Bootstrap) { b.Flags |= FlagInlinedChunkDigest }, "INLINED_CHUNK_DIGEST"},
		{"empty symlink", func(b *Bootstrap) { b.Root.Children[2].Children[0].Linkname = "" }, "symlink target"},
		{"long symlink", func(b *Bootstrap) { b.Root.Children[2].Children[0].Linkname = strings.Repeat("x", 4097) }, "symlink target"},
		{"link to dir", func(b *Bootstrap) {
			b.Root.Children = append(b.Root.Children, &Node{Name: "l", Link: b.Root.Children[2]})
		}, "hard link to a directory"},
		{"dir twice", func(b *Bootstrap) {
			d := b.Root.Children[2]
			b.Root.Children = append(b.Root.Children, &Node{Name: "d2", Mode: d.Mode, Children: []*Node{d}})
		}, "appears twice"},
		{"bad mode", func(b *Bootstrap) { b.Root.Children[1].Mode = 0o644 }, "invalid mode"},
		{"nsec", func(b *Bootstrap) { b.Root.MtimeNsec = 1e9 }, "nanoseconds"},
		{"rdev", func(b *Bootstrap) {
			b.Root.Children = append(b.Root.Children, &Node{Name: "c", Mode: erofs.ModeCharDevice, Devmajor: 4096})
		}, "out of range"},
		{"conflicting chunk", func(b *Bootstrap) {
			c := b.Root.Children[1].Chunks[0]
			c.Index = 0 // same digest and blob, another CI slot
			b.Root.Children = append(b.Root.Children, &Node{Name: "c", Mode: erofs.ModeRegular, Size: 1, Chunks: []ChunkRecord{c}})
		}, "CI index 0 already holds"},
		{"root", func(b *Bootstrap) { b.Root = b.Root.Children[0] }, "root must be a directory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := smallFS().b
			c.edit(b)
			_, err := b.MarshalBinary()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	img, err := smallFS().b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Read(bytes.NewReader(img), int64(len(img))); err != nil {
		t.Fatal(err)
	}
	put32 := func(off int, v uint32) func([]byte) {
		return func(b []byte) { binary.LittleEndian.PutUint32(b[off:], v) }
	}
	put16 := func(off int, v uint16) func([]byte) {
		return func(b []byte) { binary.LittleEndian.PutUint16(b[off:], v) }
	}
	bt := 4096 // blob table
	cases := []struct {
		name string
		edit func([]byte)
		want string
	}{
		{"magic", put32(1024, 0), "magic (offset 1024)"},
		{"checksum", put32(1028, 1), "checksum (offset 1028)"},
		{"compat", put32(1032, 0), "feature_compat"},
		{"incompat", put32(1104, 0xD), "feature_incompat (offset 1104)"},
		{"devt_slotoff", put16(1112, 9), "devt_slotoff"},
		{"extslots", func(b []byte) { b[1037] = 1 }, "extslots"},
		{"flags", put32(1152, 0x4), "s_flags"},
		{"ext chunk size", put32(1172, 4097), "s_chunk_size"},
		{"blob index", put32(bt+64, 5), "blob_index 5"},
		{"blob chunk size", put32(bt+68, 8192), "chunk_size 0x2000 differs"},
		{"blob id", func(b []byte) { b[bt+63] = 0 }, "must be 64"},
		{"blob features", put32(bt+84, 0x8000), "unknown features"},
		{"devslot tag", func(b []byte) { b[1408] ^= 1 }, "device slot 0 (offset 1408): tag"},
		{"devslot blocks", put32(1408+64, 77), "device slot 0 (offset 1472)"},
		{"blob table size", put32(1168, 256), "s_blob_table_size"},
		{"chunk table offset", put32(1176, 4097), "s_chunk_table_offset"},
		{"chunk table order", func(b []byte) {
			off := int(binary.LittleEndian.Uint64(b[1176:]))
			rec := bytes.Clone(b[off : off+80])
			copy(b[off:], b[off+80:off+160])
			copy(b[off+80:], rec)
		}, "not sorted"},
		{"root nid", put16(1038, 129), "nid 129"},
		{"root i_format", put16(8192+4096, 0xFF), "i_format"},
		{"nlink", put32(8192+4096+0x2C, 0), "i_nlink is 0"},
		{"truncated", func(b []byte) {}, "multiple of 4096"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := bytes.Clone(img)
			c.edit(b)
			size := len(b)
			if c.name == "truncated" {
				size -= 100
			}
			_, err := Read(bytes.NewReader(b[:size]), int64(size))
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrFormat) {
				t.Errorf("got %v, want an ErrFormat containing %q", err, c.want)
			}
		})
	}
}
