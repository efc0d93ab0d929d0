package main

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rafs-dev/rafs/cmd/internal/extended"
	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/erofs"
)

const buildUsage = `Usage: rafs build [flags] -o OUT SOURCE

Builds an EROFS image from SOURCE: a tar, a tar.gz or tar.zst (detected by
content), "-" for standard input, or a directory. Without -z the image is
uncompressed. The output is reproducible: the same input and flags give the
same bytes, whatever the number of cores. Layers to merge into one
metadata image (rafs merge --type erofs) need their file data in whole
uncompressed blocks: build them with -inline-data=false, --chunk-size
(with or without --blobdev) or --tar-index (or --append-tar), without -z.

Flags:
`

// The largest physical cluster erofs.Compression accepts: 1 MiB, and at
// most 2047 blocks (the erofs package's limits, which it checks again).
const (
	maxPcluster       = 1 << 20
	maxPclusterBlocks = 2047
)

type buildFlags struct {
	out        string
	blockSize  int
	buildTime  string
	uuid       string
	label      string
	whiteouts  string
	inlineData bool
	quiet      bool
	progress   bool
	tmpDir     string
	compress   string
	pcluster   int
	extended   string
	workers    int
	chunks     chunkFlags

	// Tar index (--tar-index, --append-tar).
	tarIndex  bool
	appendTar bool
	blockSet  bool // -b was given
}

// chunkFlags are the flags of chunk-based images.
type chunkFlags struct {
	size    string // --chunk-size
	blobdev string // --blobdev
}

// define adds the chunk flags to fs.
func (c *chunkFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&c.size, "chunk-size", "", "store regular files chunk-based in chunks of `bytes`, hex (0x...) or decimal: a power of two, at least the block size (like mkfs.erofs --chunksize); chunks deduplicated by SHA-256, all-zero ones as holes; not with -z")
	fs.StringVar(&c.blobdev, "blobdev", "", "with --chunk-size, write the chunk data to this `file` instead of the image: device 1 of the image's device table (mount option device=FILE; like mkfs.erofs --blobdev)")
}

// apply checks the chunk flags against the rest and sets o's chunk size;
// the blob device's file is given to o by cmdBuild.
func (c *chunkFlags) apply(o *convert.EROFSOptions, f *buildFlags) error {
	if c.size == "" {
		if c.blobdev != "" {
			return usagef("--blobdev needs --chunk-size")
		}
		return nil
	}
	bs := int64(f.blockSize)
	size, err := strconv.ParseInt(c.size, 0, 64)
	if err != nil || size < bs || size&(size-1) != 0 || size/bs > 1<<erofs.ChunkFormatBlkBits || size > 1<<31 {
		return usagef("--chunk-size %s: want a power of two from the block size %d to 2147483648", c.size, bs)
	}
	if f.compress != "" {
		return usagef("--chunk-size and -z do not go together: chunk-based files are stored uncompressed")
	}
	if c.blobdev != "" && c.blobdev == f.out {
		return usagef("--blobdev %s is the image (-o) too: give each output its own", c.blobdev)
	}
	o.Image.ChunkSize = size
	return nil
}

func parseBuildFlags(args []string) (*buildFlags, string, error) {
	f := &buildFlags{}
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, buildUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&f.out, "o", "", "output image `path` (required)")
	fs.IntVar(&f.blockSize, "b", erofs.DefaultBlockSize, "block `size` in bytes: a power of two from 512 to 65536 (the kernel mounts up to its page size, 4096 on x86-64)")
	fs.StringVar(&f.buildTime, "T", "", "build time in `seconds` since 1970 (the image epoch; file times come from the entries); default $SOURCE_DATE_EPOCH or 0")
	fs.StringVar(&f.uuid, "U", "", "volume `UUID`, or \"clear\" for all zeros; default derived from the content")
	fs.StringVar(&f.label, "L", "", "volume `label` (at most 16 bytes)")
	fs.StringVar(&f.whiteouts, "whiteouts", "overlay", "OCI whiteouts: `mode` overlay (convert to overlayfs form), keep (plain files) or strip (drop)")
	fs.BoolVar(&f.inlineData, "inline-data", true, "pack file tails into their inode's block (false: whole blocks only, like -E noinline_data)")
	fs.BoolVar(&f.quiet, "q", false, "print nothing but errors")
	fs.BoolVar(&f.progress, "progress", false, "show a progress bar even when standard error is not a terminal")
	fs.StringVar(&f.tmpDir, "tmpdir", "", "`directory` for temporary files (default: the system's)")
	fs.StringVar(&f.compress, "z", "", "compress regular files: `ALG[,level=N]` with ALG lz4, lz4hc (level 0-12, default 9), lzma (0-9, default 6), deflate (0-9, default 1) or zstd (1-22, default 3)")
	fs.IntVar(&f.pcluster, "C", 0, "largest physical cluster in `bytes`: a multiple of the block size up to 1048576 (default one block)")
	fs.StringVar(&f.extended, "E", "", "extended `options`, comma-separated, as mkfs.erofs spells them: ztailpacking (inline compressed tails), fragments[=SIZE] (tails and small files into the packed inode, SIZE its largest physical cluster, at most -C), all-fragments[=SIZE] (whole files into it), fragdedupe[=full|inode|off] (identical fragments stored once; default full), dedupe (share compressed data between files), legacy-compress (full lcluster indexes), noinline_data; ^OPT turns OPT off, later ones override earlier ones; all but noinline_data need -z")
	fs.IntVar(&f.workers, "workers", 0, "compression `threads` (default: the number of CPUs); the image does not depend on it")
	f.chunks.define(fs)
	// Tar index flags.
	fs.BoolVar(&f.tarIndex, "tar-index", false, "write a tar index, as mkfs.erofs --tar=i: metadata only, 512-byte blocks (-b 512 implied), regular files' data referenced in place in the tar, which is device 1 (mount with device=SOURCE); SOURCE must be the plain tar. Its files are mergeable")
	fs.BoolVar(&f.appendTar, "append-tar", false, "with the tar index (implies -tar-index), append the uncompressed tar to it, so that the one file mounts alone (containerd's enable_tar_index form); SOURCE may then be compressed or \"-\"")
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, "", err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	fs.Visit(func(fl *flag.Flag) { f.blockSet = f.blockSet || fl.Name == "b" })
	if len(pos) != 1 {
		fs.Usage()
		return nil, "", fmt.Errorf("want exactly one SOURCE, got %d", len(pos))
	}
	if f.out == "" {
		fs.Usage()
		return nil, "", errors.New("-o OUT is required")
	}
	return f, pos[0], nil
}

func (f *buildFlags) options() (*convert.EROFSOptions, error) {
	o := &convert.EROFSOptions{}
	f.tarIndex = f.tarIndex || f.appendTar
	if f.tarIndex {
		if f.blockSet && f.blockSize != convert.TarIndexBlockSize {
			return nil, fmt.Errorf("-b %d: a tar index has %d-byte blocks", f.blockSize, convert.TarIndexBlockSize)
		}
		if f.compress != "" || f.pcluster != 0 || f.extended != "" || f.chunks.size != "" || f.chunks.blobdev != "" {
			return nil, errors.New("-z, -C, -E, --chunk-size and --blobdev: not for a tar index, whose file data is the tar's, in chunks of its own")
		}
		f.blockSize = convert.TarIndexBlockSize
	}
	if bs := f.blockSize; bs < erofs.MinBlockSize || bs > erofs.MaxBlockSize || bs&(bs-1) != 0 {
		return nil, fmt.Errorf("block size %d: want a power of two from %d to %d", bs, erofs.MinBlockSize, erofs.MaxBlockSize)
	}
	o.Image.BlockSize = f.blockSize
	o.Image.VolumeName = f.label
	o.Image.NoInlineData = !f.inlineData
	o.Image.TempDir = f.tmpDir
	bt := f.buildTime
	if bt == "" {
		bt = os.Getenv("SOURCE_DATE_EPOCH")
	}
	if bt != "" {
		t, err := strconv.ParseInt(bt, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("build time %q: not a number of seconds", bt)
		}
		if t < 0 {
			return nil, fmt.Errorf("build time %d: want 0 or more seconds", t)
		}
		o.Image.BuildTime = t
	}
	if f.uuid != "" {
		var id [16]byte
		if f.uuid != "clear" {
			b, err := hex.DecodeString(strings.ReplaceAll(f.uuid, "-", ""))
			if err != nil || len(b) != 16 {
				return nil, fmt.Errorf("UUID %q: want 32 hex digits, e.g. 01234567-89ab-cdef-0123-456789abcdef", f.uuid)
			}
			copy(id[:], b)
		}
		o.Image.UUID = &id
	}
	if f.workers < 0 {
		return nil, fmt.Errorf("-workers %d: want 0 (the number of CPUs) or more", f.workers)
	}
	if p, bs := f.pcluster, f.blockSize; p != 0 && (p < bs || p%bs != 0 || p > maxPcluster || p/bs > maxPclusterBlocks) {
		return nil, fmt.Errorf("-C %d: want a multiple of the block size %d, at most %d bytes and %d blocks", p, bs, maxPcluster, maxPclusterBlocks)
	}
	ext, err := extended.Parse(f.extended)
	if err != nil {
		return nil, err
	}
	if ext.NoInlineData != nil {
		o.Image.NoInlineData = *ext.NoInlineData
	}
	if f.compress != "" {
		c, err := erofs.ParseCompression(f.compress)
		if err != nil {
			return nil, err
		}
		c.PclusterSize = f.pcluster
		c.Workers = f.workers
		if err := ext.Apply(c, f.blockSize); err != nil {
			return nil, err
		}
		o.Image.Compression = c
	} else {
		var need []string
		if f.pcluster != 0 {
			need = append(need, "-C")
		}
		if on := ext.NeedCompression(); len(on) > 0 {
			need = append(need, "-E "+strings.Join(on, ","))
		}
		if len(need) > 0 {
			return nil, fmt.Errorf("%s: only for compressed images (-z)", strings.Join(need, " and "))
		}
	}
	w, err := convert.ParseWhiteoutMode(f.whiteouts)
	if err != nil {
		return nil, err
	}
	o.Whiteouts = w
	if err := f.chunks.apply(o, f); err != nil {
		return nil, err
	}
	return o, nil
}

func cmdBuild(args []string) int {
	f, src, err := parseBuildFlags(args)
	if err == flag.ErrHelp {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rafs build:", err)
		return 2
	}
	opts, err := f.options()
	if err != nil {
		fmt.Fprintln(os.Stderr, "rafs build:", err)
		return 2
	}
	_, code := runBuild("rafs build", f, src, opts)
	return code
}

// runBuild builds the EROFS image of src with opts, writes it (and the
// blob device of f) through the atomic outputs and returns the result and
// the exit status; errors and warnings go to standard error prefixed with
// prog. It is the one build path of rafs build and its mkfs.erofs front
// end.
func runBuild(prog string, f *buildFlags, src string, opts *convert.EROFSOptions) (*convert.EROFSResult, int) {
	g := startGuard(prog, nil)
	defer g.stop()
	outs := newOutputs(g)
	defer outs.abort()
	out, err := outs.add(f.out, false)
	if err == nil && f.chunks.blobdev != "" {
		var blob *os.File
		if blob, err = outs.add(f.chunks.blobdev, true); err == nil {
			opts.Image.BlobDev = blob
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		return nil, exitStatus(err)
	}
	start := time.Now()
	res, what, err := buildEROFS(src, out, opts, f)
	if err == nil {
		err = outs.commit()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		return nil, 1
	}
	if !f.quiet {
		if res.DroppedXattrs > 0 {
			fmt.Fprintf(os.Stderr, "%s: warning: left out %d xattrs whose names are in no Linux namespace\n", prog, res.DroppedXattrs)
		}
		fromDir := what != ""
		warnEmpty(prog, src, res.Entries, fromDir)
		if isTTY(os.Stderr) {
			if !fromDir {
				what = fmt.Sprintf("%d entries, %d bytes of tar (%s)", res.Entries, res.TarSize, res.Encoding)
			}
			fmt.Fprintf(os.Stderr, "%s: %s: %s -> %d bytes in %.2fs\n", prog, f.out, what, res.ImageSize, time.Since(start).Seconds())
		}
	}
	return res, 0
}

// buildEROFS writes the EROFS image of src to out. For a directory it
// also returns what was read, for the summary line.
func buildEROFS(src string, out *os.File, opts *convert.EROFSOptions, f *buildFlags) (*convert.EROFSResult, string, error) {
	if fi, err := os.Stat(src); err == nil && fi.IsDir() {
		if f.tarIndex {
			return nil, "", fmt.Errorf("%s is a directory: a tar index is made from a tar", src)
		}
		res, err := convert.DirToEROFS(src, out, opts)
		if err != nil {
			return nil, "", err
		}
		return res, fmt.Sprintf("%d entries from directory %s", res.Entries, src), nil
	}
	in, total, err := openSource(src)
	if err != nil {
		return nil, "", err
	}
	defer in.Close()
	r, stop := withProgress(in, total, f.quiet, f.progress)
	defer stop()
	if f.tarIndex {
		res, err := convert.TarToEROFSIndex(r, out, &convert.TarIndexOptions{EROFS: *opts, Append: f.appendTar})
		return res, "", err
	}
	res, err := convert.TarToEROFS(r, out, opts)
	return res, "", err
}

// warnEmpty warns on standard error when the source had no entries (a
// directory: none but itself). The image is valid, and empty.
func warnEmpty(prog, src string, entries int, isDir bool) {
	if entries > 0 && !(isDir && entries == 1) {
		return
	}
	what := src
	if src == "-" {
		what = "standard input"
	}
	fmt.Fprintf(os.Stderr, "%s: warning: %s has no entries: the output is an empty file system\n", prog, what)
}

// stdinSource is standard input as a source: it seeks, and closing it
// leaves standard input open.
type stdinSource struct{ io.ReadSeeker }

// Close does nothing.
func (stdinSource) Close() error { return nil }

// openSource opens a file or standard input ("-") and returns its size
// when known (0 otherwise).
func openSource(src string) (io.ReadCloser, int64, error) {
	if src == "-" {
		// Standard input keeps its Seek: when it is a file, a tar index
		// skips file data instead of reading it (seeking a pipe fails,
		// and the reader falls back to reading).
		var size int64
		if fi, err := os.Stdin.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
		return stdinSource{os.Stdin}, size, nil
	}
	fh, err := os.Open(src)
	if err != nil {
		return nil, 0, err
	}
	var size int64
	if fi, err := fh.Stat(); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
	}
	return fh, size, nil
}
