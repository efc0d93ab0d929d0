package rafs

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/rafs-dev/rafs/blob"
)

func TestChunkDict(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	a, bdata, c := randBytes(r, 4096), randBytes(r, 4096), randBytes(r, 1000)

	// The dictionary: a bootstrap holding chunks A and B, read back from
	// its encoding as a builder would load it.
	df := newTestFS(4096, 1)
	df.b.Root.Children = []*Node{
		df.file("ab", 0o644, append(bytes.Clone(a), bdata...), func(int) int { return 0 }),
		df.file("a-again", 0o644, a, func(int) int { return 0 }),
	}
	dictImg, err := df.finish().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	dictBoot, err := Read(bytes.NewReader(dictImg), int64(len(dictImg)))
	if err != nil {
		t.Fatal(err)
	}
	dict, err := NewChunkDict(dictBoot)
	if err != nil {
		t.Fatal(err)
	}
	if dict.Len() != 2 || len(dict.Blobs()) != 1 {
		t.Fatalf("dict has %d chunks, %d blobs", dict.Len(), len(dict.Blobs()))
	}
	da := sha256.Sum256(a)
	hit, hitBlob, ok := dict.Lookup(da, 4096)
	if !ok || hit.Digest != da || hitBlob.ID != dictBoot.Blobs[0].ID || hit.Index != 0 {
		t.Fatalf("lookup A: %v %+v", ok, hit)
	}
	if _, _, ok := dict.Lookup(da, 4095); ok {
		t.Error("lookup with the wrong size hit")
	}
	if _, _, ok := dict.Lookup(sha256.Sum256(c), 1000); ok {
		t.Error("lookup of an unknown chunk hit")
	}
	if _, _, ok := dict.LookupDigester(da, 4096, blob.DigesterBlake3); ok {
		t.Error("lookup with another digester hit")
	}
	if _, _, ok := dict.LookupDigester(da, 4096, blob.DigesterSHA256); !ok {
		t.Error("lookup with the same digester missed")
	}

	// A new layer: file "ac" = A ‖ C; A comes from the dictionary.
	f := newTestFS(4096, 1)
	ac := f.file("ac", 0o644, append(bytes.Clone(a), c...), func(int) int { return 0 })
	own := f.file("own", 0o644, c, func(int) int { return 0 })
	f.b.Root.Children = []*Node{ac, own}
	b := f.finish()
	if err := dict.Compatible(b); err != nil {
		t.Fatal(err)
	}
	ref, err := dict.Use(b, hit, 0)
	if err != nil {
		t.Fatal(err)
	}
	ac.Chunks[0] = ref
	// A second Use of the same blob does not add it again.
	hitB, _, _ := dict.Lookup(sha256.Sum256(bdata), 4096)
	if refB, err := dict.Use(b, hitB, 8192); err != nil || refB.BlobIndex != 1 || refB.FileOffset != 8192 {
		t.Errorf("second Use: %+v %v", refB, err)
	}
	if len(b.Blobs) != 2 || b.Blobs[1] != dictBoot.Blobs[0] || ref.BlobIndex != 1 {
		t.Fatalf("blobs %+v, ref %+v", b.Blobs, ref)
	}
	img, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Read(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if d := compareBootstraps(b, back); d != "" {
		t.Fatal(d)
	}
	data := map[string][]byte{b.Blobs[0].ID: f.data[0], b.Blobs[1].ID: df.data[0]}
	contents := mergedContents(t, back, data)
	if !bytes.Equal(contents[back.Lookup("/ac")], append(bytes.Clone(a), c...)) {
		t.Error("ac contents wrong")
	}
	checkMergedMount(t, back, img, data)

	// Incompatible bootstraps.
	other := *b
	other.ChunkSize = 8192
	if err := dict.Compatible(&other); err == nil || !strings.Contains(err.Error(), "chunk size") {
		t.Errorf("chunk size: %v", err)
	}
	other = *b
	other.Flags &^= FlagExplicitUIDGID
	if err := dict.Compatible(&other); err == nil {
		t.Error("uid/gid flag: no error")
	}
}
