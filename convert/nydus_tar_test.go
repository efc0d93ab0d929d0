package convert

import (
	"archive/tar"
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestTarWriterMatchesArchiveTar: tarWriter writes the bytes archive/tar
// writes for every kind of header UnpackNydus makes, on its fast path and
// through archive/tar, including the errors.
func TestTarWriterMatchesArchiveTar(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	long := func(n int, sep string) string {
		var sb strings.Builder
		for sb.Len() < n {
			if sb.Len() > 0 {
				sb.WriteString(sep)
			}
			fmt.Fprintf(&sb, "c%d", sb.Len())
		}
		return sb.String()[:n]
	}
	names := []string{"./", "a", "a/", "a/b/c", "dir/sub/", "-x", ".wh..wh..opq",
		strings.Repeat("n", 99), strings.Repeat("n", 100), strings.Repeat("n", 101), strings.Repeat("n", 100) + "/",
		strings.Repeat("d", 98) + "/x", strings.Repeat("d", 99) + "/x", strings.Repeat("d", 99) + "/", strings.Repeat("d", 99) + "//",
		strings.Repeat("p", 155) + "/" + strings.Repeat("n", 100), strings.Repeat("p", 156) + "/n", strings.Repeat("p", 154) + "/" + strings.Repeat("n", 101),
		strings.Repeat("p", 155) + "/", strings.Repeat("p", 50) + "/" + strings.Repeat("q", 50) + "/" + strings.Repeat("n", 99),
		long(257, "/"), long(4000, "/") + "/", long(20000, "/"), long(300, ""), "/abs", "a/./b", "a/../b", "a//b", "./a", "a/.",
		"ünïcödé/f", "bad\xffutf8", "nul\x00name", "tab\tand\nnewline", strings.Repeat("é", 60)}
	links := []string{"", "t", strings.Repeat("l", 100), strings.Repeat("l", 101), long(5000, "/"), "ünï", "x\x00y", "../up", "/abs/target"}
	ids := []int64{0, 1, 1<<21 - 1, 1 << 21, 1<<32 - 1}
	sizes := []int64{0, 1, 511, 512, 1<<33 - 1, 1 << 33, -1}
	times := []int64{0, 1, -1, 1700000000, 1<<33 - 1, 1 << 33, zeroTimeSecond, -1 << 40}
	nsecs := []int64{0, 1, 500000000, 999999999, 123456789, 1e9}
	types := []byte{tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo}
	devs := []int64{0, 1, 4095, 1048575, 1 << 21}
	records := []map[string]string{nil, {}, {"SCHILY.xattr.user.a": "1"},
		{"SCHILY.xattr.user.b": "", "SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20"},
		{"LIBARCHIVE.xattr.user.k%3Dv": "dmFsdWU=", "SCHILY.xattr.user.z": "line\nbreak\x00nul"},
		{"SCHILY.xattr.user.big": strings.Repeat("v", 65535), "SCHILY.xattr.user.big2": strings.Repeat("w", 9990)},
		{"SCHILY.xattr.user.huge": strings.Repeat("h", 1<<20)},
		{"SCHILY.xattr.user.nul\x00key": "v"}, {"SCHILY.xattr.user.eq=key": "v"}, {"path": "ignored"}}
	pick := func(n int) int { return r.IntN(n) }
	// Values after the first good ones of each list take archive/tar's
	// path (or are errors); the random headers mostly avoid them.
	good := func(n, good int) int {
		if pick(10) == 0 {
			return pick(n)
		}
		return pick(good)
	}

	fast, all := 0, 0
	check := func(h *tarHeader) {
		t.Helper()
		var got, want bytes.Buffer
		tw := &tarWriter{w: &got}
		all++
		if tw.fast(h) {
			fast++
		}
		gotErr := tw.WriteHeader(h)
		wantErr := tar.NewWriter(&want).WriteHeader(h.archiveHeader())
		// (archive/tar's message may name any of several bad records.)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("header %s: error %v, archive/tar says %v", describeHeader(h), gotErr, wantErr)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			g, w := got.Bytes(), want.Bytes()
			i := 0
			for i < min(len(g), len(w)) && g[i] == w[i] {
				i++
			}
			t.Fatalf("header %s (fast %v): %d bytes, archive/tar %d; first difference at %d: %q vs %q",
				describeHeader(h), tw.fast(h), len(g), len(w), i, g[i:min(len(g), i+40)], w[i:min(len(w), i+40)])
		}
	}
	// Every name and link name with plain fields, then random
	// combinations of everything.
	for _, n := range names {
		for _, l := range links {
			for _, typ := range types {
				check(&tarHeader{typeflag: typ, name: []byte(n), linkname: []byte(l), mode: 0o644, mtime: 1600000000})
			}
		}
	}
	for range 5000 {
		h := &tarHeader{
			typeflag: types[pick(len(types))], name: []byte(names[good(len(names), len(names)-12)]), mode: int64(pick(0o10000)),
			uid: ids[pick(len(ids))], gid: ids[pick(len(ids))], size: sizes[good(len(sizes), len(sizes)-1)],
			mtime: times[pick(len(times))], nsec: nsecs[good(len(nsecs), len(nsecs)-1)], noTime: pick(8) == 0,
			devmajor: devs[good(len(devs), len(devs)-1)], devminor: devs[good(len(devs), len(devs)-1)],
			records: records[good(len(records), len(records)-3)],
		}
		if h.typeflag == tar.TypeReg && len(h.name) > 0 && h.name[len(h.name)-1] == '/' {
			h.typeflag = tar.TypeDir
		}
		if pick(3) == 0 {
			h.linkname = []byte(links[good(len(links), len(links)-3)])
		}
		check(h)
	}
	// Most headers must have taken the fast path, or the test proves
	// nothing about it.
	if fast < all/2 {
		t.Errorf("only %d of %d headers took the fast path", fast, all)
	}
	t.Logf("%d of %d headers on the fast path", fast, all)
}

func describeHeader(h *tarHeader) string {
	cut := func(b []byte) string { return fmt.Sprintf("%q (%d bytes)", b[:min(len(b), 60)], len(b)) }
	return fmt.Sprintf("type %c name %s link %s mode %o uid %d gid %d size %d mtime %d.%d (none %v) dev %d:%d, %d records",
		h.typeflag, cut(h.name), cut(h.linkname), h.mode, h.uid, h.gid, h.size, h.mtime, h.nsec, h.noTime, h.devmajor, h.devminor, len(h.records))
}
