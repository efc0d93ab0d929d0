package erofs_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/rafs-dev/rafs/erofs"
)

// rwImage is an in-memory image that SetUUID can read and write.
type rwImage struct{ memImage }

func (m *rwImage) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// TestSetUUID checks that an image given its UUID afterwards is the image
// written with that UUID, checksum included, for 4096- and 512-byte
// blocks, and that it opens.
func TestSetUUID(t *testing.T) {
	want := [16]byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	for _, bs := range []int{4096, 512} {
		direct := build(t, &erofs.WriterOptions{BlockSize: bs, UUID: &want}, sampleTree())
		img := &rwImage{memImage{b: build(t, &erofs.WriterOptions{BlockSize: bs}, sampleTree())}}
		if bytes.Equal(img.b, direct) {
			t.Fatal("the derived UUID is the one set")
		}
		if err := erofs.SetUUID(img, want); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(img.b, direct) {
			t.Fatalf("block size %d: image after SetUUID differs from one written with the UUID", bs)
		}
		if _, err := erofs.Open(bytes.NewReader(img.b)); err != nil {
			t.Fatalf("block size %d: %v", bs, err)
		}
	}
	if err := erofs.SetUUID(&rwImage{memImage{b: make([]byte, 4096)}}, want); err == nil {
		t.Fatal("SetUUID of zeros: no error")
	}
	if err := erofs.SetUUID(&rwImage{}, want); err == nil {
		t.Fatal("SetUUID of nothing: no error")
	}
}

// FuzzSetUUID gives SetUUID arbitrary images: it returns an error or
// rewrites the UUID, and never panics.
func FuzzSetUUID(f *testing.F) {
	f.Add(build(f, nil, sampleTree()))
	f.Add(build(f, &erofs.WriterOptions{BlockSize: 512}, sampleTree()))
	f.Add(make([]byte, 1100))
	f.Fuzz(func(t *testing.T, b []byte) {
		img := &rwImage{memImage{b: bytes.Clone(b)}}
		u := [16]byte{1}
		if err := erofs.SetUUID(img, u); err != nil {
			return
		}
		if len(img.b) != len(b) {
			t.Fatalf("SetUUID grew the image from %d to %d bytes", len(b), len(img.b))
		}
		if !bytes.Equal(img.b[erofs.SuperblockFieldOffset("uuid"):][:16], u[:]) {
			t.Fatal("UUID not set")
		}
	})
}
