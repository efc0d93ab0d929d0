package gunzip

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"math/rand"
	"runtime"
	"testing"
	"time"
	"unsafe"
)

// failAfter reads r and fails with err once n bytes were read.
type failAfter struct {
	r   io.Reader
	n   int
	err error
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

// TestParallelSourceError checks that a read error of the source, which
// the reading goroutine meets, is the Reader's error.
func TestParallelSourceError(t *testing.T) {
	comp := gz(t, words(1<<20), 6)
	boom := errors.New("boom")
	for _, cut := range []int{100, len(comp) / 3, len(comp) - 20} {
		for _, c := range parallelConfigs[1:5] {
			z, err := newReader(&failAfter{r: bytes.NewReader(comp), n: cut, err: boom}, c)
			if err == nil {
				_, err = io.ReadAll(z)
			}
			if !errors.Is(err, boom) {
				t.Errorf("cut at %d, %+v: err %v, want %v", cut, c, err, boom)
			}
		}
	}
}

// TestParallelStops checks that the goroutines of a parallel decoding end
// when the Reader is closed, or dropped, before the end of the member.
func TestParallelStops(t *testing.T) {
	comp := gz(t, words(4<<20), 6)
	base := runtime.NumGoroutine()
	for _, drop := range []bool{false, true} {
		func() {
			z, err := newReader(bytes.NewReader(comp), config{workers: 3, chunkSize: 16 << 10, force: true})
			if err != nil {
				t.Fatal(err)
			}
			if z.p == nil {
				t.Fatal("not decoding in parallel")
			}
			buf := make([]byte, 100<<10)
			if _, err := io.ReadFull(z, buf); err != nil {
				t.Fatal(err)
			}
			if drop {
				return
			}
			if err := z.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := z.Read(buf); err == nil {
				t.Error("read after Close succeeded")
			}
		}()
		deadline := time.Now().Add(20 * time.Second)
		for runtime.NumGoroutine() > base {
			if time.Now().After(deadline) {
				t.Fatalf("dropped %v: %d goroutines left", drop, runtime.NumGoroutine()-base)
			}
			runtime.GC()
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestAlloc checks that buffers of a megabyte or more start on a 2 MiB
// boundary, and that all are zero and of the length asked for.
func TestAlloc(t *testing.T) {
	for _, n := range []int{1000, 1 << 20, 2<<20 - 16, 3 << 20} {
		b := alloc[byte](n)
		if len(b) != n || cap(b) != n {
			t.Errorf("%d bytes: len %d, cap %d", n, len(b), cap(b))
		}
		if a := uintptr(unsafe.Pointer(unsafe.SliceData(b))); n >= 1<<20 && a&(2<<20-1) != 0 {
			t.Errorf("%d bytes at %#x", n, a)
		}
		if !bytes.Equal(b, make([]byte, n)) {
			t.Errorf("%d bytes: not zero", n)
		}
	}
	o := alloc[uint16](1 << 20)
	if a := uintptr(unsafe.Pointer(unsafe.SliceData(o))); len(o) != 1<<20 || a&(2<<20-1) != 0 {
		t.Errorf("orig: len %d at %#x", len(o), a)
	}
}

// TestResolve checks resolve against filling in the marked bytes one by
// one, for windows of all lengths, and that a mark before the window is
// an error.
func TestResolve(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	for _, w := range []int{windowSize, 1000, 1} {
		win := make([]byte, w)
		rng.Read(win)
		skip := windowSize + 1 - w
		for _, n := range []int{0, 15, 16, 17, 5000} {
			orig := make([]uint16, n)
			for i := range orig {
				// Runs of marks and of none, as copies of the window make.
				if i/37%3 == 0 && rng.Intn(4) != 0 {
					orig[i] = uint16(skip + rng.Intn(w))
				}
			}
			data := make([]byte, n)
			rng.Read(data)
			want := append([]byte(nil), data...)
			for i, v := range orig {
				if v != 0 {
					want[i] = win[int(v)-skip]
				}
			}
			if err := resolve(data, orig, win); err != nil || !bytes.Equal(data, want) {
				t.Fatalf("window %d, %d bytes: err %v, equal %v", w, n, err, bytes.Equal(data, want))
			}
		}
	}
	orig := make([]uint16, 40)
	orig[33] = 1
	if err := resolve(make([]byte, 40), orig, make([]byte, 10)); !errors.Is(err, errCorrupt) {
		t.Errorf("mark before the window: err %v", err)
	}
}

// TestNewReaderCores checks that a large member is decoded in parallel on
// two cores or more, and in order on one.
func TestNewReaderCores(t *testing.T) {
	data := words(12 << 20)
	comp := gz(t, data, 6)
	if len(comp) < 2*defaultChunkSize {
		t.Fatalf("%d bytes compressed: too few for two chunks", len(comp))
	}
	for _, cores := range []int{1, 2, 5} {
		z, err := NewReaderCores(bytes.NewReader(comp), cores)
		if err != nil {
			t.Fatal(err)
		}
		n := min(cores, runtime.GOMAXPROCS(0), maxCores)
		if parallel := z.p != nil; parallel != (n > 1) {
			t.Errorf("cores %d: parallel %v", cores, parallel)
		}
		if z.p != nil && z.p.workers != n-1 {
			t.Errorf("cores %d: %d workers", cores, z.p.workers)
		}
		got, err := io.ReadAll(z)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("cores %d: err %v, equal %v", cores, err, bytes.Equal(got, data))
		}
	}
}

// TestParallelWindowError checks that a worker's chunk copying bytes from
// before the start of the output fails as in the sequential decoder, as
// corrupt data: when those copies are followed by more than a window of
// other output, when they are copied on to the chunk's end, and when
// they come after the worker stopped (its output capped) for the
// consumer to finish the chunk. The stream is compressed with a preset
// dictionary that the gzip stream does not carry, so that its copies of
// the dictionary reach before the output's start.
func TestParallelWindowError(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	random := func(n int) []byte {
		b := make([]byte, n)
		rng.Read(b)
		return b
	}
	dict := random(32 << 10)
	// Each layout follows 20 KiB of output with no copies (the chunk
	// before) and a flush. Copies of dict[x:] at output byte o reach
	// 32768-x+o back: within 32 KiB, but before the start.
	layouts := []struct {
		name  string
		write func(w io.Writer)
	}{
		{"then other output", func(w io.Writer) {
			w.Write(dict[25000:27000])
			// Zeros decode to more than a window in a few bytes.
			w.Write(make([]byte, 100<<10))
			w.Write(random(20 << 10))
		}},
		{"copied on", func(w io.Writer) {
			for i := 0; i < 41; i++ {
				w.Write(dict[25000:27000])
			}
		}},
		{"after zeros", func(w io.Writer) {
			w.Write(make([]byte, 5000))
			w.Write(dict[29000:31000])
			w.Write(random(20 << 10))
		}},
	}
	configs := []config{
		{workers: 2, chunkSize: 16 << 10, force: true, noSteal: true},
		{workers: 2, chunkSize: 16 << 10, force: true, noSteal: true, maxOut: 1000},
		{workers: 2, chunkSize: 16 << 10, force: true, noSteal: true, maxMarked: windowSize + 1},
	}
	for _, l := range layouts {
		var raw bytes.Buffer
		w, err := flate.NewWriterDict(&raw, 6, dict)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(random(20 << 10))
		w.Flush()
		l.write(w)
		w.Close()
		var data []byte
		data = append(data, 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255)
		data = append(data, raw.Bytes()...)
		data = append(data, make([]byte, 8)...)
		for _, c := range configs {
			checkAgainst(t, data, c, l.name)
			z, err := newReader(bytes.NewReader(data), c)
			if err != nil {
				t.Fatal(err)
			}
			p := z.p
			_, err = io.ReadAll(z)
			if !errors.Is(err, errCorrupt) {
				t.Errorf("%s, %+v: err %v", l.name, c, err)
			}
			t.Logf("%s, max out %d, max marked %d: %v; chunks used %d, decoded again %d, finished by the consumer %d", l.name, c.maxOut, c.maxMarked, err, p.accepted, p.fallbacks, p.resumed)
		}
	}
}
