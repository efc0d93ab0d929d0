//go:build linux

package image_test

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rafs-dev/rafs/convert/image"
	"github.com/rafs-dev/rafs/convert/internal/fstree"
	"github.com/rafs-dev/rafs/convert/internal/imagetest"
	"github.com/rafs-dev/rafs/convert/internal/mounttest"
	"github.com/rafs-dev/rafs/convert/internal/registrytest"
	"github.com/rafs-dev/rafs/convert/internal/tartest"
)

// testImage is a source image and the tars of its layers, lowest first.
type testImage struct {
	img  v1.Image
	tars [][]byte // as stored (compressed or not)
}

// imageOf builds an OCI image of the given layer blobs for a platform.
func imageOf(t testing.TB, arch string, layers ...[]byte) testImage {
	t.Helper()
	return testImage{img: imagetest.Image(t, arch, layers...), tars: layers}
}

// debianStack returns the three layers of the Debian test image: the
// Debian base layer; a layer that deletes files and a directory; and a
// layer that replaces a directory with an opaque one, replaces a file and
// adds hard links and xattrs.
func debianStack(t testing.TB, base []byte) [][]byte {
	mt := time.Unix(1700000000, 5)
	dir := func(name string, mode int64, x map[string]string) tartest.Entry {
		return tartest.Entry{Header: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: mode, ModTime: mt, PAXRecords: tartest.PAXXattrs(x), Format: tar.FormatPAX}}
	}
	file := func(name string, mode int64, data []byte, x map[string]string) tartest.Entry {
		return tartest.Entry{Header: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, ModTime: mt, PAXRecords: tartest.PAXXattrs(x), Format: tar.FormatPAX}, Data: data}
	}
	link := func(name, target string) tartest.Entry {
		return tartest.Entry{Header: tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target, ModTime: mt}}
	}
	l2 := tartest.Tar(
		dir("etc/", 0o755, nil),
		file("etc/.wh.motd", 0o644, nil, nil),
		file("etc/motd.d", 0o644, []byte("replaces motd\n"), nil),
		dir("usr/", 0o755, nil),
		dir("usr/share/", 0o755, nil),
		file("usr/share/.wh.doc", 0o644, nil, nil),
		dir("usr/bin/", 0o755, nil),
		file("usr/bin/.wh.dd", 0o644, nil, nil),
	)
	caps := "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	l3 := tartest.Tar(
		dir("etc/", 0o755, nil),
		dir("etc/apt/", 0o750, map[string]string{"user.dir": "opaque"}),
		file("etc/apt/.wh..wh..opq", 0o644, nil, nil),
		file("etc/apt/sources.list", 0o644, []byte("deb http://example.invalid/debian stable main\n"), nil),
		dir("etc/apt/apt.conf.d/", 0o755, nil),
		file("etc/apt/apt.conf.d/99local", 0o644, tartest.Text("apt", 700), nil),
		dir("usr/", 0o755, nil),
		dir("usr/bin/", 0o755, nil),
		file("usr/bin/ls", 0o755, tartest.Content("ls", 200000), map[string]string{"security.capability": caps}),
		dir("usr/local/", 0o755, nil),
		dir("usr/local/bin/", 0o755, map[string]string{"user.origin": "rafs"}),
		file("usr/local/bin/tool", 0o755, tartest.Content("tool", 3<<20+7), map[string]string{"user.a": "1", "trusted.b": "two"}),
		link("usr/local/bin/tool-hard", "usr/local/bin/tool"),
		link("usr/local/bin/tool-hard2", "usr/local/bin/tool"),
		file("usr/local/bin/small", 0o644, []byte("small"), nil),
		link("usr/local/bin/small.1", "usr/local/bin/small"),
	)
	return [][]byte{base, tartest.Gzip(l2), l3}
}

// imageTree is the oracle for an image: its layers applied in order.
func imageTree(t testing.TB, ti testImage) *fstree.Tree {
	t.Helper()
	want, err := fstree.FromLayers(ti.tars...)
	if err != nil {
		t.Fatal(err)
	}
	return want
}

// pushSource stores a source image or index in the registry.
func pushSource(t testing.TB, ref string, img v1.Image, idx v1.ImageIndex) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if img != nil {
		err = remote.Write(r, img)
	} else {
		err = remote.WriteIndex(r, idx)
	}
	if err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
}

// convertRemote converts src (an image or index in the registry) into dst
// in the same registry, pushing layers while converting.
func convertRemote(t testing.TB, src, dst string, opts image.Options) (v1.Hash, image.Stats) {
	t.Helper()
	ctx := context.Background()
	sref, err := name.ParseReference(src, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	dref, err := name.ParseReference(dst, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	p, err := remote.NewPusher()
	if err != nil {
		t.Fatal(err)
	}
	opts.Push = image.RemotePush(p, dref.Context())
	opts.TempDir = t.TempDir()
	c, err := image.NewConverter(&opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	desc, err := remote.Get(sref)
	if err != nil {
		t.Fatal(err)
	}
	var out interface {
		remote.Taggable
		Digest() (v1.Hash, error)
	}
	var idx v1.ImageIndex
	if desc.MediaType.IsIndex() {
		idx, err = desc.ImageIndex()
	} else if img, ierr := desc.Image(); ierr != nil {
		err = ierr
	} else if opts.Link == image.LinkMergeIndex {
		idx, err = image.IndexOf(img)
	} else {
		out, err = c.Image(ctx, img)
	}
	if err == nil && idx != nil {
		out, err = c.Index(ctx, idx)
	}
	if err != nil {
		t.Fatalf("converting %s: %v", src, err)
	}
	dg, err := out.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Push(ctx, dref, out); err != nil {
		t.Fatalf("pushing %s: %v", dst, err)
	}
	return dg, c.Stats()
}

// TestImageEndToEndRegistry converts a three-layer image built on the
// Debian layer and a two-platform index from a real registry
// (distribution) to it, in both types, reads the results with skopeo, and
// mounts them with the kernel: they must match the source layers applied
// in order.
func TestImageEndToEndRegistry(t *testing.T) {
	if testing.Short() {
		t.Skip("the Debian layer takes a while; skipped with -short")
	}
	mounttest.Require(t)
	reg := registrytest.Start(t)
	base, err := os.ReadFile(tartest.DebianLayer(t))
	if err != nil {
		t.Fatal(err)
	}
	three := imageOf(t, "amd64", debianStack(t, base)...)
	pushSource(t, reg.Ref("src/three:v1"), three.img, nil)
	threeDigest, _ := three.img.Digest()

	small := tartest.Stack()
	amd := imageOf(t, "amd64", debianStack(t, base)[:2]...)
	arm := imageOf(t, "arm64", small...)
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	idx = mutate.AppendManifests(idx,
		mutate.IndexAddendum{Add: amd.img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm.img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	pushSource(t, reg.Ref("src/multi:v1"), nil, idx)
	srcIdx, _ := idx.IndexManifest()
	wantThree := imageTree(t, three)
	wantAmd, wantArm := imageTree(t, amd), imageTree(t, arm)

	for _, typ := range []image.Type{image.TypeNydus, image.TypeEROFS} {
		t.Run(string(typ), func(t *testing.T) {
			// The three-layer image, linked to its source as a referrer.
			dst := "dst/three:" + string(typ)
			dg, st := convertRemote(t, reg.Ref("src/three:v1"), reg.Ref(dst), image.Options{Type: typ, Link: image.LinkReferrer})
			if st.Layers != 3 {
				t.Errorf("stats %+v, want 3 layers converted", st)
			}
			raw := reg.InspectRaw(t, dst)
			var m v1.Manifest
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			if m.Subject == nil || m.Subject.Digest != threeDigest {
				t.Errorf("subject %+v, want the source manifest %s", m.Subject, threeDigest)
			}
			if got := (v1.Hash{Algorithm: "sha256", Hex: sha256Hex(raw)}); got != dg {
				t.Errorf("registry holds manifest %s, converted %s", got, dg)
			}
			lay := imagetest.Layout(filepath.Join(t.TempDir(), "three"))
			reg.CopyToLayout(t, dst, string(lay), "three", false)
			imagetest.CheckConverted(t, typ, lay, dg, wantThree)

			// The two-platform index, merged with its source.
			dst = "dst/multi:" + string(typ)
			dg, _ = convertRemote(t, reg.Ref("src/multi:v1"), reg.Ref(dst), image.Options{Type: typ, Link: image.LinkMergeIndex})
			raw = reg.InspectRaw(t, dst)
			var im v1.IndexManifest
			if err := json.Unmarshal(raw, &im); err != nil {
				t.Fatal(err)
			}
			if len(im.Manifests) != 4 {
				t.Fatalf("merged index lists %d manifests, want 4", len(im.Manifests))
			}
			feature := image.OSFeatureNydus
			if typ == image.TypeEROFS {
				feature = image.OSFeatureEROFS
			}
			for i, d := range im.Manifests {
				if i < 2 {
					if d.Digest != srcIdx.Manifests[i].Digest {
						t.Errorf("entry %d is %s, want the source manifest %s", i, d.Digest, srcIdx.Manifests[i].Digest)
					}
					continue
				}
				if d.Platform == nil || d.Platform.Architecture != srcIdx.Manifests[i-2].Platform.Architecture || !slices.Contains(d.Platform.OSFeatures, feature) {
					t.Errorf("entry %d platform %+v, want %s with os.features %s", i, d.Platform, srcIdx.Manifests[i-2].Platform.Architecture, feature)
				}
			}
			lay = imagetest.Layout(filepath.Join(t.TempDir(), "multi"))
			reg.CopyToLayout(t, dst, string(lay), "multi", true)
			imagetest.CheckConverted(t, typ, lay, im.Manifests[2].Digest, wantAmd)
			imagetest.CheckConverted(t, typ, lay, im.Manifests[3].Digest, wantArm)
		})
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// writeFile writes data to a new file in dir and returns its path.
func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
