package erofs

import (
	"strings"
	"testing"
	"unsafe"
)

// TestTreeSizes pins the size of the Writer's per-entry structures, which
// make up most of its memory on a layer of many small files.
func TestTreeSizes(t *testing.T) {
	if s := unsafe.Sizeof(inode{}); s != 48 {
		t.Errorf("inode takes %d bytes, want 48", s)
	}
	if s := unsafe.Sizeof(dentry{}); s != 16 {
		t.Errorf("dentry takes %d bytes, want 16", s)
	}
}

// TestNameStore checks names of every length across chunk boundaries.
func TestNameStore(t *testing.T) {
	var s nameStore
	var refs []nameRef
	var names []string
	for i := 0; len(s.chunks) < 4; i++ {
		name := strings.Repeat(string(rune('a'+i%26)), 1+i%255)
		names = append(names, name)
		refs = append(refs, s.add(name))
	}
	for i, r := range refs {
		if got := string(s.get(r)); got != names[i] {
			t.Fatalf("name %d: got %d bytes %.10q, want %d bytes %.10q", i, len(got), got, len(names[i]), names[i])
		}
	}
	for k, c := range s.chunks {
		if len(c) > nameChunkSize {
			t.Errorf("chunk %d holds %d bytes, over %d", k, len(c), nameChunkSize)
		}
	}
}

// TestDirIndex fills two directories with the same names through many
// doublings of the index, and finds every name again in the right
// directory, and no name where there is none.
func TestDirIndex(t *testing.T) {
	w, err := NewWriter(nopWriterAt{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 5000
	for i := range n {
		for _, dir := range []uint32{rootID, 7} {
			name := strings.Repeat("x", i%3) + string(rune('0'+i%10)) + strings.Repeat("y", i/10%200)
			de, tag := w.find(dir, name)
			if de != noID {
				t.Fatalf("%q in %d: found before it was added", name, dir)
			}
			if err := w.insert(dir, name, tag, uint32(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range n {
		for _, dir := range []uint32{rootID, 7} {
			name := strings.Repeat("x", i%3) + string(rune('0'+i%10)) + strings.Repeat("y", i/10%200)
			de, _ := w.find(dir, name)
			if de == noID {
				t.Fatalf("%q in %d: not found", name, dir)
			}
			if d := w.dents.at(de); d.dir != dir || string(w.names.get(d.name)) != name {
				t.Fatalf("%q in %d: found %q in %d", name, dir, w.names.get(d.name), d.dir)
			}
		}
	}
	if de, _ := w.find(3, "0"); de != noID {
		t.Error("found a name in a directory that has none")
	}
	if w.index.used != w.dents.n || w.index.used*4 > len(w.index.slots)*3 {
		t.Errorf("index holds %d of %d dentries in %d slots", w.index.used, w.dents.n, len(w.index.slots))
	}
}

type nopWriterAt struct{}

func (nopWriterAt) WriteAt(p []byte, off int64) (int, error) { return len(p), nil }
