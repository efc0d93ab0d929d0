package rafs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzRead feeds arbitrary bytes to Read. It must return a bootstrap or an
// ErrFormat error, never panic; a bootstrap it returns must encode (or be
// rejected with an error) and an encoding must read back the same.
func FuzzRead(f *testing.F) {
	if img, err := os.ReadFile(filepath.Join(fixtureDir, "bootstrap/rafs-v6-2.2.boot")); err == nil {
		f.Add(img)
	}
	if blob, err := os.ReadFile(filepath.Join(fixtureDir, "toc/2fa78cad554b75ac91a4a125ed148d0ddeb25efa4aaa8bd80e5dc292690a4dca")); err == nil {
		f.Add(inlineBootstrap(f, blob))
	}
	small, err := smallFS().b.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(small)
	s := mergeLayers()
	m, err := Merge(s.layers, nil)
	if err != nil {
		f.Fatal(err)
	}
	merged, err := m.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(merged)
	empty, err := (&Bootstrap{ChunkSize: 1 << 20, Flags: DefaultFlags, Root: dir("", 0o755)}).MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(empty)
	tarfs, err := richTarfs().b.MarshalBinary() // 512-byte blocks, chunks from their indexes
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tarfs)

	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Read(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error does not match ErrFormat: %v", err)
			}
			return
		}
		img, err := b.MarshalBinary()
		if err != nil {
			return // valid to read but not to write (e.g. compact inodes' values)
		}
		b2, err := Read(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			t.Fatalf("re-encoded bootstrap does not read: %v", err)
		}
		if d := firstDiff(describe(b), describe(b2)); d != "" {
			t.Fatalf("re-encoded bootstrap differs: %s", d)
		}
	})
}
