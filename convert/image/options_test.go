package image_test

import (
	"strings"
	"testing"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/convert/image"
	"github.com/rafs-dev/rafs/erofs"
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

// TestOptionsIgnoredRefused checks that NewConverter refuses options it
// would ignore: the other type's options and an EROFS image UUID, which
// each layer's diff ID decides.
func TestOptionsIgnoredRefused(t *testing.T) {
	var uuid [16]byte
	for _, c := range []struct {
		name string
		o    image.Options
		want string // in the error
	}{
		{"EROFS for nydus", image.Options{EROFS: convert.EROFSOptions{Whiteouts: convert.WhiteoutKeep}}, "Options.EROFS"},
		{"EROFS image for nydus", image.Options{Type: image.TypeNydus, EROFS: convert.EROFSOptions{Image: erofs.WriterOptions{NoInlineData: true}}}, "Options.EROFS"},
		{"EROFS media type for nydus", image.Options{EROFSMediaType: image.MediaTypeEROFS}, "EROFSMediaType"},
		{"tar index for nydus", image.Options{EROFSTarIndex: true}, "EROFSTarIndex"},
		{"Nydus for erofs", image.Options{Type: image.TypeEROFS, Nydus: convert.NydusOptions{Compressor: "lz4_block"}}, "Options.Nydus"},
		{"Nydus workers for erofs", image.Options{Type: image.TypeEROFS, Nydus: convert.NydusOptions{Workers: 2}}, "Options.Nydus"},
		{"UUID", image.Options{Type: image.TypeEROFS, EROFS: convert.EROFSOptions{Image: erofs.WriterOptions{UUID: &uuid}}}, "Options.EROFS.Image.UUID"},
	} {
		if _, err := image.NewConverter(&c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %s", c.name, err, c.want)
		}
	}
	// Each type's own options are accepted.
	for _, o := range []image.Options{
		{Nydus: convert.NydusOptions{Compressor: "lz4_block", Workers: 2}},
		{Type: image.TypeEROFS, EROFS: convert.EROFSOptions{Whiteouts: convert.WhiteoutKeep, Image: erofs.WriterOptions{NoInlineData: true}}, EROFSMediaType: image.MediaTypeEROFS, EROFSTarIndex: true},
	} {
		c, err := image.NewConverter(&o)
		if err != nil {
			t.Errorf("%+v: %v", o, err)
			continue
		}
		c.Close()
	}
}
