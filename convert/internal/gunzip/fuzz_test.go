package gunzip

import (
	"bytes"
	"io"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"
)

// FuzzCompressed round-trips arbitrary data compressed at several levels.
func FuzzCompressed(f *testing.F) {
	for _, s := range samples()[:6] {
		if len(s) > 64<<10 {
			s = s[:64<<10]
		}
		f.Add(s, uint8(6))
	}
	f.Fuzz(func(t *testing.T, data []byte, level uint8) {
		lv := int(level%11) - 1 // -1 (default) .. 9
		if level == 255 {
			lv = kgzip.HuffmanOnly
		}
		got, err := decodeAll(bytes.NewReader(gz(t, data, lv)))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("level %d: err %v, equal %v", lv, err, bytes.Equal(got, data))
		}
	})
}

// FuzzReader feeds arbitrary bytes: never a panic or hang, and wherever
// klauspost/compress decodes the stream without error, the same output.
func FuzzReader(f *testing.F) {
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
