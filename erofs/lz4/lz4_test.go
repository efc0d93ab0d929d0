package lz4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

var testLevels = []int{0, 1, 3, 6, 9, 10, 12}

// checkBlock parses a block independently of Decompress and verifies the
// end-of-block rules strict decoders (the Linux kernel) rely on. It returns
// the decoded size.
func checkBlock(t testing.TB, blk []byte) int {
	t.Helper()
	ip, op := 0, 0
	lastMatchStart, lastMatchEnd := -1, -1
	readLen := func(v int) int {
		if v != runMask {
			return v
		}
		for {
			if ip >= len(blk) {
				t.Fatalf("truncated length at %d", ip)
			}
			b := blk[ip]
			ip++
			v += int(b)
			if b != 255 {
				return v
			}
		}
	}
	for {
		if ip >= len(blk) {
			t.Fatalf("missing token at %d", ip)
		}
		tok := blk[ip]
		ip++
		lit := readLen(int(tok >> 4))
		ip += lit
		op += lit
		if ip > len(blk) {
			t.Fatalf("literals past end")
		}
		if ip == len(blk) {
			if tok&15 != 0 {
				t.Fatalf("last token %#x has a match nibble", tok)
			}
			break
		}
		off := int(blk[ip]) | int(blk[ip+1])<<8
		ip += 2
		if off == 0 || off > op || off > MaxDistance {
			t.Fatalf("bad offset %d at output %d", off, op)
		}
		ml := readLen(int(tok&15)) + minMatch
		lastMatchStart, lastMatchEnd = op, op+ml
		op += ml
	}
	if op > 0 && blk[0] == 0 {
		t.Fatalf("non-empty block starts with a zero byte")
	}
	if lastMatchStart >= 0 {
		if op-lastMatchEnd < lastLiterals {
			t.Fatalf("last match ends %d bytes before the end (< %d)", op-lastMatchEnd, lastLiterals)
		}
		if op-lastMatchStart < mfLimit {
			t.Fatalf("last match starts %d bytes before the end (< %d)", op-lastMatchStart, mfLimit)
		}
	}
	return op
}

func mustCompressor(t testing.TB, level int) *Compressor {
	t.Helper()
	c, err := NewCompressor(level)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// roundTrip compresses src fully and checks the block.
func roundTrip(t testing.TB, c *Compressor, src []byte) []byte {
	t.Helper()
	dst := make([]byte, CompressBound(len(src)))
	n := c.Compress(dst, src)
	if n == 0 {
		t.Fatalf("level %d: Compress of %d bytes failed with a CompressBound buffer", c.Level(), len(src))
	}
	blk := dst[:n]
	if got := checkBlock(t, blk); got != len(src) {
		t.Fatalf("level %d: block decodes to %d bytes, want %d", c.Level(), got, len(src))
	}
	out := make([]byte, len(src))
	m, err := Decompress(out, blk)
	if err != nil || m != len(src) || !bytes.Equal(out, src) {
		t.Fatalf("level %d: round trip of %d bytes: n=%d err=%v equal=%v", c.Level(), len(src), m, err, bytes.Equal(out[:m], src))
	}
	// One byte less output space must fail (never truncate silently).
	if n > 0 && c.Compress(make([]byte, n-1), src) != 0 {
		t.Fatalf("level %d: Compress into %d bytes succeeded, but the block needs %d", c.Level(), n-1, n)
	}
	return blk
}

// destSize runs CompressDestSize and checks its result.
func destSize(t testing.TB, c *Compressor, src []byte, budget int) (blk []byte, consumed int) {
	t.Helper()
	dst := make([]byte, budget)
	n, consumed := c.CompressDestSize(dst, src)
	if n > budget || consumed > len(src) || (n == 0) != (consumed == 0) {
		t.Fatalf("level %d budget %d: n=%d consumed=%d of %d", c.Level(), budget, n, consumed, len(src))
	}
	if n == 0 {
		return nil, 0
	}
	blk = dst[:n]
	if got := checkBlock(t, blk); got != consumed {
		t.Fatalf("level %d budget %d: block decodes to %d bytes, consumed %d", c.Level(), budget, got, consumed)
	}
	out := make([]byte, consumed)
	m, err := Decompress(out, blk)
	if err != nil || m != consumed || !bytes.Equal(out, src[:consumed]) {
		t.Fatalf("level %d budget %d: decode: n=%d err=%v", c.Level(), budget, m, err)
	}
	return blk, consumed
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// textLike returns n bytes of word salad with repetitions at all distances.
func textLike(r *rand.Rand, n int) []byte {
	words := []string{"the ", "erofs ", "lz4 ", "block ", "compress", "ion ", "data\n", "of ", "a ", "kernel ", "page ", "cluster, ", "and ", "0x7f", "\t", "func ", "return ", "{}\n"}
	var b bytes.Buffer
	for b.Len() < n {
		if r.IntN(50) == 0 && b.Len() > 100 {
			// copy an older stretch
			s := r.IntN(b.Len() - 50)
			l := 20 + r.IntN(200)
			if s+l > b.Len() {
				l = b.Len() - s
			}
			b.Write(append([]byte(nil), b.Bytes()[s:s+l]...))
			continue
		}
		b.WriteString(words[r.IntN(len(words))])
	}
	return b.Bytes()[:n]
}

// testInputs returns named inputs covering edge sizes and data kinds.
func testInputs() map[string][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	in := map[string][]byte{
		"empty":    {},
		"one":      {'x'},
		"zero1":    {0},
		"twelve":   []byte("abcdabcdabcd"),
		"thirteen": []byte("aaaaaaaaaaaaa"),
		"random":   randBytes(r, 70000),
		"zeros":    make([]byte, 70000),
		"text":     textLike(r, 200000),
		"1MiB":     textLike(r, 1<<20),
	}
	for _, n := range []int{4095, 4096, 4097, 65535, 65536, 65537} {
		in[fmt.Sprintf("text%d", n)] = textLike(r, n)
		in[fmt.Sprintf("zeros%d", n)] = make([]byte, n)
		in[fmt.Sprintf("random%d", n)] = randBytes(r, n)
	}
	// Mixed: runs, random and text, plus a period longer than the window.
	var mix []byte
	for len(mix) < 300000 {
		switch r.IntN(4) {
		case 0:
			mix = append(mix, make([]byte, r.IntN(3000))...)
		case 1:
			mix = append(mix, randBytes(r, r.IntN(3000))...)
		case 2:
			mix = append(mix, textLike(r, r.IntN(3000))...)
		default:
			p := 1 + r.IntN(20)
			pat := randBytes(r, p)
			for i := r.IntN(5000); i > 0; i-- {
				mix = append(mix, pat[i%p])
			}
		}
	}
	in["mixed"] = mix
	// Records with short runs of zeros and of other bytes, like an ELF
	// file's relocation and symbol tables, where level 9+ skips runs.
	var recs []byte
	for len(recs) < 100000 {
		var rec [24]byte
		binary.LittleEndian.PutUint64(rec[:], uint64(0x1000+len(recs)*2))
		rec[8] = byte(1 + r.IntN(8))
		if r.IntN(4) == 0 {
			binary.LittleEndian.PutUint32(rec[16:], r.Uint32())
		}
		recs = append(recs, rec[:]...)
		if r.IntN(50) == 0 {
			recs = append(recs, bytes.Repeat([]byte{byte(r.IntN(3) * 0x7f)}, r.IntN(600))...)
		}
	}
	in["records"] = recs
	far := randBytes(r, 70000)
	in["far"] = append(append([]byte(nil), far...), far...)
	for i := 0; i < 40; i++ {
		in[fmt.Sprintf("small%d", i)] = textLike(r, i)
	}
	return in
}

func TestRoundTrip(t *testing.T) {
	inputs := testInputs()
	for _, level := range testLevels {
		c := mustCompressor(t, level)
		for name, src := range inputs {
			if testing.Short() && level >= 10 && len(src) > 100000 {
				continue
			}
			blk := roundTrip(t, c, src)
			if name == "random" && len(blk) > CompressBound(len(src)) {
				t.Errorf("random: %d > bound", len(blk))
			}
			if name == "zeros" && len(blk) > 400 {
				t.Errorf("level %d: 70000 zeros compress to %d bytes", level, len(blk))
			}
		}
	}
}

func TestDeterministicAcrossReuse(t *testing.T) {
	inputs := testInputs()
	for _, level := range []int{0, 9} {
		c1 := mustCompressor(t, level)
		c2 := mustCompressor(t, level)
		// Prime c2 with other data so its tables hold stale entries.
		roundTrip(t, c2, inputs["mixed"])
		roundTrip(t, c2, inputs["random"])
		for _, name := range []string{"text", "mixed", "far", "text4096"} {
			a := roundTrip(t, c1, inputs[name])
			b := roundTrip(t, c2, inputs[name])
			if !bytes.Equal(a, b) {
				t.Errorf("level %d %s: output depends on earlier calls", level, name)
			}
			fresh := mustCompressor(t, level)
			if !bytes.Equal(a, roundTrip(t, fresh, inputs[name])) {
				t.Errorf("level %d %s: output differs from a fresh compressor", level, name)
			}
		}
	}
}

func TestGenerationWrap(t *testing.T) {
	src := testInputs()["text"]
	for _, level := range []int{0, 9} {
		c := mustCompressor(t, level)
		want := roundTrip(t, c, src)
		// Force the generation base close to its limit.
		if c.fast != nil {
			c.fast.base = genMax - genGap - 10
		} else {
			c.hc.base = genMax - genGap - 10
		}
		for i := 0; i < 3; i++ {
			if got := roundTrip(t, c, src); !bytes.Equal(got, want) {
				t.Fatalf("level %d: output changed across a generation reset", level)
			}
		}
	}
}

func TestDestSize(t *testing.T) {
	inputs := testInputs()
	budgets := []int{2, 3, 7, 13, 20, 64, 100, 512, 4095, 4096, 4097, 65536}
	for _, level := range []int{0, 1, 9, 12} {
		c := mustCompressor(t, level)
		for name, src := range inputs {
			if len(src) == 0 {
				continue
			}
			full := make([]byte, CompressBound(len(src)))
			fn := c.Compress(full, src)
			for _, b := range budgets {
				if level == 12 && len(src) > 100000 && b > 4096 {
					continue
				}
				blk, consumed := destSize(t, c, src, b)
				if consumed == 0 {
					t.Fatalf("level %d %s budget %d: nothing consumed", level, name, b)
				}
				if fn <= b {
					// Everything fits: destsize must equal plain compression.
					if consumed != len(src) || !bytes.Equal(blk, full[:fn]) {
						t.Errorf("level %d %s budget %d: fits fully (%d bytes) but consumed %d/%d",
							level, name, b, fn, consumed, len(src))
					}
					continue
				}
				// Not everything fits: the output must use the budget nearly
				// fully (a sequence plus final literals is at most ~20 bytes).
				if b >= 64 && len(blk) < b-20 {
					t.Errorf("level %d %s budget %d: used only %d bytes, consumed %d", level, name, b, len(blk), consumed)
				}
				// Literals alone fit maxLiterals(b) bytes; we must do at least as well.
				if want := min(maxLiterals(b), len(src)); consumed < want {
					t.Errorf("level %d %s budget %d: consumed %d < %d (all literals)", level, name, b, consumed, want)
				}
			}
		}
	}
}

func TestDestSizeTiny(t *testing.T) {
	c := mustCompressor(t, 0)
	src := []byte("hello, world")
	for _, b := range []int{0, 1} {
		if n, k := c.CompressDestSize(make([]byte, b), src); n != 0 || k != 0 {
			t.Errorf("budget %d: got %d, %d", b, n, k)
		}
	}
	if n, k := c.CompressDestSize(make([]byte, 10), nil); n != 0 || k != 0 {
		t.Errorf("empty src: got %d, %d", n, k)
	}
	dst := make([]byte, 2)
	if n, k := c.CompressDestSize(dst, src); n != 2 || k != 1 || dst[0] != 0x10 || dst[1] != 'h' {
		t.Errorf("budget 2: got %d, %d, % x", n, k, dst)
	}
}

func TestDestSizeRandomBudgets(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	inputs := testInputs()
	srcs := [][]byte{inputs["mixed"], inputs["text"], inputs["random"], inputs["zeros"], inputs["far"]}
	for _, level := range []int{0, 2, 9} {
		c := mustCompressor(t, level)
		for i := 0; i < 300; i++ {
			src := srcs[r.IntN(len(srcs))]
			off := r.IntN(len(src))
			destSize(t, c, src[off:], 2+r.IntN(9000))
		}
	}
}

func TestMaxLiterals(t *testing.T) {
	for room := 0; room < 3000; room++ {
		want := 0
		for l := 0; l <= room; l++ {
			if 1+lenExtra(l)+l <= room {
				want = l
			}
		}
		if got := maxLiterals(room); got != want {
			t.Fatalf("maxLiterals(%d) = %d, want %d", room, got, want)
		}
	}
}

func TestFirstByteNonZero(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, level := range []int{0, 9} {
		c := mustCompressor(t, level)
		for i := 0; i < 200; i++ {
			n := 1 + r.IntN(3000)
			var src []byte
			switch i % 3 {
			case 0:
				src = make([]byte, n)
			case 1:
				src = textLike(r, n)
			default:
				src = randBytes(r, n)
			}
			blk := roundTrip(t, c, src)
			if blk[0] == 0 {
				t.Fatalf("level %d: block of %d bytes starts with 0", level, n)
			}
			d, k := destSize(t, c, src, 2+r.IntN(200))
			if k > 0 && d[0] == 0 {
				t.Fatalf("level %d: destsize block starts with 0", level)
			}
		}
	}
}

func TestNewCompressorLevels(t *testing.T) {
	for _, l := range []int{-1, 13, 100} {
		if _, err := NewCompressor(l); err == nil {
			t.Errorf("level %d accepted", l)
		}
	}
	want := map[int]int{1: 2, 2: 2, 3: 4, 4: 8, 9: 256, 10: 1024, 11: 4096, 12: 16384}
	for l, a := range want {
		if got := hcAttempts(l); got != a {
			t.Errorf("hcAttempts(%d) = %d, want %d", l, got, a)
		}
	}
}

func TestCompressBound(t *testing.T) {
	if CompressBound(-1) != 0 || CompressBound(maxInputSize+1) != 0 {
		t.Error("bound of invalid sizes not 0")
	}
	if CompressBound(0) != 16 || CompressBound(255) != 256+16 {
		t.Error("unexpected bound")
	}
}

func TestCompressEmpty(t *testing.T) {
	c := mustCompressor(t, 9)
	dst := []byte{0xAA}
	if n := c.Compress(dst, nil); n != 1 || dst[0] != 0 {
		t.Errorf("empty: %d % x", n, dst)
	}
	if n := c.Compress(nil, nil); n != 0 {
		t.Errorf("empty into nothing: %d", n)
	}
	if n, err := Decompress(nil, []byte{0}); n != 0 || err != nil {
		t.Errorf("decode empty block: %d %v", n, err)
	}
}

func TestDecompressErrors(t *testing.T) {
	cases := []struct {
		name string
		blk  []byte
		dst  int
		want error
	}{
		{"empty", nil, 10, ErrCorrupt},
		{"truncated literals", []byte{0x30, 'a', 'b'}, 10, ErrCorrupt},
		{"truncated literal length", []byte{0xF0}, 100, ErrCorrupt},
		{"truncated literal length 255", []byte{0xF0, 255}, 1000, ErrCorrupt},
		{"half offset", []byte{0x11, 'a', 1}, 10, ErrCorrupt},
		{"zero offset", []byte{0x10, 'a', 0, 0, 0x00}, 10, ErrCorrupt},
		{"offset before start", []byte{0x10, 'a', 2, 0, 0x00}, 10, ErrCorrupt},
		{"offset at start", []byte{0x00, 1, 0, 0x00}, 10, ErrCorrupt},
		{"truncated match length", []byte{0x1F, 'a', 1, 0}, 100, ErrCorrupt},
		{"no final literals", []byte{0x10, 'a', 1, 0}, 100, ErrCorrupt},
		{"literals overflow", []byte{0x30, 'a', 'b', 'c'}, 2, ErrShortBuffer},
		{"match overflow", []byte{0x10, 'a', 1, 0, 0x00}, 4, ErrShortBuffer},
		{"huge match", []byte{0x1F, 'a', 1, 0, 255, 255, 255, 10, 0x00}, 100, ErrShortBuffer},
	}
	for _, tc := range cases {
		dst := make([]byte, tc.dst)
		_, err := Decompress(dst, tc.blk)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	// A valid block followed by garbage is not a block.
	if _, err := Decompress(make([]byte, 10), []byte{0x10, 'a', 0x10}); err == nil {
		t.Error("trailing byte accepted")
	}
}

func TestDecompressUntouched(t *testing.T) {
	c := mustCompressor(t, 0)
	src := textLike(rand.New(rand.NewPCG(5, 5)), 5000)
	blk := roundTrip(t, c, src)
	dst := bytes.Repeat([]byte{0xEE}, 6000)
	n, err := Decompress(dst, blk)
	if err != nil || n != len(src) {
		t.Fatal(n, err)
	}
	for _, b := range dst[n:] {
		if b != 0xEE {
			t.Fatal("bytes past the output were modified")
		}
	}
}

func TestDecompressPartial(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	src := testInputs()["mixed"]
	for _, level := range []int{0, 9} {
		blk := roundTrip(t, mustCompressor(t, level), src)
		for i := 0; i < 200; i++ {
			k := r.IntN(len(src) + 1)
			if i == 0 {
				k = len(src)
			}
			dst := make([]byte, k)
			n, err := DecompressPartial(dst, blk)
			if err != nil || n != k || !bytes.Equal(dst, src[:k]) {
				t.Fatalf("partial %d: n=%d err=%v", k, n, err)
			}
		}
		// Larger dst than needed: whole block.
		dst := make([]byte, len(src)+100)
		if n, err := DecompressPartial(dst, blk); err != nil || n != len(src) {
			t.Fatalf("partial with room: %d %v", n, err)
		}
	}
	// Corruption before the requested prefix is still reported.
	if _, err := DecompressPartial(make([]byte, 10), []byte{0x10, 'a', 5, 0, 0x00}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("corrupt partial: %v", err)
	}
}

// TestCorpusRoundTrip compresses files from a directory named by
// LZ4_TEST_CORPUS (e.g. a root file system), by default this repository's
// own files (source, text and compressed test data), at every level family.
func TestCorpusRoundTrip(t *testing.T) {
	dir := os.Getenv("LZ4_TEST_CORPUS")
	if dir == "" {
		dir = "../.."
	}
	files := corpusFiles(t, dir, 300)
	for _, level := range []int{0, 9} {
		c := mustCompressor(t, level)
		for _, f := range files {
			roundTrip(t, c, f)
			for off := 0; off < len(f); {
				_, k := destSize(t, c, f[off:], 4096)
				off += k
			}
		}
	}
}

// corpusFiles reads up to max regular files below dir.
func corpusFiles(t testing.TB, dir string, max int) [][]byte {
	t.Helper()
	var files [][]byte
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if err != nil || !d.Type().IsRegular() || (max > 0 && len(files) >= max) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err == nil && len(b) > 0 {
			files = append(files, b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestHCSkipRuns checks that level-9 searches reach candidates behind many
// runs of zeros, which searches stepping through the runs cannot within
// their attempts: a zero run followed by a tail seen once before, with 100
// zero runs in between (800 positions starting with 4 zero bytes, 2 tries
// each when skipping).
func TestHCSkipRuns(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct {
		name string
		run  int // length of the searched run
	}{
		// The filler's runs are as long as the searched one: the search
		// tries where the searched run would end in each.
		{"equal runs", 11},
		// The filler's runs are shorter: the search tries their starts.
		{"longer run", 40},
	} {
		tail := []byte("QWERTYUIOP")
		target := append(make([]byte, tc.run), tail...)
		src := append([]byte{0xAA}, target...)
		for i := 0; i < 100; i++ {
			rec := randBytes(r, 13)
			for j := range rec {
				rec[j] |= 1 // no zeros outside the runs
			}
			src = append(src, rec...)
			src = append(src, make([]byte, 11)...)
		}
		src = append(src, 0xBB)
		ip := len(src)
		src = append(src, target...)
		src = append(src, bytes.Repeat([]byte{0xCC}, 16)...)
		if ip-1 > MaxDistance {
			t.Fatalf("%s: test input too long", tc.name)
		}
		for _, skip := range []bool{false, true} {
			s := newHCState(hcAttempts(LevelHCDefault))
			s.skipRuns = skip
			s.gen = beginGen(&s.base, len(src), func() {})
			s.src, s.next = src, 0
			s.matchlimit = len(src) - lastLiterals
			ml, start, ref := s.find(ip, ip, minMatch-1)
			found := ml >= len(target) && start == ip && ref == 1
			if found != skip {
				t.Errorf("%s: skipRuns=%v: match of %d bytes at %d from %d; want %d bytes from 1 found only when skipping runs",
					tc.name, skip, ml, start, ref, len(target))
			}
			if ml > 0 && !bytes.Equal(src[start:start+ml], src[ref:ref+ml]) {
				t.Errorf("%s: skipRuns=%v: reported match of %d bytes does not match", tc.name, skip, ml)
			}
		}
		// The whole parser finds it too, and the block decodes.
		blk := roundTrip(t, mustCompressor(t, LevelHCDefault), src)
		if checkBlock(t, blk) != len(src) {
			t.Fatalf("%s: block size mismatch", tc.name)
		}
	}
}
