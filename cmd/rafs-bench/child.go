package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rafs-dev/rafs/cmd/internal/extended"
	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/erofs"
)

// childFlags are the flags of the rafs child mode: the image options of
// "rafs build" and profiling switches.
type childFlags struct {
	blockSize  int
	buildTime  int64
	whiteouts  string
	inlineData bool
	tmpDir     string
	cpuProfile string
	memProfile string
	memRate    int
	memStats   bool
	compress   string
	pcluster   int
	extended   string
	workers    int
}

// childMain is the rafs child mode: convert LAYER to OUT in this process.
func childMain(args []string) int {
	var f childFlags
	fs := flag.NewFlagSet("rafs-bench child", flag.ContinueOnError)
	fs.IntVar(&f.blockSize, "b", erofs.DefaultBlockSize, "block `size` in bytes")
	fs.Int64Var(&f.buildTime, "T", 0, "build time in `seconds` since 1970")
	fs.StringVar(&f.whiteouts, "whiteouts", "overlay", "OCI whiteouts: `mode` overlay, keep or strip")
	fs.BoolVar(&f.inlineData, "inline-data", true, "pack file tails into their inode's block")
	fs.StringVar(&f.compress, "z", "", "compression `ALG[,level=N]`")
	fs.IntVar(&f.pcluster, "C", 0, "largest physical cluster in `bytes`")
	fs.StringVar(&f.extended, "E", "", "extended `options`, as rafs build -E: "+extended.Names)
	fs.IntVar(&f.workers, "workers", 0, "compression `threads` (0: GOMAXPROCS)")
	fs.StringVar(&f.tmpDir, "tmpdir", "", "`directory` for temporary files")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile to `file`")
	fs.StringVar(&f.memProfile, "memprofile", "", "write a heap profile to `file`, taken before the superblock is written")
	fs.IntVar(&f.memRate, "memprofilerate", 0, "set runtime.MemProfileRate to `rate` (0: the default)")
	fs.BoolVar(&f.memStats, "memstats", false, "print Go memory statistics to standard error")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "rafs-bench child: want LAYER OUT")
		return 2
	}
	if err := runChild(&f, fs.Arg(0), fs.Arg(1)); err != nil {
		fmt.Fprintln(os.Stderr, "rafs-bench child:", err)
		return 1
	}
	return 0
}

// options returns the conversion options the flags describe.
func (f *childFlags) options() (*convert.EROFSOptions, error) {
	opts := &convert.EROFSOptions{}
	opts.Image.BlockSize = f.blockSize
	opts.Image.BuildTime = f.buildTime
	opts.Image.NoInlineData = !f.inlineData
	opts.Image.TempDir = f.tmpDir
	var err error
	if opts.Whiteouts, err = convert.ParseWhiteoutMode(f.whiteouts); err != nil {
		return nil, err
	}
	ext, err := extended.Parse(f.extended)
	if err != nil {
		return nil, err
	}
	if ext.NoInlineData != nil {
		opts.Image.NoInlineData = *ext.NoInlineData
	}
	if f.compress == "" {
		if on := ext.NeedCompression(); len(on) > 0 {
			return nil, fmt.Errorf("-E %s: only for compressed images (-z)", strings.Join(on, ","))
		}
		return opts, nil
	}
	c, err := erofs.ParseCompression(f.compress)
	if err != nil {
		return nil, err
	}
	c.PclusterSize, c.Workers = f.pcluster, f.workers
	if err := ext.Apply(c, f.blockSize); err != nil {
		return nil, err
	}
	opts.Image.Compression = c
	return opts, nil
}

func runChild(f *childFlags, layer, out string) error {
	opts, err := f.options()
	if err != nil {
		return err
	}
	if f.memRate > 0 {
		runtime.MemProfileRate = f.memRate
	}
	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return fmt.Errorf("starting the CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	var ms *memSampler
	if f.memStats {
		ms = startMemSampler(5 * time.Millisecond)
	}

	in, err := os.Open(layer)
	if err != nil {
		return err
	}
	defer in.Close()
	file, err := os.Create(out)
	if err != nil {
		return err
	}
	// Wrap the file only when profiling, so that the library sees an
	// *os.File in timed runs.
	var dst io.WriterAt = file
	var prof *heapProfiler
	if f.memProfile != "" {
		prof = &heapProfiler{File: file, path: f.memProfile}
		dst = prof
	}
	start := time.Now()
	res, err := convert.TarToEROFS(in, dst, opts)
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err == nil && prof != nil {
		err = prof.err
	}
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	if prof != nil && !prof.done {
		if err := prof.write(); err != nil {
			return err
		}
	}
	if ms != nil {
		ms.stop()
		ms.report(os.Stderr, res, elapsed)
	}
	return nil
}

// heapProfiler wraps the output image and writes a heap profile to path on
// the first write at offset 0: the writer writes the first block (the
// superblock) last, while its metadata is still live.
type heapProfiler struct {
	*os.File
	path string
	done bool
	err  error
}

func (h *heapProfiler) WriteAt(p []byte, off int64) (int, error) {
	if off == 0 && !h.done {
		h.err = h.write()
	}
	return h.File.WriteAt(p, off)
}

func (h *heapProfiler) write() error {
	h.done = true
	pf, err := os.Create(h.path)
	if err != nil {
		return err
	}
	runtime.GC() // bring the in-use figures up to date
	if err := pprof.Lookup("heap").WriteTo(pf, 0); err != nil {
		pf.Close()
		return fmt.Errorf("writing the heap profile: %w", err)
	}
	return pf.Close()
}

// memSampler records the peaks of a few runtime/metrics memory classes.
type memSampler struct {
	mu    sync.Mutex
	peak  map[string]uint64
	quit  chan struct{}
	done  chan struct{}
	names []string
}

// Sampled memory metrics; all are gauges in bytes.
var sampledMetrics = []string{
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/stacks:bytes",
	"/memory/classes/total:bytes",
	"/memory/classes/heap/released:bytes",
}

func startMemSampler(every time.Duration) *memSampler {
	m := &memSampler{
		peak:  map[string]uint64{},
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
		names: sampledMetrics,
	}
	go func() {
		defer close(m.done)
		s := make([]metrics.Sample, len(m.names))
		for i, n := range m.names {
			s[i].Name = n
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			m.sample(s)
			select {
			case <-t.C:
			case <-m.quit:
				return
			}
		}
	}()
	return m
}

func (m *memSampler) sample(s []metrics.Sample) {
	metrics.Read(s)
	m.mu.Lock()
	defer m.mu.Unlock()
	var total, released uint64
	for _, x := range s {
		if x.Value.Kind() != metrics.KindUint64 {
			continue
		}
		v := x.Value.Uint64()
		m.peak[x.Name] = max(m.peak[x.Name], v)
		switch x.Name {
		case "/memory/classes/total:bytes":
			total = v
		case "/memory/classes/heap/released:bytes":
			released = v
		}
	}
	m.peak["mapped-not-released"] = max(m.peak["mapped-not-released"], total-released)
}

func (m *memSampler) stop() {
	close(m.quit)
	<-m.done
}

func (m *memSampler) report(w *os.File, res *convert.EROFSResult, elapsed time.Duration) {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	mb := func(v uint64) string { return strconv.FormatFloat(float64(v)/1e6, 'f', 1, 64) + " MB" }
	m.mu.Lock()
	defer m.mu.Unlock()
	fmt.Fprintf(w, "memstats: %d entries, %d tar bytes (%s), image %d bytes in %.2fs\n",
		res.Entries, res.TarSize, res.Encoding, res.ImageSize, elapsed.Seconds())
	fmt.Fprintf(w, "memstats: peak heap objects %s, heap unused %s, heap free %s, stacks %s\n",
		mb(m.peak["/memory/classes/heap/objects:bytes"]), mb(m.peak["/memory/classes/heap/unused:bytes"]),
		mb(m.peak["/memory/classes/heap/free:bytes"]), mb(m.peak["/memory/classes/heap/stacks:bytes"]))
	fmt.Fprintf(w, "memstats: peak Go memory mapped and not released %s; allocated %s in total; %d GCs\n",
		mb(m.peak["mapped-not-released"]), mb(s[0].Value.Uint64()), s[1].Value.Uint64())
}
