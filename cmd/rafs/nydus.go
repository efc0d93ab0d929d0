package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/erofs"
	"github.com/rafs-dev/rafs/rafs"
)

const nydusBuildUsage = `Usage: rafs build --type nydus [flags] -o BLOB [--bootstrap BOOT] SOURCE

Builds a Nydus data blob from SOURCE: a tar, a tar.gz or tar.zst (detected
by content), or "-" for standard input. The blob carries the layer's RAFS v6
bootstrap (as nydus-image --blob-inline-meta --features blob-toc builds it);
--bootstrap also writes that bootstrap to its own file, naming the blob by
its id (the SHA-256 of the blob, printed on standard output). OCI whiteouts
stay plain files until "rafs merge". The output is reproducible.

Flags:
`

const mergeUsage = `Usage: rafs merge [flags] -o BOOT LAYER...

Merges Nydus layers, the lowest first, into the image's RAFS v6 bootstrap,
applying OCI whiteouts and opaque directories. Each LAYER is a Nydus blob
(its inline bootstrap is used; the blob id is the SHA-256 of the file) or
a per-layer bootstrap with real blob ids (rafs build --bootstrap). The ids
of the blobs the image needs are printed on standard output in device
order: mount with one device= per blob, in that order.

Flags:
`

const unpackUsage = `Usage: rafs unpack [flags] [-o TAR] [--bootstrap BOOT] [--blob PATH]... [--blob-dir DIR] [--cache-dir DIR] [BLOB]

Writes the tree of a bootstrap as a tar, reading file contents from the
blobs (every chunk is verified). The bootstrap is BOOT, or the one inlined
in BLOB. Blobs are BLOB, the --blob files and the files of --blob-dir,
matched to the bootstrap's blob table by their SHA-256.

--cache-dir writes each blob's uncompressed cache file, DIR/ID.blob.data:
every chunk at its uncompressed offset, as nydusd keeps it and as the
kernel reads a blob device (mount -t erofs -o device=DIR/ID.blob.data BOOT).

Flags:
`

// pathList is a repeatable string flag.
type pathList []string

func (p *pathList) String() string     { return strings.Join(*p, ",") }
func (p *pathList) Set(s string) error { *p = append(*p, s); return nil }

// parseArgs parses flags anywhere among the arguments, as cmdBuild does,
// and returns the positional arguments.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// splitType takes the --type flag out of a command's arguments and
// returns its value (def when absent) and the other arguments.
func splitType(args []string, def string) (string, []string, error) {
	typ := def
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || a == "-" || name != "type" {
			if a == "--" {
				rest = append(rest, args[i:]...)
				break
			}
			rest = append(rest, a)
			continue
		}
		if !hasVal {
			if i+1 == len(args) {
				return "", nil, errors.New("flag needs an argument: -type")
			}
			i++
			val = args[i]
		}
		typ = val
	}
	if typ != "erofs" && typ != "nydus" {
		return "", nil, fmt.Errorf("--type %q: want erofs or nydus", typ)
	}
	return typ, rest, nil
}

type nydusBuildFlags struct {
	out, boot  string
	compressor string
	digester   string
	chunkSize  string
	chunkDict  string
	workers    int
	quiet      bool
	progress   bool
}

func cmdBuildNydus(args []string) int {
	f := &nydusBuildFlags{}
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, nydusBuildUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&f.out, "o", "", "output blob `path` (required)")
	fs.StringVar(&f.boot, "bootstrap", "", "also write the layer's bootstrap to `path`")
	fs.StringVar(&f.compressor, "compressor", "zstd", "chunk `compressor`: zstd, lz4_block or none")
	fs.StringVar(&f.digester, "digester", "blake3", "chunk `digest`: blake3 or sha256")
	fs.StringVar(&f.chunkSize, "chunk-size", "0x100000", "chunk `size`: a power of two from 0x1000 to 0x1000000, in hex (0x...) or decimal")
	fs.StringVar(&f.chunkDict, "chunk-dict", "", "chunk dictionary: a bootstrap or a Nydus blob `path`; chunks found there are referenced, not stored")
	fs.IntVar(&f.workers, "workers", 0, "compression `threads` (default: the number of CPUs); the blob does not depend on it")
	fs.BoolVar(&f.quiet, "q", false, "print nothing but errors")
	fs.BoolVar(&f.progress, "progress", false, "show a progress bar even when standard error is not a terminal")
	pos, err := parseArgs(fs, args)
	if err == flag.ErrHelp {
		return 0
	}
	if err == nil && len(pos) != 1 {
		fs.Usage()
		err = fmt.Errorf("want exactly one SOURCE, got %d", len(pos))
	}
	if err == nil && f.out == "" {
		fs.Usage()
		err = errors.New("-o BLOB is required")
	}
	var opts *convert.NydusOptions
	if err == nil {
		opts, err = f.options()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rafs build:", err)
		return 2
	}
	g := startGuard("rafs build", nil)
	defer g.stop()
	outs := newOutputs(g)
	defer outs.abort()
	blobOut, err := outs.add(f.out, true)
	var bootOut *os.File
	if err == nil && f.boot != "" {
		bootOut, err = outs.add(f.boot, true)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rafs build:", err)
		return exitStatus(err)
	}
	if f.chunkDict != "" {
		b, _, err := readLayer(f.chunkDict)
		if err == nil {
			opts.ChunkDict, err = rafs.NewChunkDict(b)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "rafs build: chunk dictionary %s: %v\n", f.chunkDict, err)
			return 1
		}
	}
	start := time.Now()
	res, err := buildNydus(pos[0], blobOut, bootOut, opts, f)
	if err == nil {
		err = outs.commit()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rafs build:", err)
		return 1
	}
	if !f.quiet {
		if res.DroppedXattrs > 0 {
			fmt.Fprintf(os.Stderr, "rafs build: warning: left out %d xattrs whose names are in no Linux namespace\n", res.DroppedXattrs)
		}
		warnEmpty("rafs build", pos[0], res.Entries, false)
		fmt.Println(res.Blob.ID)
		if isTTY(os.Stderr) {
			fmt.Fprintf(os.Stderr, "rafs build: %s: %d entries, %d bytes of tar (%s) -> %d bytes, %d chunks (%d from the dictionary) in %.2fs\n",
				f.out, res.Entries, res.TarSize, res.Encoding, res.Blob.Size, res.Blob.ChunkCount, res.DictChunks, time.Since(start).Seconds())
		}
	}
	return 0
}

// buildNydus writes the Nydus blob of src to blobOut and, if bootOut is
// not nil, its bootstrap to bootOut.
func buildNydus(src string, blobOut, bootOut *os.File, opts *convert.NydusOptions, f *nydusBuildFlags) (*convert.NydusResult, error) {
	in, total, err := openSource(src)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	r, stop := withProgress(in, total, f.quiet, f.progress)
	defer stop()
	res, err := convert.TarToNydus(r, blobOut, opts)
	if err != nil {
		return nil, err
	}
	if bootOut != nil {
		if _, err := res.Bootstrap.WriteTo(bootOut); err != nil {
			return nil, fmt.Errorf("%s: %w", f.boot, err)
		}
	}
	return res, nil
}

func (f *nydusBuildFlags) options() (*convert.NydusOptions, error) {
	o := &convert.NydusOptions{Compressor: f.compressor, Digester: f.digester, Workers: f.workers}
	if f.workers < 0 {
		return nil, fmt.Errorf("--workers %d: want 0 (the number of CPUs) or more", f.workers)
	}
	switch f.compressor {
	case "zstd", "lz4_block", "none":
	default:
		return nil, fmt.Errorf("--compressor %q: want zstd, lz4_block or none", f.compressor)
	}
	switch f.digester {
	case "blake3", "sha256":
	default:
		return nil, fmt.Errorf("--digester %q: want blake3 or sha256", f.digester)
	}
	cs, err := strconv.ParseUint(f.chunkSize, 0, 32)
	if err != nil || !blob.ValidChunkSize(cs) {
		return nil, fmt.Errorf("--chunk-size %q: want a power of two from 0x1000 to 0x1000000", f.chunkSize)
	}
	o.ChunkSize = int(cs)
	return o, nil
}

// isBootstrap reports whether a file starts like an EROFS image (a RAFS v6
// bootstrap) rather than a Nydus blob.
func isBootstrap(r io.ReaderAt) bool {
	var magic [4]byte
	_, err := r.ReadAt(magic[:], erofs.SuperblockOffset)
	return err == nil && binary.LittleEndian.Uint32(magic[:]) == erofs.Magic
}

// readLayer reads a per-layer bootstrap: from a bootstrap file, or inlined
// in a Nydus blob (then with the blob's real id, which it also returns).
func readLayer(path string) (*rafs.Bootstrap, string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, "", err
	}
	if isBootstrap(fh) {
		b, err := rafs.Read(fh, fi.Size())
		return b, "", err
	}
	return convert.ReadNydusLayer(fh, fi.Size())
}

func cmdMerge(args []string) int {
	return mergeCommand(args, mergeUsage, "bootstrap", "BOOT", true, func(out *os.File, paths []string) ([]string, error) {
		var layers []*rafs.Bootstrap
		for _, p := range paths {
			b, _, err := readLayer(p)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			layers = append(layers, b)
		}
		m, err := convert.MergeNydus(layers, nil)
		if err != nil {
			return nil, err
		}
		if _, err := m.WriteTo(out); err != nil {
			return nil, err
		}
		ids := make([]string, len(m.Blobs))
		for i, bi := range m.Blobs {
			ids[i] = bi.ID
		}
		return ids, nil
	})
}

// mergeCommand runs a merge command: it parses -o and -q and the LAYER
// arguments (usage is the command's help; what and metavar name the
// output in it),
// opens the output (streamable: written front to back), calls merge with
// it and the layers, commits the output, and prints the names merge
// returns (the devices the result needs, in order) unless -q.
func mergeCommand(args []string, usage, what, metavar string, streamable bool, merge func(out *os.File, layers []string) ([]string, error)) int {
	var out string
	var quiet bool
	fs := flag.NewFlagSet("merge", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, usage)
		fs.PrintDefaults()
	}
	fs.StringVar(&out, "o", "", "output "+what+" `path` (required)")
	fs.BoolVar(&quiet, "q", false, "print nothing but errors")
	pos, err := parseArgs(fs, args)
	if err == flag.ErrHelp {
		return 0
	}
	if err == nil && len(pos) == 0 {
		fs.Usage()
		err = errors.New("want at least one LAYER")
	}
	if err == nil && out == "" {
		fs.Usage()
		err = fmt.Errorf("-o %s is required", metavar)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rafs merge:", err)
		return 2
	}
	g := startGuard("rafs merge", nil)
	defer g.stop()
	outs := newOutputs(g)
	defer outs.abort()
	f, err := outs.add(out, streamable)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rafs merge:", err)
		return exitStatus(err)
	}
	names, err := merge(f, pos)
	if err == nil {
		err = outs.commit()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rafs merge:", err)
		return 1
	}
	if !quiet {
		for _, n := range names {
			fmt.Println(n)
		}
	}
	return 0
}

func cmdUnpack(args []string) int {
	var out, boot, blobDir, cacheDir string
	var blobs pathList
	var quiet bool
	fs := flag.NewFlagSet("unpack", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, unpackUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&out, "o", "", "output tar `path`, or - for standard output")
	fs.StringVar(&boot, "bootstrap", "", "bootstrap `path` (a bootstrap file or a Nydus blob; default: BLOB's)")
	fs.Var(&blobs, "blob", "a Nydus blob `path` (repeatable)")
	fs.StringVar(&blobDir, "blob-dir", "", "`directory` of Nydus blobs")
	fs.StringVar(&cacheDir, "cache-dir", "", "write each blob's uncompressed cache file to `directory`")
	fs.BoolVar(&quiet, "q", false, "print nothing but errors")
	pos, err := parseArgs(fs, args)
	if err == flag.ErrHelp {
		return 0
	}
	if err == nil && len(pos) > 1 {
		fs.Usage()
		err = fmt.Errorf("want at most one BLOB, got %d", len(pos))
	}
	if err == nil && boot == "" && len(pos) == 0 {
		fs.Usage()
		err = errors.New("want --bootstrap BOOT or a BLOB")
	}
	if err == nil && out == "" && cacheDir == "" {
		fs.Usage()
		err = errors.New("want -o TAR or --cache-dir DIR")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rafs unpack:", err)
		return 2
	}
	if cacheDir != "" {
		if fi, err := os.Stat(cacheDir); err == nil && !fi.IsDir() {
			fmt.Fprintf(os.Stderr, "rafs unpack: --cache-dir %s is not a directory\n", cacheDir)
			return 2
		}
	}
	g := startGuard("rafs unpack", nil)
	defer g.stop()
	outs := newOutputs(g)
	defer outs.abort()
	if cacheDir != "" {
		// Made now (and removed again on failure), so -o may name a file
		// in it.
		if err := outs.mkdirAll(cacheDir); err != nil {
			fmt.Fprintln(os.Stderr, "rafs unpack:", err)
			return 1
		}
	}
	var tarOut *os.File
	switch out {
	case "":
	case "-":
		tarOut = os.Stdout
	default:
		if tarOut, err = outs.add(out, true); err != nil {
			fmt.Fprintln(os.Stderr, "rafs unpack:", err)
			return exitStatus(err)
		}
	}
	err = unpack(outs, tarOut, boot, pos, blobs, blobDir, cacheDir)
	if err == nil {
		err = outs.commit()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rafs unpack:", err)
		return exitStatus(err)
	}
	return 0
}

// unpack writes the tree of the bootstrap as a tar to tarOut (if not nil)
// and the blobs' cache files to cacheDir (if not ""), added to outs.
func unpack(outs *outputSet, tarOut *os.File, bootPath string, pos, blobs []string, blobDir, cacheDir string) error {
	candidates := append(slices.Clone(pos), blobs...)
	if bootPath == "" {
		bootPath = pos[0]
	}
	boot, _, err := readLayer(bootPath)
	if err != nil {
		return fmt.Errorf("%s: %w", bootPath, err)
	}
	if blobDir != "" {
		found := false
		for _, bi := range boot.Blobs {
			for _, name := range []string{bi.ID, bi.ID + ".blob", "sha256:" + bi.ID} {
				p := filepath.Join(blobDir, name)
				if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
					candidates = append(candidates, p)
					found = true
					break
				}
			}
		}
		if !found && len(boot.Blobs) > 0 {
			ents, err := os.ReadDir(blobDir)
			if err != nil {
				return err
			}
			for _, e := range ents {
				if e.Type().IsRegular() {
					candidates = append(candidates, filepath.Join(blobDir, e.Name()))
				}
			}
		}
	}
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	readers, err := convert.OpenNydusBlobs(boot, len(candidates), func(i int) (io.ReaderAt, int64, error) {
		fh, err := os.Open(candidates[i])
		if err != nil {
			return nil, 0, err
		}
		files = append(files, fh)
		fi, err := fh.Stat()
		if err != nil {
			return nil, 0, err
		}
		return fh, fi.Size(), nil
	}, true)
	if err != nil {
		return err
	}
	if cacheDir != "" {
		for i, br := range readers {
			p := filepath.Join(cacheDir, boot.Blobs[i].ID+".blob.data")
			f, err := outs.add(p, true)
			if err != nil {
				return err
			}
			if _, err := convert.WriteBlobCache(f, br); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
	}
	if tarOut != nil {
		_, err = convert.UnpackNydus(boot, readers, tarOut)
	}
	return err
}
