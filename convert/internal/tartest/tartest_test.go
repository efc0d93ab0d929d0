package tartest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"testing"
)

func TestCasesDeterministic(t *testing.T) {
	a, b := Cases(), Cases()
	seen := make(map[string]bool)
	for i := range a {
		if seen[a[i].Name] {
			t.Errorf("duplicate case name %q", a[i].Name)
		}
		seen[a[i].Name] = true
		if !bytes.Equal(a[i].Tar, b[i].Tar) {
			t.Errorf("%s: two builds differ", a[i].Name)
		}
	}
	for _, c := range BadCases() {
		if seen[c.Name] {
			t.Errorf("duplicate case name %q", c.Name)
		}
		seen[c.Name] = true
	}
}

func TestFind(t *testing.T) {
	for _, name := range []string{"types", "truncated-data"} {
		if c, ok := Find(name); !ok || c.Name != name || len(c.Tar) == 0 {
			t.Errorf("Find(%q) = %q, %v", name, c.Name, ok)
		}
	}
	if _, ok := Find("no such case"); ok {
		t.Error("Find found a missing case")
	}
}

// readAll reads every entry of a (possibly gzipped) tar with archive/tar.
func readAll(b []byte) (int, error) {
	var r io.Reader = bytes.NewReader(b)
	if len(b) > 2 && b[0] == 0x1f && b[1] == 0x8b {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return 0, err
		}
		r = zr
	}
	tr := tar.NewReader(r)
	n := 0
	for {
		_, err := tr.Next()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return n, err
		}
		n++
	}
}

func TestCasesAreValidTars(t *testing.T) {
	for _, c := range Cases() {
		if n, err := readAll(c.Tar); err != nil {
			t.Errorf("%s: entry %d: %v", c.Name, n, err)
		}
	}
}

func TestBadCasesBreakTarReading(t *testing.T) {
	// These are broken at the tar level; the others are valid tars with
	// invalid contents (checked by the fstree tests).
	for _, name := range []string{"truncated-header", "truncated-data", "truncated-pax", "bad-checksum", "bad-checksum-second", "gzip-truncated"} {
		c, _ := Find(name)
		if _, err := readAll(c.Tar); err == nil {
			t.Errorf("%s: archive/tar reads it without error", name)
		}
	}
}

func TestContent(t *testing.T) {
	a, b := Content("seed", 100), Content("seed", 1000)
	if len(a) != 100 || !bytes.Equal(a, b[:100]) {
		t.Error("Content is not a deterministic prefix-stable stream")
	}
	if bytes.Equal(Content("other", 100), a) {
		t.Error("Content ignores the seed")
	}
}

func TestGzipDeterministic(t *testing.T) {
	if !bytes.Equal(Gzip([]byte("x")), Gzip([]byte("x"))) {
		t.Error("Gzip is not deterministic")
	}
}

func TestXattrEncodings(t *testing.T) {
	c := capabilityV2(1 << 10)
	if len(c) != 20 || binary.LittleEndian.Uint32([]byte(c)) != 0x02000001 || binary.LittleEndian.Uint32([]byte(c[4:])) != 1<<10 {
		t.Errorf("capabilityV2 = %x", c)
	}
	acl := posixACL(aclEntry{aclUserObj, 6, aclNoID}, aclEntry{aclUser, 4, 1000})
	want := []byte{2, 0, 0, 0, 1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff, 2, 0, 4, 0, 0xe8, 3, 0, 0}
	if !bytes.Equal([]byte(acl), want) {
		t.Errorf("posixACL = %x, want %x", acl, want)
	}
}

func TestNoTrailer(t *testing.T) {
	c, _ := Find("no-trailer")
	if len(c.Tar)%512 != 0 || bytes.Equal(c.Tar[len(c.Tar)-512:], make([]byte, 512)) {
		t.Error("no-trailer does not end right after its last data block")
	}
}

func TestCorpus(t *testing.T) {
	seen := map[string]bool{}
	for _, list := range [][]Case{Cases(), BadCases()} {
		for _, c := range list {
			seen[c.Name] = true
		}
	}
	a, b := Corpus(), Corpus()
	if len(a) < 60 {
		t.Errorf("the corpus has %d cases, want at least 60", len(a))
	}
	for i, c := range a {
		if seen[c.Name] {
			t.Errorf("duplicate case name %q", c.Name)
		}
		seen[c.Name] = true
		if !bytes.Equal(c.Input, b[i].Input) {
			t.Errorf("%s: two builds differ", c.Name)
		}
		if c.Err == "" && c.Where != "" {
			t.Errorf("%s: a place without an error", c.Name)
		}
	}
}
