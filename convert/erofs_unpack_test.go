package convert_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/convert/internal/fstree"
	"github.com/rafs-dev/rafs/convert/internal/tartest"
	"github.com/rafs-dev/rafs/erofs"
)

// TestUnpackEROFS: an image built from each case unpacks to a tar with
// the case's tree, plain and compressed.
func TestUnpackEROFS(t *testing.T) {
	for _, c := range tartest.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			want := oracle(t, c.Tar, fstree.WhiteoutKeep)
			for _, comp := range []string{"", "lz4hc"} {
				o := &convert.EROFSOptions{Whiteouts: convert.WhiteoutKeep}
				if comp != "" {
					o = compressed(t, comp, 16384, true)
					o.Whiteouts = convert.WhiteoutKeep
				}
				img, err := os.ReadFile(buildImage(t, bytes.NewReader(c.Tar), o))
				if err != nil {
					t.Fatal(err)
				}
				f, err := erofs.Open(bytes.NewReader(img))
				if err != nil {
					t.Fatal(err)
				}
				var out bytes.Buffer
				if _, err := convert.UnpackEROFS(f, &out); err != nil {
					t.Fatalf("%s: %v", comp, err)
				}
				got, err := fstree.FromTar(bytes.NewReader(out.Bytes()), fstree.TarOptions{Whiteouts: fstree.WhiteoutKeep})
				if err != nil {
					t.Fatalf("%s: unpacked tar: %v", comp, err)
				}
				reportDiffs(t, "unpacked "+comp, fstree.Compare(want, got))
			}
		})
	}
}
