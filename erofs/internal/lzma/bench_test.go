package lzma

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// benchCorpus returns up to about 16 MiB of real files from the Debian root
// filesystem used for benchmarks, or synthetic data if it is absent.
func benchCorpus(b *testing.B) [][]byte {
	cache, _ := os.UserCacheDir() // testdata/debian-layer.sh makes it there
	root := filepath.Join(cache, "rafs-bench", "rootfs")
	var paths []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			paths = append(paths, p)
		}
		return nil
	})
	sort.Strings(paths)
	var files [][]byte
	total := 0
	for i, p := range paths {
		if i%7 != 0 { // a spread-out sample: binaries, libraries, docs, configs
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil || len(data) == 0 {
			continue
		}
		files = append(files, data)
		if total += len(data); total >= 16<<20 {
			break
		}
	}
	if len(files) == 0 {
		files = append(files, testInputs(b)["mixed1m"])
	}
	return files
}

func benchmarkEncode(b *testing.B, budget, dict int) {
	files := benchCorpus(b)
	e, err := NewEncoder(Options{DictSize: dict})
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, budget)
	var in, out int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		in, out = 0, 0
		for _, f := range files {
			for pos := 0; pos < len(f); {
				n, c := e.EncodeDestSize(dst, f[pos:min(len(f), pos+4<<20)])
				pos += c
				in += int64(c)
				out += int64(n)
			}
		}
	}
	b.SetBytes(in)
	b.ReportMetric(float64(in)/float64(out), "ratio")
}

// BenchmarkEncode4K compresses in 4 KiB pclusters (mkfs.erofs default, dict 32 KiB).
func BenchmarkEncode4K(b *testing.B) { benchmarkEncode(b, 4096, 32<<10) }

// BenchmarkEncode64K compresses in 64 KiB pclusters (dict 256 KiB).
func BenchmarkEncode64K(b *testing.B) { benchmarkEncode(b, 65536, 256<<10) }

// BenchmarkDecode64K decodes 64 KiB-budget pclusters.
func BenchmarkDecode64K(b *testing.B) {
	src := testInputs(b)["mixed1m"]
	e, _ := NewEncoder(Options{DictSize: 256 << 10})
	type pc struct {
		stream []byte
		n      int
	}
	var pcs []pc
	total := 0
	for pos := 0; pos < len(src); {
		dst := make([]byte, 65536)
		n, c := e.EncodeDestSize(dst, src[pos:])
		pcs = append(pcs, pc{dst[:n], c})
		pos += c
		total += c
	}
	out := make([]byte, len(src))
	b.SetBytes(int64(total))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, p := range pcs {
			if err := Decode(out[:p.n], p.stream, 256<<10); err != nil {
				b.Fatal(err)
			}
		}
	}
}
