package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/rafs-dev/rafs/erofs"
)

// TestChildOptions: the rafs child reads -E as rafs build does.
func TestChildOptions(t *testing.T) {
	for _, c := range []struct {
		compress, extended string
		pcluster           int
		want               *erofs.Compression
		noInline           bool
		err                string
	}{
		{compress: "lz4hc", extended: "ztailpacking,fragments,dedupe",
			want: &erofs.Compression{Algorithm: "lz4hc", Level: 9, Ztailpacking: true, Fragments: true, Dedupe: true}},
		{compress: "lzma", extended: "ztailpacking,all-fragments=65536,fragdedupe=inode", pcluster: 1 << 20,
			want: &erofs.Compression{Algorithm: "lzma", Level: 6, PclusterSize: 1 << 20, Ztailpacking: true, Fragments: true,
				AllFragments: true, PackedPclusterSize: 65536, FragDedupe: erofs.FragDedupeInode}},
		{compress: "zstd", extended: "legacy-compress,noinline_data",
			want: &erofs.Compression{Algorithm: "zstd", Level: 3, FullIndexes: true}, noInline: true},
		{extended: "noinline_data", noInline: true},
		{extended: "dedupe", err: "-E dedupe: only for compressed images"},
		{compress: "lz4", extended: "fragments=8192", err: "-E fragments=8192: want a multiple"},
		{compress: "lz4", extended: "frags", err: "-E frags: unknown extended option"},
	} {
		f := childFlags{blockSize: erofs.DefaultBlockSize, whiteouts: "overlay", inlineData: true, compress: c.compress,
			extended: c.extended, pcluster: c.pcluster, workers: 3}
		o, err := f.options()
		if c.err != "" {
			if err == nil || !strings.HasPrefix(err.Error(), c.err) {
				t.Errorf("-z %q -E %q: error %v, want %q...", c.compress, c.extended, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("-z %q -E %q: %v", c.compress, c.extended, err)
			continue
		}
		if c.want != nil {
			c.want.Workers = 3
		}
		got := o.Image.Compression
		if (got == nil) != (c.want == nil) || got != nil && *got != *c.want {
			t.Errorf("-z %q -E %q: %+v, want %+v", c.compress, c.extended, got, c.want)
		}
		if o.Image.NoInlineData != c.noInline {
			t.Errorf("-z %q -E %q: NoInlineData %v", c.compress, c.extended, o.Image.NoInlineData)
		}
	}
}

// TestMkfsExtended: mkfs.erofs gets -E as given, but for the spellings it
// reads otherwise.
func TestMkfsExtended(t *testing.T) {
	for in, want := range map[string]string{
		"ztailpacking,fragments=65536,dedupe": "ztailpacking,fragments=65536,dedupe",
		"all-fragments,fragdedupe=inode":      "all-fragments,fragdedupe=inode",
		"fragments,fragdedupe=off":            "fragments,^fragdedupe",
		"fragments,fragdedupe=full,^dedupe":   "fragments,fragdedupe=full,^dedupe",
		"^noinline_data,noinline_data":        "inline_data,noinline_data",
	} {
		if got := mkfsExtended(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
	c := &config{compress: "lz4hc", pcluster: 65536, extended: "fragments,fragdedupe=off", workers: 2, layer: "l.tar"}
	args := mkfsTool("mkfs.erofs", c, kindTar, "out").args
	if !slices.Contains(args, "-Efragments,^fragdedupe") || !slices.Contains(args, "-C65536") {
		t.Errorf("mkfs.erofs arguments %q", args)
	}
	args = rafsTool("self", c, "out").args
	if i := slices.Index(args, "-E"); i < 0 || args[i+1] != "fragments,fragdedupe=off" {
		t.Errorf("rafs child arguments %q", args)
	}
	if _, err := parseFlags([]string{"-E", "fragments,fragdedupe=never", "l.tar"}); err == nil || !strings.Contains(err.Error(), "fragdedupe=never") {
		t.Errorf("-E fragdedupe=never: error %v", err)
	}
}
