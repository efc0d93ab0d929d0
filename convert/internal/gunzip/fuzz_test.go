package gunzip

import (
	"bytes"
	"flag"
	"io"
	"sync"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"
)

// fuzzMinimizeTime is the fuzz targets' default for -test.fuzzminimizetime.
const fuzzMinimizeTime = "0"

// limitMinimize sets -test.fuzzminimizetime to fuzzMinimizeTime unless it
// was given. The fuzzing engine minimizes every input that finds new
// coverage, by default for up to 60s, with a quadratic algorithm whose
// executions it does not report: with inputs of up to 64 KiB every
// minimization ran out the clock, and FuzzCompressed reported 219
// executions in 5 minutes. A crasher is still saved, as found.
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

// FuzzCompressed round-trips arbitrary data compressed at several levels.
func FuzzCompressed(f *testing.F) {
	limitMinimize(f)
	for _, s := range samples()[:6] {
		if len(s) > 64<<10 {
			s = s[:64<<10]
		}
		f.Add(s, uint8(6))
	}
	// One gzip writer per level, Reset for each input (the output is that
	// of a new writer): a new klauspost writer allocates up to a megabyte,
	// which made it most of an execution's time.
	writers := map[int]*kgzip.Writer{}
	var buf bytes.Buffer
	f.Fuzz(func(t *testing.T, data []byte, level uint8) {
		lv := int(level%11) - 1 // -1 (default) .. 9
		if level == 255 {
			lv = kgzip.HuffmanOnly
		}
		buf.Reset()
		w := writers[lv]
		if w == nil {
			var err error
			if w, err = kgzip.NewWriterLevel(&buf, lv); err != nil {
				t.Fatal(err)
			}
			writers[lv] = w
		} else {
			w.Reset(&buf)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		got, err := decodeAll(bytes.NewReader(buf.Bytes()))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("level %d: err %v, equal %v", lv, err, bytes.Equal(got, data))
		}
	})
}

// FuzzReader feeds arbitrary bytes: never a panic or hang, and wherever
// klauspost/compress decodes the stream without error, the same output.
func FuzzReader(f *testing.F) {
	limitMinimize(f)
	for _, s := range samples()[:6] {
		if len(s) > 16<<10 {
			s = s[:16<<10]
		}
		f.Add(gz(f, s, 6))
		f.Add(gz(f, s, 1))
		f.Add(gz(f, s, 0))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeAll(bytes.NewReader(data))
		kr, kerr := kgzip.NewReader(bytes.NewReader(data))
		var want []byte
		if kerr == nil {
			want, kerr = io.ReadAll(kr)
		}
		if kerr == nil && (err != nil || !bytes.Equal(got, want)) {
			t.Fatalf("klauspost decodes the stream, we give err %v, equal %v", err, bytes.Equal(got, want))
		}
		if err == nil && kerr != nil {
			t.Fatalf("we accept a stream klauspost rejects (%v)", kerr)
		}
	})
}

// FuzzParallel feeds arbitrary streams to the parallel path with a chunk
// size of its choice: output and errors as the sequential path,
// klauspost/compress and compress/gzip. Seeds: stored blocks,
// back-references across chunk boundaries, multi-member, cut and
// corrupted streams, a wrong CRC.
func FuzzParallel(f *testing.F) {
	limitMinimize(f)
	text := samples()[4][:20000]
	mixed := samples()[5][:30000]
	f.Add(gz(f, mixed, 0), uint16(200))
	f.Add(gz(f, text, 6), uint16(64))
	f.Add(gz(f, mixed, 6), uint16(500))
	f.Add(gz(f, mixed, 1), uint16(1000))
	f.Add(append(gz(f, text[:3000], 6), gz(f, mixed[:5000], 1)...), uint16(300))
	m := gz(f, mixed, 6)
	f.Add(m[:len(m)/2], uint16(100))
	bad := append([]byte(nil), m...)
	bad[len(bad)/3] ^= 4
	f.Add(bad, uint16(700))
	// A wrong CRC-32 (Read computes it, adding the workers' parts).
	badCRC := append([]byte(nil), m...)
	badCRC[len(badCRC)-6] ^= 1
	f.Add(badCRC, uint16(301))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16) {
		c := config{workers: 2, chunkSize: 16 + int(chunk%4096), force: true, noSteal: chunk&1 == 0}
		if chunk&2 != 0 {
			c.maxMarked = windowSize + int(chunk>>2%4096)
		}
		if chunk&0x8000 != 0 {
			c.maxOut = 1 + int(chunk>>4%2048)*16
		}
		checkAgainst(t, data, c, "fuzz")
	})
}
