package convert_test

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/convert/internal/fstree"
	"github.com/rafs-dev/rafs/convert/internal/mounttest"
	"github.com/rafs-dev/rafs/convert/internal/tartest"
	"github.com/rafs-dev/rafs/rafs"
)

// corpusBase is the lower layer the whiteout cases of the corpus are
// merged onto: something at every path they white out or make opaque.
func corpusBase(t testing.TB) []byte {
	return makeTar(t,
		tarEntry{hdr: tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 3}},
		tarEntry{hdr: tar.Header{Name: "d/x", Typeflag: tar.TypeReg, Mode: 0o644}, data: "lower d/x"},
		tarEntry{hdr: tar.Header{Name: "d/y", Typeflag: tar.TypeReg, Mode: 0o644}, data: "lower d/y"},
		tarEntry{hdr: tar.Header{Name: "d/keep", Typeflag: tar.TypeReg, Mode: 0o644}, data: "lower d/keep"},
		tarEntry{hdr: tar.Header{Name: "d/sub/", Typeflag: tar.TypeDir, Mode: 0o755}},
		tarEntry{hdr: tar.Header{Name: "d/sub/z", Typeflag: tar.TypeReg, Mode: 0o644}, data: "lower d/sub/z"},
		tarEntry{hdr: tar.Header{Name: "x", Typeflag: tar.TypeReg, Mode: 0o644}, data: "lower x"},
		tarEntry{hdr: tar.Header{Name: "y", Typeflag: tar.TypeSymlink, Linkname: "x", Mode: 0o777}},
		tarEntry{hdr: tar.Header{Name: "old", Typeflag: tar.TypeReg, Mode: 0o644}, data: "lower old"},
	)
}

// TestAdversarialCorpus converts every case of the adversarial corpus to
// EROFS (in every whiteout mode when the case depends on it) and to a
// Nydus layer. A refused input must be refused by both with the case's
// error, naming the entry or header and its offset. An accepted one must
// give images the kernel mounts and that read back as the oracle says
// extraction gives: each EROFS image; the Nydus layer's own bootstrap with
// its blob cache; the layer merged alone; and, for whiteout cases, the
// layer merged onto a lower one, against the layers applied in order.
func TestAdversarialCorpus(t *testing.T) {
	var base *nydusLayer
	var baseBoot *rafs.Bootstrap
	var baseImage string
	outer := t // the base image lives as long as the whole test
	for _, c := range tartest.Corpus() {
		t.Run(c.Name, func(t *testing.T) {
			modes := whiteoutModes[:1]
			if c.Whiteouts {
				modes = whiteoutModes
			}
			if c.Err != "" {
				for _, m := range modes {
					_, err := convert.TarToEROFS(bytes.NewReader(c.Input), &memImage{}, &convert.EROFSOptions{Whiteouts: m.conv})
					checkCorpusError(t, "EROFS ("+m.name+")", err, &c)
				}
				_, err := convert.TarToNydus(bytes.NewReader(c.Input), &bytes.Buffer{}, nil)
				checkCorpusError(t, "Nydus", err, &c)
				return
			}

			type built struct {
				image string
				want  *fstree.Tree
			}
			var images []built
			for _, m := range modes {
				p := filepath.Join(t.TempDir(), m.name+".erofs")
				f, err := os.Create(p)
				if err != nil {
					t.Fatal(err)
				}
				res, err := convert.TarToEROFS(bytes.NewReader(c.Input), f, &convert.EROFSOptions{Whiteouts: m.conv})
				f.Close()
				if err != nil {
					t.Fatalf("EROFS (%s): %v", m.name, err)
				}
				if c.Entries >= 0 && res.Entries != c.Entries {
					t.Errorf("EROFS (%s): %d entries, want %d", m.name, res.Entries, c.Entries)
				}
				images = append(images, built{p, oracle(t, c.OracleTar(), m.oracle)})
			}
			var out bytes.Buffer
			res, err := convert.TarToNydus(bytes.NewReader(c.Input), &out, nil)
			if err != nil {
				t.Fatalf("Nydus: %v", err)
			}
			if c.Entries >= 0 && res.Entries != c.Entries {
				t.Errorf("Nydus: %d entries, want %d", res.Entries, c.Entries)
			}
			l := &nydusLayer{blob: out.Bytes(), res: res}

			mounttest.Require(t)
			for i, img := range images {
				t.Run("erofs-"+modes[i].name, func(t *testing.T) { checkImage(t, img.image, img.want, true) })
			}
			keep := oracle(t, c.OracleTar(), fstree.WhiteoutKeep)
			t.Run("nydus-layer", func(t *testing.T) {
				checkMount(t, mountNydus(t, l.res.Bootstrap, l), keep)
			})
			t.Run("nydus-merged", func(t *testing.T) {
				m, err := convert.MergeNydus([]*rafs.Bootstrap{l.layerBootstrap(t)}, nil)
				if err != nil {
					t.Fatal(err)
				}
				checkMount(t, mountNydus(t, m, l), withoutWhiteouts(keep))
			})
			if !c.Whiteouts {
				return
			}
			lower := oracle(t, corpusBase(t), fstree.WhiteoutKeep)
			t.Run("nydus-merged-onto-base", func(t *testing.T) {
				if base == nil {
					base = toNydus(t, corpusBase(t), nil)
					baseBoot = base.layerBootstrap(t)
				}
				m, err := convert.MergeNydus([]*rafs.Bootstrap{baseBoot, l.layerBootstrap(t)}, nil)
				if err != nil {
					t.Fatal(err)
				}
				checkMount(t, mountNydus(t, m, base, l), fstree.ApplyOCI(lower, keep))
			})
			t.Run("erofs-overlayfs-onto-base", func(t *testing.T) {
				// The overlay-mode image as an overlayfs layer: what
				// overlayfs shows, which differs from the OCI rules
				// where a layer recreates what it whites out, or makes
				// its root opaque (see fstree.ApplyOCI).
				if baseImage == "" {
					baseImage = buildImage(outer, bytes.NewReader(corpusBase(t)), nil)
				}
				dir := mounttest.Overlay(t, mounttest.Mount(t, images[0].image), mounttest.Mount(t, baseImage))
				got, err := fstree.FromDir(dir)
				if err != nil {
					t.Fatal(err)
				}
				reportDiffs(t, "overlayfs", fstree.CompareWith(fstree.Apply(lower, images[0].want), got,
					fstree.CompareOptions{IgnoreNlinkDirs: true}))
			})
		})
	}
}

// withoutWhiteouts returns tree without its OCI whiteout files (".wh."
// names), with link counts recounted: a lone layer merged, whose whiteouts
// hide nothing and are not shown.
func withoutWhiteouts(tree *fstree.Tree) *fstree.Tree {
	out := tree.Clone()
	for p := range out.Nodes {
		if strings.HasPrefix(p[strings.LastIndexByte(p, '/')+1:], ".wh.") {
			delete(out.Nodes, p)
		}
	}
	fstree.RecountLinks(out)
	return out
}

// checkCorpusError checks that a converter refused a corpus case as the
// case says.
func checkCorpusError(t *testing.T, who string, err error, c *tartest.Adversarial) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s: accepted; want an error with %q", who, c.Err)
	case !strings.Contains(err.Error(), c.Err):
		t.Errorf("%s: error %q\ndoes not contain %q", who, err, c.Err)
	case c.Where != "" && !strings.Contains(err.Error(), c.Where):
		t.Errorf("%s: error %q\ndoes not say %q", who, err, c.Where)
	}
}

// TestBadCasesBothTypes: every bad golden case is refused by both
// converters, and with the same error after the location.
func TestBadCasesBothTypes(t *testing.T) {
	for _, c := range tartest.BadCases() {
		t.Run(c.Name, func(t *testing.T) {
			_, e1 := convert.TarToEROFS(bytes.NewReader(c.Tar), &memImage{}, nil)
			_, e2 := convert.TarToNydus(bytes.NewReader(c.Tar), &bytes.Buffer{}, nil)
			if e1 == nil || e2 == nil {
				t.Fatalf("EROFS: %v; Nydus: %v", e1, e2)
			}
			where := func(err error) string {
				s := err.Error()
				if i := strings.Index(s, " at offset "); i >= 0 {
					if j := strings.Index(s[i:], ": "); j >= 0 {
						return s[:i+j]
					}
				}
				return s
			}
			if where(e1) != where(e2) {
				t.Errorf("the two types place the error differently:\nEROFS: %v\nNydus: %v", e1, e2)
			}
		})
	}
}
