package blob

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// TestErrClosed checks that Add, Flush and Finish say ErrClosed after
// Close and after Finish.
func TestErrClosed(t *testing.T) {
	for _, end := range []string{"Close", "Finish"} {
		w, err := NewWriter(io.Discard, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Add([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if end == "Close" {
			w.Close()
		} else if _, err := w.Finish(nil); err != nil {
			t.Fatal(err)
		}
		_, addErr := w.Add([]byte("y"))
		_, finishErr := w.Finish(nil)
		for name, err := range map[string]error{"Add": addErr, "Flush": w.Flush(), "Finish": finishErr} {
			if !errors.Is(err, ErrClosed) {
				t.Errorf("%s after %s: %v, want ErrClosed", name, end, err)
			}
		}
	}
}

// TestZeroWriterOptions checks that the zero WriterOptions are the
// defaults (zstd chunks), that Uncompressed stores chunks raw, and that
// options Uncompressed would ignore are refused.
func TestZeroWriterOptions(t *testing.T) {
	chunks := testChunks(64<<10, 5)
	boot := []byte("boot")
	zero, zinfo, _ := writeBlob(t, &WriterOptions{}, chunks, boot)
	def, _, _ := writeBlob(t, DefaultWriterOptions(), chunks, boot)
	nilOpts, _, _ := writeBlob(t, nil, chunks, boot)
	if !bytes.Equal(zero, def) || !bytes.Equal(zero, nilOpts) {
		t.Error("WriterOptions{} gives other bytes than DefaultWriterOptions() or nil")
	}
	if zinfo.Compressor != CompressorZstd {
		t.Errorf("WriterOptions{} writes %v chunks, want zstd", zinfo.Compressor)
	}
	_, rinfo, descs := writeBlob(t, &WriterOptions{Uncompressed: true}, chunks, boot)
	if rinfo.Compressor != CompressorNone {
		t.Errorf("Uncompressed writes %v chunks", rinfo.Compressor)
	}
	for i, d := range descs {
		if d.Compressed {
			t.Errorf("Uncompressed: chunk %d compressed", i)
		}
	}
	for _, o := range []WriterOptions{
		{Uncompressed: true, Compressor: CompressorZstd},
		{Uncompressed: true, Level: 3},
		{Level: -1},
	} {
		if _, err := NewWriter(io.Discard, &o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
