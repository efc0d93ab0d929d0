package lzma

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestDecodePrefix decodes every prefix length of streams from both
// encoders: each must give exactly that prefix of the input, including
// lengths that end inside a match (which Decode rejects as an overrun).
func TestDecodePrefix(t *testing.T) {
	type stream struct {
		name    string
		s, want []byte
		dict    int
	}
	var streams []stream
	for _, v := range readVectors(t) {
		if v.cons > 6000 {
			continue // keeps the quadratic loop below quick
		}
		s, err := os.ReadFile(filepath.Join("testdata", v.stream))
		if err != nil {
			t.Fatal(err)
		}
		in, err := os.ReadFile(filepath.Join("testdata", v.input))
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, stream{v.stream, s, in[:v.cons], v.dict})
	}
	inputs := testInputs(t)
	for _, name := range []string{"text", "mixed1m", "zeros64k", "random4k"} {
		src := inputs[name][:min(len(inputs[name]), 5000)]
		streams = append(streams, stream{"ours-" + name, mustEncode(t, src, 1<<16, 1<<16), src, 1 << 16})
	}
	cutMatches := 0
	for _, st := range streams {
		dst := make([]byte, len(st.want))
		// Every length up to 600, then a stride that keeps this quick.
		for k := 0; k <= len(st.want); k += 1 + k/600*4 {
			for i := range dst {
				dst[i] = 0xA5
			}
			if err := DecodePrefix(dst[:k], st.s, st.dict); err != nil {
				t.Fatalf("%s: prefix of %d bytes: %v", st.name, k, err)
			}
			if !bytes.Equal(dst[:k], st.want[:k]) {
				t.Fatalf("%s: prefix of %d bytes differs", st.name, k)
			}
			if bytes.Count(dst[k:], []byte{0xA5}) != len(dst)-k {
				t.Fatalf("%s: prefix of %d bytes wrote past its end", st.name, k)
			}
			if k < len(st.want) {
				if err := Decode(dst[:k], st.s, st.dict); err == nil {
					t.Fatalf("%s: Decode accepted a %d-byte output for a %d-byte stream", st.name, k, len(st.want))
				} else if bytes.Contains([]byte(err.Error()), []byte("overruns")) {
					cutMatches++
				}
			}
		}
	}
	if cutMatches == 0 {
		t.Error("no prefix length ended inside a match")
	}
	t.Logf("%d prefixes ended inside a match", cutMatches)
}

// TestDecodePrefixErrors: problems met before the prefix is complete are
// reported; what follows the prefix is not looked at.
func TestDecodePrefixErrors(t *testing.T) {
	src := testInputs(t)["mixed1m"][:100000]
	stream := mustEncode(t, src, 1<<20, 1<<20)
	check := func(name string, dst, s []byte, dict int) {
		t.Helper()
		err := DecodePrefix(dst, s, dict)
		if err == nil {
			t.Errorf("%s: no error", name)
		} else if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: error %v does not wrap ErrCorrupt", name, err)
		}
	}
	for _, cut := range []int{0, 1, 4, 5, 6, len(stream) / 2} {
		check("truncated to "+strconv.Itoa(cut), make([]byte, len(src)), stream[:cut], 1<<20)
	}
	check("output far too long", make([]byte, len(src)+4096), stream, 1<<20)
	check("dictionary too small", make([]byte, len(src)), stream, 256)
	bad := append([]byte{}, stream...)
	bad[0] = ^propsByte(4, 1, 2)
	check("lc+lp>4", make([]byte, 10), bad, 1<<20)

	// The first half of the stream suffices for a short prefix, whatever
	// follows it.
	out := make([]byte, 1000)
	half := append([]byte{}, stream[:len(stream)/2]...)
	for _, tail := range [][]byte{nil, {0}, bytes.Repeat([]byte{0xFF}, 100)} {
		if err := DecodePrefix(out, append(half, tail...), 1<<20); err != nil || !bytes.Equal(out, src[:1000]) {
			t.Errorf("prefix of a cut stream with %d bytes of junk: %v", len(tail), err)
		}
	}
	// A full-length prefix is a full decode.
	full := make([]byte, len(src))
	if err := DecodePrefix(full, stream, 1<<20); err != nil || !bytes.Equal(full, src) {
		t.Errorf("full-length prefix: %v", err)
	}
	if err := DecodePrefix(nil, stream, 1<<20); err != nil {
		t.Errorf("empty prefix: %v", err)
	}
}
