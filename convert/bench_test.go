package convert_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/rafs-dev/rafs/convert"
)

// The stage benchmarks run on a real layer when one is available: the file
// named by $RAFS_BENCH_LAYER (a .tar or a .tar.gz; the other form is
// derived from it), or the Debian layer that
// testdata/debian-layer.sh makes in rafs-bench under the user's cache
// directory ($XDG_CACHE_HOME or ~/.cache).
// Otherwise, or with RAFS_BENCH_LAYER=synthetic, they run on a synthetic
// layer generated once per process. All of them report throughput in bytes
// of uncompressed tar.

// benchLayerDefault is the layer tried when $RAFS_BENCH_LAYER is unset,
// without its .tar or .tar.gz suffix.
var benchLayerDefault = func() string {
	dir, _ := os.UserCacheDir()
	return filepath.Join(dir, "rafs-bench", "debian-minbase")
}()

// benchLayerData is a layer in both forms, held in memory.
type benchLayerData struct {
	name string // a file, or "synthetic"
	tar  []byte
	gz   []byte
}

var benchLayer = sync.OnceValues(loadBenchLayer)

// getBenchLayer returns the benchmark layer, loading it on first use.
func getBenchLayer(b *testing.B) *benchLayerData {
	b.Helper()
	l, err := benchLayer()
	if err != nil {
		b.Fatal(err)
	}
	return l
}

func loadBenchLayer() (*benchLayerData, error) {
	l := &benchLayerData{}
	switch name := os.Getenv("RAFS_BENCH_LAYER"); name {
	case "synthetic":
	case "":
		// Take both forms as they are when both exist.
		for _, ext := range []string{".tar.gz", ".tar"} {
			b, err := os.ReadFile(benchLayerDefault + ext)
			if err != nil {
				continue
			}
			if l.name != "" {
				l.name += " and "
			}
			l.name += benchLayerDefault + ext
			if benchIsGzip(b) {
				l.gz = b
			} else {
				l.tar = b
			}
		}
	default:
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("$RAFS_BENCH_LAYER: %w", err)
		}
		l.name = name
		if benchIsGzip(b) {
			l.gz = b
		} else {
			l.tar = b
		}
	}
	if l.name == "" {
		l.name = "synthetic"
		l.tar = benchSyntheticLayer()
	}
	if l.tar == nil {
		zr, err := gzip.NewReader(bytes.NewReader(l.gz))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", l.name, err)
		}
		if l.tar, err = io.ReadAll(zr); err != nil {
			return nil, fmt.Errorf("%s: %w", l.name, err)
		}
	}
	if l.gz == nil {
		// gzip -6, as registries' layers usually are.
		var buf bytes.Buffer
		zw, err := gzip.NewWriterLevel(&buf, 6)
		if err != nil {
			return nil, err
		}
		if _, err := zw.Write(l.tar); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		l.gz = buf.Bytes()
	}
	return l, nil
}

func benchIsGzip(b []byte) bool { return bytes.HasPrefix(b, []byte{0x1f, 0x8b}) }

// benchSyntheticLayer makes a deterministic layer resembling a distribution
// base layer: about 4,000 regular files (mostly a few KB, some hundreds of
// KB, a few MB), directories, symlinks, hard links, whiteouts and a few
// xattrs, about 80 MB in all. File contents are text-like so that they
// compress about as well as real files.
func benchSyntheticLayer() []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	// A pool of text-like content to take file data from.
	words := []string{"the", "lib", "usr", "share", "config", "0x1f", "return", "int",
		"static", "void", "if", "else", "for", "package", "debian", "error", "\n", "\t",
		"{", "}", "(", ")", ";", "=", "/", "license", "version", "copyright"}
	var pool bytes.Buffer
	for pool.Len() < 4<<20 {
		if rng.IntN(16) == 0 {
			var rnd [16]byte
			for i := range rnd {
				rnd[i] = byte(rng.Uint32())
			}
			pool.Write(rnd[:])
		}
		pool.WriteString(words[rng.IntN(len(words))])
		pool.WriteByte(' ')
	}
	content := pool.Bytes()
	data := func(n int) []byte {
		if n < len(content) {
			off := rng.IntN(len(content) - n)
			return content[off : off+n]
		}
		out := make([]byte, 0, n)
		for len(out) < n {
			out = append(out, content[:min(n-len(out), len(content))]...)
		}
		return out
	}
	size := func() int {
		switch r := rng.IntN(1000); {
		case r < 100:
			return rng.IntN(100)
		case r < 700:
			return 100 + rng.IntN(8000)
		case r < 960:
			return 8000 + rng.IntN(40000)
		case r < 995:
			return 64 << 10 << rng.IntN(3)
		default:
			return (1 + rng.IntN(3)) << 20
		}
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(1700000000, 0)
	write := func(h *tar.Header, body []byte) {
		h.ModTime = mtime
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			panic(err)
		}
		if _, err := tw.Write(body); err != nil {
			panic(err)
		}
	}
	write(&tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755}, nil)
	var files []string
	for d := 0; d < 300; d++ {
		dir := fmt.Sprintf("usr/share/pkg%03d/", d)
		if d%3 == 0 {
			dir = fmt.Sprintf("usr/lib/x86_64-linux-gnu/lib%03d/", d)
		}
		write(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755}, nil)
		for f := 0; f < 13; f++ {
			name := fmt.Sprintf("%sfile-%03d-%02d.dat", dir, d, f)
			body := data(size())
			h := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}
			if rng.IntN(200) == 0 {
				h.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"}
			}
			write(h, body)
			files = append(files, name)
		}
		write(&tar.Header{Typeflag: tar.TypeSymlink, Name: dir + "current", Linkname: "file-000.dat", Mode: 0o777}, nil)
		if d%10 == 0 {
			write(&tar.Header{Typeflag: tar.TypeLink, Name: dir + "hardlink", Linkname: files[rng.IntN(len(files))], Mode: 0o644}, nil)
			write(&tar.Header{Typeflag: tar.TypeReg, Name: dir + ".wh.removed", Mode: 0o644}, nil)
		}
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// benchReportLayer sets the benchmark's byte count to the uncompressed tar
// size and logs which layer is used.
func benchReportLayer(b *testing.B, l *benchLayerData) {
	b.Helper()
	b.Logf("layer %s: %d bytes of tar, %d gzipped", l.name, len(l.tar), len(l.gz))
	b.SetBytes(int64(len(l.tar)))
}

// BenchmarkGunzip measures gzip decompression alone with klauspost/compress,
// the reference the Nydus conversion target is stated against.
func BenchmarkGunzip(b *testing.B) {
	l := getBenchLayer(b)
	benchReportLayer(b, l)
	br := bytes.NewReader(l.gz)
	for b.Loop() {
		br.Reset(l.gz)
		zr, err := gzip.NewReader(br)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, zr); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecompress measures convert.Decompress on the gzip layer: the
// decoder conversions use (convert/internal/gunzip).
func BenchmarkDecompress(b *testing.B) {
	l := getBenchLayer(b)
	benchReportLayer(b, l)
	br := bytes.NewReader(l.gz)
	for b.Loop() {
		br.Reset(l.gz)
		zr, _, err := convert.Decompress(br)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, zr); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTarParse measures archive/tar reading all headers and data.
func BenchmarkTarParse(b *testing.B) {
	l := getBenchLayer(b)
	benchReportLayer(b, l)
	br := bytes.NewReader(l.tar)
	for b.Loop() {
		br.Reset(l.tar)
		tr := tar.NewReader(br)
		for {
			_, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, tr); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// benchConvert converts data to a file in a temporary directory, which is
// truncated and rewritten on every iteration.
func benchConvert(b *testing.B, data []byte) {
	out := filepath.Join(b.TempDir(), "image.erofs")
	br := bytes.NewReader(data)
	var size int64
	for b.Loop() {
		f, err := os.Create(out)
		if err != nil {
			b.Fatal(err)
		}
		br.Reset(data)
		res, err := convert.TarToEROFS(br, f, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		size = res.ImageSize
	}
	b.ReportMetric(float64(size), "image-bytes")
}

// BenchmarkTarToEROFS measures the whole conversion of an uncompressed tar.
func BenchmarkTarToEROFS(b *testing.B) {
	l := getBenchLayer(b)
	benchReportLayer(b, l)
	benchConvert(b, l.tar)
}

// BenchmarkTarGzToEROFS measures the whole conversion of a gzipped tar.
func BenchmarkTarGzToEROFS(b *testing.B) {
	l := getBenchLayer(b)
	benchReportLayer(b, l)
	benchConvert(b, l.gz)
}
