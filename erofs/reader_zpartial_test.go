package erofs

import (
	"bytes"
	"testing"
)

// TestDecompressPrefix: every algorithm decodes any prefix of a stream's
// output when asked for a prefix (a partially referenced pcluster), and
// fails when the stream holds fewer bytes than asked for. Without
// partial, LZ4 and LZMA insist on the exact length, DEFLATE and zstd do
// not (the kernel ignores their excess output).
func TestDecompressPrefix(t *testing.T) {
	src := concat(goldenText(1, 20000), goldenRnd(2, 3000), goldenText(3, 20000), make([]byte, 5000))
	f := &FS{}
	f.sb.FeatureIncompat = FeatureIncompatZeroPadding
	f.zcfg.lzmaDictSize = 1 << 16
	for _, alg := range []string{"lz4", "lzma", "deflate", "zstd"} {
		c, err := DefaultCompression(alg)
		if err != nil {
			t.Fatal(err)
		}
		comp, err := newCompressor(c, 1<<16)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		n, consumed := comp.destSize(buf, src)
		if consumed < 5000 || consumed >= len(src) {
			t.Fatalf("%s: %d bytes encode %d of %d", alg, n, consumed, len(src))
		}
		stream := buf[:n]
		id := c.algID()
		for _, k := range []int{1, 2, 100, 4096, consumed / 2, consumed - 1, consumed} {
			dst := make([]byte, k)
			if err := f.decompress(id, dst, stream, true); err != nil || !bytes.Equal(dst, src[:k]) {
				t.Errorf("%s: prefix of %d of %d bytes: %v", alg, k, consumed, err)
			}
			err := f.decompress(id, dst, stream, false)
			exact := alg == "lz4" || alg == "lzma"
			switch {
			case k == consumed && err != nil:
				t.Errorf("%s: whole output: %v", alg, err)
			case k < consumed && exact && err == nil:
				t.Errorf("%s: %d of %d bytes decoded without partial", alg, k, consumed)
			case k < consumed && !exact && (err != nil || !bytes.Equal(dst, src[:k])):
				t.Errorf("%s: %d of %d bytes without partial: %v", alg, k, consumed, err)
			}
		}
		for _, partial := range []bool{false, true} {
			if err := f.decompress(id, make([]byte, consumed+1000), stream, partial); err == nil {
				t.Errorf("%s (partial %v): %d bytes from a stream of %d", alg, partial, consumed+1000, consumed)
			}
		}
	}
}
