package chunker

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

func TestNewFixedSize(t *testing.T) {
	for _, s := range []int{-4096, 0} {
		if _, err := NewFixed(nil, s); err == nil {
			t.Errorf("NewFixed(%d) accepted", s)
		}
	}
	f, err := NewFixed(nil, 3000)
	if err != nil || f.Size() != 3000 {
		t.Fatalf("NewFixed(3000) = %v, %v", f, err)
	}
}

// collect returns copies of all chunks.
func collect(t *testing.T, c Chunker) [][]byte {
	t.Helper()
	var out [][]byte
	var off int64
	for {
		ch, err := c.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if ch.Offset != off {
			t.Fatalf("chunk %d offset %d, want %d", len(out), ch.Offset, off)
		}
		off += int64(len(ch.Data))
		out = append(out, bytes.Clone(ch.Data))
	}
}

func TestFixedSplits(t *testing.T) {
	const size = 4096
	data := make([]byte, 5*size+123)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, n := range []int{0, 1, size - 1, size, size + 1, 2 * size, 5*size + 123} {
		for name, r := range map[string]io.Reader{
			"plain":    bytes.NewReader(data[:n]),
			"onebyte":  iotest.OneByteReader(bytes.NewReader(data[:n])),
			"dataeof":  iotest.DataErrReader(bytes.NewReader(data[:n])),
			"halfread": iotest.HalfReader(bytes.NewReader(data[:n])),
		} {
			f, err := NewFixed(r, size)
			if err != nil {
				t.Fatal(err)
			}
			chunks := collect(t, f)
			want := (n + size - 1) / size
			if len(chunks) != want {
				t.Fatalf("%s n=%d: %d chunks, want %d", name, n, len(chunks), want)
			}
			for i, c := range chunks {
				wl := size
				if i == len(chunks)-1 && n%size != 0 {
					wl = n % size
				}
				if len(c) != wl || !bytes.Equal(c, data[i*size:i*size+wl]) {
					t.Fatalf("%s n=%d: chunk %d wrong (%d bytes, want %d)", name, n, i, len(c), wl)
				}
			}
			// EOF is sticky.
			if _, err := f.Next(); err != io.EOF {
				t.Fatalf("%s n=%d: Next after end = %v", name, n, err)
			}
		}
	}
}

// countingReader records the largest position read.
type countingReader struct {
	r   io.Reader
	pos int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.pos += n
	return n, err
}

func TestFixedStreamsAndReuses(t *testing.T) {
	const size = 8192
	data := make([]byte, 10*size)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rnd.Uint32())
	}
	cr := &countingReader{r: bytes.NewReader(data)}
	f, _ := NewFixed(cr, size)
	var first *byte
	for i := 0; ; i++ {
		c, err := f.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if cr.pos > int(c.Offset)+size {
			t.Fatalf("chunk %d: read %d bytes, more than one chunk ahead of %d", i, cr.pos, c.Offset)
		}
		if i == 0 {
			first = &c.Data[0]
		} else if &c.Data[0] != first {
			t.Fatalf("chunk %d: buffer not reused", i)
		}
	}
	// Reset keeps the buffer and restarts offsets.
	f.Reset(bytes.NewReader(data[:100]))
	c, err := f.Next()
	if err != nil || c.Offset != 0 || len(c.Data) != 100 || &c.Data[0] != first {
		t.Fatalf("after Reset: %d bytes at %d, %v", len(c.Data), c.Offset, err)
	}
	if _, err := f.Next(); err != io.EOF {
		t.Fatalf("after Reset: second Next = %v", err)
	}
}

func TestFixedSmallStreamSmallBuffer(t *testing.T) {
	f, _ := NewFixed(bytes.NewReader(make([]byte, 10)), 16<<20)
	if _, err := f.Next(); err != nil {
		t.Fatal(err)
	}
	if cap(f.buf) > 1<<20 {
		t.Fatalf("10-byte stream allocated %d bytes", cap(f.buf))
	}
}

func TestFixedErrors(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(bytes.NewReader(make([]byte, 5000)), iotest.ErrReader(boom))
	f, _ := NewFixed(r, 4096)
	if c, err := f.Next(); err != nil || len(c.Data) != 4096 {
		t.Fatalf("first chunk: %d bytes, %v", len(c.Data), err)
	}
	for range 2 {
		if _, err := f.Next(); !errors.Is(err, boom) {
			t.Fatalf("Next = %v, want boom", err)
		}
	}
	f, _ = NewFixed(zeroReader{}, 4096)
	if _, err := f.Next(); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("stuck reader: %v", err)
	}
	var nr Fixed
	if _, err := nr.Next(); err == nil {
		t.Fatal("zero Fixed: no error")
	}
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }
