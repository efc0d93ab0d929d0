package convert_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/convert/internal/mounttest"
	"github.com/rafs-dev/rafs/convert/internal/tartest"
)

// TestEndToEndMergedEROFSTarIndex merges the three-layer stack built as
// tar-index layers: with the tars as the devices, and with each tar
// appended to its index (the layer files are then the devices). Mounted
// with one device= per layer, both show the layers applied in order.
func TestEndToEndMergedEROFSTarIndex(t *testing.T) {
	mounttest.Require(t)
	tars := tartest.Stack()
	want := applyStack(t, tars...)
	for _, appended := range []bool{false, true} {
		name := "tars"
		if appended {
			name = "appended"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			var layers, devs []string
			for i, data := range tars {
				tarPath := filepath.Join(dir, "layer"+string(rune('1'+i))+".tar")
				if err := os.WriteFile(tarPath, data, 0o644); err != nil {
					t.Fatal(err)
				}
				img := filepath.Join(dir, "layer"+string(rune('1'+i))+".erofs")
				f, err := os.Create(img)
				if err != nil {
					t.Fatal(err)
				}
				_, err = convert.TarToEROFSIndex(bytes.NewReader(data), f, &convert.TarIndexOptions{
					EROFS:  convert.EROFSOptions{Whiteouts: convert.WhiteoutOverlay},
					Append: appended,
				})
				f.Close()
				if err != nil {
					t.Fatal(err)
				}
				layers = append(layers, img)
				if appended {
					devs = append(devs, img)
				} else {
					devs = append(devs, tarPath)
				}
			}
			checkMerged(t, mergeLayers(t, layers), devs, want)
		})
	}
}
