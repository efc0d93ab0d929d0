package blob

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// fuzzMinimizeTime is FuzzOpen's default for -test.fuzzminimizetime.
const fuzzMinimizeTime = "0"

// minimizeOnce makes FuzzOpen set the flag once per process (-count=2
// runs it twice): setting a zero duration a second time fails, as the
// flag then forgets that zero is allowed.
var (
	minimizeOnce sync.Once
	minimizeErr  error
)

// FuzzOpen runs the reader on arbitrary bytes: Open and everything after
// it must return errors, never panic, hang or allocate without bound.
func FuzzOpen(f *testing.F) {
	// The fuzzing engine minimizes every input that finds new coverage,
	// by default for up to 60s, with a quadratic algorithm whose
	// executions it does not count. A blob is found from its end and
	// located by absolute offsets, so no smaller input keeps the coverage
	// and every minimization of a kilobytes-long blob runs out the clock:
	// fuzzing reported 22 executions in 5 minutes. Unless the flag was
	// given, do not minimize (a crasher is still saved, as found).
	minimizeOnce.Do(func() {
		set := false
		flag.Visit(func(fl *flag.Flag) { set = set || fl.Name == "test.fuzzminimizetime" })
		if fl := flag.Lookup("test.fuzzminimizetime"); fl != nil && !set {
			minimizeErr = fl.Value.Set(fuzzMinimizeTime)
		}
	})
	if minimizeErr != nil {
		f.Fatal(minimizeErr)
	}
	for _, name := range []string{fixtureBlob, fixtureTOC} {
		if b, err := os.ReadFile(filepath.Join(fixtureDir, name)); err == nil {
			f.Add(b)
		}
	}
	for _, v2 := range []bool{false, true} {
		b, _ := smallBlob(f, v2)
		f.Add(b)
		f.Add(b[:len(b)-TOCEntrySize*5-TarHeaderSize]) // no TOC: tar walk
	}
	lz, _, _ := writeBlob(f, &WriterOptions{Compressor: CompressorLZ4Block, ChunkSize: 4096}, [][]byte{bytes.Repeat([]byte("ab"), 2000)}, []byte("boot"))
	f.Add(lz)
	noChunks, _, _ := writeBlob(f, nil, nil, bytes.Repeat([]byte("x"), 100))
	f.Add(noChunks)
	buf := make([]byte, MaxChunkSize)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Open(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		for _, s := range r.Sections() {
			if rc, err := r.SectionReader(s.Name); err == nil {
				io.Copy(io.Discard, rc)
				rc.Close()
			}
			r.Section(s.Name)
		}
		r.Bootstrap()
		for i := range min(r.ChunkCount(), 64) {
			r.ReadChunk(i, buf)
			r.ChunkDigest(i)
		}
		r.UncompressedSize()
		r.Verify()
	})
}
