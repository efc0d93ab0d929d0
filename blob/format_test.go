package blob

import "testing"

func TestValidChunkSize(t *testing.T) {
	for _, s := range []uint64{MinChunkSize, 8192, DefaultChunkSize, MaxChunkSize} {
		if !ValidChunkSize(s) {
			t.Errorf("ValidChunkSize(%d) = false", s)
		}
	}
	for _, s := range []uint64{0, 1, 2048, 4095, 4097, 12288, 2 * MaxChunkSize, 1 << 63} {
		if ValidChunkSize(s) {
			t.Errorf("ValidChunkSize(%d) = true", s)
		}
	}
}
