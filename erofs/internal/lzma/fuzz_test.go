package lzma

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// fuzzMinimizeTime is the fuzz targets' default for -test.fuzzminimizetime.
const fuzzMinimizeTime = "0"

// limitMinimize sets -test.fuzzminimizetime to fuzzMinimizeTime unless it
// was given. The fuzzing engine minimizes every input that finds new
// coverage, by default for up to 60s, with a quadratic algorithm whose
// executions it does not report: for inputs of kilobytes that each take a
// millisecond to encode, every minimization ran out the clock, and
// FuzzRoundTrip reported 43 executions in 5 minutes (FuzzDecode 37 in 20
// seconds). A crasher is still saved, as found.
func limitMinimize(f *testing.F) {
	minimizeOnce.Do(func() {
		set := false
		flag.Visit(func(fl *flag.Flag) { set = set || fl.Name == "test.fuzzminimizetime" })
		if fl := flag.Lookup("test.fuzzminimizetime"); fl != nil && !set {
			minimizeErr = fl.Value.Set(fuzzMinimizeTime)
		}
	})
	if minimizeErr != nil {
		f.Fatal(minimizeErr)
	}
}

// minimizeOnce makes limitMinimize set the flag once per process (it runs
// for each target, and again with -count=2): setting a zero duration a
// second time fails, as the flag then forgets that zero is allowed.
var (
	minimizeOnce sync.Once
	minimizeErr  error
)

// FuzzDecode feeds arbitrary streams and output sizes to Decode and
// DecodePrefix: they must return (an error or not) without panicking or
// hanging, and agree: where Decode succeeds, DecodePrefix gives the same
// bytes and every prefix of them.
func FuzzDecode(f *testing.F) {
	limitMinimize(f)
	for _, v := range []struct{ stream, input string }{
		{"text.4096.mlzma", "text.in"}, {"mixed.1000.mlzma", "mixed.in"}, {"text.100.mlzma", "text.in"},
	} {
		s, err := os.ReadFile(filepath.Join("testdata", v.stream))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s, uint16(len(s)*3), uint32(32768))
	}
	f.Add([]byte{0xA2, 0, 0, 0, 0}, uint16(1), uint32(0))
	f.Fuzz(func(t *testing.T, stream []byte, outLen uint16, dict uint32) {
		out := make([]byte, int(outLen))
		d := int(dict & (MaxDictSize*2 - 1))
		exact := Decode(out, stream, d)
		pre := make([]byte, len(out))
		perr := DecodePrefix(pre, stream, d)
		if exact != nil {
			return
		}
		if perr != nil || !bytes.Equal(pre, out) {
			t.Fatalf("Decode succeeded, DecodePrefix of the same length: %v", perr)
		}
		k := int(dict>>24) % (len(out) + 1)
		clear(pre)
		if err := DecodePrefix(pre[:k], stream, d); err != nil || !bytes.Equal(pre[:k], out[:k]) {
			t.Fatalf("prefix of %d of %d bytes: %v", k, len(out), err)
		}
	})
}

// FuzzRoundTrip encodes arbitrary data with an arbitrary budget and options
// and checks the destsize contract and the round trip.
func FuzzRoundTrip(f *testing.F) {
	limitMinimize(f)
	text, _ := os.ReadFile(filepath.Join("testdata", "text.in"))
	mixed, _ := os.ReadFile(filepath.Join("testdata", "mixed.in"))
	f.Add(text[:3000], uint16(500), byte(0))
	f.Add(mixed[:5000], uint16(4096), byte(1))
	f.Add(bytes.Repeat([]byte{0}, 3000), uint16(6), byte(2))
	f.Add([]byte("a"), uint16(6), byte(3))
	encs := map[byte]*Encoder{}
	f.Fuzz(func(t *testing.T, src []byte, budget uint16, optSel byte) {
		o := Options{DictSize: MinDictSize << (optSel & 3)}
		switch (optSel >> 2) & 3 {
		case 1:
			o.LC, o.LP, o.PB = 0, 2, 0
		case 2:
			o.LC, o.LP, o.PB = 4, 0, 4
		case 3:
			o.Level = 1
		}
		e := encs[optSel&15]
		if e == nil {
			var err error
			if e, err = NewEncoder(o); err != nil {
				t.Fatal(err)
			}
			encs[optSel&15] = e
		}
		dst := make([]byte, int(budget))
		n, c := e.EncodeDestSize(dst, src)
		if n > len(dst) || c > len(src) || (n == 0) != (c == 0) {
			t.Fatalf("budget %d, src %d: n=%d consumed=%d", budget, len(src), n, c)
		}
		if len(src) > 0 && budget >= 6 && c == 0 {
			t.Fatalf("budget %d: nothing consumed", budget)
		}
		if c == 0 {
			return
		}
		out := make([]byte, c)
		if err := Decode(out, dst[:n], o.DictSize); err != nil {
			t.Fatalf("budget %d, src %d, n=%d, consumed=%d: %v", budget, len(src), n, c, err)
		}
		if !bytes.Equal(out, src[:c]) {
			t.Fatal("round trip mismatch")
		}
		k := int(budget) * 7 % (c + 1)
		pre := make([]byte, k)
		if err := DecodePrefix(pre, dst[:n], o.DictSize); err != nil || !bytes.Equal(pre, src[:k]) {
			t.Fatalf("budget %d, consumed %d: prefix of %d bytes: %v", budget, c, k, err)
		}
	})
}
