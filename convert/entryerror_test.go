package convert_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/rafs-dev/rafs/convert"
)

// TestEntryError checks that the three tar converters report a bad entry
// as an *EntryError naming it and its header's offset, with the cause
// still inspectable through it.
func TestEntryError(t *testing.T) {
	good := tarEntry{hdr: tar.Header{Name: "a", Typeflag: tar.TypeReg, Mode: 0o644}, data: strings.Repeat("x", 1000)}
	missing := makeTar(t, good,
		tarEntry{hdr: tar.Header{Name: "l", Typeflag: tar.TypeLink, Linkname: "nowhere"}})
	truncated := makeTar(t, good, tarEntry{hdr: tar.Header{Name: "b", Typeflag: tar.TypeReg, Mode: 0o644}, data: strings.Repeat("y", 3000)})
	truncated = truncated[:512+1024+512+100]
	corrupt := makeTar(t, good, good)
	corrupt[512+1024+148] ^= 0x55 // the second header's checksum
	converters := map[string]func([]byte) error{
		"erofs": func(b []byte) error {
			_, err := convert.TarToEROFS(bytes.NewReader(b), &memImage{}, nil)
			return err
		},
		"index": func(b []byte) error {
			_, err := convert.TarToEROFSIndex(bytes.NewReader(b), &memImage{}, nil)
			return err
		},
		"nydus": func(b []byte) error {
			_, err := convert.TarToNydus(bytes.NewReader(b), io.Discard, nil)
			return err
		},
	}
	cases := []struct {
		name  string
		data  []byte
		entry string
		off   int64
		is    error
	}{
		{"missing link target", missing, "l", 1536, fs.ErrNotExist},
		{"truncated data", truncated, "b", 1536, io.ErrUnexpectedEOF},
		{"bad header", corrupt, "", 1536, tar.ErrHeader},
	}
	for conv, f := range converters {
		for _, c := range cases {
			if conv == "index" && c.name == "truncated data" {
				continue // the index does not read file data
			}
			t.Run(conv+"/"+c.name, func(t *testing.T) {
				err := f(c.data)
				var ee *convert.EntryError
				if !errors.As(err, &ee) {
					t.Fatalf("error %v (%T) is no *EntryError", err, err)
				}
				if ee.Name != c.entry || ee.Offset != c.off {
					t.Errorf("EntryError{Name: %q, Offset: %d}, want %q at %d (%v)", ee.Name, ee.Offset, c.entry, c.off, err)
				}
				if !errors.Is(err, c.is) {
					t.Errorf("error %v does not match %v", err, c.is)
				}
			})
		}
	}
}
