//go:build linux

package imagetest

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/convert/image"
	"github.com/rafs-dev/rafs/convert/internal/fstree"
	"github.com/rafs-dev/rafs/convert/internal/mounttest"
	"github.com/rafs-dev/rafs/rafs"
)

// CheckConverted mounts the converted image of type typ with manifest
// digest d from the layout l and compares its tree with want, the source
// layers applied in order (fstree.FromLayers): a Nydus image as one EROFS
// mount of its bootstrap with a blob cache file per blob as devices, an
// EROFS image as an overlayfs stack of its layers, as containerd's EROFS
// snapshotter mounts it. The caller has called mounttest.Require.
func CheckConverted(t *testing.T, typ image.Type, l Layout, d v1.Hash, want *fstree.Tree) {
	t.Helper()
	m := l.Manifest(t, d)
	cfg, err := v1.ParseConfigFile(bytes.NewReader(l.Read(t, m.Config.Digest)))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		t.Errorf("config has %d diff IDs for %d layers", len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	var dir string
	opt := fstree.CompareOptions{}
	if typ == image.TypeNydus {
		dir = mountNydusImage(t, l, m)
	} else {
		if !slices.Contains(cfg.OSFeatures, image.OSFeatureEROFS) {
			t.Errorf("config os.features %v lacks erofs", cfg.OSFeatures)
		}
		dir = mountEROFSImage(t, l, m, image.MediaTypeEROFSLayer)
		// overlayfs reports a file's link count in its own layer and the
		// attributes of the uppermost copy of a directory, also of one a
		// tar only implied.
		opt = fstree.CompareOptions{IgnoreNlink: true, IgnoreImplicit: true}
	}
	got, err := fstree.FromDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	diffs := fstree.CompareWith(want, got, opt)
	if len(diffs) > 20 {
		diffs = append(diffs[:20], fmt.Sprintf("... and %d more", len(diffs)-20))
	}
	for _, d := range diffs {
		t.Errorf("%s kernel: %s", typ, d)
	}
}

// mountNydusImage mounts a converted Nydus image from a layout: its merged
// bootstrap with the uncompressed cache file of each blob as a device.
func mountNydusImage(t *testing.T, l Layout, m *v1.Manifest) string {
	t.Helper()
	last := m.Layers[len(m.Layers)-1]
	if last.Annotations[image.AnnotationNydusBootstrap] != "true" || last.MediaType != types.OCILayer {
		t.Fatalf("last layer %s %v is not the bootstrap layer", last.MediaType, last.Annotations)
	}
	for _, d := range m.Layers[:len(m.Layers)-1] {
		if d.MediaType != image.MediaTypeNydusBlob || d.Annotations[image.AnnotationNydusBlob] != "true" {
			t.Errorf("layer %s: %s %v, want a Nydus blob", d.Digest, d.MediaType, d.Annotations)
		}
	}
	gz, _, err := convert.Decompress(bytes.NewReader(l.Read(t, last.Digest)))
	if err != nil {
		t.Fatal(err)
	}
	var boot []byte
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("bootstrap layer: %v", err)
		}
		if h.Name == "image/image.boot" {
			if boot, err = io.ReadAll(tr); err != nil {
				t.Fatalf("bootstrap layer: %v", err)
			}
			break
		}
	}
	b, err := rafs.Read(bytes.NewReader(boot), int64(len(boot)))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bootPath := filepath.Join(dir, "image.boot")
	if err := os.WriteFile(bootPath, boot, 0o644); err != nil {
		t.Fatal(err)
	}
	var devices []string
	for _, bi := range b.Blobs {
		d := v1.Hash{Algorithm: "sha256", Hex: bi.ID}
		if !slices.ContainsFunc(m.Layers, func(ld v1.Descriptor) bool { return ld.Digest == d }) {
			t.Fatalf("bootstrap uses blob %s, which is not a layer", bi.ID)
		}
		devices = append(devices, blobCache(t, l.BlobPath(d), filepath.Join(dir, "cache-"+bi.ID)))
	}
	return mounttest.Mount(t, bootPath, devices...)
}

// blobCache writes the uncompressed cache file of the Nydus blob at path
// to cachePath and returns cachePath.
func blobCache(t *testing.T, path, cachePath string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	br, err := blob.Open(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	cf, err := os.Create(cachePath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := convert.WriteBlobCache(cf, br); err != nil {
		t.Fatal(err)
	}
	if err := cf.Close(); err != nil {
		t.Fatal(err)
	}
	return cachePath
}

// mountEROFSImage mounts each EROFS layer of a converted image and stacks
// them with overlayfs, as containerd's EROFS snapshotter does.
func mountEROFSImage(t *testing.T, l Layout, m *v1.Manifest, mt types.MediaType) string {
	t.Helper()
	var lowers []string
	for _, d := range m.Layers {
		if d.MediaType != mt {
			t.Errorf("layer %s has media type %s, want %s", d.Digest, d.MediaType, mt)
		}
		lowers = append([]string{mounttest.Mount(t, l.BlobPath(d.Digest))}, lowers...)
	}
	return mounttest.Overlay(t, lowers...)
}
