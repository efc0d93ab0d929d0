package gunzip

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"
)

func gz(t testing.TB, data []byte, level int) []byte {
	var b bytes.Buffer
	w, err := kgzip.NewWriterLevel(&b, level)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	w.Close()
	return b.Bytes()
}

func decodeAll(r io.Reader) ([]byte, error) {
	z, err := NewReader(r)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(z)
}

// samples are inputs that exercise literals, short and long matches,
// overlapping copies, stored blocks and long streams.
func samples() [][]byte {
	rng := rand.New(rand.NewSource(1))
	random := make([]byte, 300<<10)
	rng.Read(random)
	text := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog. "), 20000)
	var mixed []byte
	for i := 0; i < 2000; i++ {
		switch rng.Intn(4) {
		case 0:
			mixed = append(mixed, random[:rng.Intn(600)]...)
		case 1:
			mixed = append(mixed, bytes.Repeat([]byte{byte(i)}, rng.Intn(1000))...)
		case 2:
			mixed = append(mixed, text[:rng.Intn(3000)]...)
		default:
			pat := random[:1+rng.Intn(9)]
			for j := rng.Intn(100); j > 0; j-- {
				mixed = append(mixed, pat...)
			}
		}
	}
	return [][]byte{nil, {0}, []byte("a"), random, text, mixed, make([]byte, 5<<20)}
}

func TestRoundTrip(t *testing.T) {
	for i, data := range samples() {
		for _, level := range []int{0, 1, 6, 9, kgzip.HuffmanOnly} {
			got, err := decodeAll(bytes.NewReader(gz(t, data, level)))
			if err != nil {
				t.Fatalf("sample %d level %d: %v", i, level, err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("sample %d level %d: output differs", i, level)
			}
		}
	}
}

// oneByteReader hands out one byte per Read, to exercise every slow path.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) { return o.r.Read(p[:1]) }

func TestSmallReads(t *testing.T) {
	data := samples()[5]
	got, err := decodeAll(oneByteReader{bytes.NewReader(gz(t, data, 6))})
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("byte-at-a-time input: err %v, equal %v", err, bytes.Equal(got, data))
	}
}

func TestMultistreamAndErrors(t *testing.T) {
	a, b := []byte("first member "), []byte("second member")
	two := append(gz(t, a, 6), gz(t, b, 1)...)
	got, err := decodeAll(bytes.NewReader(two))
	if err != nil || string(got) != string(a)+string(b) {
		t.Fatalf("two members: %q, %v", got, err)
	}
	one := gz(t, samples()[5], 6)
	for _, cut := range []int{5, 10, 11, 100, len(one) / 2, len(one) - 8, len(one) - 1} {
		if _, err := decodeAll(bytes.NewReader(one[:cut])); err == nil {
			t.Errorf("cut at %d: no error", cut)
		}
	}
	bad := append([]byte(nil), one...)
	bad[len(bad)-6] ^= 1 // CRC
	if _, err := decodeAll(bytes.NewReader(bad)); err != ErrChecksum {
		t.Errorf("bad CRC: %v", err)
	}
	if _, err := decodeAll(bytes.NewReader(append(one, 'x', 'y'))); err == nil {
		t.Errorf("trailing garbage accepted")
	}
}

// debianLayer names the Debian layer testdata/debian-layer.sh makes.
func debianLayer() string {
	dir, _ := os.UserCacheDir()
	return filepath.Join(dir, "rafs-bench", "debian-minbase.tar.gz")
}

// TestDebianLayer decodes a real layer and compares with klauspost/compress.
func TestDebianLayer(t *testing.T) {
	data, err := os.ReadFile(debianLayer())
	if err != nil {
		t.Skip("no Debian layer")
	}
	kr, _ := kgzip.NewReader(bytes.NewReader(data))
	hk := sha256.New()
	io.Copy(hk, kr)
	z, err := NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, z); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(h.Sum(nil), hk.Sum(nil)) {
		t.Fatal("output differs from klauspost/compress")
	}
}

func benchLayer(b *testing.B) []byte {
	data, err := os.ReadFile(debianLayer())
	if err != nil {
		b.Skip("no Debian layer")
	}
	return data
}

// BenchmarkGunzip decodes the Debian layer as NewReader does (on every
// core), BenchmarkGunzipSequential on one.
func BenchmarkGunzip(b *testing.B) { benchGunzip(b, config{sequential: !parallelByDefault}) }

func BenchmarkGunzipSequential(b *testing.B) { benchGunzip(b, config{sequential: true}) }

func benchGunzip(b *testing.B, c config) {
	data := benchLayer(b)
	buf := make([]byte, 256<<10)
	for i := 0; i < b.N; i++ {
		z, err := newReader(bytes.NewReader(data), c)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.CopyBuffer(io.Discard, z, buf)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(n)
	}
}

func BenchmarkKlauspost(b *testing.B) {
	data := benchLayer(b)
	buf := make([]byte, 256<<10)
	for i := 0; i < b.N; i++ {
		z, _ := kgzip.NewReader(bytes.NewReader(data))
		n, _ := io.CopyBuffer(io.Discard, z, buf)
		b.SetBytes(n)
	}
}
