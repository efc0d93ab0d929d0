package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rafs-dev/rafs/erofs"
)

// TestExtendedOptions: rafs build and rafs convert read the same -E
// options into the same erofs.Compression, and refuse the same ones.
func TestExtendedOptions(t *testing.T) {
	for _, c := range []struct {
		args []string // after the subcommand, before the operands
		want *erofs.Compression
		err  string // the error's start; "" for none
	}{
		{args: []string{"-z", "lz4hc", "-E", "ztailpacking"},
			want: &erofs.Compression{Algorithm: "lz4hc", Level: 9, Ztailpacking: true}},
		{args: []string{"-z", "lz4hc", "-E", "fragments"},
			want: &erofs.Compression{Algorithm: "lz4hc", Level: 9, Fragments: true}},
		{args: []string{"-z", "zstd", "-C", "131072", "-E", "ztailpacking,fragments"},
			want: &erofs.Compression{Algorithm: "zstd", Level: 3, PclusterSize: 131072, Ztailpacking: true, Fragments: true}},
		{args: []string{"-z", "lzma", "-C", "1048576", "-E", "ztailpacking,all-fragments,dedupe"},
			want: &erofs.Compression{Algorithm: "lzma", Level: 6, PclusterSize: 1 << 20, Ztailpacking: true, Fragments: true, AllFragments: true, Dedupe: true}},
		{args: []string{"-z", "lz4", "-C", "65536", "-E", "fragments=16384,fragdedupe=inode"},
			want: &erofs.Compression{Algorithm: "lz4", PclusterSize: 65536, Fragments: true, PackedPclusterSize: 16384, FragDedupe: erofs.FragDedupeInode}},
		{args: []string{"-z", "deflate", "-C", "65536", "-E", "all-fragments=64k,^fragdedupe,legacy-compress"},
			want: &erofs.Compression{Algorithm: "deflate", Level: 1, PclusterSize: 65536, Fragments: true, AllFragments: true, PackedPclusterSize: 65536,
				FragDedupe: erofs.FragDedupeOff, FullIndexes: true}},
		{args: []string{"-z", "lz4hc", "-E", "dedupe,fragments,^dedupe,^fragments"},
			want: &erofs.Compression{Algorithm: "lz4hc", Level: 9}},
		{args: []string{"-E", "^fragments,^dedupe,^ztailpacking"}},
		{args: []string{"-E", "fragments"}, err: "-E fragments: only for compressed images (-z)"},
		{args: []string{"-E", "all-fragments,dedupe"}, err: "-E all-fragments,dedupe: only for compressed images (-z)"},
		{args: []string{"-C", "65536", "-E", "dedupe"}, err: "-C and -E dedupe: only for compressed images (-z)"},
		{args: []string{"-z", "lz4", "-E", "fragments=65536"}, err: "-E fragments=65536: want a multiple of the block size 4096, at most the largest physical cluster 4096 (-C)"},
		{args: []string{"-z", "lz4", "-E", "fragdedupe=inode"}, err: "-E fragdedupe=inode: has no effect without fragments or all-fragments"},
		{args: []string{"-z", "lz4", "-E", "fragments,fragdedupe=sometimes"}, err: `-E fragdedupe=sometimes: unknown mode "sometimes"`},
		{args: []string{"-z", "lz4", "-E", "dedupe=1"}, err: "-E dedupe=1: dedupe takes no value"},
		{args: []string{"-z", "lz4", "-E", "fragment"}, err: "-E fragment: unknown extended option"},
	} {
		name := strings.Join(c.args, " ")
		check := func(cmd string, got *erofs.Compression, err error) {
			t.Helper()
			switch {
			case c.err != "":
				if err == nil || !strings.HasPrefix(err.Error(), c.err) {
					t.Errorf("%s %s: error %v, want %q...", cmd, name, err, c.err)
				}
			case err != nil:
				t.Errorf("%s %s: %v", cmd, name, err)
			case (got == nil) != (c.want == nil) || got != nil && *got != *c.want:
				t.Errorf("%s %s: compression %+v, want %+v", cmd, name, got, c.want)
			}
		}

		bf, _, err := parseBuildFlags(append(append([]string{}, c.args...), "-o", "out", "src"))
		if err != nil {
			t.Fatalf("build %s: %v", name, err)
		}
		bo, err := bf.options()
		var got *erofs.Compression
		if err == nil {
			got = bo.Image.Compression
		}
		check("build", got, err)

		cf, _, err := parseConvertFlags(append(append([]string{"--type", "erofs"}, c.args...), "src", "dst"))
		if err != nil {
			t.Fatalf("convert %s: %v", name, err)
		}
		co, err := cf.imageOptions()
		got = nil
		if err == nil {
			got = co.EROFS.Image.Compression
		}
		check("convert", got, err)
	}
}

// TestExtendedInlineData: -E noinline_data and inline_data override
// -inline-data, the later one winning.
func TestExtendedInlineData(t *testing.T) {
	for _, c := range []struct {
		args []string
		want bool // NoInlineData
	}{
		{[]string{"-E", "noinline_data"}, true},
		{[]string{"-inline-data=false"}, true},
		{[]string{"-inline-data=false", "-E", "inline_data"}, false},
		{[]string{"-z", "lz4", "-E", "noinline_data,fragments,inline_data"}, false},
		{[]string{"-z", "lz4", "-E", "^inline_data,dedupe"}, true},
	} {
		bf, _, err := parseBuildFlags(append(append([]string{}, c.args...), "-o", "out", "src"))
		if err != nil {
			t.Fatal(err)
		}
		o, err := bf.options()
		if err != nil {
			t.Errorf("%v: %v", c.args, err)
		} else if o.Image.NoInlineData != c.want {
			t.Errorf("%v: NoInlineData %v, want %v", c.args, o.Image.NoInlineData, c.want)
		}
	}
}

// TestExtendedUsageErrors: a refused -E option is a usage error (exit
// status 2) whose message names it, and leaves no output.
func TestExtendedUsageErrors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"build", "-E", "dedupe", "-o", out, sample}, "rafs build: -E dedupe: only for compressed images (-z)"},
		{[]string{"build", "-z", "lz4", "-E", "fragdedupe=inode", "-o", out, sample}, "rafs build: -E fragdedupe=inode: has no effect"},
		{[]string{"build", "-z", "lz4", "-E", "all-fragments=3000", "-o", out, sample}, "rafs build: -E all-fragments=3000: want a multiple"},
		{[]string{"convert", "--type", "erofs", "-z", "lz4", "-E", "fragments,fragdedupe=maybe", sampleSrc, "oci:" + out}, `rafs convert: -E fragdedupe=maybe: unknown mode "maybe"`},
		{[]string{"convert", "--type", "erofs", "-E", "all-fragments", sampleSrc, "oci:" + out}, "rafs convert: -E all-fragments: only for compressed images (-z)"},
	} {
		code, _, stderr := rafsCmd(t, c.args...)
		if code != 2 || !strings.HasPrefix(stderr, c.want) {
			t.Errorf("%s: exit code %d, %q; want 2, %q...", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("usage errors left %v", ents)
	}
}
