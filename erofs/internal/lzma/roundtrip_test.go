package lzma

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// testInputs returns named inputs covering the interesting shapes of data.
func testInputs(t testing.TB) map[string][]byte {
	r := rand.New(rand.NewSource(1))
	rnd := func(n int) []byte {
		b := make([]byte, n)
		r.Read(b)
		return b
	}
	text := bytes.Repeat([]byte("The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs!\n"), 800)
	mixed := make([]byte, 0, 1<<20)
	for len(mixed) < 1<<20 {
		switch r.Intn(4) {
		case 0:
			mixed = append(mixed, rnd(r.Intn(300))...)
		case 1:
			mixed = append(mixed, make([]byte, r.Intn(2000))...)
		case 2:
			if len(mixed) > 0 {
				off := r.Intn(len(mixed))
				n := min(r.Intn(500), len(mixed)-off)
				mixed = append(mixed, mixed[off:off+n]...)
			}
		default:
			mixed = append(mixed, text[r.Intn(1000):][:r.Intn(3000)]...)
		}
	}
	in := map[string][]byte{
		"one":        {'x'},
		"two":        {0, 0},
		"random4k":   rnd(4096),
		"random4k-1": rnd(4095),
		"random4k+1": rnd(4097),
		"zeros64k":   make([]byte, 64<<10),
		"text":       text,
		"random64k":  rnd(64 << 10),
		"mixed1m":    mixed[:1<<20],
	}
	if b, err := os.ReadFile(filepath.Join("testdata", "..", "encoder.go")); err == nil {
		in["gosource"] = b
	}
	return in
}

func roundTrip(t *testing.T, e *Encoder, src []byte, budget, dict int) (n, c int) {
	t.Helper()
	dst := make([]byte, budget)
	n, c = e.EncodeDestSize(dst, src)
	if n > budget || c > len(src) || (n == 0) != (c == 0) {
		t.Fatalf("budget %d, src %d: got n=%d consumed=%d", budget, len(src), n, c)
	}
	if c == 0 {
		return
	}
	out := make([]byte, c)
	if err := Decode(out, dst[:n], dict); err != nil {
		t.Fatalf("budget %d, src %d, n=%d consumed=%d: %v", budget, len(src), n, c, err)
	}
	if !bytes.Equal(out, src[:c]) {
		t.Fatalf("budget %d, src %d: decoded data differs", budget, len(src))
	}
	return
}

func TestRoundTrip(t *testing.T) {
	e, err := NewEncoder(Options{DictSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for name, src := range testInputs(t) {
		for _, budget := range []int{6, 7, 16, 100, 4096, 4097, 65536, 2 << 20} {
			n, c := roundTrip(t, e, src, budget, 1<<20)
			t.Logf("%s budget %d: n=%d consumed=%d/%d", name, budget, n, c, len(src))
		}
	}
}
