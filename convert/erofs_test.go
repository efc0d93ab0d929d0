package convert_test

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goerofs "github.com/erofs/go-erofs"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/convert/internal/tartest"
)

// memImage is an in-memory io.WriterAt.
type memImage struct{ b []byte }

func (m *memImage) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	copy(m.b[off:], p)
	return len(p), nil
}

type tarEntry struct {
	hdr  tar.Header
	data string
}

// makeTar renders entries (tartest.Tar); an unset ModTime is 2020-09-13.
func makeTar(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	es := make([]tartest.Entry, len(entries))
	for i, e := range entries {
		es[i] = tartest.Entry{Header: e.hdr, Data: []byte(e.data)}
		if e.hdr.ModTime.IsZero() {
			es[i].Header.ModTime = time.Unix(1600000000, 0)
		}
	}
	return tartest.Tar(es...)
}

func convertTar(t testing.TB, data []byte, opts *convert.EROFSOptions) (fs.FS, *convert.EROFSResult) {
	t.Helper()
	img := &memImage{}
	res, err := convert.TarToEROFS(bytes.NewReader(data), img, opts)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := goerofs.Open(bytes.NewReader(img.b))
	if err != nil {
		t.Fatal(err)
	}
	return fsys, res
}

func stat(t testing.TB, fsys fs.FS, p string) *goerofs.Stat {
	t.Helper()
	fi, err := fs.Stat(fsys, p)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return fi.Sys().(*goerofs.Stat)
}

func whiteoutLayer(t testing.TB) []byte {
	return makeTar(t,
		tarEntry{hdr: tar.Header{Name: "dir/", Typeflag: tar.TypeDir, Mode: 0o755}},
		tarEntry{hdr: tar.Header{Name: "dir/.wh.gone", Typeflag: tar.TypeReg, Mode: 0o644, Uid: 7}},
		tarEntry{hdr: tar.Header{Name: "dir/kept", Typeflag: tar.TypeReg, Mode: 0o644}, data: "k"},
		tarEntry{hdr: tar.Header{Name: "opq/.wh..wh..opq", Typeflag: tar.TypeReg, Mode: 0o644}},
		tarEntry{hdr: tar.Header{Name: "opq/new", Typeflag: tar.TypeReg, Mode: 0o644}, data: "n"},
	)
}

func TestWhiteoutsOverlay(t *testing.T) {
	fsys, _ := convertTar(t, whiteoutLayer(t), nil)
	wh := stat(t, fsys, "dir/gone")
	if wh.Mode.Type() != fs.ModeDevice|fs.ModeCharDevice || wh.Rdev != 0 || wh.Mode.Perm() != 0 || wh.UID != 7 {
		t.Errorf("whiteout: mode %v rdev %d uid %d, want a 0:0 char device with no permissions owned by 7", wh.Mode, wh.Rdev, wh.UID)
	}
	if v, ok := stat(t, fsys, "dir").Xattrs["trusted.overlay.origin"]; !ok || v != "" {
		t.Errorf("dir holding a whiteout: origin xattr %q %v, want empty", v, ok)
	}
	if v := stat(t, fsys, "opq").Xattrs["trusted.overlay.opaque"]; v != "y" {
		t.Errorf("opaque dir: xattr %q, want y", v)
	}
	if _, ok := stat(t, fsys, "opq").Xattrs["trusted.overlay.origin"]; ok {
		t.Errorf("opaque dir without whiteouts got an origin xattr")
	}
	if _, err := fs.Stat(fsys, "opq/.wh..wh..opq"); err == nil {
		t.Errorf("opaque marker stored as a file")
	}
}

func TestWhiteoutsKeepAndStrip(t *testing.T) {
	keep, _ := convertTar(t, whiteoutLayer(t), &convert.EROFSOptions{Whiteouts: convert.WhiteoutKeep})
	for _, p := range []string{"dir/.wh.gone", "opq/.wh..wh..opq"} {
		if st := stat(t, keep, p); !st.Mode.IsRegular() {
			t.Errorf("keep: %s is %v, want a regular file", p, st.Mode)
		}
	}
	if _, ok := stat(t, keep, "dir").Xattrs["trusted.overlay.origin"]; ok {
		t.Errorf("keep: origin xattr added")
	}
	strip, _ := convertTar(t, whiteoutLayer(t), &convert.EROFSOptions{Whiteouts: convert.WhiteoutStrip})
	for _, p := range []string{"dir/.wh.gone", "dir/gone", "opq/.wh..wh..opq"} {
		if _, err := fs.Stat(strip, p); err == nil {
			t.Errorf("strip: %s exists", p)
		}
	}
	if len(stat(t, strip, "opq").Xattrs) != 0 {
		t.Errorf("strip: opaque xattr kept")
	}
}

func TestCompressedInput(t *testing.T) {
	raw := whiteoutLayer(t)
	var gz, zs bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(raw)
	gw.Close()
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(raw)
	zw.Close()
	for _, c := range []struct {
		data []byte
		want convert.LayerEncoding
	}{{raw, convert.Tar}, {gz.Bytes(), convert.TarGzip}, {zs.Bytes(), convert.TarZstd}} {
		fsys, res := convertTar(t, c.data, nil)
		if res.Encoding != c.want {
			t.Errorf("encoding %v, want %v", res.Encoding, c.want)
		}
		if b, err := fs.ReadFile(fsys, "dir/kept"); err != nil || string(b) != "k" {
			t.Errorf("%v: dir/kept = %q, %v", c.want, b, err)
		}
	}
}

func TestXattrsAndACLs(t *testing.T) {
	acl := "user::rw-,user:1000:r--,group::r--,group:bob:rw-:2000,mask::rw-,other::---"
	data := makeTar(t, tarEntry{hdr: tar.Header{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644, PAXRecords: map[string]string{
		"SCHILY.xattr.user.plain":               "v",
		"SCHILY.xattr.security.capability":      "\x01\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
		"LIBARCHIVE.xattr.user.with%20space":    "aGVsbG8=",
		"SCHILY.acl.access":                     acl,
		"SCHILY.xattr.trusted.overlay.redirect": "/x",
	}}, data: "f"})
	img := &memImage{}
	if _, err := convert.TarToEROFS(bytes.NewReader(data), img, nil); err != nil {
		t.Fatal(err)
	}
	fsys, err := goerofs.Open(bytes.NewReader(img.b))
	if err != nil {
		t.Fatal(err)
	}
	x := stat(t, fsys, "f").Xattrs
	for k, v := range map[string]string{"user.plain": "v", "user.with space": "hello", "trusted.overlay.redirect": "/x"} {
		if x[k] != v {
			t.Errorf("xattr %s = %q, want %q (all: %q)", k, x[k], v, x)
		}
	}
	// The ACL is stored with name index 2 and the binary form; go-erofs
	// names it wrongly, so look for the value itself in the image.
	want := []byte{2, 0, 0, 0}
	for _, e := range [][3]uint32{{1, 6, 0xFFFFFFFF}, {2, 4, 1000}, {4, 4, 0xFFFFFFFF}, {8, 6, 2000}, {0x10, 6, 0xFFFFFFFF}, {0x20, 0, 0xFFFFFFFF}} {
		want = binary.LittleEndian.AppendUint16(want, uint16(e[0]))
		want = binary.LittleEndian.AppendUint16(want, uint16(e[1]))
		want = binary.LittleEndian.AppendUint32(want, e[2])
	}
	if !bytes.Contains(img.b, append([]byte{0, 2, byte(len(want)), 0}, want...)) {
		t.Errorf("binary ACL xattr entry (index 2, empty name) not found in the image")
	}
}

func TestBadInput(t *testing.T) {
	good := makeTar(t,
		tarEntry{hdr: tar.Header{Name: "a", Typeflag: tar.TypeReg, Mode: 0o644}, data: strings.Repeat("x", 3000)},
		tarEntry{hdr: tar.Header{Name: "b", Typeflag: tar.TypeReg, Mode: 0o644}, data: "b"},
	)
	corrupt := append([]byte(nil), good...)
	corrupt[148] ^= 0x55 // header checksum of the first entry
	var gz bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(good)
	gw.Close()
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"truncated data", good[:512+1000], "\"a\" at offset 0"},
		{"truncated header", good[:512+3072+100], "offset 3584"},
		{"bad checksum", corrupt, "offset 0"},
		{"truncated gzip", gz.Bytes()[:gz.Len()-10], "unexpected EOF"},
		{"dotdot", makeTar(t, tarEntry{hdr: tar.Header{Name: "a/../../etc", Typeflag: tar.TypeReg}}), "\"..\""},
		{"absolute", makeTar(t, tarEntry{hdr: tar.Header{Name: "/etc/x", Typeflag: tar.TypeReg}}), "absolute"},
		{"missing link", makeTar(t, tarEntry{hdr: tar.Header{Name: "l", Typeflag: tar.TypeLink, Linkname: "nowhere"}}), "\"nowhere\""},
		{"long name", makeTar(t, tarEntry{hdr: tar.Header{Name: strings.Repeat("n", 256), Typeflag: tar.TypeReg, Format: tar.FormatPAX}}), "256 bytes"},
		{"big xattr", makeTar(t, tarEntry{hdr: tar.Header{Name: "x", Typeflag: tar.TypeReg, PAXRecords: map[string]string{"SCHILY.xattr.user.big": strings.Repeat("v", 70000)}}}), "exceeds"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := convert.TarToEROFS(bytes.NewReader(c.data), &memImage{}, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

// TestNydusFixtureTars converts the tars made by Nydus's test suite.
func TestNydusFixtureTars(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join("..", "testdata", "nydus", "tar", "*.tar"))
	if len(paths) == 0 {
		t.Fatal("no tars in testdata/nydus/tar")
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		fsys, res := convertTar(t, data, nil)
		if res.Entries == 0 {
			t.Errorf("%s: no entries", p)
		}
		tr := tar.NewReader(bytes.NewReader(data))
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
			fi, err := fs.Lstat(fsys, name)
			if err != nil {
				t.Errorf("%s: %s: %v", filepath.Base(p), name, err)
				continue
			}
			if h.Typeflag == tar.TypeReg {
				want, _ := io.ReadAll(tr)
				got, _ := fs.ReadFile(fsys, name)
				if !bytes.Equal(got, want) || fi.Size() != h.Size {
					t.Errorf("%s: %s: content differs", filepath.Base(p), name)
				}
			}
		}
	}
}
