package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rafs-dev/rafs/erofs"
	"github.com/rafs-dev/rafs/erofs/rebuild"
)

// TestMkfsParse checks the getopt forms of the mkfs.erofs command line:
// attached and separate arguments, clusters, long options with = or a
// separate argument, unambiguous prefixes, "--", and the options' values.
func TestMkfsParse(t *testing.T) {
	type want struct {
		f   buildFlags
		tar string
		pos []string
	}
	base := buildFlags{blockSize: 4096, inlineData: true, whiteouts: "keep"}
	with := func(edit func(f *buildFlags)) buildFlags {
		f := base
		edit(&f)
		return f
	}
	for _, tc := range []struct {
		args []string
		want want
		more func(t *testing.T, m *mkfsArgs)
	}{
		{args: []string{"--tar=f", "--aufs", "--quiet", "-Enoinline_data", "-U", "01234567-89ab-cdef-0123-456789abcdef", "out"},
			want: want{f: with(func(f *buildFlags) { f.quiet, f.extended = true, "noinline_data" }), tar: "f", pos: []string{"out"}},
			more: func(t *testing.T, m *mkfsArgs) {
				if !m.aufs || m.uuid != "01234567-89ab-cdef-0123-456789abcdef" {
					t.Errorf("aufs %v, uuid %q", m.aufs, m.uuid)
				}
			}},
		{args: []string{"-zlz4hc", "out", "src"}, want: want{f: with(func(f *buildFlags) { f.compress = "lz4hc" }), pos: []string{"out", "src"}}},
		{args: []string{"-z", "lz4hc", "out", "src"}, want: want{f: with(func(f *buildFlags) { f.compress = "lz4hc" }), pos: []string{"out", "src"}}},
		{args: []string{"out", "-zlzma,level=6", "src"}, want: want{f: with(func(f *buildFlags) { f.compress = "lzma,level=6" }), pos: []string{"out", "src"}}},
		{args: []string{"-C131072", "-zlz4", "o"}, want: want{f: with(func(f *buildFlags) { f.compress, f.pcluster = "lz4", 131072 }), pos: []string{"o"}}},
		{args: []string{"-C", "128k", "-z", "lz4", "o"}, want: want{f: with(func(f *buildFlags) { f.compress, f.pcluster = "lz4", 131072 }), pos: []string{"o"}}},
		{args: []string{"-b4096", "o"}, want: want{f: with(func(f *buildFlags) { f.blockSet = true }), pos: []string{"o"}}},
		{args: []string{"-b", "1k", "o"}, want: want{f: with(func(f *buildFlags) { f.blockSize, f.blockSet = 1024, true }), pos: []string{"o"}}},
		{args: []string{"-b0x200", "o"}, want: want{f: with(func(f *buildFlags) { f.blockSize, f.blockSet = 512, true }), pos: []string{"o"}}},
		{args: []string{"-Eztailpacking", "-E", "fragments,^xattr-name-filter", "o"},
			want: want{f: with(func(f *buildFlags) { f.extended = "ztailpacking,fragments" }), pos: []string{"o"}},
			more: func(t *testing.T, m *mkfsArgs) {
				if !m.noXFilter {
					t.Error("^xattr-name-filter not taken")
				}
			}},
		{args: []string{"--chunksize=8192", "--blobdev", "b", "o"}, want: want{f: with(func(f *buildFlags) { f.chunks = chunkFlags{"8192", "b"} }), pos: []string{"o"}}},
		{args: []string{"--chunksize", "0x2000", "--blobdev=b", "o"}, want: want{f: with(func(f *buildFlags) { f.chunks = chunkFlags{"8192", "b"} }), pos: []string{"o"}}},
		{args: []string{"--workers=3", "--qui", "-L", "vol", "o"}, want: want{f: with(func(f *buildFlags) { f.workers, f.quiet, f.label = 3, true, "vol" }), pos: []string{"o"}}},
		{args: []string{"-d0", "o"}, want: want{f: with(func(f *buildFlags) { f.quiet = true }), pos: []string{"o"}}},
		{args: []string{"-d", "3", "-x2", "--sort=none", "--ungzip", "o"}, want: want{f: base, pos: []string{"o"}}},
		{args: []string{"--tar", "o"}, want: want{f: base, tar: "f", pos: []string{"o"}}},
		{args: []string{"--tar=i", "o", "layer.tar"}, want: want{f: base, tar: "i", pos: []string{"o", "layer.tar"}}},
		{args: []string{"--tar=0", "o"}, want: want{f: base, tar: "i", pos: []string{"o"}}},
		{args: []string{"--ovlfs-strip", "o"}, want: want{f: base, pos: []string{"o"}},
			more: func(t *testing.T, m *mkfsArgs) {
				if !m.ovlfsStrip {
					t.Error("--ovlfs-strip not taken")
				}
			}},
		{args: []string{"--ovlfs-strip=1", "--ovlfs-strip=0", "o"}, want: want{f: base, pos: []string{"o"}},
			more: func(t *testing.T, m *mkfsArgs) {
				if m.ovlfsStrip {
					t.Error("--ovlfs-strip=0 not taken")
				}
			}},
		{args: []string{"-T0x10", "--mkfs-time", "-Uclear", "o"}, want: want{f: base, pos: []string{"o"}},
			more: func(t *testing.T, m *mkfsArgs) {
				if m.time != "16" || m.timeFixed == nil || *m.timeFixed || m.uuid != "clear" {
					t.Errorf("time %q fixed %v uuid %q", m.time, m.timeFixed, m.uuid)
				}
			}},
		{args: []string{"--tar=f", "--", "-o", "-"}, want: want{f: base, tar: "f", pos: []string{"-o", "-"}}},
		{args: []string{"-hV", "--bogus"}, want: want{f: base},
			more: func(t *testing.T, m *mkfsArgs) {
				if !m.help || m.version {
					t.Error("-h did not stop the parse")
				}
			}},
		{args: []string{"--vers"}, want: want{f: base},
			more: func(t *testing.T, m *mkfsArgs) {
				if !m.version {
					t.Error("--vers is not --version")
				}
			}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			m, err := parseMkfsArgs(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m.f, tc.want.f) {
				t.Errorf("flags\n got %+v\nwant %+v", m.f, tc.want.f)
			}
			if m.tar != tc.want.tar || !reflect.DeepEqual(m.positional, tc.want.pos) {
				t.Errorf("tar %q positional %q, want %q %q", m.tar, m.positional, tc.want.tar, tc.want.pos)
			}
			if tc.more != nil {
				tc.more(t, m)
			}
		})
	}
}

// TestMkfsParseErrors checks that options rafs cannot honour, and ill-formed
// ones, are usage errors naming the option.
func TestMkfsParseErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--exclude-path=x", "o", "d"}, "--exclude-path: not supported"},
		{[]string{"--force-uid", "0", "o", "d"}, "--force-uid: not supported"},
		{[]string{"--all-root", "o", "d"}, "--all-root: not supported"},
		{[]string{"-m4096", "o", "d"}, "-m: not supported"},
		{[]string{"--clean", "o", "a.erofs"}, "--clean: not supported"},
		{[]string{"--tar=headerball", "o"}, "--tar headerball: header-only"},
		{[]string{"--tar=f,map.txt", "o"}, "--tar f,map.txt: block map"},
		{[]string{"--tar=x", "o"}, "--tar x: want f"},
		{[]string{"-Eforce-inode-extended", "o"}, "-E force-inode-extended: force-inode-extended: not supported"},
		{[]string{"-E", "noinline_data,nosbcrc", "o"}, "nosbcrc: not supported"},
		{[]string{"-Exattr-name-filter=1", "o"}, "takes no value"},
		{[]string{"--ovlfs-strip=2", "o"}, "--ovlfs-strip 2: want 0 or 1"},
		{[]string{"--sort=path", "o"}, "--sort path: rafs writes file data in the tar's order"},
		{[]string{"-zlz4hc:lzma", "o"}, "-z lz4hc:lzma: alternative algorithms"},
		{[]string{"-zbrotli", "o"}, "-z brotli"},
		{[]string{"-zlz4hc,dictsize=4096", "o"}, "-z lz4hc,dictsize=4096"},
		{[]string{"-x", "3", "o"}, "-x 3:"},
		{[]string{"--ungzip=raw.tar", "o"}, "--ungzip raw.tar:"},
		{[]string{"--unxz", "o"}, "--unxz: not supported"},
		{[]string{"-b3000", "o"}, "-b 3000: want a power of two"},
		{[]string{"-T", "-1", "o"}, "-T -1: not a UNIX time"},
		{[]string{"-U", "xyz", "o"}, "-U xyz: want 32 hex digits"},
		{[]string{"-C0", "o"}, "-C 0:"},
		{[]string{"--chunksize=abc", "o"}, "--chunksize abc:"},
		{[]string{"-q", "o"}, "invalid option -- 'q'"},
		{[]string{"--bogus", "o"}, "unrecognized option '--bogus'"},
		{[]string{"--g", "o"}, "option '--g' is ambiguous"},
		{[]string{"--quiet=1", "o"}, "option '--quiet' doesn't allow an argument"},
		{[]string{"o", "-z"}, "option requires an argument -- 'z'"},
		{[]string{"o", "--blobdev"}, "option '--blobdev' requires an argument"},
	} {
		_, err := parseMkfsArgs(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.args, err, tc.want)
		} else if exitStatus(err) != 2 {
			t.Errorf("%q: not a usage error: %v", tc.args, err)
		}
	}
}

// mkfsPlanOf parses and plans args with the environment env and a fixed
// clock.
func mkfsPlanOf(t *testing.T, env map[string]string, args ...string) (*mkfsArgs, *mkfsPlan, error) {
	t.Helper()
	m, err := parseMkfsArgs(args)
	if err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	p, err := m.plan(func(k string) string { return env[k] }, func() time.Time { return time.Unix(1234567890, 0) })
	return m, p, err
}

// TestMkfsPlan checks how operands and options resolve: sources, standard
// input, rebuild mode, whiteouts, times, UUIDs and the tar index's block
// size.
func TestMkfsPlan(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "a.erofs")
	os.WriteFile(img, nil, 0o644)

	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "missing argument: FILE"},
		{[]string{"o"}, "missing argument: SOURCE(s)"},
		{[]string{"--tar=f", "o", "a", "b"}, "unexpected argument: b"},
		{[]string{"o", dir, "x"}, "unexpected argument: x"},
		{[]string{"o", filepath.Join(dir, "missing")}, "no such file"},
		{[]string{"--aufs", "o", dir}, "--aufs: only for --tar sources"},
		{[]string{"--ovlfs-strip=1", "o", dir}, "--ovlfs-strip: only for --tar sources"},
		{[]string{"--tar=f", "--ovlfs-strip=1", "o"}, "--ovlfs-strip without --aufs"},
		{[]string{"o", img}, "without --ovlfs-strip=1 is not supported"},
		{[]string{"--ovlfs-strip=1", "-zlz4", "o", img}, "-z: not supported by rafs when merging"},
		{[]string{"--ovlfs-strip=1", "-T0", "o", img, img}, "-T: not supported by rafs when merging"},
		{[]string{"--tar=i", "-Ededupe", "o"}, "not for a tar index"},
		{[]string{"--tar=f", "-Efoo", "o"}, "-E foo: unknown extended option"},
		{[]string{"--tar=f", "-Ededupe", "o"}, "only for compressed images"},
		{[]string{"--tar=f", "--blobdev=b", "o"}, "--blobdev needs --chunk-size"},
	} {
		_, _, err := mkfsPlanOf(t, nil, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.args, err, tc.want)
		} else if exitStatus(err) != 2 {
			t.Errorf("%q: not a usage error: %v", tc.args, err)
		}
	}
	if _, _, err := mkfsPlanOf(t, map[string]string{"SOURCE_DATE_EPOCH": "soon"}, "--tar=f", "o"); err == nil || !strings.Contains(err.Error(), "SOURCE_DATE_EPOCH soon is invalid") {
		t.Errorf("bad SOURCE_DATE_EPOCH: %v", err)
	}

	plan := func(env map[string]string, args ...string) (*mkfsArgs, *mkfsPlan) {
		t.Helper()
		m, p, err := mkfsPlanOf(t, env, args...)
		if err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		return m, p
	}
	// Sources.
	if _, p := plan(nil, "--tar=f", "o"); p.src != "-" {
		t.Errorf("--tar without SOURCE: %q, want standard input", p.src)
	}
	if _, p := plan(nil, "--tar=f", "o", "-"); p.src != "-" {
		t.Errorf("--tar -: %q", p.src)
	}
	if _, p := plan(nil, "o", dir); p.src != dir || p.rebuild != nil {
		t.Errorf("directory: %q %q", p.src, p.rebuild)
	}
	if m, p := plan(nil, "--aufs", "--ovlfs-strip=1", "--quiet", "-Uclear", "o", img, img); !reflect.DeepEqual(p.rebuild, []string{img, img}) || p.uuid != [16]byte{} || !m.f.quiet {
		t.Errorf("rebuild: %q %x", p.rebuild, p.uuid)
	}
	// Whiteouts.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--tar=f", "o"}, "keep"},
		{[]string{"--tar=f", "--aufs", "o"}, "overlay"},
		{[]string{"--tar=f", "--aufs", "--ovlfs-strip", "o"}, "strip"},
		{[]string{"--tar=f", "--aufs", "--ovlfs-strip=0", "o"}, "overlay"},
	} {
		if m, _ := plan(nil, tc.args...); m.f.whiteouts != tc.want {
			t.Errorf("%q: whiteouts %s, want %s", tc.args, m.f.whiteouts, tc.want)
		}
	}
	// Times.
	for _, tc := range []struct {
		env   map[string]string
		args  []string
		build int64
		times erofs.TimePolicy
	}{
		{nil, []string{"--tar=f", "o"}, 1234567890, erofs.TimesKeep},
		{nil, []string{"--tar=f", "--all-time", "o"}, 1234567890, erofs.TimesFixed},
		{nil, []string{"--tar=f", "-T5", "o"}, 5, erofs.TimesFixed},
		{nil, []string{"--tar=f", "-T5", "--mkfs-time", "o"}, 5, erofs.TimesKeep},
		{nil, []string{"--tar=f", "--mkfs-time", "-T5", "--all-time", "o"}, 5, erofs.TimesFixed},
		{map[string]string{"SOURCE_DATE_EPOCH": "7"}, []string{"--tar=f", "o"}, 7, erofs.TimesClamp},
		{map[string]string{"SOURCE_DATE_EPOCH": "7"}, []string{"--tar=f", "-T5", "--mkfs-time", "o"}, 7, erofs.TimesClamp},
	} {
		_, p := plan(tc.env, tc.args...)
		if p.opts.Image.BuildTime != tc.build || p.opts.Image.Times != tc.times {
			t.Errorf("%v %q: build time %d, times %d; want %d, %d", tc.env, tc.args, p.opts.Image.BuildTime, p.opts.Image.Times, tc.build, tc.times)
		}
	}
	// UUIDs: random (version 4) unless given.
	_, p1 := plan(nil, "--tar=f", "o")
	_, p2 := plan(nil, "--tar=f", "-Urandom", "o")
	if p1.uuid == p2.uuid || p1.uuid[6]>>4 != 4 || *p1.opts.Image.UUID != p1.uuid {
		t.Errorf("random UUIDs %x %x", p1.uuid, p2.uuid)
	}
	if _, p := plan(nil, "--tar=f", "-U", "01234567-89ab-cdef-0123-456789abcdef", "o"); p.uuid != [16]byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef} {
		t.Errorf("-U: %x", p.uuid)
	}
	// A tar index has 512-byte blocks whatever -b says (with a warning),
	// and noinline_data changes nothing in it.
	m, p := plan(nil, "--tar=i", "--aufs", "--quiet", "-b4096", "-Enoinline_data", "o")
	if !m.f.tarIndex || p.opts.Image.BlockSize != 512 || p.warning == "" || m.f.whiteouts != "overlay" {
		t.Errorf("--tar=i: index %v, block size %d, warning %q", m.f.tarIndex, p.opts.Image.BlockSize, p.warning)
	}
	if _, p := plan(nil, "--tar=f", "-E^xattr-name-filter", "o"); !p.opts.Image.NoXattrFilter {
		t.Error("-E ^xattr-name-filter: filter still on")
	}
}

// TestMkfsHelpVersion checks --help (which must list --tar=, as
// containerd's differ checks) and -V (mkfs.erofs's first line, then the
// compressors), both exiting 0.
func TestMkfsHelpVersion(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"mkfs", "--help"}, []string{"Usage: rafs mkfs [OPTIONS] FILE SOURCE(s)", "--tar=X", "--aufs", "-EX[,...]"}},
		{[]string{"mkfs", "-h"}, []string{"--tar="}},
		{[]string{"mkfs", "-V"}, []string{"mkfs.erofs (erofs-utils) 1.9.3 (rafs ", "\navailable compressors: lz4, lz4hc, lzma, deflate, zstd\n"}},
		{[]string{"mkfs", "--version"}, []string{"mkfs.erofs (erofs-utils) 1.9.3"}},
	} {
		out, code := captureStdout(t, func() int { return run(tc.args) })
		if code != 0 {
			t.Errorf("%q: exit code %d", tc.args, code)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%q: output lacks %q:\n%s", tc.args, w, out)
			}
		}
	}
}

// captureStdout runs f with standard output going to a pipe and returns
// what it printed and f's result.
func captureStdout(t *testing.T, f func() int) (string, int) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(r)
		done <- b
	}()
	code := f()
	os.Stdout = old
	w.Close()
	return string(<-done), code
}

// TestMkfsSameBytesAsBuild checks that the front end is rafs build: for
// the same options (a fixed -T with --mkfs-time, and -U) rafs mkfs and
// rafs build write the same bytes, for full images, compressed ones,
// chunk-based ones with a blob device, tar indexes and directories; and
// that mkfs's rebuild mode writes what rafs merge --type erofs's library
// call does with the same UUID.
func TestMkfsSameBytesAsBuild(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "")
	dir := t.TempDir()
	plain := filepath.Join(dir, "layer.tar")
	gz, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	tarData, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(plain, tarData, 0o644)
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(tree, "a/b"), 0o755)
	os.WriteFile(filepath.Join(tree, "a/b/f"), bytes.Repeat([]byte("rafs"), 3000), 0o640)
	os.Symlink("b/f", filepath.Join(tree, "a/l"))
	unix.Lutimes(filepath.Join(tree, "a/l"), []unix.Timeval{{Sec: 1e9}, {Sec: 1e9}})
	for _, p := range []string{tree, filepath.Join(tree, "a"), filepath.Join(tree, "a/b"), filepath.Join(tree, "a/b/f")} {
		os.Chtimes(p, time.Unix(1e9, 0), time.Unix(1e9, 0))
	}
	const u = "0123456789abcdef0123456789abcdef"
	for i, tc := range []struct {
		mkfs, build []string
		blob        bool
	}{
		{[]string{"--tar=f", "--aufs", "--quiet", "-Enoinline_data", "-U", u, "-T0", "--mkfs-time"}, []string{"-q", "-inline-data=false", "-U", u, "-T", "0"}, false},
		{[]string{"--tar=f", "--quiet", "-zlz4hc,level=9", "-C65536", "-Eztailpacking,fragments", "-T", "100", "--mkfs-time", "-Uclear", "-b", "4096"},
			[]string{"-q", "-whiteouts", "keep", "-z", "lz4hc,level=9", "-C", "65536", "-E", "ztailpacking,fragments", "-T", "100", "-U", "clear"}, false},
		{[]string{"--tar=f", "--aufs", "--ovlfs-strip=1", "-zlzma", "-b1024", "-Ldata", "--quiet", "-T7", "--mkfs-time", "-U", u},
			[]string{"-q", "-whiteouts", "strip", "-z", "lzma", "-b", "1024", "-L", "data", "-T", "7", "-U", u}, false},
		{[]string{"--tar=f", "--aufs", "--chunksize=65536", "--blobdev=BLOB", "--quiet", "-T0", "--mkfs-time", "-U", u},
			[]string{"-q", "--chunk-size", "65536", "--blobdev", "BLOB", "-T", "0", "-U", u}, true},
		{[]string{"--tar=i", "--aufs", "--quiet", "-b4096", "-T", "3", "--mkfs-time", "-U", u}, []string{"-q", "--tar-index", "-T", "3", "-U", u}, false},
	} {
		for _, src := range []string{plain, sample} {
			if tc.mkfs[0] == "--tar=i" && src == sample {
				continue // a tar index refers to a plain tar
			}
			a, b := filepath.Join(dir, "mkfs.erofs"), filepath.Join(dir, "build.erofs")
			blobA, blobB := a+".blob", b+".blob"
			margs := append([]string{"mkfs"}, tc.mkfs...)
			bargs := append([]string{"build"}, tc.build...)
			for k := range margs {
				if margs[k] == "--blobdev=BLOB" {
					margs[k] = "--blobdev=" + blobA
				}
			}
			for k := range bargs {
				if bargs[k] == "BLOB" {
					bargs[k] = blobB
				}
			}
			margs = append(margs, a, src)
			bargs = append(bargs, "-o", b, src)
			if code := run(margs); code != 0 {
				t.Fatalf("%q: exit code %d", margs, code)
			}
			if code := run(bargs); code != 0 {
				t.Fatalf("%q: exit code %d", bargs, code)
			}
			sameBytes(t, i, a, b)
			if tc.blob {
				sameBytes(t, i, blobA, blobB)
			}
		}
	}
	// A directory.
	a, b := filepath.Join(dir, "dir-mkfs.erofs"), filepath.Join(dir, "dir-build.erofs")
	if code := run([]string{"mkfs", "--quiet", "-Enoinline_data", "-T", "5", "--mkfs-time", "-Uclear", a, tree}); code != 0 {
		t.Fatalf("mkfs of a directory: exit code %d", code)
	}
	if code := run([]string{"build", "-q", "-inline-data=false", "-T", "5", "-U", "clear", "-o", b, tree}); code != 0 {
		t.Fatalf("build of a directory: exit code %d", code)
	}
	sameBytes(t, -1, a, b)

	// Rebuild mode: the library's merge of the same layers.
	l1, l2 := filepath.Join(dir, "l1.erofs"), filepath.Join(dir, "l2.erofs")
	if code := run([]string{"mkfs", "--tar=f", "--aufs", "--quiet", "-Enoinline_data", l1, plain}); code != 0 {
		t.Fatal("layer 1")
	}
	if code := run([]string{"mkfs", "--tar=i", "--aufs", "--quiet", l2, plain}); code != 0 {
		t.Fatal("layer 2")
	}
	merged := filepath.Join(dir, "merged.erofs")
	if code := run([]string{"mkfs", "--aufs", "--ovlfs-strip=1", "--quiet", "-U", u, merged, l1, l2}); code != 0 {
		t.Fatal("rebuild")
	}
	out, err := os.Create(filepath.Join(dir, "lib.erofs"))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := parseUUID(u)
	if _, err := mergeEROFSFiles(out, []string{l1, l2}, &rebuild.Options{UUID: &id}); err != nil {
		t.Fatal(err)
	}
	out.Close()
	sameBytes(t, -2, merged, out.Name())
}

// sameBytes fails t unless files a and b have the same bytes.
func sameBytes(t *testing.T, set int, a, b string) {
	t.Helper()
	da, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	db, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(da) == 0 || !bytes.Equal(da, db) {
		t.Errorf("option set %d: %s (%d bytes) and %s (%d bytes) differ", set, filepath.Base(a), len(da), filepath.Base(b), len(db))
	}
}

// TestMkfsDefaults checks mkfs.erofs's defaults: without -T the build time
// is now and files keep their mtimes; without -U the UUID is random, so
// two builds differ; -T fixes every mtime.
func TestMkfsDefaults(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "")
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	before := time.Now().Unix()
	for _, o := range []string{a, b} {
		if code := run([]string{"mkfs", "--tar=f", "--aufs", "--quiet", o, sample}); code != 0 {
			t.Fatalf("exit code %d", code)
		}
	}
	if code := run([]string{"mkfs", "--tar=f", "--quiet", "-T", "42", c, sample}); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	ia, _ := os.ReadFile(a)
	ib, _ := os.ReadFile(b)
	if bytes.Equal(ia[1024+0x30:1024+0x40], ib[1024+0x30:1024+0x40]) {
		t.Error("two builds without -U have the same UUID")
	}
	fa, err := erofs.Open(bytes.NewReader(ia))
	if err != nil {
		t.Fatal(err)
	}
	if e := fa.Superblock().Epoch; e < before || e > time.Now().Unix() {
		t.Errorf("build time %d, want now", e)
	}
	if fi, err := fa.Lstat("etc/hostname"); err != nil || fi.ModTime().Unix() != 1700000000 {
		t.Errorf("etc/hostname mtime %v, %v; want the tar's", fi.ModTime(), err)
	}
	ic, _ := os.ReadFile(c)
	fc, err := erofs.Open(bytes.NewReader(ic))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := fc.Lstat("etc/hostname"); err != nil || fi.ModTime().Unix() != 42 {
		t.Errorf("-T 42: etc/hostname mtime %v, %v", fi.ModTime(), err)
	}
}

// FuzzMkfsArgs feeds command lines (NUL-separated arguments) to the
// parser and the planner: errors, never panics.
func FuzzMkfsArgs(f *testing.F) {
	for _, s := range []string{
		"--tar=f\x00--aufs\x00--quiet\x00-Enoinline_data\x00-U\x00clear\x00o",
		"--tar=i\x00-b4096\x00o\x00x",
		"-zlz4hc,level=9\x00-C128k\x00-Eztailpacking,fragments=64k\x00o\x00.",
		"--ovlfs-strip=1\x00o\x00a\x00b",
		"-hV", "--\x00-", "-T0x10\x00--mkfs-time\x00--all-time", "--g", "-E^xattr-name-filter,,^dedupe",
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, s string) {
		args := strings.Split(s, "\x00")
		m, err := parseMkfsArgs(args)
		if err != nil {
			if exitStatus(err) != 2 {
				t.Fatalf("%q: not a usage error: %v", args, err)
			}
			return
		}
		// Plan with operands that do not touch the file system.
		m.positional = []string{filepath.Join(dir, "out")}
		m.tar = "f"
		if _, err := m.plan(func(string) string { return "" }, time.Now); err != nil && exitStatus(err) != 2 {
			t.Fatalf("%q: not a usage error: %v", args, err)
		}
	})
}
