package image_test

import (
	"testing"

	"github.com/rafs-dev/rafs/convert/image"
	"github.com/rafs-dev/rafs/erofs/verity"
)

// TestVerityOptions checks the options NewConverter refuses with
// EROFSVerity.
func TestVerityOptions(t *testing.T) {
	for _, o := range []*image.Options{
		{EROFSVerity: &verity.Options{}}, // Nydus
		{Type: image.TypeEROFS, EROFSVerity: &verity.Options{NoSuperblock: true}},
		{Type: image.TypeEROFS, EROFSVerity: &verity.Options{BlockSize: 100}},
		{Type: image.TypeEROFS, EROFSVerity: &verity.Options{Salt: make([]byte, 300)}},
	} {
		if c, err := image.NewConverter(o); err == nil {
			c.Close()
			t.Errorf("NewConverter(%+v): no error", o.EROFSVerity)
		}
	}
	c, err := image.NewConverter(&image.Options{Type: image.TypeEROFS, EROFSVerity: &verity.Options{}})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}
