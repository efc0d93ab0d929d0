package lzma

import (
	"bufio"
	"bytes"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestEmptyAndTinyBudgets(t *testing.T) {
	e, err := NewEncoder(Options{})
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 4096)
	if n, c := e.EncodeDestSize(dst, nil); n != 0 || c != 0 {
		t.Fatalf("empty input: n=%d consumed=%d", n, c)
	}
	for b := 0; b < 6; b++ {
		if n, c := e.EncodeDestSize(dst[:b], []byte("hello")); n != 0 || c != 0 {
			t.Fatalf("budget %d: n=%d consumed=%d", b, n, c)
		}
	}
	// Six bytes always hold one literal.
	n, c := roundTrip(t, e, []byte("hello"), 6, 0)
	if n != 6 || c != 1 {
		t.Fatalf("budget 6: n=%d consumed=%d, want 6, 1", n, c)
	}
	d := make([]byte, 16)
	e.EncodeDestSize(d, []byte("hello"))
	if d[0] != 0xA2 {
		t.Fatalf("first byte %#x, want 0xA2 (NOT of props 0x5D)", d[0])
	}
}

func TestFirstByteIsInvertedProps(t *testing.T) {
	for _, o := range []Options{{}, {LC: 0, LP: 2, PB: 0}, {LC: 4, PB: 4}, {LC: 1, LP: 3, PB: 1}} {
		e, err := NewEncoder(o)
		if err != nil {
			t.Fatal(err)
		}
		want := ^propsByte(int(e.lc), int(e.lp), int(e.pb))
		src := testInputs(t)["mixed1m"][:50000]
		dst := make([]byte, 4096)
		n, c := e.EncodeDestSize(dst, src)
		if dst[0] != want {
			t.Fatalf("%+v: first byte %#x, want %#x", o, dst[0], want)
		}
		out := make([]byte, c)
		if err := Decode(out, dst[:n], DefaultDictSize); err != nil || !bytes.Equal(out, src[:c]) {
			t.Fatalf("%+v: round trip failed: %v", o, err)
		}
	}
}

func TestNewEncoderOptions(t *testing.T) {
	bad := []Options{
		{Level: 10}, {Level: -1}, {DictSize: 100}, {DictSize: MaxDictSize + 1},
		{LC: 4, LP: 1}, {PB: 5, LC: 1}, {LC: -1, PB: 2},
	}
	for _, o := range bad {
		if _, err := NewEncoder(o); err == nil {
			t.Errorf("NewEncoder(%+v) succeeded", o)
		}
	}
	for l := 1; l <= 9; l++ {
		e, err := NewEncoder(Options{Level: l, DictSize: 1 << 16})
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, e, testInputs(t)["mixed1m"][:60000], 8192, 1<<16)
	}
}

// TestDestSize checks the destsize contract: the stream never exceeds the
// budget, decodes to exactly the consumed prefix, a larger budget never
// consumes less, and the budget is used up to one symbol when the input
// is not exhausted.
func TestDestSize(t *testing.T) {
	e, err := NewEncoder(Options{DictSize: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewSource(2))
	inputs := testInputs(t)
	for _, name := range []string{"mixed1m", "random64k", "text", "zeros64k"} {
		src := inputs[name]
		prev := 0
		for b := 6; b < 3000; b += 1 + r.Intn(97) {
			n, c := roundTrip(t, e, src, b, 1<<16)
			if c < prev {
				t.Fatalf("%s: budget %d consumed %d < %d of a smaller budget", name, b, c, prev)
			}
			if c < len(src) && n < b-48 {
				t.Fatalf("%s: budget %d left %d bytes unused with input remaining", name, b, b-n)
			}
			prev = c
		}
	}
}

// TestDeterministicReuse checks that an Encoder's output does not depend on
// what it encoded before, including across the match finder's table reset.
func TestDeterministicReuse(t *testing.T) {
	inputs := testInputs(t)
	src := inputs["mixed1m"][:300000]
	enc := func(e *Encoder) []byte {
		dst := make([]byte, 20000)
		n, _ := e.EncodeDestSize(dst, src)
		return dst[:n]
	}
	e1, _ := NewEncoder(Options{DictSize: 1 << 18})
	want := enc(e1)
	e2, _ := NewEncoder(Options{DictSize: 1 << 18})
	for _, other := range []string{"text", "random64k", "zeros64k"} {
		e2.EncodeDestSize(make([]byte, 5000), inputs[other])
		if got := enc(e2); !bytes.Equal(got, want) {
			t.Fatalf("output changed after encoding %s", other)
		}
	}
	e2.mf.maxValue = 1<<32 - 100000 // force the stale-value wrap-around path
	e2.EncodeDestSize(make([]byte, 5000), inputs["text"])
	if got := enc(e2); !bytes.Equal(got, want) {
		t.Fatal("output changed after table wrap-around")
	}
}

type vector struct {
	stream, input         string
	budget, dict, n, cons int
}

func readVectors(t *testing.T) []vector {
	f, err := os.Open(filepath.Join("testdata", "vectors.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vs []vector
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 6 {
			t.Fatalf("bad vectors.txt line %q", sc.Text())
		}
		v := vector{stream: fs[0], input: fs[1]}
		for i, p := range []*int{&v.budget, &v.dict, &v.n, &v.cons} {
			if *p, err = strconv.Atoi(fs[2+i]); err != nil {
				t.Fatal(err)
			}
		}
		vs = append(vs, v)
	}
	return vs
}

// TestLiblzmaVectors decodes streams made by liblzma's MicroLZMA encoder and
// compares our encoder's destsize result with liblzma's on the same input.
func TestLiblzmaVectors(t *testing.T) {
	vs := readVectors(t)
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range vs {
		stream, err := os.ReadFile(filepath.Join("testdata", v.stream))
		if err != nil {
			t.Fatal(err)
		}
		input, err := os.ReadFile(filepath.Join("testdata", v.input))
		if err != nil {
			t.Fatal(err)
		}
		if len(stream) != v.n {
			t.Fatalf("%s: %d bytes, manifest says %d", v.stream, len(stream), v.n)
		}
		out := make([]byte, v.cons)
		if err := Decode(out, stream, v.dict); err != nil {
			t.Fatalf("%s: %v", v.stream, err)
		}
		if !bytes.Equal(out, input[:v.cons]) {
			t.Fatalf("%s: decoded data differs", v.stream)
		}
		e, err := NewEncoder(Options{DictSize: v.dict})
		if err != nil {
			t.Fatal(err)
		}
		n, c := roundTrip(t, e, input, v.budget, v.dict)
		t.Logf("%s: liblzma n=%d consumed=%d, ours n=%d consumed=%d", v.stream, v.n, v.cons, n, c)
		if v.budget >= 1000 {
			// Ours must be about as good: consume at least 98% as much, or,
			// if both consumed everything, be at most 2% larger.
			if c < v.cons*98/100 || (c == v.cons && c == len(input) && n > v.n*102/100) {
				t.Errorf("%s: ours n=%d consumed=%d is clearly worse than liblzma's n=%d consumed=%d", v.stream, n, c, v.n, v.cons)
			}
		}
	}
}

func mustEncode(t *testing.T, src []byte, budget, dict int) []byte {
	t.Helper()
	e, err := NewEncoder(Options{DictSize: dict})
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, budget)
	n, c := e.EncodeDestSize(dst, src)
	if c != len(src) {
		t.Fatalf("input not fully consumed: %d of %d", c, len(src))
	}
	return dst[:n]
}

func TestDecodeErrors(t *testing.T) {
	src := testInputs(t)["mixed1m"][:100000]
	stream := mustEncode(t, src, 1<<20, 1<<20)
	check := func(name string, dst, s []byte, dict int) {
		t.Helper()
		err := Decode(dst, s, dict)
		if err == nil {
			t.Errorf("%s: no error", name)
		} else if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: error %v does not wrap ErrCorrupt", name, err)
		}
	}
	if err := Decode(make([]byte, len(src)), stream, 1<<20); err != nil {
		t.Fatal(err)
	}
	for _, cut := range []int{0, 1, 4, 5, 6, len(stream) / 2, len(stream) - 2, len(stream) - 1} {
		check("truncated to "+strconv.Itoa(cut), make([]byte, len(src)), stream[:cut], 1<<20)
	}
	check("trailing byte", make([]byte, len(src)), append(append([]byte{}, stream...), 0), 1<<20)
	check("output too long", make([]byte, len(src)+1), stream, 1<<20)
	check("output too short", make([]byte, len(src)-1), stream, 1<<20)
	check("output empty", nil, stream, 1<<20)
	bad := append([]byte{}, stream...)
	bad[0] = ^byte(225) // properties byte out of range
	check("bad props", make([]byte, len(src)), bad, 1<<20)
	bad[0] = ^propsByte(4, 1, 2) // lc+lp > 4
	check("lc+lp>4", make([]byte, len(src)), bad, 1<<20)
	// The mixed input has matches reaching back further than 256 bytes.
	check("dictionary too small", make([]byte, len(src)), stream, 256)
	r := rand.New(rand.NewSource(3))
	for i := 0; i < 200; i++ {
		g := make([]byte, 5+r.Intn(200))
		r.Read(g)
		g[0] = 0xA2
		if Decode(make([]byte, 1+r.Intn(5000)), g, 1<<20) == nil {
			// Garbage may decode by chance only if it also ends exactly; that
			// is astronomically unlikely for these sizes.
			t.Errorf("garbage %d decoded without error", i)
		}
	}
	for i := 0; i < 200; i++ {
		flip := append([]byte{}, stream...)
		flip[1+r.Intn(len(flip)-1)] ^= byte(1 + r.Intn(255))
		out := make([]byte, len(src))
		if Decode(out, flip, 1<<20) == nil && bytes.Equal(out, src) {
			t.Errorf("bit flip %d went unnoticed", i)
		}
	}
}
