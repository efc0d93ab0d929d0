package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/erofs"
	"github.com/rafs-dev/rafs/erofs/rebuild"
)

// The mkfs.erofs front end: "rafs mkfs ARGS", or the rafs binary run
// under the name mkfs.erofs (a symlink or hard link), reads mkfs.erofs
// 1.9's command line (see mkfs.erofs(1)) and maps it onto rafs build's
// flags and build path (or, for several image sources, onto rafs merge
// --type erofs), so that containerd's EROFS differ and snapshotter and
// image build scripts run on rafs unchanged. Options it cannot honour are
// errors naming the option, never ignored.

// mkfsVersion is the erofs-utils release whose command line the front end
// follows; -V reports it first, in mkfs.erofs's form, for scripts that
// check it.
const mkfsVersion = "1.9.3"

// argKind is how an option takes its argument, as in getopt_long.
type argKind int

const (
	noArg       argKind = iota
	requiredArg         // -Xarg, -X arg, --name=arg, --name arg
	optionalArg         // --name or --name=arg only
)

// mkfsOption is one option of mkfs.erofs's command line. An option with a
// nil set is one mkfs.erofs has and rafs does not support: giving it is an
// error that says so, with unsupported as the reason.
type mkfsOption struct {
	short byte   // 0 for long only
	long  string // "" for short only
	arg   argKind
	meta  string // the argument in --help: "#" for -b#, "=X" for --tar=X
	usage string // for --help; "" leaves the option out of it

	set         func(m *mkfsArgs, val string, hasVal bool) error
	unsupported string
}

// name is the option's spelling in messages.
func (o *mkfsOption) name() string {
	if o.long != "" {
		return "--" + o.long
	}
	return "-" + string(o.short)
}

// mkfsArgs is what the command line asked for.
type mkfsArgs struct {
	f     buildFlags // rafs build's flags the options map to
	given []string   // the options given, by name, in order

	tar        string // --tar: "" (none), "f" or "i"
	aufs       bool   // --aufs
	ovlfsStrip bool   // --ovlfs-strip[=1]
	uuid       string // -U as given ("" none, "random")
	time       string // -T as given
	timeFixed  *bool  // --all-time (true) or --mkfs-time (false), the last
	noXFilter  bool   // -E ^xattr-name-filter
	dropNoInl  bool   // -E noinline_data given with --tar=i, where it changes nothing
	help       bool   // -h, --help
	version    bool   // -V, --version
	positional []string
}

// mkfsOptions is mkfs.erofs 1.9's option table: the options the front end
// maps and, with a reason, those it refuses.
var mkfsOptions = []mkfsOption{
	{short: 'V', long: "version", usage: "print the version of mkfs.erofs this follows and exit", set: func(m *mkfsArgs, _ string, _ bool) error { m.version = true; return nil }},
	{short: 'h', long: "help", usage: "display this help and exit", set: func(m *mkfsArgs, _ string, _ bool) error { m.help = true; return nil }},
	{short: 'b', arg: requiredArg, meta: "#", usage: "set the block size to # bytes (default 4096): a power of two from 512 to 65536", set: setBlockSize},
	{short: 'd', arg: requiredArg, meta: "#", usage: "output verbosity 0-9: below 2 prints only errors, like --quiet", set: setVerbosity},
	{short: 'x', arg: requiredArg, meta: "#", usage: "xattr tolerance: only the default 2 (an xattr on more than 2 inodes is shared)", set: setXattrTolerance},
	{short: 'z', arg: requiredArg, meta: "X[,level=Y]", usage: "compress with X: lz4, lz4hc (level 0-12), lzma (0-9), deflate (0-9) or zstd (1-22)", set: setCompression},
	{short: 'C', arg: requiredArg, meta: "#", usage: "largest physical cluster in bytes (with -z)", set: setPcluster},
	{short: 'E', arg: requiredArg, meta: "X[,...]", usage: "extended options: " + mkfsExtendedNames, set: setExtended},
	{short: 'L', arg: requiredArg, meta: " label", usage: "set the volume label", set: func(m *mkfsArgs, v string, _ bool) error { m.f.label = v; return nil }},
	{short: 'T', arg: requiredArg, meta: "#", usage: "build time # (seconds since 1970), also every file's mtime unless --mkfs-time", set: setTime},
	{short: 'U', arg: requiredArg, meta: "X", usage: "volume UUID X, \"clear\" (zeros) or \"random\" (the default)", set: setUUID},
	{short: 'm', arg: requiredArg, unsupported: "metadata compression"},
	{long: "all-time", usage: "the -T time is every file's mtime too (the default)", set: func(m *mkfsArgs, _ string, _ bool) error { t := true; m.timeFixed = &t; return nil }},
	{long: "mkfs-time", usage: "the -T time is the build time only: files keep their own mtimes", set: func(m *mkfsArgs, _ string, _ bool) error { t := false; m.timeFixed = &t; return nil }},
	{long: "aufs", usage: "convert OCI (aufs) whiteouts in a tar to overlayfs ones", set: func(m *mkfsArgs, _ string, _ bool) error { m.aufs = true; return nil }},
	{long: "blobdev", arg: requiredArg, meta: "=X", usage: "write the chunks of --chunksize to the extra device X", set: func(m *mkfsArgs, v string, _ bool) error { m.f.chunks.blobdev = v; return nil }},
	{long: "chunksize", arg: requiredArg, meta: "=#", usage: "chunk-based files with #-byte chunks", set: setChunkSize},
	{long: "ovlfs-strip", arg: optionalArg, meta: "[=<0,1>]", usage: "strip overlayfs whiteouts and opaque markers (needed to merge images)", set: setOvlfsStrip},
	{long: "quiet", usage: "print nothing but errors", set: func(m *mkfsArgs, _ string, _ bool) error { m.f.quiet = true; return nil }},
	{long: "sort", arg: requiredArg, meta: "=none", usage: "file data in the tar's order (the only order rafs writes)", set: setSort},
	{long: "tar", arg: optionalArg, meta: "=X", usage: "build from a tar (X = f: full image, i: tar index), the SOURCE file or standard input", set: setTar},
	{long: "ungzip", arg: optionalArg, usage: "the tar may be gzip-compressed (rafs detects gzip and zstd anyway)", set: setUngzip},
	{long: "gzip", usage: "", set: setUngzip},
	{long: "workers", arg: requiredArg, meta: "=#", usage: "compression threads (the image does not depend on it)", set: setWorkers},

	{long: "exclude-path", arg: requiredArg, unsupported: "excluding files"},
	{long: "exclude-regex", arg: requiredArg, unsupported: "excluding files"},
	{long: "file-contexts", arg: requiredArg, unsupported: "SELinux labels"},
	{long: "force-uid", arg: requiredArg, unsupported: "overriding owners"},
	{long: "force-gid", arg: requiredArg, unsupported: "overriding owners"},
	{long: "all-root", unsupported: "overriding owners"},
	{long: "uid-offset", arg: requiredArg, unsupported: "overriding owners"},
	{long: "gid-offset", arg: requiredArg, unsupported: "overriding owners"},
	{long: "max-extent-bytes", arg: requiredArg, unsupported: "limiting extents"},
	{long: "compress-hints", arg: requiredArg, unsupported: "per-file compression"},
	{long: "ignore-mtime", unsupported: "compact inodes without their mtimes (use -T)"},
	{long: "preserve-mtime", unsupported: "it is the default"},
	{long: "mount-point", arg: requiredArg, unsupported: "a target path prefix"},
	{long: "offset", arg: requiredArg, unsupported: "an image offset"},
	{long: "gzinfo", arg: optionalArg, unsupported: "zinfo files"},
	{long: "unlzma", arg: optionalArg, unsupported: "xz/lzma input (rafs reads gzip and zstd)"},
	{long: "unxz", arg: optionalArg, unsupported: "xz/lzma input (rafs reads gzip and zstd)"},
	{long: "zfeature-bits", arg: requiredArg, unsupported: "feature bits (use -E)"},
	{long: "clean", arg: optionalArg, unsupported: "copying the source images' data (rebuild mode keeps it in the sources)"},
	{long: "incremental", arg: optionalArg, unsupported: "incremental builds"},
	{long: "root-xattr-isize", arg: requiredArg, unsupported: "a minimum root xattr size"},
	{long: "hard-dereference", unsupported: "dereferencing hard links"},
	{long: "dsunit", arg: requiredArg, unsupported: "data alignment"},
	{long: "async-queue-limit", arg: requiredArg, unsupported: "a job queue limit"},
	{long: "fsalignblks", arg: requiredArg, unsupported: "device size alignment"},
	{long: "vmdk-desc", arg: requiredArg, unsupported: "VMDK descriptors"},
	{long: "s3", arg: requiredArg, unsupported: "S3 sources"},
	{long: "oci", arg: optionalArg, unsupported: "registry sources (use rafs convert)"},
	{long: "zD", arg: optionalArg, unsupported: "compressed directories"},
	{long: "MZ", arg: optionalArg, unsupported: "a metadata zone"},
	{long: "xattr-prefix", arg: requiredArg, unsupported: "extra xattr name prefixes"},
	{long: "xattr-inode-digest", arg: optionalArg, unsupported: "inode digests"},
	{long: "random-pclusterblks", unsupported: "a debugging option"},
	{long: "random-algorithms", unsupported: "a debugging option"},
	{long: "product-out", arg: requiredArg, unsupported: "Android options"},
	{long: "fs-config-file", arg: requiredArg, unsupported: "Android options"},
}

// mkfsExtendedNames lists the -E options the front end takes.
const mkfsExtendedNames = "ztailpacking, fragments[=SIZE], all-fragments[=SIZE], fragdedupe[=full|inode|off], dedupe, legacy-compress, noinline_data, xattr-name-filter; ^OPT turns OPT off"

// mkfsUnsupportedExtended are the -E options of mkfs.erofs 1.9 that rafs
// does not have, with the reason.
var mkfsUnsupportedExtended = map[string]string{
	"force-inode-compact":  "compact inodes without their mtimes (use -T)",
	"force-inode-extended": "extended inodes for all files",
	"force-inode-blockmap": "the chunk index format is chosen by rafs",
	"force-chunk-indexes":  "the chunk index format is chosen by rafs",
	"nosbcrc":              "rafs always writes the superblock checksum",
	"plain-xattr-prefixes": "long xattr name prefixes",
	"48bit":                "the 48-bit layout is chosen by rafs when needed",
	"dot-omitted":          "directories without \".\"",
}

// parseMkfsArgs parses a mkfs.erofs command line as getopt_long does:
// options and operands in any order ("--" ends the options), short
// options clustered (-hV) and with their argument attached (-zlz4hc,
// -C65536) or next (-z lz4hc), long options by any unambiguous prefix,
// with --name=arg or --name arg for a required argument and --name=arg
// for an optional one. It stops at -h or -V, as mkfs.erofs does.
func parseMkfsArgs(args []string) (*mkfsArgs, error) {
	m := &mkfsArgs{f: buildFlags{blockSize: erofs.DefaultBlockSize, inlineData: true, whiteouts: "keep"}}
	apply := func(o *mkfsOption, val string, hasVal bool) error {
		if o.set == nil {
			return usagef("%s: not supported by rafs (%s)", o.name(), o.unsupported)
		}
		m.given = append(m.given, o.name())
		if err := o.set(m, val, hasVal); err != nil {
			return usageError{fmt.Errorf("%s %s: %w", o.name(), val, err)}
		}
		return nil
	}
	for i := 0; i < len(args) && !m.help && !m.version; i++ {
		a := args[i]
		switch {
		case a == "--":
			m.positional = append(m.positional, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			o, err := lookupLong(name)
			if err != nil {
				return nil, err
			}
			switch o.arg {
			case noArg:
				if hasVal {
					return nil, usagef("option '--%s' doesn't allow an argument", o.long)
				}
			case requiredArg:
				if !hasVal {
					if i+1 >= len(args) {
						return nil, usagef("option '--%s' requires an argument", o.long)
					}
					i++
					val, hasVal = args[i], true
				}
			}
			if err := apply(o, val, hasVal); err != nil {
				return nil, err
			}
		case len(a) > 1 && a[0] == '-':
			for j := 1; j < len(a); j++ {
				o := lookupShort(a[j])
				if o == nil {
					return nil, usagef("invalid option -- '%c'", a[j])
				}
				if o.arg == noArg {
					if err := apply(o, "", false); err != nil {
						return nil, err
					}
					if m.help || m.version {
						break
					}
					continue
				}
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return nil, usagef("option requires an argument -- '%c'", a[j])
					}
					i++
					val = args[i]
				}
				if err := apply(o, val, true); err != nil {
					return nil, err
				}
				break
			}
		default:
			m.positional = append(m.positional, a)
		}
	}
	return m, nil
}

// lookupLong finds the long option name, or the one it is an unambiguous
// prefix of.
func lookupLong(name string) (*mkfsOption, error) {
	var found []*mkfsOption
	for i := range mkfsOptions {
		o := &mkfsOptions[i]
		if o.long == "" {
			continue
		}
		if o.long == name {
			return o, nil
		}
		if name != "" && strings.HasPrefix(o.long, name) {
			found = append(found, o)
		}
	}
	switch len(found) {
	case 0:
		return nil, usagef("unrecognized option '--%s'", name)
	case 1:
		return found[0], nil
	}
	var names []string
	for _, o := range found {
		names = append(names, "'--"+o.long+"'")
	}
	return nil, usagef("option '--%s' is ambiguous; possibilities: %s", name, strings.Join(names, " "))
}

// lookupShort finds the short option c, or returns nil.
func lookupShort(c byte) *mkfsOption {
	for i := range mkfsOptions {
		if mkfsOptions[i].short == c {
			return &mkfsOptions[i]
		}
	}
	return nil
}

// parseMkfsNumber parses a number as mkfs.erofs does for sizes: decimal,
// 0x hex or 0 octal, with an optional k, m or g suffix (KiB, MiB, GiB).
func parseMkfsNumber(s string) (int64, error) {
	shift := 0
	if s != "" {
		switch s[len(s)-1] {
		case 'k', 'K':
			shift = 10
		case 'm', 'M':
			shift = 20
		case 'g', 'G':
			shift = 30
		}
	}
	if shift != 0 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 0, 64)
	if err != nil || n < 0 || n > math.MaxInt64>>shift {
		return 0, errors.New("not a number of bytes")
	}
	return n << shift, nil
}

func setBlockSize(m *mkfsArgs, v string, _ bool) error {
	n, err := parseMkfsNumber(v)
	if err != nil || n < erofs.MinBlockSize || n > erofs.MaxBlockSize || n&(n-1) != 0 {
		return fmt.Errorf("want a power of two from %d to %d", erofs.MinBlockSize, erofs.MaxBlockSize)
	}
	m.f.blockSize, m.f.blockSet = int(n), true
	return nil
}

func setVerbosity(m *mkfsArgs, v string, _ bool) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 9 {
		return errors.New("want a level from 0 to 9")
	}
	// mkfs.erofs's levels: 0 and 1 print errors only, 2 warnings too.
	m.f.quiet = n < 2
	return nil
}

func setXattrTolerance(m *mkfsArgs, v string, _ bool) error {
	n, err := strconv.ParseInt(v, 0, 64)
	if err != nil || n != 2 {
		return errors.New("rafs shares an xattr carried by more than 2 inodes, as the default -x2 does; no other tolerance is supported")
	}
	return nil
}

func setCompression(m *mkfsArgs, v string, _ bool) error {
	if strings.Contains(v, ":") {
		return errors.New("alternative algorithms (ALG:ALG) are for --compress-hints, which rafs does not support")
	}
	if _, err := erofs.ParseCompression(v); err != nil {
		return err
	}
	m.f.compress = v
	return nil
}

func setPcluster(m *mkfsArgs, v string, _ bool) error {
	n, err := parseMkfsNumber(v)
	if err != nil || n <= 0 || n > maxPcluster {
		return fmt.Errorf("want a number of bytes up to %d", maxPcluster)
	}
	m.f.pcluster = int(n)
	return nil
}

func setChunkSize(m *mkfsArgs, v string, _ bool) error {
	n, err := strconv.ParseInt(v, 0, 64)
	if err != nil || n <= 0 {
		return errors.New("not a number of bytes")
	}
	m.f.chunks.size = strconv.FormatInt(n, 10)
	return nil
}

func setExtended(m *mkfsArgs, v string, _ bool) error {
	var pass []string
	for item := range strings.SplitSeq(v, ",") {
		key, _, _ := strings.Cut(item, "=")
		name, off := strings.CutPrefix(key, "^")
		if why, ok := mkfsUnsupportedExtended[name]; ok {
			return fmt.Errorf("%s: not supported by rafs (%s)", item, why)
		}
		if name == "xattr-name-filter" {
			if item != key {
				return fmt.Errorf("%s takes no value", key)
			}
			m.noXFilter = off
			continue
		}
		pass = append(pass, item)
	}
	if len(pass) > 0 {
		if m.f.extended != "" {
			m.f.extended += ","
		}
		m.f.extended += strings.Join(pass, ",")
	}
	return nil
}

func setTime(m *mkfsArgs, v string, _ bool) error {
	n, err := strconv.ParseUint(v, 0, 64)
	if err != nil || n > math.MaxInt64 {
		return errors.New("not a UNIX time in seconds")
	}
	m.time = strconv.FormatUint(n, 10)
	return nil
}

func setUUID(m *mkfsArgs, v string, _ bool) error {
	if v != "clear" && v != "random" {
		if _, err := parseUUID(v); err != nil {
			return err
		}
	}
	m.uuid = v
	return nil
}

// parseUUID parses a UUID as 32 hex digits, dashes allowed anywhere.
func parseUUID(s string) ([16]byte, error) {
	var id [16]byte
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		return id, errors.New("want 32 hex digits, e.g. 01234567-89ab-cdef-0123-456789abcdef")
	}
	copy(id[:], b)
	return id, nil
}

func setOvlfsStrip(m *mkfsArgs, v string, hasVal bool) error {
	switch {
	case !hasVal, v == "1":
		m.ovlfsStrip = true
	case v == "0":
		m.ovlfsStrip = false
	default:
		return errors.New("want 0 or 1")
	}
	return nil
}

func setSort(m *mkfsArgs, v string, _ bool) error {
	switch v {
	case "none":
		return nil
	case "path":
		return errors.New("rafs writes file data in the tar's order (--sort=none), not sorted by path")
	}
	return errors.New("want path or none")
}

func setTar(m *mkfsArgs, v string, hasVal bool) error {
	mode, mapfile, _ := strings.Cut(v, ",")
	if mapfile != "" {
		return errors.New("block map files are not supported by rafs")
	}
	switch {
	case !hasVal, mode == "f":
		m.tar = "f"
	case mode == "i", mode == "0":
		m.tar = "i"
	case mode == "headerball":
		return errors.New("header-only tar streams are not supported by rafs")
	default:
		// mkfs.erofs takes any other word for a full image; rafs is
		// stricter.
		return errors.New("want f (full image) or i (tar index)")
	}
	return nil
}

func setUngzip(m *mkfsArgs, v string, hasVal bool) error {
	if hasVal {
		return errors.New("copying the uncompressed tar to a file is not supported by rafs")
	}
	return nil
}

func setWorkers(m *mkfsArgs, v string, _ bool) error {
	n, err := strconv.ParseUint(v, 0, 31)
	if err != nil {
		return errors.New("not a number of threads")
	}
	m.f.workers = int(n)
	return nil
}

// has reports whether any of the options names was given.
func (m *mkfsArgs) has(names ...string) string {
	for _, g := range m.given {
		for _, n := range names {
			if g == n {
				return g
			}
		}
	}
	return ""
}

// mkfsPlan is a parsed command line resolved against its operands: one of
// a build (rafs build's path) and a rebuild (rafs merge --type erofs).
type mkfsPlan struct {
	src     string                // the build's SOURCE ("-" for standard input)
	opts    *convert.EROFSOptions // the build's options
	uuid    [16]byte
	warning string // printed unless quiet

	rebuild []string // the rebuild's source images
}

// plan resolves the operands and the options: DESTINATION, then for
// --tar one tar (none for standard input), else a directory, or one or
// more EROFS images to merge (mkfs.erofs's rebuild mode). getenv reads the
// environment ($SOURCE_DATE_EPOCH), now gives the time.
func (m *mkfsArgs) plan(getenv func(string) string, now func() time.Time) (*mkfsPlan, error) {
	if len(m.positional) == 0 {
		return nil, usagef("missing argument: FILE")
	}
	m.f.out = m.positional[0]
	srcs := m.positional[1:]
	p := &mkfsPlan{}
	switch {
	case m.tar != "":
		switch len(srcs) {
		case 0:
			p.src = "-"
		case 1:
			p.src = srcs[0]
		default:
			return nil, usagef("unexpected argument: %s (--tar takes one SOURCE)", srcs[1])
		}
	case len(srcs) == 0:
		return nil, usagef("missing argument: SOURCE(s)")
	default:
		fi, err := os.Stat(srcs[0])
		if err != nil {
			return nil, usageError{err}
		}
		if fi.IsDir() {
			if len(srcs) > 1 {
				return nil, usagef("unexpected argument: %s (a directory SOURCE comes alone)", srcs[1])
			}
			p.src = srcs[0]
		} else {
			p.rebuild = srcs
		}
	}

	// The UUID: random unless -U gives one, as mkfs.erofs does.
	switch m.uuid {
	case "", "random":
		if _, err := rand.Read(p.uuid[:]); err != nil {
			return nil, err
		}
		p.uuid[6] = p.uuid[6]&0x0f | 0x40 // version 4
		p.uuid[8] = p.uuid[8]&0x3f | 0x80 // RFC 4122 variant
	case "clear":
	default:
		p.uuid, _ = parseUUID(m.uuid)
	}

	if p.rebuild != nil {
		if !m.ovlfsStrip {
			return nil, usagef("merging EROFS images (rebuild mode) without --ovlfs-strip=1 is not supported by rafs: it applies the whiteouts, give --ovlfs-strip=1")
		}
		// --aufs changes nothing in mkfs.erofs's rebuild mode either.
		allowed := map[string]bool{"--aufs": true, "--ovlfs-strip": true, "--quiet": true, "-d": true, "-U": true}
		for _, g := range m.given {
			if !allowed[g] {
				return nil, usagef("%s: not supported by rafs when merging EROFS images (rebuild mode)", g)
			}
		}
		return p, nil
	}

	f := &m.f
	// Whiteouts: OCI (aufs) ones converted with --aufs, else kept as
	// they are; --ovlfs-strip drops them.
	switch {
	case p.src != "-" && m.tar == "":
		if o := m.has("--aufs", "--ovlfs-strip"); o != "" {
			return nil, usagef("%s: only for --tar sources in rafs (a directory's entries are taken as they are)", o)
		}
	case m.ovlfsStrip && !m.aufs:
		return nil, usagef("--ovlfs-strip without --aufs: rafs strips OCI whiteout files too; give --aufs")
	case m.ovlfsStrip:
		f.whiteouts = "strip"
	case m.aufs:
		f.whiteouts = "overlay"
	}
	if m.tar == "i" {
		f.tarIndex = true
		if f.blockSet && f.blockSize != convert.TarIndexBlockSize {
			p.warning = fmt.Sprintf("-b %d: a tar index has %d-byte blocks, as in mkfs.erofs", f.blockSize, convert.TarIndexBlockSize)
		}
		f.blockSize, f.blockSet = convert.TarIndexBlockSize, false
		// Files of a tar index are chunk-based: they have no inline data
		// for noinline_data to change.
		if onlyNoInline(f.extended) {
			f.extended = ""
		}
	}

	// Times, as mkfs.erofs sets them: $SOURCE_DATE_EPOCH, when set, is
	// the build time and the latest mtime (it wins over -T); else -T is
	// the build time and, unless --mkfs-time, every mtime; else the build
	// time is now, and files keep their mtimes unless --all-time.
	times := erofs.TimesKeep
	fixed := m.time != ""
	if m.timeFixed != nil {
		fixed = *m.timeFixed
	}
	if fixed {
		times = erofs.TimesFixed
	}
	switch sde := getenv("SOURCE_DATE_EPOCH"); {
	case sde != "":
		n, err := strconv.ParseUint(sde, 10, 64)
		if err != nil || n > math.MaxInt64 {
			return nil, usagef("environment variable $SOURCE_DATE_EPOCH %s is invalid", sde)
		}
		f.buildTime, times = strconv.FormatUint(n, 10), erofs.TimesClamp
	case m.time != "":
		f.buildTime = m.time
	default:
		f.buildTime = strconv.FormatInt(max(now().Unix(), 0), 10)
	}
	f.uuid = hex.EncodeToString(p.uuid[:])

	opts, err := f.options()
	if err != nil {
		return nil, usageError{err}
	}
	opts.Image.Times = times
	opts.Image.NoXattrFilter = m.noXFilter
	p.opts = opts
	return p, nil
}

// onlyNoInline reports whether the -E list ext has noinline_data and
// nothing else.
func onlyNoInline(ext string) bool {
	if ext == "" {
		return false
	}
	for item := range strings.SplitSeq(ext, ",") {
		if item != "noinline_data" && item != "" {
			return false
		}
	}
	return true
}

// cmdMkfs runs the mkfs.erofs front end; prog names it in messages.
func cmdMkfs(prog string, args []string) int {
	m, err := parseMkfsArgs(args)
	if err == nil && m.help {
		fmt.Print(mkfsUsage(prog))
		return 0
	}
	if err == nil && m.version {
		fmt.Printf("mkfs.erofs (erofs-utils) %s (rafs %s)\navailable compressors: %s\n", mkfsVersion, version, strings.Join(erofsAlgorithms(), ", "))
		return 0
	}
	var p *mkfsPlan
	if err == nil {
		p, err = m.plan(os.Getenv, time.Now)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\nTry '%s --help' for more information.\n", prog, err, prog)
		return exitStatus(err)
	}
	if p.warning != "" && !m.f.quiet {
		fmt.Fprintf(os.Stderr, "%s: warning: %s\n", prog, p.warning)
	}
	if p.rebuild != nil {
		return mkfsRebuild(prog, m, p)
	}
	res, code := runBuild(prog, &m.f, p.src, p.opts)
	if code == 0 && !m.f.quiet {
		mkfsSummary(p.uuid, res.ImageSize, m.f.blockSize)
	}
	return code
}

// mkfsRebuild merges the source images, as rafs merge --type erofs does.
func mkfsRebuild(prog string, m *mkfsArgs, p *mkfsPlan) int {
	g := startGuard(prog, nil)
	defer g.stop()
	outs := newOutputs(g)
	defer outs.abort()
	out, err := outs.add(m.f.out, false)
	var res *rebuild.Result
	if err == nil {
		res, err = mergeEROFSFiles(out, p.rebuild, &rebuild.Options{UUID: &p.uuid})
	}
	if err == nil {
		err = outs.commit()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		return exitStatus(err)
	}
	if !m.f.quiet {
		mkfsSummary(p.uuid, res.Size, res.BlockSize)
	}
	return 0
}

// mkfsSummary prints what mkfs.erofs prints on standard output after a
// build (unless --quiet).
func mkfsSummary(uuid [16]byte, size int64, blockSize int) {
	h := hex.EncodeToString(uuid[:])
	fmt.Printf("------\nFilesystem UUID: %s-%s-%s-%s-%s\nFilesystem total blocks: %d (of %d-byte blocks)\n",
		h[:8], h[8:12], h[12:16], h[16:20], h[20:], (size+int64(blockSize)-1)/int64(blockSize), blockSize)
}

// erofsAlgorithms lists the compression algorithms rafs writes.
func erofsAlgorithms() []string {
	var names []string
	for _, a := range []string{"lz4", "lz4hc", "lzma", "deflate", "zstd"} {
		if _, err := erofs.DefaultCompression(a); err == nil {
			names = append(names, a)
		}
	}
	return names
}

// mkfsUsage is the --help text. It lists --tar=, which containerd's EROFS
// differ looks for before it uses mkfs.erofs.
func mkfsUsage(prog string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `Usage: %s [OPTIONS] FILE SOURCE(s)
Generate EROFS image (FILE) from SOURCE(s): rafs's mkfs.erofs front end,
following the command line of mkfs.erofs (erofs-utils) %s.

SOURCE is a directory; with --tar, a tar file (plain, gzip or zstd) or,
when absent or "-", standard input; several EROFS images are merged into
metadata over them as devices (rebuild mode; needs --ovlfs-strip=1).
Without -T the build time is now, and without -U the UUID is random, as
in mkfs.erofs; $SOURCE_DATE_EPOCH fixes the build time and clamps mtimes.

Options:
`, prog, mkfsVersion)
	var lines []string
	for _, o := range mkfsOptions {
		if o.set == nil || o.usage == "" {
			continue
		}
		var spell string
		switch {
		case o.short != 0 && o.long != "":
			spell = fmt.Sprintf("-%c, --%s", o.short, o.long)
		case o.short != 0:
			spell = "-" + string(o.short) + o.meta
		default:
			spell = "--" + o.long + o.meta
		}
		lines = append(lines, fmt.Sprintf(" %-22s %s", spell, o.usage))
	}
	b.WriteString(strings.Join(lines, "\n"))
	b.WriteString("\n\nOther mkfs.erofs options are refused with an error naming them.\n")
	return b.String()
}
