package tarhdr

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rafs-dev/rafs/convert/internal/tartest"
)

// maxData bounds the data read of one entry in the differential test: a
// sparse file's holes can claim exabytes.
const maxData = 1 << 20

// diff reads input with archive/tar and with Reader side by side, over a
// stream that seeks or one that does not, and returns the first
// difference: in a header, in the data (read whole, in part or not at
// all, as pattern says entry by entry), in an error or in the bytes of
// the stream consumed.
func diff(input []byte, seek bool, pattern uint64) string {
	ab, gb := bytes.NewReader(input), bytes.NewReader(input)
	var ar, gr io.Reader = ab, gb
	if !seek {
		ar, gr = struct{ io.Reader }{ab}, struct{ io.Reader }{gb}
	}
	want, got := tar.NewReader(ar), NewReader(gr)
	pos := func(b *bytes.Reader) int64 { p, _ := b.Seek(0, io.SeekCurrent); return p }
	for i := 0; ; i++ {
		wh, werr := want.Next()
		gh, gerr := got.Next()
		if !sameErr(werr, gerr) {
			return fmt.Sprintf("entry %d: Next: archive/tar %v, tarhdr %v", i, werr, gerr)
		}
		if pa, pg := pos(ab), pos(gb); pa != pg || pg != got.Offset() {
			return fmt.Sprintf("entry %d: after Next, archive/tar is at %d, tarhdr at %d (Offset %d)", i, pa, pg, got.Offset())
		}
		if werr != nil {
			// What the converter says of it must not panic.
			Explain(got.Raw(), got.Start(), gerr)
			EndsAfterSpecial(got.Raw())
			// Errors are sticky.
			_, werr = want.Next()
			_, gerr = got.Next()
			if !sameErr(werr, gerr) {
				return fmt.Sprintf("entry %d: Next again: archive/tar %v, tarhdr %v", i, werr, gerr)
			}
			return ""
		}
		if d := diffHeader(wh, gh); d != "" {
			return fmt.Sprintf("entry %d (%q): %s", i, wh.Name, d)
		}
		if d := checkFacts(got, gh, input); d != "" {
			return fmt.Sprintf("entry %d (%q): %s", i, wh.Name, d)
		}
		mode := pattern >> (2 * (i % 32)) & 3
		var limit int64 = maxData
		switch mode {
		case 1:
			limit = 0
		case 2:
			limit = int64(i*37) % 700
		}
		var wd, gd bytes.Buffer
		_, werr = io.CopyN(&wd, want, limit)
		_, gerr = io.CopyN(&gd, struct{ io.Reader }{got}, limit)
		if !sameErr(werr, gerr) {
			return fmt.Sprintf("entry %d (%q): Read: archive/tar %v, tarhdr %v", i, wh.Name, werr, gerr)
		}
		if !bytes.Equal(wd.Bytes(), gd.Bytes()) {
			return fmt.Sprintf("entry %d (%q): data differs (%d and %d bytes)", i, wh.Name, wd.Len(), gd.Len())
		}
		if pa, pg := pos(ab), pos(gb); pa != pg || pg != got.Offset() {
			return fmt.Sprintf("entry %d: after Read, archive/tar is at %d, tarhdr at %d (Offset %d)", i, pa, pg, got.Offset())
		}
	}
}

func sameErr(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a == b || a.Error() == b.Error()
}

// diffHeader compares every field of the headers.
func diffHeader(w, g *tar.Header) string {
	if w.Typeflag == tar.TypeXGlobalHeader && w.PAXRecords == nil {
		// A global header with a value that does not parse: archive/tar
		// stops merging at it, in map order, so its name and xattrs are
		// chance.
		w, g = copyHeader(w), copyHeader(g)
		w.Name, g.Name = "", ""
		w.Xattrs, g.Xattrs = nil, nil //nolint
	}
	type field struct {
		name string
		w, g any
	}
	for _, f := range []field{
		{"Typeflag", w.Typeflag, g.Typeflag},
		{"Name", w.Name, g.Name},
		{"Linkname", w.Linkname, g.Linkname},
		{"Size", w.Size, g.Size},
		{"Mode", w.Mode, g.Mode},
		{"Uid", w.Uid, g.Uid},
		{"Gid", w.Gid, g.Gid},
		{"Uname", w.Uname, g.Uname},
		{"Gname", w.Gname, g.Gname},
		{"ModTime", w.ModTime, g.ModTime},
		{"AccessTime", w.AccessTime, g.AccessTime},
		{"ChangeTime", w.ChangeTime, g.ChangeTime},
		{"Devmajor", w.Devmajor, g.Devmajor},
		{"Devminor", w.Devminor, g.Devminor},
		{"Xattrs", w.Xattrs, g.Xattrs}, //nolint
		{"PAXRecords", w.PAXRecords, g.PAXRecords},
		{"Format", w.Format, g.Format},
	} {
		if !reflect.DeepEqual(f.w, f.g) {
			return fmt.Sprintf("%s: archive/tar %#v, tarhdr %#v", f.name, f.w, f.g)
		}
	}
	return ""
}

func copyHeader(h *tar.Header) *tar.Header { c := *h; return &c }

// checkFacts checks what Reader says of the entry's place in the stream
// against the stream.
func checkFacts(r *Reader, h *tar.Header, input []byte) string {
	if r.HeaderOffset() < r.Start() || r.HeaderOffset()%blockSize != 0 {
		return fmt.Sprintf("header at %d, chain from %d", r.HeaderOffset(), r.Start())
	}
	if b := input[r.HeaderOffset():][:blockSize]; b[156] != h.Typeflag && !(b[156] == 0 && (h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeDir)) {
		return fmt.Sprintf("header block at %d has type %q", r.HeaderOffset(), b[156])
	}
	if raw := r.Raw(); raw != nil && !bytes.Equal(raw, input[r.Start():][:len(raw)]) {
		return "Raw is not the stream's bytes"
	}
	sparse := h.Typeflag == tar.TypeGNUSparse
	for k := range h.PAXRecords {
		sparse = sparse || strings.HasPrefix(k, "GNU.sparse.")
	}
	// Walk, which explains refused headers, reads the same chain.
	if c, problem, complete := Walk(r.Raw(), r.Start()); complete && problem == "" {
		switch {
		case c.Final != r.HeaderOffset():
			return fmt.Sprintf("Walk puts the header at %d, Reader at %d", c.Final, r.HeaderOffset())
		case c.DataEnd != r.DataEnd() && h.Typeflag != tar.TypeGNUSparse:
			return fmt.Sprintf("Walk ends the data at %d, Reader at %d", c.DataEnd, r.DataEnd())
		}
	}
	if sparse || h.Typeflag == tar.TypeXGlobalHeader {
		return ""
	}
	size := h.Size
	if headerOnly(h.Typeflag) {
		size = 0
	}
	switch {
	case r.DataOffset() != r.Offset() || r.DataOffset() != r.HeaderOffset()+blockSize:
		return fmt.Sprintf("data at %d, header at %d, stream at %d", r.DataOffset(), r.HeaderOffset(), r.Offset())
	case r.DataEnd() != r.DataOffset()+size:
		return fmt.Sprintf("data from %d to %d, size %d", r.DataOffset(), r.DataEnd(), size)
	}
	if v, ok := h.PAXRecords["path"]; ok && v != "" {
		// The records in order end with the path's.
		var last string
		for _, rec := range r.Records() {
			if rec.Key == "path" {
				last = rec.Value
			}
		}
		if last != v {
			return fmt.Sprintf("Records give the path %q, PAXRecords %q", last, v)
		}
	}
	return ""
}

// seeds returns tars of every form: archive/tar's formats with long
// names, base-256 numbers and xattrs, V7 and star headers, signed
// checksums, the converter's test cases and adversarial corpus, and
// broken ones (bad checksums, truncated streams).
func seeds(t testing.TB) [][]byte {
	var out [][]byte
	add := func(b []byte) { out = append(out, b) }
	mtime := time.Unix(1700000000, 0)
	long := strings.Repeat("long/", 40) + "name"
	for _, f := range []tar.Format{tar.FormatUSTAR, tar.FormatPAX, tar.FormatGNU} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		hs := []*tar.Header{
			{Name: "dir/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime, Uname: "root", Gname: "root"},
			{Name: "dir/file", Typeflag: tar.TypeReg, Mode: 0o644, Size: 700, ModTime: mtime, Uid: 1000, Gid: 1000},
			{Name: "dir/link", Typeflag: tar.TypeSymlink, Linkname: "file", ModTime: mtime},
			{Name: "dir/hard", Typeflag: tar.TypeLink, Linkname: "dir/file", ModTime: mtime},
			{Name: "dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, ModTime: mtime},
			{Name: "fifo", Typeflag: tar.TypeFifo, ModTime: mtime},
			{Name: strings.Repeat("p", 120) + "/" + strings.Repeat("n", 90), Typeflag: tar.TypeReg, ModTime: mtime},
		}
		if f != tar.FormatUSTAR {
			hs = append(hs,
				&tar.Header{Name: long, Typeflag: tar.TypeSymlink, Linkname: long, ModTime: mtime},
				&tar.Header{Name: "big-ids", Typeflag: tar.TypeReg, Uid: 1 << 30, Gid: 1 << 31, ModTime: time.Unix(-1e10, 0)},
			)
		}
		if f == tar.FormatPAX {
			hs = append(hs,
				&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "global", PAXRecords: map[string]string{"mtime": "1.5", "comment": "x"}},
				&tar.Header{Name: "xattr", Typeflag: tar.TypeReg, Size: 3, ModTime: time.Unix(5, 123456789), Format: tar.FormatPAX,
					PAXRecords: map[string]string{"SCHILY.xattr.user.a": "1", "SCHILY.xattr.security.capability": "\x01\x00", "LIBARCHIVE.xattr.user.b": "Yg=="}},
				&tar.Header{Name: "ünicode", Typeflag: tar.TypeReg, ModTime: mtime},
			)
		}
		for _, h := range hs {
			h.Format = f
			if h.Typeflag == tar.TypeXGlobalHeader {
				h.Format = tar.FormatPAX
			}
			if err := tw.WriteHeader(h); err != nil {
				t.Fatalf("%v %q: %v", f, h.Name, err)
			}
			if h.Typeflag == tar.TypeReg && h.Size > 0 {
				tw.Write(bytes.Repeat([]byte{'d'}, int(h.Size)))
			}
		}
		tw.Close()
		add(buf.Bytes())
	}
	// V7, star, old regular type with a trailing slash, signed checksum.
	one := func(edit func(b []byte)) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: "f/", Typeflag: tar.TypeReg, Size: 5, Mode: 0o600, ModTime: mtime, Format: tar.FormatUSTAR})
		tw.Write([]byte("hello"))
		tw.Close()
		b := buf.Bytes()
		edit(b[:512])
		return b
	}
	sum := func(b []byte, signed bool) {
		copy(b[148:156], "        ")
		var s int64
		for _, c := range b[:512] {
			if signed {
				s += int64(int8(c))
			} else {
				s += int64(c)
			}
		}
		copy(b[148:156], fmt.Sprintf("%06o\x00 ", s&0o777777))
	}
	add(one(func(b []byte) { clear(b[257:265]); b[156] = 0; sum(b, false) }))                              // V7, NUL type
	add(one(func(b []byte) { copy(b[508:], "tar\x00"); copy(b[476:], "00000000001\x00"); sum(b, false) })) // star
	add(one(func(b []byte) { b[5] = 0xe9; sum(b, true) }))                                                 // signed sum
	add(one(func(b []byte) { b[20] = 'x' }))                                                               // bad checksum
	add(one(func(b []byte) { b[124] = 0xff; sum(b, false) }))                                              // negative base-256 size
	add(one(func(b []byte) { copy(b[257:], "ustar  \x00"); copy(b[345:], "junk!!"); sum(b, false) }))      // GNU, bad atime (pre-Go1.8 prefix)
	for _, c := range tartest.Cases() {
		add(c.Tar)
	}
	for _, c := range tartest.BadCases() {
		add(c.Tar)
	}
	for _, c := range tartest.Corpus() {
		if c.Tar != nil {
			add(c.Tar)
		} else {
			add(c.Input)
		}
	}
	for _, b := range goTestdata(t) {
		add(b)
	}
	// Truncated.
	n := len(out)
	for _, b := range out[:n] {
		if len(b) > 1100 {
			add(b[:1100])
			add(b[:len(b)-700])
		}
	}
	return out
}

// goTestdata returns archive/tar's own test archives, from the Go tree
// the test runs with (none when its sources are not there).
func goTestdata(t testing.TB) [][]byte {
	dir := filepath.Join(runtime.GOROOT(), "src", "archive", "tar", "testdata")
	names, _ := filepath.Glob(filepath.Join(dir, "*.tar*"))
	var out [][]byte
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(name, ".tar"):
		case strings.HasSuffix(name, ".tar.base64"):
			if b, err = base64.StdEncoding.DecodeString(string(b)); err != nil {
				continue
			}
		default:
			continue
		}
		if len(b) <= 16<<20 {
			out = append(out, b)
		}
	}
	return out
}

// TestDifferential reads every seed with both readers, seeking and not,
// reading each entry's data whole, in part or not at all.
func TestDifferential(t *testing.T) {
	if len(goTestdata(t)) == 0 {
		t.Log("archive/tar's testdata is not in GOROOT; testing the other seeds")
	}
	for i, b := range seeds(t) {
		for _, seek := range []bool{false, true} {
			for _, pattern := range []uint64{0, 0x5555555555555555, 0xaaaaaaaaaaaaaaaa, 0x1b1b1b1b1b1b1b1b} {
				if d := diff(b, seek, pattern); d != "" {
					t.Errorf("seed %d (%d bytes), seek %v, pattern %#x: %s", i, len(b), seek, pattern, d)
				}
			}
		}
	}
}

// TestLongChain: a chain of PAX headers and long names longer than Raw
// keeps, before a sparse file and a plain one.
func TestLongChain(t *testing.T) {
	var buf bytes.Buffer
	blk := func(name string, typ byte, data []byte) {
		var h [512]byte
		copy(h[:], name)
		copy(h[100:], "0000644\x00")
		copy(h[124:], fmt.Sprintf("%011o\x00", len(data)))
		copy(h[136:], "00000000000\x00")
		h[156] = typ
		copy(h[257:], "ustar\x0000")
		copy(h[148:], "        ")
		var s int
		for _, c := range h {
			s += int(c)
		}
		copy(h[148:], fmt.Sprintf("%06o\x00 ", s))
		buf.Write(h[:])
		buf.Write(data)
		buf.Write(make([]byte, -len(data)&511))
	}
	rec := func(k, v string) string {
		n := len(k) + len(v) + 3
		n += len(fmt.Sprint(n))
		if len(fmt.Sprint(n)+" "+k+"="+v+"\n") != n {
			n++
		}
		return fmt.Sprintf("%d %s=%s\n", n, k, v)
	}
	big := rec("comment", strings.Repeat("c", MaxSpecial-100))
	for i := range 6 {
		blk("PaxHeaders/x", 'x', []byte(big))
		blk("././@LongLink", 'L', []byte(fmt.Sprintf("long-%d\x00", i)))
	}
	blk("PaxHeaders/x", 'x', []byte(rec("GNU.sparse.major", "1")+rec("GNU.sparse.minor", "0")+rec("GNU.sparse.realsize", "3000")+rec("GNU.sparse.name", "sparse")))
	blk("GNUSparseFile/x", '0', []byte("1\n1000\n3\n"+strings.Repeat("\x00", 512-9)+"abc"))
	for range 6 {
		blk("PaxHeaders/x", 'x', []byte(big))
	}
	blk("plain", '0', []byte("plain data"))
	buf.Write(make([]byte, 1024))
	for _, seek := range []bool{false, true} {
		if d := diff(buf.Bytes(), seek, 0); d != "" {
			t.Error(d)
		}
	}
	r := NewReader(bytes.NewReader(buf.Bytes()))
	h, err := r.Next()
	if err != nil || h.Name != "sparse" || r.Raw() != nil {
		t.Fatalf("%+v %v; Raw %d bytes", h, err, len(r.Raw()))
	}
	data, err := io.ReadAll(r)
	if err != nil || len(data) != 3000 || string(data[1000:1003]) != "abc" {
		t.Fatalf("sparse data %d bytes, %v", len(data), err)
	}
}

// TestAllocs: a plain entry costs the Header and its strings only.
func TestAllocs(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := range 100 {
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("usr/share/doc/file-%03d", i), Typeflag: tar.TypeReg, Size: 100, Uname: "root", Gname: "root", Format: tar.FormatGNU})
		tw.Write(make([]byte, 100))
	}
	tw.Close()
	input := buf.Bytes()
	br := bytes.NewReader(input)
	r := NewReader(br)
	allocs := testing.AllocsPerRun(10, func() {
		br.Reset(input)
		*r = Reader{r: br, seeker: br, raw: r.raw, scratch: r.scratch, uname: r.uname, gname: r.gname}
		for {
			if _, err := r.Next(); err != nil {
				break
			}
		}
	})
	// Per entry: the Header and its name.
	if per := allocs / 100; per > 2.05 {
		t.Errorf("%.2f allocations per entry, want 2", per)
	}
}

// FuzzReader: Reader and archive/tar agree on any input.
func FuzzReader(f *testing.F) {
	for _, b := range seeds(f) {
		if len(b) <= 64<<10 {
			f.Add(b, false, uint64(0))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, seek bool, pattern uint64) {
		if d := diff(b, seek, pattern); d != "" {
			t.Error(d)
		}
	})
}

// FuzzParseDec: parseDec is strconv.ParseInt(s, 10, 64).
func FuzzParseDec(f *testing.F) {
	for _, s := range []string{"", "+", "-", "0", "-0", "+12", "1_000", " 1", "1 ", "9223372036854775807", "9223372036854775808",
		"-9223372036854775808", "-9223372036854775809", "18446744073709551615", "18446744073709551616", "99999999999999999999", "0x10", "١"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := strconv.ParseInt(s, 10, 64)
		got, ok := parseDec(s)
		if ok != (err == nil) || ok && got != want {
			t.Errorf("parseDec(%q) = %d, %v; strconv: %d, %v", s, got, ok, want, err)
		}
	})
}

// benchTar is an archive like a Debian layer's: PAX headers with atime
// and ctime records before every entry, small files.
func benchTar(b *testing.B) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := range 2000 {
		h := &tar.Header{Name: fmt.Sprintf("usr/share/doc/pkg-%d/copyright", i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(i % 3000),
			Uname: "root", Gname: "root", ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX,
			PAXRecords: map[string]string{"atime": "1700000000.123456789", "ctime": "1700000001.5"}}
		if err := tw.WriteHeader(h); err != nil {
			b.Fatal(err)
		}
		tw.Write(make([]byte, h.Size))
	}
	tw.Close()
	return buf.Bytes()
}

// BenchmarkNext reads the headers of benchTar, skipping the data by
// seeking, with Reader and with archive/tar.
func BenchmarkNext(b *testing.B) {
	data := benchTar(b)
	for _, impl := range []string{"tarhdr", "archive-tar"} {
		b.Run(impl, func(b *testing.B) {
			br := bytes.NewReader(data)
			for b.Loop() {
				br.Reset(data)
				next := NewReader(br).Next
				if impl == "archive-tar" {
					next = tar.NewReader(br).Next
				}
				for {
					if _, err := next(); err == io.EOF {
						break
					} else if err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/2000, "ns/entry")
		})
	}
}
