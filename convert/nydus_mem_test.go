package convert

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/erofs"
	"github.com/rafs-dev/rafs/rafs"
)

// TestNydusTreeMemoryPerEntry: building a layer's tree of 100,000 empty
// files in 100 directories and encoding its bootstrap allocates a few
// hundred bytes per entry besides the image: the bootstrap's rafs.Node
// (144 bytes) and little more — no second full tree of large nodes, no
// map entry or path per inode.
func TestNydusTreeMemoryPerEntry(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	const dirs, files = 100, 1000
	const entries = dirs * (files + 1)
	var es []erofs.Entry
	for i := range dirs {
		d := fmt.Sprintf("d%04d", i)
		es = append(es, erofs.Entry{Path: d, Mode: erofs.ModeDir | 0o755})
		for j := range files {
			es = append(es, erofs.Entry{Path: fmt.Sprintf("%s/f%07d", d, j), Mode: erofs.ModeRegular | 0o644})
		}
	}
	tr := &nydusTree{
		chunkSize: 1 << 20,
		boot:      &rafs.Bootstrap{ChunkSize: 1 << 20, Flags: rafs.DefaultFlags, Blobs: []rafs.BlobInfo{{ID: PlaceholderBlobID}}},
		tree:      erofs.NewTree(0),
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range es {
		if err := tr.Add(&es[i], nil); err != nil {
			t.Fatal(err)
		}
	}
	b, err := tr.export(&blob.Info{})
	if err != nil {
		t.Fatal(err)
	}
	img, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	per := float64(after.TotalAlloc-before.TotalAlloc-uint64(len(img))) / entries
	t.Logf("%.0f bytes per entry besides the %d-byte bootstrap", per, len(img))
	if per > 450 {
		t.Errorf("%.0f bytes per entry allocated besides the bootstrap; want at most 450", per)
	}
}
