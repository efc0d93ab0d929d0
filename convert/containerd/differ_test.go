//go:build linux

package containerd_test

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images/converter"
	ctderofs "github.com/containerd/containerd/v2/core/images/converter/erofs"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/archive/compression"
	differ "github.com/containerd/containerd/v2/plugins/diff/erofs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/convert/containerd"
	"github.com/rafs-dev/rafs/convert/image"
	"github.com/rafs-dev/rafs/erofs"
)

// rafsAsMkfs puts the rafs binary on PATH as mkfs.erofs, alone: no
// erofs-utils can be found.
func rafsAsMkfs(t *testing.T) {
	t.Helper()
	bin := rafsBinary(t)
	dir := t.TempDir()
	if err := os.Symlink(bin, filepath.Join(dir, "mkfs.erofs")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	if p, err := exec.LookPath("mkfs.erofs"); err != nil || p != filepath.Join(dir, "mkfs.erofs") {
		t.Fatalf("mkfs.erofs on PATH is %q (%v)", p, err)
	}
	// containerd's EROFS differ plugin refuses to load unless
	// mkfs.erofs --help names --tar=.
	out, _ := exec.Command("mkfs.erofs", "--help").CombinedOutput()
	if !bytes.Contains(out, []byte("--tar=")) {
		t.Fatalf("mkfs.erofs --help does not name --tar=:\n%s", out)
	}
}

// TestContainerdDifferApply runs containerd's own EROFS differ (Apply,
// plugins/diff/erofs) on the sample image's layers, with the rafs binary
// as mkfs.erofs and no erofs-utils, in its plain form (mkfs.erofs
// --tar=f) and its tar-index form (enable_tar_index: --tar=i with the tar
// appended). The kernel mounts each layer.erofs it writes, which must
// hold the layer's tree.
func TestContainerdDifferApply(t *testing.T) {
	requireMount(t)
	rafsAsMkfs(t)
	descs, blobs := sourceLayers(t)
	for _, mode := range []string{"plain", "tar-index"} {
		t.Run(mode, func(t *testing.T) {
			ctx, c := newClient(t)
			importLayout(t, ctx, c, sampleImage)
			var opts []differ.DifferOpt
			if mode == "tar-index" {
				opts = append(opts, differ.WithTarIndexMode())
			}
			d := differ.NewErofsDiffer(c.cs, opts...)
			for i, desc := range descs {
				// The snapshot's directory as containerd's EROFS snapshotter
				// lays it out: the marker and the upper directory.
				layer := t.TempDir()
				if err := os.WriteFile(filepath.Join(layer, ".erofslayer"), nil, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Mkdir(filepath.Join(layer, "fs"), 0o755); err != nil {
					t.Fatal(err)
				}
				mounts := []mount.Mount{{Type: "bind", Source: filepath.Join(layer, "fs"), Options: []string{"rbind", "rw"}}}
				got, err := d.Apply(ctx, desc, mounts)
				if err != nil {
					t.Fatalf("layer %d: Apply: %v", i, err)
				}
				if got.MediaType != ocispec.MediaTypeImageLayer || got.Size == 0 {
					t.Errorf("layer %d: Apply returned %+v", i, got)
				}
				img := filepath.Join(layer, "layer.erofs")
				fsys, err := os.Open(img)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := erofs.Open(fsys); err != nil {
					t.Errorf("layer %d: rafs reads %s: %v", i, img, err)
				}
				fsys.Close()
				if mode == "tar-index" {
					// The tar index with the layer's tar appended.
					b, err := os.ReadFile(img)
					if err != nil {
						t.Fatal(err)
					}
					tarb := gunzip(t, blobs[i])
					if len(b) <= len(tarb) || !bytes.Equal(b[len(b)-len(tarb):], tarb) {
						t.Errorf("layer %d: layer.erofs (%d bytes) does not end with the layer's tar (%d bytes)", i, len(b), len(tarb))
					}
				}
				n := checkTree(t, mountEROFS(t, img), blobs[i])
				t.Logf("%s: layer %d (%s): layer.erofs mounts and holds the tar's %d entries", mode, i, desc.Digest, n)
			}
		})
	}
}

// TestContainerdEROFSConverter runs containerd's own EROFS converter
// (core/images/converter/erofs.LayerConvertFunc, which runs mkfs.erofs
// --tar=f --aufs -Enoinline_data with a UUID from the diff ID) with the
// rafs binary as mkfs.erofs and no erofs-utils. Its layers mount and hold
// the source layers' trees, and are the bytes of EROFSLayerConvertFunc
// with NoInlineData (and so of rafs convert -E noinline_data).
func TestContainerdEROFSConverter(t *testing.T) {
	requireMount(t)
	rafsAsMkfs(t)
	_, blobs := sourceLayers(t)
	ctx, c := newClient(t)
	importLayout(t, ctx, c, sampleImage)
	img, err := converter.Convert(ctx, c, "dst", "src",
		converter.WithLayerConvertFunc(ctderofs.LayerConvertFunc()),
		converter.WithUpdateManifest(ctderofs.UpdateManifestPlatform))
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	readBlobJSON(t, ctx, c, img.Target, &m)

	ctx2, c2 := newClient(t)
	importLayout(t, ctx2, c2, sampleImage)
	opts := &image.Options{Type: image.TypeEROFS, EROFS: convert.EROFSOptions{Image: erofs.WriterOptions{NoInlineData: true}}, TempDir: t.TempDir()}
	img2, err := converter.Convert(ctx2, c2, "dst", "src",
		converter.WithLayerConvertFunc(containerd.EROFSLayerConvertFunc(opts)),
		converter.WithUpdateManifest(containerd.EROFSUpdateManifest(opts)))
	if err != nil {
		t.Fatal(err)
	}
	var m2 ocispec.Manifest
	readBlobJSON(t, ctx2, c2, img2.Target, &m2)
	if len(m.Layers) != len(blobs) || len(m2.Layers) != len(blobs) {
		t.Fatalf("%d and %d layers, want %d", len(m.Layers), len(m2.Layers), len(blobs))
	}
	for i, l := range m.Layers {
		// The bytes are not compared: mkfs.erofs (and so rafs mkfs)
		// takes the build time from the clock unless -T or
		// $SOURCE_DATE_EPOCH is given, and containerd gives neither.
		t.Logf("layer %d: containerd's converter (rafs as mkfs.erofs) %s, EROFSLayerConvertFunc %s", i, l.Digest, m2.Layers[i].Digest)
		if !image.IsEROFSLayer(l) || !image.IsEROFSLayer(m2.Layers[i]) {
			t.Errorf("layer %d: media types %s and %s", i, l.MediaType, m2.Layers[i].MediaType)
		}
		b, err := content.ReadBlob(ctx, c.cs, l)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "layer.erofs")
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		n := checkTree(t, mountEROFS(t, f), blobs[i])
		t.Logf("layer %d: mounts and holds the tar's %d entries", i, n)
		b2, err := content.ReadBlob(ctx2, c2.cs, m2.Layers[i])
		if err != nil {
			t.Fatal(err)
		}
		f2 := filepath.Join(t.TempDir(), "layer.erofs")
		if err := os.WriteFile(f2, b2, 0o644); err != nil {
			t.Fatal(err)
		}
		checkTree(t, mountEROFS(t, f2), blobs[i])
	}
}

// gunzip returns the uncompressed layer.
func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	dr, err := compression.DecompressStream(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer dr.Close()
	out, err := io.ReadAll(dr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
