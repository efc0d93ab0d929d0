// Command rafs-bench compares the conversion of an OCI layer by rafs with
// mkfs.erofs from erofs-utils.
//
// Usage:
//
//	rafs-bench [flags] LAYER
//
// LAYER is a layer tar, plain or gzip-compressed. rafs-bench builds it
// with rafs and, when mkfs.erofs is found on $PATH or given with -mkfs,
// with
//
//	mkfs.erofs --tar=f --aufs [--ungzip] -T0 --mkfs-time --quiet OUT LAYER
//
// and prints, for each tool, the median over -n runs of the wall time, the
// CPU time (user plus system), the peak resident set size and the image
// size, followed by the ratios rafs/mkfs. Sizes are in MB of 10^6 bytes.
//
// Each tool runs as a child process, so that CPU time and peak RSS are the
// tool's own (from the child's rusage). For rafs, rafs-bench runs itself
// again in a child mode that calls convert.TarToEROFS, so no separately
// built rafs binary is needed. Runs of the two tools alternate, and the
// layer is read once before the first run so that both find it in the page
// cache.
//
// The flags are:
//
//	-n N          runs per tool; the median is reported (default 3)
//	-o DIR        keep the images in DIR (default: a temporary directory,
//	              removed at the end)
//	-b SIZE       block size passed to both tools (default: their own, 4096)
//	-z ALG[,level=N], -C BYTES, -E OPTS
//	              compression, physical cluster size and extended options
//	              (those of rafs build -E: ztailpacking, fragments[=SIZE],
//	              all-fragments[=SIZE], fragdedupe[=full|inode|off],
//	              dedupe, legacy-compress, noinline_data and their ^
//	              forms), passed to both tools; mkfs.erofs gets -E as
//	              given, but for the two spellings that mkfs.erofs 1.9.3
//	              reads otherwise than the man page and rafs:
//	              fragdedupe=off (which it reads as full) becomes
//	              ^fragdedupe and ^noinline_data (which it reads as
//	              noinline_data) becomes inline_data
//	-workers N    compression threads of both tools (default 2)
//	-mkfs PATH    the mkfs.erofs to run ("none" to skip it)
//	-mkfs-args S  extra mkfs.erofs arguments, split on spaces
//	-rafs-args S  extra arguments for the rafs child, split on spaces
//	-v            print the tools' command lines and their standard error
//
// The rafs child accepts -b, -T, -z, -C, -E, -workers, -whiteouts,
// -inline-data and -tmpdir as
// "rafs build" does, and for profiling -cpuprofile FILE, -memprofile FILE
// (a heap profile taken just before the superblock is written, when the
// writer's metadata is at its largest) and -memstats (print Go memory
// statistics to standard error). It can be run directly:
//
//	RAFS_BENCH_CHILD=1 rafs-bench [child flags] LAYER OUT
//
// or through -rafs-args, e.g. -n 1 -rafs-args "-cpuprofile cpu.out".
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/rafs-dev/rafs/cmd/internal/extended"
)

// childEnv is the environment variable that selects the rafs child mode.
const childEnv = "RAFS_BENCH_CHILD"

const usage = `Usage: rafs-bench [flags] LAYER

Builds LAYER (a .tar or .tar.gz) with rafs and with mkfs.erofs and prints
wall time, CPU time, peak RSS and image size side by side.

Flags:
`

func main() {
	if os.Getenv(childEnv) == "1" {
		os.Exit(childMain(os.Args[1:]))
	}
	os.Exit(benchMain(os.Args[1:]))
}

// config holds the parent's flags.
type config struct {
	runs      int
	outDir    string
	blockSize int
	mkfs      string
	compress  string
	pcluster  int
	extended  string
	workers   int
	mkfsArgs  []string
	rafsArgs  []string
	verbose   bool
	layer     string
}

func parseFlags(args []string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("rafs-bench", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, usage)
		fs.PrintDefaults()
	}
	var mkfsArgs, rafsArgs string
	fs.IntVar(&c.runs, "n", 3, "`runs` per tool; the median is reported")
	fs.StringVar(&c.outDir, "o", "", "keep the output images in `dir` (default: a temporary directory, removed)")
	fs.IntVar(&c.blockSize, "b", 0, "block `size` in bytes passed to both tools (default: the tools' own)")
	fs.StringVar(&c.mkfs, "mkfs", "", "`path` of mkfs.erofs (default: found on $PATH; \"none\" to skip)")
	fs.StringVar(&c.compress, "z", "", "compression `ALG[,level=N]` passed to both tools (lz4, lz4hc, lzma, deflate, zstd)")
	fs.IntVar(&c.pcluster, "C", 0, "largest physical cluster in `bytes`, passed to both tools")
	fs.StringVar(&c.extended, "E", "", "extended `options` passed to both tools, as rafs build -E: "+extended.Names)
	fs.IntVar(&c.workers, "workers", 2, "compression `threads` of both tools (mkfs.erofs --workers)")
	fs.StringVar(&mkfsArgs, "mkfs-args", "", "extra mkfs.erofs `arguments`, split on spaces")
	fs.StringVar(&rafsArgs, "rafs-args", "", "extra rafs child `arguments`, split on spaces (e.g. \"-cpuprofile cpu.out\")")
	fs.BoolVar(&c.verbose, "v", false, "print the command lines and the tools' standard error")
	// Accept flags after LAYER too.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 1 {
		fs.Usage()
		return nil, fmt.Errorf("want exactly one LAYER, got %d", len(pos))
	}
	if c.runs < 1 {
		return nil, fmt.Errorf("-n %d: want at least one run", c.runs)
	}
	if c.blockSize < 0 {
		return nil, fmt.Errorf("-b %d: want a positive block size", c.blockSize)
	}
	if _, err := extended.Parse(c.extended); err != nil {
		return nil, err
	}
	c.layer = pos[0]
	c.mkfsArgs = strings.Fields(mkfsArgs)
	c.rafsArgs = strings.Fields(rafsArgs)
	return c, nil
}

func benchMain(args []string) int {
	c, err := parseFlags(args)
	if err == flag.ErrHelp {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rafs-bench:", err)
		return 2
	}
	if err := bench(c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "rafs-bench:", err)
		return 1
	}
	return 0
}

// layerKind is how a layer file is compressed, as far as the tools care.
type layerKind int

const (
	kindTar layerKind = iota
	kindGzip
	kindXz
	kindZstd
)

func (k layerKind) String() string {
	return [...]string{"tar", "gzip", "xz", "zstd"}[k]
}

// detectKind looks at the magic bytes at the start of the layer.
func detectKind(path string) (layerKind, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	magic := make([]byte, 6)
	n, err := io.ReadFull(f, magic)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return 0, fmt.Errorf("reading %s: %w", path, err)
	}
	magic = magic[:n]
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return kindGzip, nil
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return kindXz, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return kindZstd, nil
	}
	return kindTar, nil
}

// warmUp reads the whole file once so that the timed runs find it in the
// page cache.
func warmUp(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := io.Copy(io.Discard, f)
	if err != nil {
		return n, fmt.Errorf("reading %s: %w", path, err)
	}
	return n, nil
}

// findMkfs resolves the mkfs.erofs to run: "" if there is none to run.
func findMkfs(flagPath string) (string, error) {
	switch flagPath {
	case "none":
		return "", nil
	case "":
		p, err := exec.LookPath("mkfs.erofs")
		if err != nil {
			return "", nil
		}
		return p, nil
	}
	p, err := exec.LookPath(flagPath)
	if err != nil {
		return "", fmt.Errorf("-mkfs: %w", err)
	}
	return p, nil
}

func bench(c *config, stdout io.Writer) error {
	kind, err := detectKind(c.layer)
	if err != nil {
		return err
	}
	mkfs, err := findMkfs(c.mkfs)
	if err != nil {
		return err
	}
	if mkfs != "" && kind == kindZstd {
		fmt.Fprintln(os.Stderr, "rafs-bench: mkfs.erofs cannot read zstd layers; running rafs only")
		mkfs = ""
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the rafs-bench executable: %w", err)
	}

	dir := c.outDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "rafs-bench-*"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	base := strings.TrimSuffix(filepath.Base(c.layer), filepath.Ext(c.layer))
	base = strings.TrimSuffix(base, ".tar")

	tools := []*tool{rafsTool(self, c, filepath.Join(dir, base+".rafs.erofs"))}
	if mkfs != "" {
		tools = append(tools, mkfsTool(mkfs, c, kind, filepath.Join(dir, base+".mkfs.erofs")))
	}

	size, err := warmUp(c.layer)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "layer: %s (%.1f MB, %s)\n", c.layer, float64(size)/1e6, kind)
	if c.verbose {
		for _, t := range tools {
			fmt.Fprintf(os.Stderr, "%s: %s\n", t.name, strings.Join(t.args, " "))
		}
	}
	for i := 0; i < c.runs; i++ {
		for _, t := range tools {
			if err := t.run(c.verbose); err != nil {
				return err
			}
		}
	}
	return printTable(stdout, tools)
}

// printTable prints the medians of each tool and, for two tools, the
// ratios of the first to the second.
func printTable(w io.Writer, tools []*tool) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%-12s %9s %9s %11s %12s\n", "", "wall", "cpu", "peak RSS", "image size")
	meds := make([]sample, len(tools))
	for i, t := range tools {
		m := t.median()
		meds[i] = m
		fmt.Fprintf(&b, "%-12s %7.2f s %7.2f s %8.1f MB %12d\n", t.name,
			m.wall.Seconds(), m.cpu.Seconds(), float64(m.rss)/1e6, m.size)
	}
	if len(tools) == 2 {
		r, q := meds[0], meds[1]
		fmt.Fprintf(&b, "%-12s %8.2fx %8.2fx %10.2fx %11.4fx\n", tools[0].name+"/mkfs",
			ratio(r.wall.Seconds(), q.wall.Seconds()), ratio(r.cpu.Seconds(), q.cpu.Seconds()),
			ratio(float64(r.rss), float64(q.rss)), ratio(float64(r.size), float64(q.size)))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// errOutput formats a failed child's standard error for an error message.
func errOutput(stderr []byte) error {
	s := strings.TrimSpace(string(stderr))
	if s == "" {
		return errors.New("no output")
	}
	if len(s) > 2000 {
		s = "..." + s[len(s)-2000:]
	}
	return errors.New(s)
}
