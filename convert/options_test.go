package convert_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/erofs"
)

// TestIgnoredOptionsRefused checks that options that would have no effect
// are errors, not silently dropped.
func TestIgnoredOptionsRefused(t *testing.T) {
	tarData := makeTar(t)
	origin := convert.EROFSOptions{Image: erofs.WriterOptions{WhiteoutOrigin: true}, Whiteouts: convert.WhiteoutKeep}
	if _, err := convert.TarToEROFS(bytes.NewReader(tarData), &memImage{}, &origin); err == nil || !strings.Contains(err.Error(), "WhiteoutOrigin") {
		t.Errorf("TarToEROFS: WhiteoutOrigin with WhiteoutKeep: %v", err)
	}
	if _, err := convert.TarToEROFSIndex(bytes.NewReader(tarData), &memImage{}, &convert.TarIndexOptions{EROFS: origin}); err == nil || !strings.Contains(err.Error(), "WhiteoutOrigin") {
		t.Errorf("TarToEROFSIndex: WhiteoutOrigin with WhiteoutKeep: %v", err)
	}
	// With overlay whiteouts it is what they set anyway.
	origin.Whiteouts = convert.WhiteoutOverlay
	if _, err := convert.TarToEROFS(bytes.NewReader(tarData), &memImage{}, &origin); err != nil {
		t.Errorf("TarToEROFS: WhiteoutOrigin with WhiteoutOverlay: %v", err)
	}
	if _, err := convert.DirToEROFS(t.TempDir(), &memImage{}, &convert.EROFSOptions{Whiteouts: convert.WhiteoutStrip}); err == nil {
		t.Error("DirToEROFS: Whiteouts accepted")
	}
	for _, o := range []*convert.EROFSOptions{nil, {Whiteouts: convert.WhiteoutKeep}} {
		if _, err := convert.DirToEROFS(t.TempDir(), &memImage{}, o); err != nil {
			t.Errorf("DirToEROFS(%+v): %v", o, err)
		}
	}
}
