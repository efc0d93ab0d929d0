package rafs

import (
	"testing"

	"github.com/rafs-dev/rafs/blob"
)

func TestAlgorithmFlags(t *testing.T) {
	if f := AlgorithmFlags(blob.CompressorZstd, blob.DigesterBlake3); DefaultFlags&(flagCompressionMask|flagHashMask) != f {
		t.Errorf("AlgorithmFlags(zstd, blake3) = %#x, DefaultFlags has %#x", f, DefaultFlags&(flagCompressionMask|flagHashMask))
	}
	for c := blob.CompressorNone; c <= blob.CompressorZstd; c++ {
		for d := blob.DigesterBlake3; d <= blob.DigesterSHA256; d++ {
			if err := checkFlags(AlgorithmFlags(c, d)); err != nil {
				t.Errorf("%v/%v: %v", c, d, err)
			}
		}
	}
	if f := AlgorithmFlags(9, 9); f != 0 {
		t.Errorf("AlgorithmFlags of unknown ids = %#x", f)
	}
}
