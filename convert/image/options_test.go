package image_test

import (
	"testing"

	"github.com/rafs-dev/rafs/convert/image"
	"github.com/rafs-dev/rafs/rafs"
)

// TestNydusChunkDictRefused checks that NewConverter refuses the
// per-layer Nydus.ChunkDict, which Options.ChunkDict replaces, instead of
// ignoring it.
func TestNydusChunkDictRefused(t *testing.T) {
	o := image.Options{}
	o.Nydus.ChunkDict = new(rafs.ChunkDict)
	if _, err := image.NewConverter(&o); err == nil {
		t.Error("Options.Nydus.ChunkDict accepted")
	}
}
