package blob

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
)

// TestDecodersShortBuffers calls every exported decoder with every length
// shorter than its record: none may panic.
func TestDecodersShortBuffers(t *testing.T) {
	full := bytes.Repeat([]byte{0xA5}, 8192)
	decoders := map[string]struct {
		size int
		fn   func(b []byte) any
	}{
		"DecodeChunkInfoV1": {ChunkInfoV1Size, func(b []byte) any { return DecodeChunkInfoV1(b) }},
		"DecodeChunkInfoV2": {ChunkInfoV2Size, func(b []byte) any { return DecodeChunkInfoV2(b) }},
		"DecodeTOCEntry":    {TOCEntrySize, func(b []byte) any { return DecodeTOCEntry(b) }},
		"DecodeCIHeader":    {CIHeaderSize, func(b []byte) any { h, err := DecodeCIHeader(b); return fmt.Sprint(h, err) }},
		"DecodeTarHeader":   {TarHeaderSize, func(b []byte) any { n, s, err := DecodeTarHeader(b); return fmt.Sprint(n, s, err) }},
	}
	for name, d := range decoders {
		for n := 0; n < d.size; n++ {
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("%s(%d bytes): panic: %v", name, n, r)
					}
				}()
				d.fn(full[:n])
				d.fn(full[:n:n])
			}()
		}
	}
}

// TestEncodersShortBuffers checks that every encoder returns an error
// wrapping io.ErrShortBuffer for a short buffer instead of panicking, and
// leaves the buffer untouched.
func TestEncodersShortBuffers(t *testing.T) {
	c := &ChunkInfo{UncompressedSize: 10, CompressedSize: 10}
	e := &TOCEntry{Name: "x"}
	encoders := map[string]struct {
		size int
		fn   func(b []byte) error
	}{
		"EncodeV1":        {ChunkInfoV1Size, c.EncodeV1},
		"EncodeV2":        {ChunkInfoV2Size, c.EncodeV2},
		"TOCEntry.Encode": {TOCEntrySize, e.Encode},
		"EncodeTarHeader": {TarHeaderSize, func(b []byte) error { return EncodeTarHeader(b, "x", 1) }},
		"CIHeader.Encode": {CIHeaderSize, (&CIHeader{CIEntries: 1, CIOffset: 2}).Encode},
	}
	for name, enc := range encoders {
		if err := enc.fn(make([]byte, enc.size)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		for n := 0; n < enc.size; n++ {
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("%s(%d bytes): panic: %v", name, n, r)
					}
				}()
				b := bytes.Repeat([]byte{0xA5}, n)
				if err := enc.fn(b); !errors.Is(err, io.ErrShortBuffer) {
					t.Errorf("%s(%d bytes): %v, want io.ErrShortBuffer", name, n, err)
				}
				if !bytes.Equal(b, bytes.Repeat([]byte{0xA5}, n)) {
					t.Errorf("%s(%d bytes): wrote to the buffer", name, n)
				}
			}()
		}
	}
}
