package blob

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// errAtReader fails every read at or past off with err.
type errAtReader struct {
	b   []byte
	off int64
	err error
}

func (r *errAtReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > r.off {
		return 0, r.err
	}
	return copy(p, r.b[off:]), nil
}

// TestErrFormat checks that a malformed blob gives errors matching
// ErrFormat, and that failures of the underlying reader do not.
func TestErrFormat(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, &WriterOptions{Compressor: CompressorZstd, ChunkSize: MinChunkSize})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := w.Add(bytes.Repeat([]byte{byte('a' + i)}, MinChunkSize)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Finish(func(*Info) ([]byte, error) { return make([]byte, 4096), nil }); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	r, err := Open(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadChunk(0, nil); err != nil {
		t.Fatal(err)
	}

	// Open: too short, and a flipped byte in each part of the metadata.
	if _, err := Open(bytes.NewReader(good[:100]), 100); !errors.Is(err, ErrFormat) {
		t.Errorf("short blob: %v, want ErrFormat", err)
	}
	metaStart := int(r.dataEnd)
	for off := metaStart; off < len(good); off += 97 {
		bad := bytes.Clone(good)
		bad[off] ^= 0x5a
		br, err := Open(bytes.NewReader(bad), int64(len(bad)))
		if err == nil {
			_, err = br.Bootstrap()
		}
		if err != nil && !errors.Is(err, ErrFormat) {
			t.Errorf("byte %d flipped: %v, want ErrFormat", off, err)
		}
	}

	// ReadChunk: a flipped byte in the chunk data.
	bad := bytes.Clone(good)
	bad[int(r.chunks[1].CompressedOffset)+2] ^= 0x5a
	br, err := Open(bytes.NewReader(bad), int64(len(bad)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := br.ReadChunk(1, nil); !errors.Is(err, ErrFormat) {
		t.Errorf("corrupt chunk: %v, want ErrFormat", err)
	}

	// Failures of the reader are not format errors.
	boom := errors.New("boom")
	if _, err := Open(&errAtReader{good, 0, boom}, int64(len(good))); !errors.Is(err, boom) || errors.Is(err, ErrFormat) {
		t.Errorf("failing reader: Open: %v, want boom and not ErrFormat", err)
	}
	fr := &errAtReader{good, int64(len(good)), boom}
	br, err = Open(fr, int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	fr.off = 0
	if _, err := br.ReadChunk(0, nil); !errors.Is(err, boom) || errors.Is(err, ErrFormat) {
		t.Errorf("failing reader: ReadChunk: %v, want boom and not ErrFormat", err)
	}
	rc, err := br.SectionReader(SectionBootstrap)
	if err == nil {
		_, err = io.Copy(io.Discard, rc)
	}
	if !errors.Is(err, boom) || errors.Is(err, ErrFormat) {
		t.Errorf("failing reader: SectionReader: %v, want boom and not ErrFormat", err)
	}
}
