package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"

	"github.com/rafs-dev/rafs/cmd/internal/extended"
	"github.com/rafs-dev/rafs/convert/image"
	"github.com/rafs-dev/rafs/erofs"
)

const convertUsage = `Usage: rafs convert [flags] SRC DST

Converts a whole image (or every image of an index) into a Nydus or an
EROFS image. SRC and DST are registry references (HOST/REPO[:TAG]) or OCI
image layouts, oci:DIR[:TAG]. An index in SRC gives an index in DST. To a
registry, each layer is uploaded while it is converted, then the manifest
is pushed to DST's tag (latest by default); to a layout, the result is
written once it is complete, tagged with the annotation
org.opencontainers.image.ref.name. A failed conversion leaves a layout as
it was (and creates none). The converted manifest's reference, with its
digest, is printed on standard output. The output is reproducible.

SRC and DST may also be archive files:
  oci-archive:FILE[:TAG]    a tar of an OCI image layout (skopeo, podman).
                            As SRC it is unpacked into the temporary
                            directory (--tmpdir) and read there. As DST
                            the layout is built there (from FILE's, if
                            FILE exists, so its other tags stay) and
                            written as a new tar that replaces FILE once
                            complete.
  docker-archive:FILE[:REF] a docker save tarball; REF is the image's tag
                            in it (RepoTags; needed to pick one image of
                            several). As DST it holds one image (not an
                            index: use --platform), written to a new file
                            that replaces FILE once complete; docker's
                            format keeps the layers' bytes but not their
                            media types, so prefer oci-archive for
                            converted images. FILE is all of the text
                            after the prefix when that file exists, else
                            what precedes the first colon.

Credentials come from the Docker config (docker login) and its credential
helpers.

Flags:
`

// convertFlags are rafs convert's flags.
type convertFlags struct {
	remoteFlags
	typ        string
	platforms  pathList
	referrer   bool
	mergeIndex bool
	chunkDict  string
	cache      string
	jobs       int
	mediaType  string
	progress   string
	tmpDir     string
	workers    int
	// Nydus
	compressor string
	digester   string
	chunkSize  string
	// EROFS
	compress string
	pcluster int
	extended string
	tarIndex bool
	verity   verityFlags

	set map[string]bool // flags given on the command line
}

func parseConvertFlags(args []string) (*convertFlags, []string, error) {
	f := &convertFlags{}
	fs := f.flagSet()
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, convertUsage)
		fs.PrintDefaults()
	}
	pos, err := f.parse(fs, args)
	if err != nil {
		return nil, nil, err
	}
	if len(pos) != 2 {
		fs.Usage()
		return nil, nil, fmt.Errorf("want SRC and DST, got %d arguments", len(pos))
	}
	return f, pos, nil
}

// flagSet returns the flag set of rafs convert, writing into f.
func (f *convertFlags) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("convert", flag.ContinueOnError)
	fs.StringVar(&f.typ, "type", "nydus", "output `type`: nydus or erofs")
	fs.Var(&f.platforms, "platform", "convert only the manifests of an index for `OS/ARCH[/VARIANT]` (repeatable; default all but attestations)")
	fs.BoolVar(&f.referrer, "referrer", false, "make each converted manifest a referrer of its source (OCI subject)")
	fs.BoolVar(&f.mergeIndex, "merge-index", false, "write one index listing the source manifests first and the converted ones after them")
	fs.StringVar(&f.chunkDict, "chunk-dict", "", "Nydus image `REF` (or oci:DIR[:TAG]) whose chunks are referenced instead of stored again")
	fs.StringVar(&f.cache, "cache", "", "keep a layer cache under `TAG` in DST's repository or layout, so layers converted before are reused")
	fs.IntVar(&f.jobs, "jobs", 0, "convert `N` layers at a time (default: the number of CPUs, at least 2)")
	fs.StringVar(&f.mediaType, "erofs-media-type", "containerd", "EROFS layer media `type`: containerd ("+string(image.MediaTypeEROFSLayer)+") or spec ("+string(image.MediaTypeEROFS)+")")
	fs.StringVar(&f.progress, "progress", "auto", "progress `mode`: bars (one per layer), plain (a summary line), none; auto is bars on a terminal, else plain")
	fs.StringVar(&f.tmpDir, "tmpdir", "", "`directory` for converted layers until they are stored (default: the system's)")
	fs.IntVar(&f.workers, "workers", 0, "compression `threads` per layer (default: the number of CPUs); the output does not depend on it")
	fs.StringVar(&f.compressor, "compressor", "zstd", "Nydus chunk `compressor`: zstd, lz4_block or none")
	fs.StringVar(&f.digester, "digester", "blake3", "Nydus chunk `digest`: blake3 or sha256")
	fs.StringVar(&f.chunkSize, "chunk-size", "0x100000", "Nydus chunk `size`: a power of two from 0x1000 to 0x1000000, in hex (0x...) or decimal")
	fs.StringVar(&f.compress, "z", "", "EROFS: compress regular files, `ALG[,level=N]` with ALG lz4, lz4hc, lzma, deflate or zstd (as rafs build -z)")
	fs.IntVar(&f.pcluster, "C", 0, "EROFS: largest physical cluster in `bytes`, a multiple of 4096 up to 1048576")
	fs.StringVar(&f.extended, "E", "", "EROFS: extended `options`, comma-separated, as rafs build -E: "+extended.Names)
	fs.BoolVar(&f.tarIndex, "tar-index", false, "EROFS: make each layer a tar index with its tar appended (as rafs build --append-tar; 512-byte blocks), the form containerd's EROFS differ makes with enable_tar_index, under the same media type")
	f.verity.define(fs, false)
	f.remoteFlags.register(fs)
	return fs
}

// parse parses args with fs (from flagSet) and returns the positional
// arguments.
func (f *convertFlags) parse(fs *flag.FlagSet, args []string) ([]string, error) {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return nil, err
	}
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	f.verity.visit(fs)
	return pos, nil
}

// serveOnlyFlags are rafs convert's flags that are not conversion flags
// of rafs serve: serve's own flags set them (or, for --chunk-dict, it
// has none), and a rule's type and link are its own settings.
var serveOnlyFlags = []string{"progress", "tmpdir", "plain-http", "retries", "chunk-dict"}

// conversionOptions parses rafs convert's conversion flags alone (no
// SRC and DST), as rafs serve's rules give them, with rafs convert's own
// parser and checks, and returns the converter's options and the cache
// tag.
func conversionOptions(args []string) (*image.Options, string, error) {
	f := &convertFlags{}
	fs := f.flagSet()
	fs.SetOutput(io.Discard)
	pos, err := f.parse(fs, args)
	if err != nil {
		return nil, "", err
	}
	if len(pos) != 0 {
		return nil, "", fmt.Errorf("%q is not a flag of rafs convert", pos[0])
	}
	for _, n := range serveOnlyFlags {
		if f.set[n] {
			return nil, "", fmt.Errorf("--%s is not a conversion flag of rafs serve", n)
		}
	}
	opts, err := f.imageOptions()
	if err != nil {
		return nil, "", err
	}
	return opts, f.cache, nil
}

// imageOptions checks the flags and returns the converter's options
// (without the chunk dictionary, cache, push and progress functions).
func (f *convertFlags) imageOptions() (*image.Options, error) {
	o := &image.Options{Jobs: f.jobs, TempDir: f.tmpDir}
	if err := f.remoteFlags.check(); err != nil {
		return nil, err
	}
	if f.jobs < 0 || f.workers < 0 {
		return nil, errors.New("--jobs and --workers must not be negative")
	}
	only := func(typ string, names ...string) error {
		for _, n := range names {
			if f.set[n] {
				return fmt.Errorf("-%s is for --type %s", n, typ)
			}
		}
		return nil
	}
	switch f.typ {
	case "nydus":
		if err := only("erofs", "z", "C", "E", "erofs-media-type", "tar-index", "verity", "verity-salt", "verity-block-size"); err != nil {
			return nil, err
		}
		nf := nydusBuildFlags{compressor: f.compressor, digester: f.digester, chunkSize: f.chunkSize, workers: f.workers}
		n, err := nf.options()
		if err != nil {
			return nil, err
		}
		o.Type, o.Nydus = image.TypeNydus, *n
	case "erofs":
		if err := only("nydus", "compressor", "digester", "chunk-size", "chunk-dict"); err != nil {
			return nil, err
		}
		bf := buildFlags{blockSize: erofs.DefaultBlockSize, whiteouts: "overlay", inlineData: true, tmpDir: f.tmpDir,
			compress: f.compress, pcluster: f.pcluster, extended: f.extended, workers: f.workers,
			tarIndex: f.tarIndex, appendTar: f.tarIndex}
		e, err := bf.options()
		if err != nil {
			return nil, err
		}
		o.Type, o.EROFS, o.EROFSTarIndex = image.TypeEROFS, *e, f.tarIndex
		if o.EROFSVerity, err = f.verity.options(bf.blockSize); err != nil {
			return nil, err
		}
		switch f.mediaType {
		case "containerd":
			o.EROFSMediaType = image.MediaTypeEROFSLayer
		case "spec":
			o.EROFSMediaType = image.MediaTypeEROFS
		default:
			return nil, fmt.Errorf("--erofs-media-type %q: want containerd or spec", f.mediaType)
		}
	default:
		return nil, fmt.Errorf("--type %q: want nydus or erofs", f.typ)
	}
	for _, s := range f.platforms {
		p, err := v1.ParsePlatform(s)
		if err == nil && (p.OS == "" || p.Architecture == "") {
			err = errors.New("want OS/ARCH[/VARIANT]")
		}
		if err != nil {
			return nil, fmt.Errorf("--platform %q: %w", s, err)
		}
		o.Platforms = append(o.Platforms, *p)
	}
	switch {
	case f.referrer && f.mergeIndex:
		return nil, errors.New("--referrer and --merge-index exclude each other")
	case f.referrer:
		o.Link = image.LinkReferrer
	case f.mergeIndex:
		o.Link = image.LinkMergeIndex
	}
	if f.cache != "" && !tagPattern.MatchString(f.cache) {
		return nil, fmt.Errorf("--cache %q: not a valid tag", f.cache)
	}
	switch f.progress {
	case "auto", "bars", "plain", "none":
	default:
		return nil, fmt.Errorf("--progress %q: want auto, bars, plain or none", f.progress)
	}
	return o, nil
}

func cmdConvert(args []string) int {
	f, pos, err := parseConvertFlags(args)
	if err == flag.ErrHelp {
		return 0
	}
	var opts *image.Options
	var src, dst *location
	if err == nil {
		opts, err = f.imageOptions()
	}
	if err == nil {
		src, err = parseLocation(pos[0], f.plainHTTP)
	}
	if err == nil {
		dst, err = parseLocation(pos[1], f.plainHTTP)
	}
	if err == nil {
		err = checkTarget(dst, f.cache)
	}
	if err == nil {
		err = checkNotSource(src, dst, f.cache)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rafs convert:", err)
		return 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g := startGuard("rafs convert", cancel)
	defer g.stop()
	line, err := runConvert(ctx, g, f, opts, src, dst, os.Stderr)
	if line != "" {
		fmt.Println(line)
	}
	if s := g.interrupted(); s != 0 {
		fmt.Fprintf(os.Stderr, "rafs convert: interrupted by %s: %v\n", unix.SignalName(s), err)
		return 128 + int(s)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rafs convert:", err)
		return 1
	}
	return 0
}

// checkNotSource refuses a destination that is the source: converting
// onto it would move the source's tag to the result, and a layout's
// source manifest would be left untagged. The same layout directory (the
// same directory, whatever the path) with the tag that names the source
// entry, or the same registry repository and tag, is the source. So is a
// --cache tag naming the source.
func checkNotSource(src, dst *location, cacheTag string) error {
	if src.archive != "" || dst.archive != "" {
		// Converting an archive onto itself is allowed for an
		// oci-archive (a new tag), never for a docker-archive.
		sfi, serr := os.Stat(src.file)
		dfi, derr := os.Stat(dst.file)
		if serr == nil && derr == nil && os.SameFile(sfi, dfi) && (src.archive == dockerArchivePrefix || dst.archive == dockerArchivePrefix || src.tag == dst.tag) {
			return usagef("DST %s is SRC %s: write another file or tag", dst, src)
		}
		return nil
	}
	if src.isLayout() != dst.isLayout() {
		return nil
	}
	if dst.isLayout() {
		sfi, err := os.Stat(src.dir)
		if err != nil {
			return nil // reading the source fails later
		}
		dfi, err := os.Stat(dst.dir)
		if err != nil || !os.SameFile(sfi, dfi) {
			return nil
		}
		tag := src.tag
		if tag == "" {
			// The layout's only entry, which a source without a tag
			// names.
			root, err := layout.ImageIndexFromPath(src.dir)
			if err != nil {
				return nil
			}
			im, err := root.IndexManifest()
			if err != nil || len(im.Manifests) != 1 {
				return nil
			}
			tag = im.Manifests[0].Annotations[image.AnnotationImageRefName]
		}
		switch {
		case tag == "":
		case dst.tag == tag:
			return usagef("DST %s is SRC %s, which converting would untag: give DST another tag", dst, src)
		case cacheTag == tag:
			return usagef("--cache %s is the tag of SRC %s", cacheTag, src)
		}
		return nil
	}
	st, ok := src.ref.(name.Tag)
	if !ok {
		return nil // a digest stays, whatever a tag names
	}
	same := func(t name.Tag) bool {
		return strings.EqualFold(t.RegistryStr(), st.RegistryStr()) && t.RepositoryStr() == st.RepositoryStr() && t.TagStr() == st.TagStr()
	}
	dt, ok := dst.ref.(name.Tag)
	switch {
	case !ok:
	case same(dt):
		return usagef("DST %s is SRC %s: give DST another tag", dst, src)
	case cacheTag != "" && same(dt.Context().Tag(cacheTag)):
		return usagef("--cache %s is the tag of SRC %s", cacheTag, src)
	}
	return nil
}

// checkTarget checks that dst can be written to: a tag, not a digest.
func checkTarget(dst *location, cacheTag string) error {
	if dst.archive == dockerArchivePrefix {
		if cacheTag != "" {
			return fmt.Errorf("--cache needs a registry, an OCI layout or an oci-archive DST, not %s", dst)
		}
		return nil
	}
	if dst.isLayout() {
		if cacheTag != "" && cacheTag == dst.tag {
			return fmt.Errorf("--cache %s is DST's own tag", cacheTag)
		}
		return nil
	}
	tag, ok := dst.ref.(interface{ TagStr() string })
	if !ok {
		return fmt.Errorf("DST %s: want a tag, not a digest", dst.ref)
	}
	if cacheTag != "" && cacheTag == tag.TagStr() {
		return fmt.Errorf("--cache %s is DST's own tag", cacheTag)
	}
	return nil
}

// runConvert converts src into dst and returns the line to print: dst
// with the result's digest. It reports progress on stderr.
//
// A signal cancels ctx through g; the Converter's temporary files, in a
// directory of their own that a second signal removes, and what was
// written to a layout are then removed.
func runConvert(ctx context.Context, g *guard, f *convertFlags, opts *image.Options, src, dst *location, stderr io.Writer) (line string, err error) {
	start := time.Now()
	tmp, err := os.MkdirTemp(f.tmpDir, "rafs-convert-*")
	if err != nil {
		return "", err
	}
	unregister := g.onSignal(func() { os.RemoveAll(tmp) })
	defer func() {
		if rerr := os.RemoveAll(tmp); rerr != nil && err == nil {
			err = rerr
		}
		unregister()
	}()
	opts.TempDir = tmp
	if opts.Type == image.TypeEROFS {
		// Only for EROFS: NewConverter refuses EROFS options for nydus.
		opts.EROFS.Image.TempDir = tmp
	}
	if err := prepareArchives(tmp, src, dst); err != nil {
		return "", err
	}
	ropts := f.remoteFlags.options(ctx)
	in, err := src.read(ctx, ropts)
	if err != nil {
		return "", fmt.Errorf("source: %w", err)
	}
	if in.img != nil && len(opts.Platforms) > 0 {
		if err := checkPlatform(in.img, opts.Platforms); err != nil {
			return "", fmt.Errorf("source %s: %w", src, err)
		}
	}
	if f.chunkDict != "" {
		if opts.ChunkDict, err = loadChunkDict(ctx, f.chunkDict, f, opts.Platforms, ropts); err != nil {
			return "", fmt.Errorf("chunk dictionary %s: %w", f.chunkDict, err)
		}
	}

	mode := f.progress
	if mode == "auto" {
		mode = "plain"
		if fh, ok := stderr.(*os.File); ok && isTTY(fh) {
			mode = "bars"
		}
	}
	var bars *layerBars
	if mode == "bars" {
		bars = newLayerBars(stderr, 200*time.Millisecond)
		opts.Progress = bars.update
		defer bars.stop()
	}
	summary := func(stats image.Stats, out source) error {
		if bars != nil {
			bars.stop()
		}
		if mode == "none" {
			return nil
		}
		n, err := convertedImages(in, out)
		if err != nil {
			return err
		}
		fmt.Fprintln(stderr, summaryLine(stats, n, time.Since(start)))
		return nil
	}

	if dst.ref != nil {
		// The manifest is the commit: after it, a signal no longer
		// interrupts, and the cache is pushed as well.
		tag, ok := dst.ref.(name.Tag)
		if !ok {
			return "", fmt.Errorf("DST %s: want a tag, not a digest", dst.ref)
		}
		res, err := image.ConvertToRegistry(ctx, in.taggable(), *opts, image.RegistryTarget{
			Tag: tag, CacheTag: f.cache, Remote: ropts, BeforeCommit: g.beginCommit,
		})
		if res != nil && err != nil {
			return dst.withDigest(res.Digest), err // the image is stored
		}
		if err != nil {
			return "", err
		}
		if err := summary(res.Stats, source{img: res.Image, idx: res.Index}); err != nil {
			return "", err
		}
		return dst.withDigest(res.Digest), nil
	}

	var lt *layoutTarget
	if dst.isLayout() {
		if lt, err = newLayoutTarget(dst); err != nil {
			return "", err
		}
		unregister := g.onSignal(lt.abandon)
		defer func() {
			unregister()
			if err != nil {
				lt.abandon()
			}
		}()
	}
	var cache *image.Cache
	if f.cache != "" {
		var prev v1.Image
		if lt != nil {
			prev, err = lt.lookup(f.cache)
		}
		if err == nil {
			cache, err = image.NewCache(prev)
		}
		if err != nil {
			return "", fmt.Errorf("cache %s: %w", f.cache, err)
		}
		opts.Cache = cache
	}

	conv, err := image.NewConverter(opts)
	if err != nil {
		return "", err
	}
	defer func() {
		if cerr := conv.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	var out source
	switch {
	case in.idx != nil:
		out.idx, err = conv.Index(ctx, in.idx)
	case opts.Link == image.LinkMergeIndex:
		var idx v1.ImageIndex
		if idx, err = image.IndexOf(in.img); err == nil {
			out.idx, err = conv.Index(ctx, idx)
		}
	default:
		out.img, err = conv.Image(ctx, in.img)
	}
	if err != nil {
		return "", err
	}
	dg, err := out.digest()
	if err != nil {
		return "", err
	}

	// Store the result, then the cache.
	var cacheImg v1.Image
	if cache != nil && cache.Len() > 0 {
		if cacheImg, err = cache.Image(); err != nil {
			return "", err
		}
	}
	if lt != nil {
		entries := []taggedSource{{out, dst.tag}}
		if cacheImg != nil {
			entries = append(entries, taggedSource{source{img: cacheImg}, f.cache})
		}
		err = lt.commit(g, entries)
		if err == nil && dst.archive == ociArchivePrefix {
			err = writeArchiveFile(g, dst, func(w io.Writer) error { return writeOCIArchive(w, dst.dir) })
		}
	} else if dst.archive == dockerArchivePrefix {
		if out.img == nil {
			return "", fmt.Errorf("DST %s holds single images, and the result is an index: select one platform with --platform, or use oci-archive", dst)
		}
		var ref name.Reference
		if dst.dockerTag != nil {
			ref = *dst.dockerTag
		} else if ref, err = name.NewDigest("rafs@" + dg.String()); err != nil {
			// No RepoTags: the image is known by its config digest.
			return "", err
		}
		err = writeArchiveFile(g, dst, func(w io.Writer) error { return tarball.Write(ref, out.img, w) })
	}
	if err != nil {
		return "", err
	}
	if err := summary(conv.Stats(), out); err != nil {
		return "", err
	}
	return dst.withDigest(dg), nil
}

// taggable returns the image or the index.
func (s source) taggable() remote.Taggable {
	if s.idx != nil {
		return s.idx
	}
	return s.img
}

// checkPlatform checks that a single source image is for one of the
// platforms asked for.
func checkPlatform(img v1.Image, want []v1.Platform) error {
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	p := cfg.Platform()
	if p != nil {
		for _, w := range want {
			if p.Satisfies(w) {
				return nil
			}
		}
	}
	return fmt.Errorf("a single image for %v, which --platform %s does not select", p, platformsString(want))
}

// convertedImages counts the image manifests of the result that are not
// source manifests (which --merge-index also lists).
func convertedImages(in, out source) (int, error) {
	if out.img != nil {
		return 1, nil
	}
	srcDigests := map[v1.Hash]bool{}
	if in.img != nil {
		dg, err := in.img.Digest()
		if err != nil {
			return 0, err
		}
		srcDigests[dg] = true
	} else if err := walkIndex(in.idx, func(d v1.Descriptor) { srcDigests[d.Digest] = true }); err != nil {
		return 0, err
	}
	n := 0
	err := walkIndex(out.idx, func(d v1.Descriptor) {
		if !srcDigests[d.Digest] {
			n++
		}
	})
	return n, err
}

// walkIndex calls fn for every image manifest of idx and its nested
// indexes.
func walkIndex(idx v1.ImageIndex, fn func(v1.Descriptor)) error {
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range im.Manifests {
		switch {
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return err
			}
			if err := walkIndex(child, fn); err != nil {
				return err
			}
		case d.MediaType.IsImage():
			fn(d)
		}
	}
	return nil
}

// loadChunkDict reads the Nydus image at ref for a chunk dictionary. From
// an index it takes the Nydus manifest for the first --platform (or
// linux/amd64).
func loadChunkDict(ctx context.Context, ref string, f *convertFlags, platforms []v1.Platform, ropts []remote.Option) (*image.ChunkDict, error) {
	loc, err := parseLocation(ref, f.plainHTTP)
	if err != nil {
		return nil, err
	}
	s, err := loc.read(ctx, ropts)
	if err != nil {
		return nil, err
	}
	if s.img != nil {
		return image.LoadChunkDict(s.img)
	}
	want := v1.Platform{OS: "linux", Architecture: "amd64"}
	if len(platforms) > 0 {
		want = platforms[0]
	}
	im, err := s.idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var errs []error
	// Manifests marked as Nydus first, then the others of the platform.
	cands := slices.Clone(im.Manifests)
	slices.SortStableFunc(cands, func(a, b v1.Descriptor) int {
		return boolRank(isNydusDesc(b)) - boolRank(isNydusDesc(a))
	})
	for _, d := range cands {
		if !d.MediaType.IsImage() || d.Platform == nil || !d.Platform.Satisfies(want) {
			continue
		}
		img, err := s.idx.Image(d.Digest)
		if err != nil {
			return nil, err
		}
		dict, err := image.LoadChunkDict(img)
		if err == nil {
			return dict, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", d.Digest, err))
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("the index has no manifest for %s", want)
	}
	return nil, errors.Join(errs...)
}

func isNydusDesc(d v1.Descriptor) bool {
	return d.ArtifactType == image.ArtifactTypeNydusManifest ||
		d.Platform != nil && slices.Contains(d.Platform.OSFeatures, image.OSFeatureNydus)
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// platformsString lists platforms for messages.
func platformsString(ps []v1.Platform) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return strings.Join(s, ", ")
}
