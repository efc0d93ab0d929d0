package lz4

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecompress feeds arbitrary blocks to Decompress and DecompressPartial:
// they must not panic, must agree with each other, and must never report
// more output than dst holds.
func FuzzDecompress(f *testing.F) {
	f.Add([]byte{0x00}, 16)
	f.Add([]byte{0x10, 'a', 1, 0, 0x00}, 64)
	f.Add([]byte{0x1F, 'a', 1, 0, 255, 10, 0x50, 1, 2, 3, 4, 5}, 400)
	c := mustCompressor(f, 0)
	for _, s := range []string{"hello hello hello hello hello", "abcabcabcabcabcabcabcabc0123456789"} {
		dst := make([]byte, CompressBound(len(s)))
		n := c.Compress(dst, []byte(s))
		f.Add(dst[:n], len(s))
	}
	if blocks, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.lz4")); len(blocks) > 0 {
		b, err := os.ReadFile(blocks[0])
		if err == nil {
			f.Add(b, 1<<16)
		}
	}
	f.Fuzz(func(t *testing.T, blk []byte, size int) {
		size = max(0, size%(1<<20))
		dst := make([]byte, size)
		n, err := Decompress(dst, blk)
		if n < 0 || n > size {
			t.Fatalf("Decompress returned %d for a %d-byte dst", n, size)
		}
		pdst := make([]byte, size)
		pn, perr := DecompressPartial(pdst, blk)
		if pn < 0 || pn > size {
			t.Fatalf("DecompressPartial returned %d for a %d-byte dst", pn, size)
		}
		if err == nil {
			// A valid block: the partial decode gives the same bytes.
			if perr != nil || pn != n || !bytes.Equal(pdst[:pn], dst[:n]) {
				t.Fatalf("partial decode differs: %d/%v vs %d", pn, perr, n)
			}
			// Re-encoding the output round-trips.
			out := dst[:n]
			enc := make([]byte, CompressBound(n))
			m := c.Compress(enc, out)
			back := make([]byte, n)
			if k, err := Decompress(back, enc[:m]); err != nil || k != n || !bytes.Equal(back, out) {
				t.Fatalf("re-encode round trip failed: %v", err)
			}
		} else if perr == nil && pn < size {
			// The partial decoder stops early only when dst is full.
			t.Fatalf("partial decode of a bad block succeeded with %d < %d bytes: %v", pn, size, err)
		}
	})
}

// FuzzRoundTrip compresses arbitrary data at several levels, fully and into
// a budget, and checks every block against the format rules and the input.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte(""), uint16(100), uint8(0))
	f.Add([]byte("a"), uint16(2), uint8(9))
	f.Add(bytes.Repeat([]byte("abcd"), 100), uint16(20), uint8(3))
	f.Add(make([]byte, 5000), uint16(13), uint8(12))
	if b, err := os.ReadFile(filepath.Join("testdata", "golden", "apache.txt")); err == nil {
		f.Add(b, uint16(1000), uint8(9))
	}
	comps := map[int]*Compressor{}
	f.Fuzz(func(t *testing.T, src []byte, budget uint16, lv uint8) {
		level := []int{0, 1, 3, 9, 12}[int(lv)%5]
		c := comps[level]
		if c == nil {
			c = mustCompressor(t, level)
			comps[level] = c
		}
		blk := roundTrip(t, c, src)
		if len(src) > 0 && blk[0] == 0 {
			t.Fatal("block starts with zero")
		}
		b := int(budget)
		_, k := destSize(t, c, src, b)
		if len(src) > 0 && b >= 2 && k == 0 {
			t.Fatalf("budget %d consumed nothing", b)
		}
		if len(blk) <= b && k != len(src) {
			t.Fatalf("budget %d >= full block %d, but consumed %d of %d", b, len(blk), k, len(src))
		}
	})
}
