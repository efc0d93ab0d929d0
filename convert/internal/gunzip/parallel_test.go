package gunzip

import (
	"bytes"
	"compress/gzip"
	"errors"
	"hash/crc32"
	"io"
	"math/rand"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"
)

// decodeWith decodes all of data with configuration c.
func decodeWith(data []byte, c config) ([]byte, error) {
	z, err := newReader(bytes.NewReader(data), c)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(z)
}

func TestCRC32Combine(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	for _, n := range [][2]int{{0, 0}, {1, 0}, {0, 1}, {5, 7}, {1000, 33}, {3, 100000}} {
		a, b := make([]byte, n[0]), make([]byte, n[1])
		rng.Read(a)
		rng.Read(b)
		want := crc32.ChecksumIEEE(append(append([]byte(nil), a...), b...))
		if got := crc32Combine(crc32.ChecksumIEEE(a), crc32.ChecksumIEEE(b), int64(len(b))); got != want {
			t.Errorf("lengths %v: %08x, want %08x", n, got, want)
		}
	}
}

// parallelConfigs are the forced parallel configurations the tests run:
// chunks small enough that every sample spans many.
var parallelConfigs = []config{
	{workers: 2, chunkSize: 97, force: true},
	{workers: 1, chunkSize: 4 << 10, force: true, noSteal: true},
	{workers: 2, chunkSize: 4 << 10, force: true},
	{workers: 4, chunkSize: 64 << 10, force: true, noSteal: true},
	{workers: 1, chunkSize: 16 << 10, force: true},
	{workers: 2, chunkSize: 8 << 10, force: true, noSteal: true, maxMarked: windowSize + 512},
	{workers: 3, chunkSize: 8 << 10, force: true, maxOut: 10 << 10},
}

// TestParallel decodes the samples with the parallel path forced on, each
// compressed form with two of the configurations, in turn.
func TestParallel(t *testing.T) {
	for i, data := range samples() {
		for li, level := range []int{0, 1, 6, 9, kgzip.HuffmanOnly} {
			comp := gz(t, data, level)
			for n := range 3 {
				c := parallelConfigs[(i+li+2*n)%len(parallelConfigs)]
				if c.chunkSize < 1000 && len(comp) > 64<<10 {
					continue // thousands of chunks: slow, and covered below
				}
				got, err := decodeWith(comp, c)
				if err != nil {
					t.Fatalf("sample %d level %d %+v: %v", i, level, c, err)
				}
				if !bytes.Equal(got, data) {
					t.Fatalf("sample %d level %d %+v: output differs", i, level, c)
				}
			}
		}
	}
}

// TestParallelUsed checks that chunks are decoded speculatively and
// chained, not all by the consumer (which here never takes a chunk from
// the workers).
func TestParallelUsed(t *testing.T) {
	// The standard library's writer ends a block every 16K symbols.
	data := words(1 << 20)
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, 6)
	w.Write(data)
	w.Close()
	comp := b.Bytes()
	z, err := newReader(bytes.NewReader(comp), config{workers: 2, chunkSize: 64 << 10, force: true, noSteal: true})
	if err != nil {
		t.Fatal(err)
	}
	p := z.p
	got, err := io.ReadAll(z)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("err %v, equal %v", err, bytes.Equal(got, data))
	}
	if p.accepted < 3 || p.accepted < 2*p.fallbacks {
		t.Fatalf("%d chunks used, %d decoded again", p.accepted, p.fallbacks)
	}
	t.Logf("%d chunks used, %d decoded again, %d skipped", p.accepted, p.fallbacks, p.skipped)
}

// words is n bytes of random words: text that compresses about 3:1.
func words(n int) []byte {
	rng := rand.New(rand.NewSource(4))
	vocab := make([][]byte, 3000)
	for i := range vocab {
		w := make([]byte, 2+rng.Intn(9))
		for j := range w {
			w[j] = 'a' + byte(rng.Intn(26))
		}
		vocab[i] = w
	}
	var b []byte
	for len(b) < n {
		b = append(b, vocab[int(rng.ExpFloat64()*300)%len(vocab)]...)
		b = append(b, ' ')
	}
	return b[:n]
}

// TestParallelErrors checks corrupt, truncated and multi-member streams on
// the parallel path against the sequential one and klauspost/compress.
func TestParallelErrors(t *testing.T) {
	one := gz(t, samples()[5], 6)
	two := append(gz(t, samples()[4][:100000], 1), gz(t, []byte("second member"), 6)...)
	var cases [][]byte
	cases = append(cases, two, append(two, 'x'), append(one, 0x1f, 0x8b))
	for _, cut := range []int{11, 100, len(one) / 2, len(one) - 8, len(one) - 1} {
		cases = append(cases, one[:cut])
	}
	rng := rand.New(rand.NewSource(3))
	for i := 0; i < 30; i++ {
		bad := append([]byte(nil), one...)
		bad[10+rng.Intn(len(bad)-10)] ^= 1 << rng.Intn(8)
		cases = append(cases, bad)
	}
	for i, data := range cases {
		for _, c := range parallelConfigs[1:] {
			checkAgainst(t, data, c, i)
		}
	}
}

// checkAgainst decodes data with c, sequentially and with klauspost's and
// the standard library's gzip readers, and fails on any disagreement.
func checkAgainst(t *testing.T, data []byte, c config, name any) {
	t.Helper()
	got, err := decodeWith(data, c)
	seq, serr := decodeWith(data, config{sequential: true})
	if (err == nil) != (serr == nil) || err == nil && !bytes.Equal(got, seq) {
		t.Fatalf("%v %+v: parallel err %v, sequential err %v, equal %v", name, c, err, serr, bytes.Equal(got, seq))
	}
	// Corrupt data is found as such, not as a wrong CRC of what a
	// parallel decoder made of it.
	if errors.Is(err, errCorrupt) != errors.Is(serr, errCorrupt) {
		t.Fatalf("%v %+v: parallel err %v, sequential err %v", name, c, err, serr)
	}
	var want []byte
	kr, kerr := kgzip.NewReader(bytes.NewReader(data))
	if kerr == nil {
		want, kerr = io.ReadAll(kr)
	}
	if (err == nil) != (kerr == nil) || err == nil && !bytes.Equal(got, want) {
		t.Fatalf("%v %+v: err %v, klauspost err %v, equal %v", name, c, err, kerr, bytes.Equal(got, want))
	}
	sr, serr := gzip.NewReader(bytes.NewReader(data))
	if serr == nil {
		want, serr = io.ReadAll(sr)
	}
	if serr == nil && (err != nil || !bytes.Equal(got, want)) {
		t.Fatalf("%v %+v: compress/gzip decodes it, we give err %v, equal %v", name, c, err, bytes.Equal(got, want))
	}
}

// TestParallelStoredGzip decodes a layer-like stream holding gzip files,
// which the outer stream keeps in stored blocks: guessed boundaries fall
// into the inner files' blocks, which decode well until the inner stream
// ends. Chunks must still be used, not decoded again by the consumer.
func TestParallelStoredGzip(t *testing.T) {
	var data []byte
	for i := 0; i < 6; i++ {
		text := words(300 << 10)
		data = append(data, text[:100<<10]...)
		var b bytes.Buffer
		w, _ := gzip.NewWriterLevel(&b, 6)
		w.Write(text)
		w.Close()
		data = append(data, b.Bytes()...)
	}
	comp := gz(t, data, 6)
	z, err := newReader(bytes.NewReader(comp), config{workers: 2, chunkSize: 64 << 10, force: true, noSteal: true})
	if err != nil {
		t.Fatal(err)
	}
	p := z.p
	got, err := io.ReadAll(z)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("err %v, equal %v", err, bytes.Equal(got, data))
	}
	t.Logf("%d chunks used (%d after a gap), %d decoded again, %d skipped", p.accepted, p.bridged, p.fallbacks, p.skipped)
	if p.fallbacks > p.accepted/4 {
		t.Fatalf("%d chunks used, %d decoded again", p.accepted, p.fallbacks)
	}
}

// TestParallelResumed checks that a chunk that copies the unknown window
// for longer than its worker tracks is finished by the consumer, and
// right.
func TestParallelResumed(t *testing.T) {
	data := words(1 << 20)
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, 6)
	w.Write(data)
	w.Close()
	z, err := newReader(bytes.NewReader(b.Bytes()), config{workers: 2, chunkSize: 64 << 10, force: true, noSteal: true, maxMarked: windowSize + 4096})
	if err != nil {
		t.Fatal(err)
	}
	p := z.p
	got, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("output differs")
	}
	if p.resumed == 0 || p.resumed+p.accepted < 3 {
		t.Errorf("%d chunks finished by the consumer, %d used as decoded, %d decoded again", p.resumed, p.accepted, p.fallbacks)
	}
	// Chunks whose output outgrows its cap are finished the same way.
	z, err = newReader(bytes.NewReader(b.Bytes()), config{workers: 2, chunkSize: 64 << 10, force: true, noSteal: true, maxOut: 40 << 10})
	if err != nil {
		t.Fatal(err)
	}
	p = z.p
	if got, err = io.ReadAll(z); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("capped output: err %v, equal %v", err, bytes.Equal(got, data))
	}
	if p.resumed < 3 {
		t.Errorf("capped output: %d chunks finished by the consumer, %d used as decoded, %d decoded again", p.resumed, p.accepted, p.fallbacks)
	}
}

// TestNextCandidate checks the boundary scan against candidate at every
// bit.
func TestNextCandidate(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	buf := make([]byte, 1<<16+inputPad)
	rng.Read(buf[:1<<16])
	end := int64(1<<16) * 8
	b := int64(0)
	for want := int64(0); want < end; want++ {
		if !candidate(buf, want) {
			continue
		}
		if got := nextCandidate(buf, b, end); got != want {
			t.Fatalf("nextCandidate from %d: %d, want %d", b, got, want)
		}
		b = want + 1
	}
	if got := nextCandidate(buf, b, end); got != end {
		t.Fatalf("nextCandidate from %d: %d, want the end", b, got)
	}
	if got := nextCandidate(buf, 3, 5); got != 5 && !candidate(buf, got) {
		t.Fatalf("nextCandidate(3, 5) = %d", got)
	}
}
