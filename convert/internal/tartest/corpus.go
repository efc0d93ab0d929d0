package tartest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Adversarial is a case of the adversarial corpus: an input a hostile or
// careless producer could hand a converter, and the outcome every
// converter must give, for every output type and whiteout mode.
type Adversarial struct {
	Name  string
	Input []byte // the layer stream: a tar, possibly compressed, or not a tar at all
	// Tar is the uncompressed tar of an accepted compressed Input, for
	// the oracle (which reads plain and gzip-compressed tars only); nil
	// when Input is one.
	Tar []byte

	// Err, when not empty, is a fragment of the error every converter
	// must return; the input must then be refused in every mode.
	Err string
	// Where, when not empty, is where the error must say the problem is:
	// `tar entry "NAME" at offset N` for an entry (N is the offset of the
	// entry's own header block, after any PAX or GNU headers for it), or
	// "tar header at offset N" for headers archive/tar cannot read.
	Where string

	// Whiteouts marks inputs whose result depends on the whiteout mode;
	// they are converted in every mode, and merged onto a lower layer.
	Whiteouts bool
	// Entries is, for accepted inputs, the number of entries a converter
	// must report, or -1 when the case does not say.
	Entries int
}

// OracleTar returns the tar the oracle reads for an accepted case.
func (c *Adversarial) OracleTar() []byte {
	if c.Tar != nil {
		return c.Tar
	}
	return c.Input
}

// Corpus returns the adversarial corpus, freshly built. Names are unique
// and stable, and none is that of a golden or bad case.
func Corpus() []Adversarial {
	var out []Adversarial
	for _, group := range [][]Adversarial{
		corpusStructure(), corpusCompression(), corpusNames(), corpusLinks(),
		corpusWhiteouts(), corpusXattrs(), corpusPAX(), corpusSparse(),
	} {
		out = append(out, group...)
	}
	return out
}

// ok is an accepted case whose entry count is not checked.
func ok(name string, input []byte) Adversarial {
	return Adversarial{Name: name, Input: input, Entries: -1}
}

// bad is a refused case whose error names no entry.
func bad(name string, input []byte, err string) Adversarial {
	return Adversarial{Name: name, Input: input, Err: err}
}

// badEntry is a refused case whose error names the entry and its offset.
func badEntry(name string, input []byte, err, entry string, off int64) Adversarial {
	return Adversarial{Name: name, Input: input, Err: err, Where: fmt.Sprintf("tar entry %q at offset %d", entry, off)}
}

// badHeader is a refused case about the header at offset at.
func badHeader(name string, input []byte, err string, at int64) Adversarial {
	return Adversarial{Name: name, Input: input, Err: err, Where: fmt.Sprintf("tar header at offset %d", at)}
}

// whiteouts marks a case as depending on the whiteout mode.
func whiteouts(c Adversarial) Adversarial { c.Whiteouts = true; return c }

// tarOf builds an archive of headers (each followed by its data, a string
// when the next argument is one) and returns it with the offset of each
// entry's own header block (after any PAX or GNU headers archive/tar
// writes before it), by name.
func tarOf(entries ...any) ([]byte, map[string]int64) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	offs := map[string]int64{}
	for i := 0; i < len(entries); i++ {
		h := *entries[i].(*tar.Header)
		var data []byte
		if i+1 < len(entries) {
			if s, ok := entries[i+1].(string); ok {
				data = []byte(s)
				i++
			}
		}
		if h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeCont {
			h.Size = int64(len(data))
		}
		if h.ModTime.IsZero() && h.Typeflag != tar.TypeXGlobalHeader {
			h.ModTime = Epoch
		}
		if h.Mode == 0 && h.Typeflag != tar.TypeXGlobalHeader {
			h.Mode = 0o644
		}
		tw.Flush()
		before := int64(buf.Len())
		if err := tw.WriteHeader(&h); err != nil {
			panic(fmt.Sprintf("tartest: header %q: %v", h.Name, err))
		}
		tw.Flush()
		offs[h.Name] = int64(buf.Len()) - 512
		if h.Typeflag == tar.TypeXGlobalHeader {
			offs[h.Name] = before
		}
		if _, err := tw.Write(data); err != nil {
			panic(fmt.Sprintf("tartest: data of %q: %v", h.Name, err))
		}
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes(), offs
}

// simple returns a small valid archive of a directory, a file and a
// symlink.
func simple() []byte {
	b, _ := tarOf(
		&tar.Header{Typeflag: tar.TypeDir, Name: "d/", Mode: 0o755},
		&tar.Header{Typeflag: tar.TypeReg, Name: "d/f"}, "content\n",
		&tar.Header{Typeflag: tar.TypeSymlink, Name: "d/s", Linkname: "f", Mode: 0o777},
	)
	return b
}

func reg(name string) *tar.Header { return &tar.Header{Typeflag: tar.TypeReg, Name: name} }
func dir(name string) *tar.Header { return &tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755} }
func link(name, target string) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target}
}
func symlink(name, target string) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, Format: tar.FormatPAX}
}

// corpusStructure: empty streams, end-of-archive blocks, truncation and
// broken header fields.
func corpusStructure() []Adversarial {
	var cs []Adversarial
	empty := func(name string, input []byte) {
		c := ok(name, input)
		c.Entries = 0
		cs = append(cs, c)
	}
	empty("zero-bytes", []byte{})
	empty("one-zero-block", make([]byte, 512))
	empty("end-blocks-only", make([]byte, 1024))
	empty("many-zero-blocks", make([]byte, 20*512))

	s := simple()
	cs = append(cs, ok("garbage-after-end", append(bytes.Clone(s), []byte("not a tar, after the end of the archive")...)))

	r := newRaw()
	r.file("a", "a")
	r.b.Write(make([]byte, 512))
	r.file("b", "b")
	r.end()
	cs = append(cs, badHeader("lone-zero-block", r.bytes(), "single zero block at offset 1024", 1024))

	cs = append(cs, badHeader("partial-header", headerBlock("f", '0', 0, nil)[:100], "unexpected EOF", 0))

	r = newRaw()
	r.file("a", "a")
	r.header("f", '0', 5, func(b []byte) { copy(b[fSize:], "12x45\x00") })
	r.data([]byte("hello"))
	r.end()
	cs = append(cs, badHeader("size-not-octal", r.bytes(), `size field "12x45": not an octal number`, 1024))

	r = newRaw()
	r.header("f", '0', 0, func(b []byte) { copy(b[fUID:], "abcdefg\x00") })
	r.end()
	cs = append(cs, badHeader("uid-not-octal", r.bytes(), `uid field "abcdefg"`, 0))

	r = newRaw()
	r.header("f", '0', 0, nil)
	r.b.Bytes()[fChksum] ^= 1
	r.end()
	cs = append(cs, badHeader("checksum-off-by-one", r.bytes(), "checksum", 0))

	r = newRaw()
	r.header("f", '0', 0, func(b []byte) { setBase256(b, fSize, 12, -1) })
	r.end()
	cs = append(cs, badHeader("negative-size", r.bytes(), "negative size -1", 0))

	r = newRaw()
	r.header("f", '0', 0, func(b []byte) { setBase256(b, fSize, 12, 1<<40) })
	r.data([]byte("only a little data"))
	cs = append(cs, badEntry("huge-size-truncated", r.bytes(), "unexpected EOF", "f", 0))

	r = newRaw()
	r.header("f", '0', 0, func(b []byte) { setBase256(b, fUID, 8, 1<<32) })
	r.end()
	cs = append(cs, badEntry("uid-over-32-bits", r.bytes(), "uid/gid 4294967296/0 out of range", "f", 0))

	r = newRaw()
	r.header("f", '0', 0, func(b []byte) { setBase256(b, fGID, 8, -5) })
	r.end()
	cs = append(cs, badEntry("gid-negative", r.bytes(), "uid/gid 0/-5 out of range", "f", 0))

	for _, typ := range []byte{'D', 'M', 'N', 'A', 'X'} {
		r = newRaw()
		r.file("before", "x")
		r.header("odd", typ, 0, nil)
		r.end()
		cs = append(cs, badEntry(fmt.Sprintf("type-%c", typ), r.bytes(), fmt.Sprintf("unsupported tar entry type %q", typ), "odd", 1024))
	}

	r = newRaw()
	r.header("contiguous", '7', 4, nil)
	r.data([]byte("7777"))
	r.header("v7-nul-type", 0, 3, func(b []byte) { copy(b[fMagic:], make([]byte, 8)) })
	r.data([]byte("v7!"))
	r.header("v7-dir/", 0, 0, func(b []byte) { copy(b[fMagic:], make([]byte, 8)); setOctal(b, fMode, 8, 0o750) })
	r.header("/volume/../label", 'V', 0, func(b []byte) { gnuMagic(b) })
	r.end()
	cs = append(cs, ok("types-contiguous-v7-volume", r.bytes()))

	r = newRaw()
	r.file("a", "data")
	r.header("w", '5', 1000, nil) // a directory declaring data archive/tar does not read
	r.file("b", "after")
	r.end()
	cs = append(cs, ok("dir-with-size", r.bytes()))
	return cs
}

// Small streams of the compressed formats converters do not read: the
// two-byte file "f" of a USTAR tar compressed by xz 5, bzip2 1.0 and lz4
// 1.9; the compress(1) and lzip ones are headers only.
const (
	xzSample    = "\xfd\x37\x7a\x58\x5a\x00\x00\x04\xe6\xd6\xb4\x46\x02\x00\x21\x01\x16\x00\x00\x00\x74\x2f\xe5\xa3\xe0\x27\xff\x00\x5e\x5d\x00\x33\x00\x33\x50\x18\x68\x89\x83\x01\xdc\xe2\x6e\x21\x05\x48\x1e\xd2\xcc\xd1\x6c\xeb\xcb\xef\x77\x3d\x00\x67\x0d\x18\xdd\x3c\x14\xd8\xb0\xeb\x21\x87\xec\xc4\xce\x63\x9d\x20\x12\xdb\x34\xdb\x0c\xc3\xab\xff\xf0\xdc\x81\x4d\xe6\x47\x89\x67\xd2\xfd\x8e\xce\xaa\xf7\x29\xdf\x78\x21\x31\xa4\x7e\x00\x86\xa7\xa4\x45\x88\x22\x1b\x01\x42\x07\x3e\xe9\x8d\x76\x2c\xcd\x23\xfe\xba\x5a\x00\x00\x00\x00\xe6\xc7\xe7\xfe\x33\xe6\xfc\x65\x00\x01\x7a\x80\x50\x00\x00\x00\x4a\x45\x07\x13\xb1\xc4\x67\xfb\x02\x00\x00\x00\x00\x04\x59\x5a"
	bzip2Sample = "\x42\x5a\x68\x39\x31\x41\x59\x26\x53\x59\xaa\xfc\x4a\x7c\x00\x00\x70\x5b\x80\xc9\x00\x40\x00\x77\x80\x00\x00\xe1\x60\x1e\x00\x08\x08\x20\x00\x54\x34\xa7\xa9\xe9\x36\xa6\x13\xd1\x36\x9a\x09\x22\x99\x34\xc0\x40\x69\xac\xee\x3a\x10\x75\x00\x42\x2e\xdd\xdb\x82\x56\x68\xa0\x43\x26\x2a\xe2\x78\xb8\x19\xd8\x0b\xd9\xb5\xda\x72\x46\x14\x44\x99\xaf\x46\x1e\xb0\xef\x11\x0a\x44\x40\x70\x5d\xc9\x14\xe1\x42\x42\xab\xf1\x29\xf0"
	lz4Sample   = "\x04\x22\x4d\x18\x64\x40\xa7\x78\x00\x00\x00\x2f\x66\x00\x01\x00\x4f\x71\x30\x30\x30\x30\x36\x34\x34\x08\x00\x3c\x30\x30\x30\x08\x00\xe1\x30\x30\x30\x32\x00\x31\x34\x35\x32\x34\x37\x37\x30\x34\x20\x00\x7f\x36\x31\x34\x37\x00\x20\x30\x9b\x00\x4f\x9f\x00\x00\x75\x73\x74\x61\x72\x00\x30\x6c\x00\x52\x0f\x02\x00\x80\x2f\x68\x69\x95\x00\x80\x0f\x02\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x78\x50\x00\x00\x00\x00\x00\x00\x00\x00\x00\x3d\x86\x38\x2e"
	lzwSample   = "\x1f\x9d\x90\x66\x00\x00\x00\x00"
	lzipSample  = "LZIP\x01\x0c\x00\x33"
)

// zstdFrame compresses b as one zstd frame (with a content checksum).
func zstdFrame(b []byte) []byte {
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(true))
	if err != nil {
		panic(err)
	}
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// zstdSkippable is a skippable frame (RFC 8878, 3.1.2) with n bytes of
// user data.
func zstdSkippable(magicLow byte, n int) []byte {
	f := append(le32(0x184D2A50|uint32(magicLow&0xf)), le32(uint32(n))...)
	return append(f, bytes.Repeat([]byte{0xee}, n)...)
}

// gzipMembers compresses each part as a gzip member of its own.
func gzipMembers(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, Gzip(p)...)
	}
	return out
}

// corpusCompression: gzip and zstd streams, good and broken, and formats
// converters do not read.
func corpusCompression() []Adversarial {
	s := simple()
	half := len(s) / 1024 * 512
	compressed := func(name string, input []byte) Adversarial {
		c := ok(name, input)
		c.Tar = s
		return c
	}
	gz := Gzip(s)
	badCRC := bytes.Clone(gz)
	badCRC[len(badCRC)-8] ^= 0xff // the CRC-32 of the gzip trailer
	badMethod := bytes.Clone(gz)
	badMethod[2] = 7 // compression method: not deflate
	zs := zstdFrame(s)
	zsBadSum := bytes.Clone(zs)
	zsBadSum[len(zsBadSum)-1] ^= 0xff // the content checksum
	var gzLevel bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gzLevel, gzip.NoCompression)
	zw.ModTime = time.Time{}
	zw.Write(s)
	zw.Close()

	cs := []Adversarial{
		compressed("gzip-stored-blocks", gzLevel.Bytes()),
		compressed("gzip-multi-member", gzipMembers(s[:half], s[half:])),
		compressed("gzip-empty-members", gzipMembers(nil, s, nil)),
		bad("gzip-trailing-garbage", append(bytes.Clone(gz), "garbage after the gzip stream"...), "after the tar end"),
		bad("gzip-bad-crc", badCRC, "after the tar end"),
		bad("gzip-bad-method", badMethod, "gzip"),
		bad("gzip-truncated-header", gz[:5], "gzip"),
		{Name: "gzip-of-nothing", Input: Gzip(nil), Tar: []byte{}, Entries: 0},
		{Name: "gzip-of-end-blocks", Input: Gzip(make([]byte, 1024)), Tar: make([]byte, 1024), Entries: 0},
		compressed("zstd", zs),
		compressed("zstd-multi-frame", append(zstdFrame(s[:half]), zstdFrame(s[half:])...)),
		compressed("zstd-skippable-first", append(zstdSkippable(0, 16), zs...)),
		compressed("zstd-skippable-between", append(append(zstdFrame(s[:half]), zstdSkippable(0xf, 3)...), zstdFrame(s[half:])...)),
		{Name: "zstd-of-nothing", Input: zstdFrame(nil), Tar: []byte{}, Entries: 0},
		bad("zstd-truncated", zs[:len(zs)-10], "zstd: unexpected EOF"),
		bad("zstd-bad-checksum", zsBadSum, "zstd: CRC check failed"),
		bad("zstd-trailing-garbage", append(bytes.Clone(zs), "garbage after the frame"...), "after the tar end"),
		bad("xz", []byte(xzSample), "xz-compressed input is not supported (want tar, tar+gzip or tar+zstd)"),
		bad("bzip2", []byte(bzip2Sample), "bzip2-compressed input is not supported"),
		bad("lz4-frame", []byte(lz4Sample), "lz4-compressed input is not supported"),
		bad("compress-lzw", []byte(lzwSample), "compress(1)-compressed input is not supported"),
		bad("lzip", []byte(lzipSample), "lzip-compressed input is not supported"),
	}
	// A plain tar whose first name starts like a compressed stream.
	lookalike, _ := tarOf(reg("BZh91AY&SY looks like bzip2"), "but is a file", reg("LZIP"), "")
	cs = append(cs, ok("tar-name-like-bzip2", lookalike))
	return cs
}

// corpusNames: names that escape the root, the root itself, long, empty
// and odd names.
func corpusNames() []Adversarial {
	var cs []Adversarial
	for _, c := range []struct{ name, entry, err string }{
		{"dotdot-inside", "a/../b", `".." component`},
		{"dotdot-alone", "..", `".." component`},
		{"dotdot-trailing", "a/..", `".." component`},
		{"absolute-dir", "/etc/", "absolute path"},
	} {
		var e []any = []any{&tar.Header{Typeflag: tar.TypeReg, Name: c.entry, Format: tar.FormatPAX}, "x"}
		if strings.HasSuffix(c.entry, "/") {
			e = []any{&tar.Header{Typeflag: tar.TypeDir, Name: c.entry, Format: tar.FormatPAX}}
		}
		b, offs := tarOf(append([]any{reg("ok"), "ok"}, e...)...)
		cs = append(cs, badEntry(c.name, b, c.err, c.entry, offs[c.entry]))
	}
	b, _ := tarOf(
		&tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o700, Uid: 5, Gid: 6, ModTime: time.Unix(1600000000, 7),
			PAXRecords: map[string]string{"SCHILY.xattr.user.root": "yes", "SCHILY.xattr.trusted.r": "1"}},
		reg("./f"), "f",
		&tar.Header{Typeflag: tar.TypeDir, Name: ".", Mode: 0o711, Uid: 7, Gid: 8},
	)
	cs = append(cs, ok("root-entry-attributes", b))
	b, _ = tarOf(reg("f"), "f", &tar.Header{Typeflag: tar.TypeDir, Name: "", Mode: 0o750, Uid: 9, Gid: 9, Format: tar.FormatGNU})
	cs = append(cs, ok("empty-name-dir-is-root", b))
	b, offs := tarOf(reg("f"), "f", &tar.Header{Typeflag: tar.TypeReg, Name: "", Format: tar.FormatGNU}, "x")
	cs = append(cs, badEntry("empty-name-file", b, "the root must be a directory", "", offs[""]))
	b, offs = tarOf(reg("f"), "f", symlink("./", "elsewhere"))
	cs = append(cs, badEntry("root-symlink", b, "the root must be a directory", "./", offs["./"]))

	// Paths as long as can be compared through a mount point (PATH_MAX
	// bounds the paths a test can stat).
	long := strings.Repeat(strings.Repeat("c", 200)+"/", 19) + "leaf"
	b, _ = tarOf(&tar.Header{Typeflag: tar.TypeReg, Name: long, Format: tar.FormatPAX}, "3.8 KiB of path",
		&tar.Header{Typeflag: tar.TypeReg, Name: long[:3500] + "gnu", Format: tar.FormatGNU}, "gnu")
	cs = append(cs, ok("path-3800", b))
	n256 := "d/" + strings.Repeat("g", 256)
	b, offs = tarOf(reg("ok"), "ok", &tar.Header{Typeflag: tar.TypeReg, Name: n256, Format: tar.FormatGNU}, "x")
	cs = append(cs, badEntry("gnu-component-256", b, "256", n256, offs[n256]))

	b, _ = tarOf(
		&tar.Header{Typeflag: tar.TypeReg, Name: "new\nline\tand\\back", Format: tar.FormatPAX}, "x",
		&tar.Header{Typeflag: tar.TypeReg, Name: "\x01\x7f\xff", Format: tar.FormatPAX}, "x",
		&tar.Header{Typeflag: tar.TypeReg, Name: "a//b/./c", Format: tar.FormatPAX}, "cleaned",
	)
	cs = append(cs, ok("names-odd-pax", b))
	r := newRaw()
	r.header("trailing-slash/", '0', 5, nil) // a regular file, whatever the slash says
	r.data([]byte("file!"))
	r.end()
	cs = append(cs, ok("reg-trailing-slash", r.bytes()))

	// Replacing entries of every kind with every other.
	b, _ = tarOf(
		reg("x"), "file", dir("x/"), reg("x/in"), "in", symlink("x", "elsewhere"), reg("x"), "file again",
		symlink("y", "t"), dir("y/"), link("y", "x"), &tar.Header{Typeflag: tar.TypeFifo, Name: "y"},
		dir("z/"), dir("z/z/"), reg("z/z/f"), "f", &tar.Header{Typeflag: tar.TypeChar, Name: "z", Devmajor: 1, Devminor: 5},
	)
	cs = append(cs, ok("replace-every-kind", b))
	b, offs = tarOf(dir("d/"), symlink("d", "/tmp"), reg("d/x"), "through a symlink")
	cs = append(cs, badEntry("below-symlink", b, "not a directory", "d/x", offs["d/x"]))
	return cs
}

// corpusLinks: hard links and symlinks, devices, owners and times.
func corpusLinks() []Adversarial {
	var cs []Adversarial
	b, offs := tarOf(link("early", "late"), reg("late"), "late")
	cs = append(cs, badEntry("hardlink-to-later", b, `hard link to "late", which is not in the archive before it`, "early", offs["early"]))
	b, offs = tarOf(reg("other"), "x", link("self", "self"))
	cs = append(cs, badEntry("hardlink-self-missing", b, "hard link to itself", "self", offs["self"]))
	b, _ = tarOf(reg("self"), "data", link("self", "./self"), dir("d/"), link("d", "d"), link(".", "."))
	cs = append(cs, ok("hardlink-self-existing", b))
	b, offs = tarOf(reg("f"), "f", link("l", "."))
	cs = append(cs, badEntry("hardlink-to-root", b, "is a directory", "l", offs["l"]))
	b, offs = tarOf(reg("f"), "f", link("l", ""))
	cs = append(cs, badEntry("hardlink-empty-target", b, "is a directory", "l", offs["l"]))
	b, offs = tarOf(reg("f"), "f", link("l", "/f"))
	cs = append(cs, badEntry("hardlink-absolute", b, "absolute path", "l", offs["l"]))
	b, _ = tarOf(
		reg("a"), "a1", link("b", "a"), link("c", "b"), reg("a"), "a2", link("d", "a"), link("e", "c"),
		reg("c"), "c2", link("f", "./b"),
	)
	cs = append(cs, ok("hardlink-chain-replaced", b))
	b, _ = tarOf(symlink("loop1", "loop2"), symlink("loop2", "loop1"), symlink("self", "self"),
		symlink("dot", "."), symlink("up", "../../.."), symlink("abs", "/"))
	cs = append(cs, ok("symlink-loops", b))
	b, offs = tarOf(reg("f"), "f", &tar.Header{Typeflag: tar.TypeSymlink, Name: "empty", Mode: 0o777})
	cs = append(cs, badEntry("symlink-empty", b, "symlink target of 0 bytes (want 1 to 4095)", "empty", offs["empty"]))
	b, _ = tarOf(&tar.Header{Typeflag: tar.TypeSymlink, Name: "s4095", Linkname: strings.Repeat("/x", 2047) + "y", Format: tar.FormatGNU})
	cs = append(cs, ok("symlink-4095-gnu", b))
	b, offs = tarOf(symlink("s4096", strings.Repeat("z", 4096)))
	cs = append(cs, badEntry("symlink-4096-pax", b, "symlink target of 4096 bytes (want 1 to 4095)", "s4096", offs["s4096"]))
	b, offs = tarOf(&tar.Header{Typeflag: tar.TypeSymlink, Name: "s5000", Linkname: strings.Repeat("k/", 2500), Format: tar.FormatGNU})
	cs = append(cs, badEntry("symlink-5000-gnu", b, "symlink target of 5000 bytes (want 1 to 4095)", "s5000", offs["s5000"]))

	b, offs = tarOf(&tar.Header{Typeflag: tar.TypeChar, Name: "c", Devmajor: 4096, Format: tar.FormatGNU})
	cs = append(cs, badEntry("device-major-4096", b, "device number 4096:0 out of range", "c", offs["c"]))
	b, offs = tarOf(&tar.Header{Typeflag: tar.TypeBlock, Name: "b", Devmajor: 8, Devminor: 1 << 20, Format: tar.FormatGNU})
	cs = append(cs, badEntry("device-minor-2^20", b, "device number 8:1048576 out of range", "b", offs["b"]))
	r := newRaw()
	r.header("neg", '3', 0, func(b []byte) { setBase256(b, fDevmajor, 8, -1); gnuMagic(b) })
	r.end()
	cs = append(cs, badEntry("device-negative", r.bytes(), "device number -1:0 out of range", "neg", 0))

	b, _ = tarOf(
		&tar.Header{Typeflag: tar.TypeReg, Name: "uid-max", Uid: 4294967294, Gid: 4294967294, Format: tar.FormatPAX}, "x",
		&tar.Header{Typeflag: tar.TypeReg, Name: "neg-frac", ModTime: time.Unix(-100, -500000000), Format: tar.FormatPAX}, "x",
		&tar.Header{Typeflag: tar.TypeReg, Name: "y5138", ModTime: time.Unix(99999999999, 999999999), Format: tar.FormatPAX}, "x",
		&tar.Header{Typeflag: tar.TypeReg, Name: "pre-1901", ModTime: time.Unix(-4000000000, 0), Format: tar.FormatPAX}, "x",
	)
	cs = append(cs, ok("owners-and-times", b))
	b, offs = tarOf(&tar.Header{Typeflag: tar.TypeReg, Name: "f", Uid: 1 << 33, Format: tar.FormatPAX}, "x")
	cs = append(cs, badEntry("uid-2^33-pax", b, "out of range", "f", offs["f"]))
	return cs
}

// corpusWhiteouts: whiteouts and opaque markers of every kind, valid and
// not, converted in every whiteout mode.
func corpusWhiteouts() []Adversarial {
	var cs []Adversarial
	refuse := func(name, err, entry string, entries ...any) {
		b, offs := tarOf(entries...)
		cs = append(cs, whiteouts(badEntry(name, b, err, entry, offs[entry])))
	}
	accept := func(name string, entries ...any) {
		b, _ := tarOf(entries...)
		cs = append(cs, whiteouts(ok(name, b)))
	}
	refuse("wh-empty-target", `invalid whiteout name ".wh."`, "d/.wh.", dir("d/"), reg("d/x"), "x", reg("d/.wh."), "")
	refuse("wh-dot", `invalid whiteout name ".wh.."`, "d/.wh..", dir("d/"), reg("d/x"), "x", reg("d/.wh.."), "")
	refuse("wh-dotdot", `invalid whiteout name ".wh..."`, "d/.wh...", dir("d/"), reg("d/x"), "x", reg("d/.wh..."), "")
	refuse("wh-dot-in-root", `invalid whiteout name ".wh.."`, ".wh..", reg("x"), "x", reg(".wh.."), "")
	refuse("wh-directory", `whiteout ".wh.x" is a directory`, "d/.wh.x/", dir("d/"), dir("d/.wh.x/"))
	refuse("wh-opaque-directory", `whiteout ".wh..wh..opq" is a directory`, "d/.wh..wh..opq/", dir("d/"), dir("d/.wh..wh..opq/"))
	refuse("wh-below-whiteout", `a whiteout name, which cannot be a directory`, "d/.wh.x/y", reg("d/.wh.x/y"), "y")
	refuse("wh-below-opaque", `a whiteout name, which cannot be a directory`, ".wh..wh..opq/y", reg(".wh..wh..opq/y"), "y")
	refuse("wh-opaque-under-file", "not a directory", "f/.wh..wh..opq", reg("f"), "a file", reg("f/.wh..wh..opq"), "")
	refuse("wh-under-file", "not a directory", "f/.wh.x", reg("f"), "a file", reg("f/.wh.x"), "")
	refuse("wh-hardlink-to-whiteout", "a whiteout (or below one), which is not a file", "l", reg(".wh.x"), "", link("l", ".wh.x"))
	refuse("wh-unsupported-type", "unsupported tar entry type", ".wh.x", &tar.Header{Typeflag: 'D', Name: ".wh.x"})
	refuse("wh-uid-2^33", "out of range", ".wh.x", &tar.Header{Typeflag: tar.TypeReg, Name: ".wh.x", Uid: 1 << 33, Format: tar.FormatPAX}, "")
	refuse("wh-symlink-empty", "symlink target of 0 bytes", ".wh.x", &tar.Header{Typeflag: tar.TypeSymlink, Name: ".wh.x"})
	b, offs := tarOf(reg("a"), "a", reg("d/.wh.x"), strings.Repeat("w", 3000))
	cs = append(cs, whiteouts(badEntry("wh-data-truncated", b[:offs["d/.wh.x"]+512+1000], "unexpected EOF", "d/.wh.x", offs["d/.wh.x"])))

	accept("wh-with-data", dir("d/"), &tar.Header{Typeflag: tar.TypeReg, Name: "d/.wh.x", Uid: 3, ModTime: time.Unix(5, 0)}, "whiteouts are empty, but this one is not")
	accept("wh-kinds", dir("d/"),
		symlink("d/.wh.x", "target"),
		&tar.Header{Typeflag: tar.TypeChar, Name: "d/.wh.y", Devmajor: 1, Devminor: 3},
		&tar.Header{Typeflag: tar.TypeFifo, Name: "d/.wh.sub"},
	)
	accept("wh-linked-aufs", reg(".wh.x"), "", link(".wh.y", ".wh.x"), link("d/.wh..wh..opq", ".wh.x"))
	accept("wh-opaque-root", reg(".wh..wh..opq"), "", reg("new"), "new")
	accept("wh-opaque-twice", dir("d/"), reg("d/.wh..wh..opq"), "", reg("d/.wh..wh..opq"), "", reg("d/new"), "n")
	accept("wh-opaque-then-file", reg("d/.wh..wh..opq"), "", reg("d"), "d is a file after all")
	accept("wh-then-readded", reg(".wh.x"), "", reg("x"), "x is back", reg("d/.wh.sub"), "", dir("d/sub/"), reg("d/sub/y"), "y",
		reg("d/keep"), "", reg("d/.wh.keep"), "") // a whiteout after an entry of its own layer
	accept("wh-pax-attributes", &tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "g", PAXRecords: map[string]string{"uid": "77", "mtime": "12345.5"}},
		&tar.Header{Typeflag: tar.TypeReg, Name: "d/.wh.x", Format: tar.FormatPAX, PAXRecords: map[string]string{"SCHILY.xattr.user.wh": "dropped"}}, "",
		&tar.Header{Typeflag: tar.TypeReg, Name: "d/.wh.sub", Gid: 3000000, Format: tar.FormatPAX}, "",
	)
	return cs
}

// corpusXattrs: xattr names and values at and over the limits, in the
// PAX forms of GNU tar, star and libarchive.
func corpusXattrs() []Adversarial {
	var cs []Adversarial
	x := func(name string, recs map[string]string) *tar.Header {
		return &tar.Header{Typeflag: tar.TypeReg, Name: name, Format: tar.FormatPAX, PAXRecords: recs}
	}
	b, _ := tarOf(x("f", map[string]string{
		"SCHILY.xattr.bare":                 "no namespace",
		"SCHILY.xattr.com.apple.FinderInfo": "macOS",
		"SCHILY.xattr.user.kept":            "kept",
		"SCHILY.xattr.system.nfs4_acl":      "not exposed",
	}), "x")
	cs = append(cs, ok("xattr-namespaces", b))
	b, _ = tarOf(x("f", map[string]string{"SCHILY.xattr.": "empty name, in no namespace"}), "x")
	cs = append(cs, ok("xattr-empty-name", b))
	many := map[string]string{}
	for i := range 120 {
		many[fmt.Sprintf("SCHILY.xattr.user.many-%03d", i)] = strings.Repeat(fmt.Sprint(i%10), 100)
	}
	b, _ = tarOf(x("many", many), "x", &tar.Header{Typeflag: tar.TypeDir, Name: "d/", Mode: 0o755, Format: tar.FormatPAX, PAXRecords: many})
	cs = append(cs, ok("xattr-over-a-block", b))
	b, _ = tarOf(x("la", map[string]string{
		"LIBARCHIVE.xattr.user.a+b%3Dc": "dmFsdWU", // "value": '+' is a plus, %3D is '='
		"LIBARCHIVE.xattr.user.both":    "bGli",    // "lib", shadowed
		"SCHILY.xattr.user.both":        "schily",
	}), "x")
	cs = append(cs, ok("xattr-libarchive-names", b))
	b, offs := tarOf(x("f", map[string]string{"LIBARCHIVE.xattr.user.x": "not base64!"}), "x")
	cs = append(cs, badEntry("xattr-libarchive-bad-base64", b, `PAX record "LIBARCHIVE.xattr.user.x"`, "f", offs["f"]))
	b, offs = tarOf(x("f", map[string]string{"LIBARCHIVE.xattr.user.%zz": "eA"}), "x")
	cs = append(cs, badEntry("xattr-libarchive-bad-escape", b, `PAX record "LIBARCHIVE.xattr.user.%zz"`, "f", offs["f"]))
	b, offs = tarOf(x("f", map[string]string{"SCHILY.acl.access": "user::rwz,group::r--,other::---"}), "x")
	cs = append(cs, badEntry("acl-text-bad-permissions", b, "ACL entry", "f", offs["f"]))
	b, offs = tarOf(x("f", map[string]string{"SCHILY.acl.access": "user:bob:r--,user::rw-,group::r--,mask::r--,other::---"}), "x")
	cs = append(cs, badEntry("acl-text-name-without-id", b, "ACL entry", "f", offs["f"]))
	cs = append(cs, ok("acl-text", caseACLText()))
	b, _ = tarOf(reg("f"), "f", &tar.Header{Typeflag: tar.TypeLink, Name: "l", Linkname: "f", Format: tar.FormatPAX,
		PAXRecords: map[string]string{"SCHILY.xattr.user.on-link": "ignored, as by extraction"}})
	cs = append(cs, ok("xattr-on-hardlink-entry", b))
	return cs
}

// corpusPAX: malformed PAX records, global headers and GNU long names.
func corpusPAX() []Adversarial {
	var cs []Adversarial
	malformed := func(name, records, err string) {
		r := newRaw()
		r.file("before", "x")
		r.pax('x', records)
		r.file("after", "y")
		r.end()
		cs = append(cs, badHeader(name, r.bytes(), err, 1024))
	}
	malformed("pax-length-not-decimal", "1x path=a\n", `malformed PAX record "1x path=a\n" at offset 1536: length "1x" is not a decimal number`)
	malformed("pax-length-too-short", "3 a\n", "is too short")
	malformed("pax-length-past-end", "99 path=a\n", "runs past the end")
	malformed("pax-no-space", "12path=abcd\n", "no space after the length")
	malformed("pax-no-equals", "10 pathab\n", "no '=' between keyword and value")
	malformed("pax-no-newline", "10 path=ab!", "does not end the record at a newline")
	malformed("pax-empty-keyword", "7 =abc\n", "empty keyword")
	malformed("pax-nul-in-path", record("path", "a\x00b"), "NUL byte in the value")
	malformed("pax-bad-uid", record("uid", "12a"), `uid value "12a" is invalid`)
	malformed("pax-bad-mtime", record("mtime", "1.2.3"), `mtime value "1.2.3" is invalid`)
	malformed("pax-negative-size", record("size", "-1"), `size value "-1" is invalid`)
	malformed("pax-bad-sparse-pair", record("GNU.sparse.offset", "0,1"), "out of order")
	malformed("pax-second-record-bad", record("path", "ok")+"5 xy\n", `malformed PAX record "5 xy\n" at offset 1547`)
	r := newRaw()
	r.pax('x', record("comment", strings.Repeat("c", 1<<20)))
	r.file("f", "f")
	r.end()
	cs = append(cs, badHeader("pax-over-1MiB", r.bytes(), "over the 1 MiB archive/tar reads", 0))

	r = newRaw()
	r.file("a", "a")
	r.pax('g', record("uid", "x"))
	r.file("b", "b")
	r.end()
	cs = append(cs, badEntry("pax-global-bad-uid", r.bytes(), `uid value "x" is invalid`, "PaxHeaders/x", 1024))
	b, offs := tarOf(reg("a"), "a", &tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "g", PAXRecords: map[string]string{"size": "3"}}, reg("b"), "b")
	cs = append(cs, badEntry("pax-global-size", b, `global PAX header sets "size"`, "g", offs["g"]))
	b, offs = tarOf(&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "g", PAXRecords: map[string]string{"GNU.sparse.map": "0,1"}}, reg("b"), "b")
	cs = append(cs, badEntry("pax-global-sparse", b, `global PAX header sets "GNU.sparse.map"`, "g", offs["g"]))
	b, _ = tarOf(
		&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "g1", PAXRecords: map[string]string{"SCHILY.xattr.user.first": "1", "gid": "10"}},
		reg("one"), "1",
		&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "g2", PAXRecords: map[string]string{"SCHILY.xattr.user.second": "2", "LIBARCHIVE.xattr.user.third": "Mw"}},
		reg("two"), "2",
		&tar.Header{Typeflag: tar.TypeReg, Name: "own", Format: tar.FormatPAX, PAXRecords: map[string]string{"SCHILY.xattr.user.second": "own"}}, "3",
	)
	cs = append(cs, ok("pax-global-xattrs-replaced", b))
	b, _ = tarOf(
		&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "g", PAXRecords: map[string]string{"path": "all/the/same"}},
		reg("first"), "1", dir("second/"), reg("third"), "3",
	)
	cs = append(cs, ok("pax-global-path", b))

	// GNU long names: two 'L' records (the last counts), a long link.
	r = newRaw()
	long1, long2 := strings.Repeat("1", 150), strings.Repeat("2", 150)
	r.header("././@LongLink", 'L', int64(len(long1)+1), gnuMagic)
	r.data([]byte(long1 + "\x00"))
	r.header("././@LongLink", 'L', int64(len(long2)+1), gnuMagic)
	r.data([]byte(long2 + "\x00"))
	r.header("short", '0', 4, gnuMagic)
	r.data([]byte("long"))
	r.end()
	cs = append(cs, ok("gnu-longname-twice", r.bytes()))
	r = newRaw()
	r.header("././@LongLink", 'L', 300, gnuMagic)
	r.b.WriteString(strings.Repeat("t", 100)) // and no more
	cs = append(cs, badHeader("gnu-longname-truncated", r.bytes(), "unexpected EOF", 0))
	// The stream ends after a meta header, which archive/tar alone takes
	// for the end of the archive.
	r = newRaw()
	r.file("a", "a")
	r.header("././@LongLink", 'L', 11, gnuMagic)
	r.data([]byte("long name\x00\x00"[:11]))
	cs = append(cs, badHeader("gnu-longname-then-eof", r.bytes(), "the archive ends after this GNU long name, before the entry it is for", 1024))
	r = newRaw()
	r.file("a", "a")
	r.pax('x', record("path", "never"))
	cs = append(cs, badHeader("pax-then-eof", r.bytes(), "the archive ends after this PAX extended header", 1024))
	r = newRaw()
	r.header("././@LongLink", 'L', 2<<20, gnuMagic)
	r.data(make([]byte, 2<<20))
	r.header("f", '0', 0, gnuMagic)
	r.end()
	cs = append(cs, badHeader("gnu-longname-over-1MiB", r.bytes(), "GNU long name of 2097152 bytes at offset 0, over the 1 MiB", 0))
	return cs
}

// corpusSparse: GNU sparse files in the old GNU format and the PAX
// formats 0.0, 0.1 and 1.0, with holes at the start, middle and end.
func corpusSparse() []Adversarial {
	var cs []Adversarial
	type frag struct{ off, n int64 }
	content := func(frags []frag) []byte {
		var b []byte
		for i, f := range frags {
			b = append(b, Content(fmt.Sprint("sparse ", i), int(f.n))...)
		}
		return b
	}
	frags := []frag{{4096, 100}, {10000, 5000}, {65536, 1}, {70000, 4096}, {100000, 10}}
	const realSize = 200000 // a hole at the end

	// Old GNU: four map entries in the header, the rest in an extension block.
	r := newRaw()
	data := content(frags)
	r.header("old-gnu", 'S', int64(len(data)), func(b []byte) {
		gnuMagic(b)
		for i, f := range frags[:4] {
			setOctal(b, 386+24*i, 12, f.off)
			setOctal(b, 386+24*i+12, 12, f.n)
		}
		b[482] = 1 // extended
		setOctal(b, 483, 12, realSize)
	})
	ext := make([]byte, 512)
	setOctal(ext, 0, 12, frags[4].off)
	setOctal(ext, 12, 12, frags[4].n)
	r.b.Write(ext)
	r.data(data)
	r.file("after", "after the sparse file")
	r.end()
	cs = append(cs, ok("sparse-old-gnu", r.bytes()))

	// PAX 0.0: repeated offset/numbytes records; 0.1: one map record.
	var recs00 []string
	var m []string
	for _, f := range frags {
		recs00 = append(recs00, record("GNU.sparse.offset", fmt.Sprint(f.off)), record("GNU.sparse.numbytes", fmt.Sprint(f.n)))
		m = append(m, fmt.Sprint(f.off), fmt.Sprint(f.n))
	}
	r = newRaw()
	r.pax('x', append([]string{record("GNU.sparse.size", fmt.Sprint(realSize)), record("GNU.sparse.numblocks", fmt.Sprint(len(frags)))}, recs00...)...)
	r.header("pax-0.0", '0', int64(len(data)), nil)
	r.data(data)
	r.pax('x', record("GNU.sparse.size", fmt.Sprint(realSize)), record("GNU.sparse.numblocks", fmt.Sprint(len(frags))),
		record("GNU.sparse.map", strings.Join(m, ",")), record("GNU.sparse.name", "pax-0.1"))
	r.header("GNUSparseFile.1/pax-0.1", '0', int64(len(data)), nil)
	r.data(data)
	// PAX 1.0: the map is a block of decimal lines at the start of the data.
	mapText := fmt.Sprintf("%d\n%s\n", len(frags), strings.Join(m, "\n"))
	mapBlock := append([]byte(mapText), make([]byte, 512-len(mapText)%512)...)
	r.pax('x', record("GNU.sparse.major", "1"), record("GNU.sparse.minor", "0"),
		record("GNU.sparse.name", "dir/pax-1.0"), record("GNU.sparse.realsize", fmt.Sprint(realSize)))
	r.header("GNUSparseFile.2/pax-1.0", '0', int64(len(mapBlock)+len(data)), nil)
	r.data(append(mapBlock, data...))
	// All holes.
	r.pax('x', record("GNU.sparse.major", "1"), record("GNU.sparse.minor", "0"),
		record("GNU.sparse.name", "all-hole"), record("GNU.sparse.realsize", "1000000"))
	r.header("GNUSparseFile.3/all-hole", '0', 512, nil)
	r.data([]byte("0\n"))
	r.end()
	cs = append(cs, ok("sparse-pax", r.bytes()))

	r = newRaw()
	r.pax('x', record("GNU.sparse.size", "100"), record("GNU.sparse.numblocks", "1"), record("GNU.sparse.map", "90,20"))
	r.header("beyond", '0', 20, nil)
	r.data(make([]byte, 20))
	r.end()
	cs = append(cs, badHeader("sparse-region-beyond-size", r.bytes(), "GNU sparse map", 0))
	r = newRaw()
	r.pax('x', record("GNU.sparse.size", "100"), record("GNU.sparse.numbytes", "10"), record("GNU.sparse.offset", "0"))
	r.header("order", '0', 10, nil)
	r.data(make([]byte, 10))
	r.end()
	cs = append(cs, badHeader("sparse-records-out-of-order", r.bytes(), "out of order", 0))
	return cs
}

// caseACLText has POSIX ACLs as the textual SCHILY.acl records GNU tar
// --acls and star write, with numeric qualifiers and star's id field (which
// GNU tar 1.34 cannot read back), and one shadowed by a binary
// SCHILY.xattr record of the same ACL.
func caseACLText() []byte {
	a := newArchive(tar.FormatPAX)
	a.add(tar.Header{Typeflag: tar.TypeDir, Name: "acl/", Mode: 0o750, PAXRecords: map[string]string{
		"SCHILY.acl.access":  "user::rwx,user:1000:r-x,group::r-x,mask::r-x,other::---",
		"SCHILY.acl.default": "user::rwx\ngroup::r-x\ngroup:alice:rwx:2000\nmask::rwx\nother::r-x",
	}}, nil)
	a.add(tar.Header{Typeflag: tar.TypeReg, Name: "acl/file", Mode: 0o640, PAXRecords: map[string]string{
		"SCHILY.acl.access": "u::rw-,u:bob:r--:1001,g::r--,g:2000:r--,m::r--,o::---",
	}}, []byte("acl"))
	a.add(tar.Header{Typeflag: tar.TypeReg, Name: "acl/both", Mode: 0o640, PAXRecords: map[string]string{
		"SCHILY.acl.access":                    "user::rw-,group::r--,other::r--",
		"SCHILY.xattr.system.posix_acl_access": fileACL,
	}}, []byte("both"))
	return a.bytes()
}
