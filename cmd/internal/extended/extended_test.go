package extended

import (
	"strings"
	"testing"

	"github.com/rafs-dev/rafs/erofs"
)

func TestParse(t *testing.T) {
	yes, no := true, false
	for _, c := range []struct {
		in   string
		want Options // compared without the unexported fields
		need string  // NeedCompression, comma-joined
	}{
		{in: ""},
		{in: ",,"},
		{in: "ztailpacking", want: Options{Ztailpacking: true}, need: "ztailpacking"},
		{in: "ztailpacking,^ztailpacking"},
		{in: "legacy-compress", want: Options{FullIndexes: true}, need: "legacy-compress"},
		{in: "legacy-compress,^legacy-compress"},
		{in: "noinline_data", want: Options{NoInlineData: &yes}},
		{in: "^inline_data", want: Options{NoInlineData: &yes}},
		{in: "noinline_data,inline_data", want: Options{NoInlineData: &no}},
		{in: "^noinline_data", want: Options{NoInlineData: &no}},
		{in: "fragments", want: Options{Fragments: true}, need: "fragments"},
		{in: "fragments=65536", want: Options{Fragments: true, PackedPclusterSize: 65536}, need: "fragments"},
		{in: "fragments=0x4000", want: Options{Fragments: true, PackedPclusterSize: 16384}, need: "fragments"},
		{in: "fragments=64k", want: Options{Fragments: true, PackedPclusterSize: 65536}, need: "fragments"},
		{in: "fragments=1M", want: Options{Fragments: true, PackedPclusterSize: 1 << 20}, need: "fragments"},
		{in: "fragments=8192,fragments=0", want: Options{Fragments: true}, need: "fragments"},
		{in: "fragments=8192,fragments", want: Options{Fragments: true, PackedPclusterSize: 8192}, need: "fragments"},
		{in: "fragments,^fragments"},
		{in: "all-fragments", want: Options{Fragments: true, AllFragments: true}, need: "all-fragments"},
		{in: "all-fragments=8192", want: Options{Fragments: true, AllFragments: true, PackedPclusterSize: 8192}, need: "all-fragments"},
		{in: "all-fragments,^all-fragments"},
		{in: "fragments,^all-fragments"},
		// As in mkfs.erofs: ^fragments turns all-fragments off too, yet
		// all-fragments comes back with fragments.
		{in: "all-fragments,^fragments"},
		{in: "all-fragments,^fragments,fragments", want: Options{Fragments: true, AllFragments: true}, need: "all-fragments"},
		{in: "all-fragments,fragments", want: Options{Fragments: true, AllFragments: true}, need: "all-fragments"},
		{in: "fragments,fragdedupe", want: Options{Fragments: true}, need: "fragments,fragdedupe"},
		{in: "fragments,fragdedupe=full", want: Options{Fragments: true}, need: "fragments,fragdedupe"},
		{in: "fragments,fragdedupe=inode", want: Options{Fragments: true, FragDedupe: erofs.FragDedupeInode}, need: "fragments,fragdedupe"},
		{in: "fragdedupe=off,all-fragments", want: Options{Fragments: true, AllFragments: true, FragDedupe: erofs.FragDedupeOff}, need: "all-fragments,fragdedupe"},
		{in: "fragments,^fragdedupe", want: Options{Fragments: true, FragDedupe: erofs.FragDedupeOff}, need: "fragments,fragdedupe"},
		{in: "fragments,fragdedupe=inode,fragdedupe", want: Options{Fragments: true}, need: "fragments,fragdedupe"},
		{in: "dedupe", want: Options{Dedupe: true}, need: "dedupe"},
		{in: "dedupe,^dedupe"},
		{in: "^dedupe"},
		{in: "ztailpacking,all-fragments=16384,dedupe,fragdedupe=inode,legacy-compress,noinline_data",
			want: Options{Ztailpacking: true, FullIndexes: true, Fragments: true, AllFragments: true, PackedPclusterSize: 16384,
				FragDedupe: erofs.FragDedupeInode, Dedupe: true, NoInlineData: &yes},
			need: "ztailpacking,legacy-compress,all-fragments,fragdedupe,dedupe"},
	} {
		o, err := Parse(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		got := *o
		got.fragDedupe, got.packedSize, got.allFragments = "", "", false
		if !equal(got, c.want) {
			t.Errorf("%q: got %+v, want %+v", c.in, got, c.want)
		}
		if need := strings.Join(o.NeedCompression(), ","); need != c.need {
			t.Errorf("%q: NeedCompression %q, want %q", c.in, need, c.need)
		}
	}
}

func equal(a, b Options) bool {
	if (a.NoInlineData == nil) != (b.NoInlineData == nil) || a.NoInlineData != nil && *a.NoInlineData != *b.NoInlineData {
		return false
	}
	a.NoInlineData, b.NoInlineData = nil, nil
	return a == b
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"zfragments", "-E zfragments: unknown extended option"},
		{"^", "-E ^: unknown extended option"},
		{"zfoo=1", "-E zfoo=1: unknown extended option"},
		{"^=1", "-E ^=1: unknown extended option"},
		{"^dedupe=1", "-E ^dedupe=1: ^dedupe takes no value"},
		{"ztailpacking=1", "-E ztailpacking=1: ztailpacking takes no value"},
		{"dedupe=yes", "-E dedupe=yes: dedupe takes no value"},
		{"legacy-compress=1", "-E legacy-compress=1: legacy-compress takes no value"},
		{"noinline_data=1", "-E noinline_data=1: noinline_data takes no value"},
		{"^fragments=4096", "-E ^fragments=4096: ^fragments takes no value"},
		{"^all-fragments=4096", "-E ^all-fragments=4096: ^all-fragments takes no value"},
		{"^fragdedupe=inode", "-E ^fragdedupe=inode: ^fragdedupe takes no value"},
		{"fragments=", "-E fragments=: empty value"},
		{"fragments=abc", `-E fragments=abc: size "abc"`},
		{"fragments=-4096", `-E fragments=-4096: size "-4096"`},
		{"fragments=2M", `-E fragments=2M: size "2M"`},
		{"all-fragments=1g", `-E all-fragments=1g: size "1g"`},
		{"fragments=4096x", `-E fragments=4096x: size "4096x"`},
		{"fragments,fragdedupe=maybe", `-E fragdedupe=maybe: unknown mode "maybe"`},
		{"fragdedupe=inode", "-E fragdedupe=inode: has no effect without fragments or all-fragments"},
		{"^fragdedupe", "-E ^fragdedupe: has no effect without fragments or all-fragments"},
		{"fragments,fragdedupe,^fragments", "-E fragdedupe: has no effect without fragments or all-fragments"},
		{"all-fragments,fragdedupe=inode,^all-fragments", "-E fragdedupe=inode: has no effect"},
	} {
		_, err := Parse(c.in)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q...", c.in, err, c.want)
		}
	}
}

func TestApply(t *testing.T) {
	for _, c := range []struct {
		in        string
		pcluster  int
		blockSize int
		want      erofs.Compression // without Algorithm, Level, PclusterSize
		err       string
	}{
		{in: "", blockSize: 4096},
		{in: "ztailpacking,legacy-compress,dedupe", blockSize: 4096, want: erofs.Compression{Ztailpacking: true, FullIndexes: true, Dedupe: true}},
		{in: "fragments", blockSize: 4096, want: erofs.Compression{Fragments: true}},
		{in: "fragments=4096", blockSize: 4096, want: erofs.Compression{Fragments: true, PackedPclusterSize: 4096}},
		{in: "all-fragments=65536,fragdedupe=inode", pcluster: 65536, blockSize: 4096,
			want: erofs.Compression{Fragments: true, AllFragments: true, PackedPclusterSize: 65536, FragDedupe: erofs.FragDedupeInode}},
		{in: "fragments=16384", pcluster: 1 << 20, blockSize: 4096, want: erofs.Compression{Fragments: true, PackedPclusterSize: 16384}},
		{in: "fragments=1024", blockSize: 1024, want: erofs.Compression{Fragments: true, PackedPclusterSize: 1024}},
		// The size is checked, as by mkfs.erofs, even when fragments
		// end up off; then it is not used.
		{in: "fragments=8192,^fragments", pcluster: 8192, blockSize: 4096},
		{in: "fragments=8192,^fragments", blockSize: 4096, err: "-E fragments=8192: want a multiple of the block size 4096, at most the largest physical cluster 4096 (-C)"},
		{in: "fragments=8192", blockSize: 4096, err: "-E fragments=8192: want a multiple"},
		{in: "fragments=6144", pcluster: 65536, blockSize: 4096, err: "-E fragments=6144: want a multiple"},
		{in: "all-fragments=2048", blockSize: 4096, err: "-E all-fragments=2048: want a multiple"},
		{in: "fragments=131072", pcluster: 65536, blockSize: 4096, err: "-E fragments=131072: want a multiple"},
	} {
		o, err := Parse(c.in)
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		// Apply overwrites every field it sets.
		got := erofs.Compression{PclusterSize: c.pcluster, Ztailpacking: true, FullIndexes: true, Fragments: true, AllFragments: true,
			PackedPclusterSize: 512, FragDedupe: erofs.FragDedupeOff, Dedupe: true}
		err = o.Apply(&got, c.blockSize)
		if c.err != "" {
			if err == nil || !strings.HasPrefix(err.Error(), c.err) {
				t.Errorf("%q -C %d -b %d: error %v, want %q...", c.in, c.pcluster, c.blockSize, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q -C %d -b %d: %v", c.in, c.pcluster, c.blockSize, err)
			continue
		}
		c.want.PclusterSize = c.pcluster
		if got != c.want {
			t.Errorf("%q -C %d -b %d: got %+v, want %+v", c.in, c.pcluster, c.blockSize, got, c.want)
		}
	}
}
