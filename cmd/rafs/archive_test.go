package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// layerBlobs returns the stored bytes of an image's layers, in order.
func layerBlobs(t *testing.T, img v1.Image) [][]byte {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, l := range ls {
		out = append(out, readBlob(t, l))
	}
	return out
}

// dockerLayerFiles returns the contents of the layer files of the image
// tagged tag in a docker save tarball, in order, as they are in the tar.
func dockerLayerFiles(t *testing.T, path string, tag string) [][]byte {
	t.Helper()
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(path) })
	if err != nil {
		t.Fatal(err)
	}
	var layers []string
	for _, d := range m {
		for _, rt := range d.RepoTags {
			if rt == tag {
				layers = d.Layers
			}
		}
	}
	if layers == nil {
		t.Fatalf("%s: no image tagged %s in %+v", path, tag, m)
	}
	files := map[string][]byte{}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = b
	}
	var out [][]byte
	for _, l := range layers {
		b, ok := files[l]
		if !ok {
			t.Fatalf("%s: no layer file %s", path, l)
		}
		out = append(out, b)
	}
	return out
}

func sameBlobs(t *testing.T, who string, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d layers, via oci: %d", who, len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("%s: layer %d differs from the one converted via oci: (%d and %d bytes)", who, i, len(got[i]), len(want[i]))
		}
	}
}

// TestConvertArchives: oci-archive and docker-archive sources and
// destinations round-trip, and give the layers a conversion between OCI
// layouts gives.
func TestConvertArchives(t *testing.T) {
	dir := t.TempDir()
	// The sample image as an OCI archive and as a docker save tarball.
	var buf bytes.Buffer
	if err := writeOCIArchive(&buf, sampleImageDir); err != nil {
		t.Fatal(err)
	}
	ociSrc := filepath.Join(dir, "sample-oci.tar")
	if err := os.WriteFile(ociSrc, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	dockerSrc := filepath.Join(dir, "sample-docker.tar")
	srcTag, err := name.NewTag("example.com/sample:latest")
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(dockerSrc, srcTag, layoutImage(t, sampleImageDir, "latest")); err != nil {
		t.Fatal(err)
	}

	for _, typ := range []string{"erofs", "nydus"} {
		t.Run(typ, func(t *testing.T) {
			dir := t.TempDir()
			// The reference: between layouts.
			ref := filepath.Join(dir, "ref")
			line, _ := mustRun(t, "convert", "--type", typ, "--progress", "none", sampleSrc, "oci:"+ref+":conv")
			want := splitDigest(t, line, "oci:"+ref+":conv")
			wantBlobs := layerBlobs(t, layoutImage(t, ref, "conv"))

			// oci-archive to oci-archive, twice into one archive.
			out := filepath.Join(dir, "out-oci.tar")
			line, _ = mustRun(t, "convert", "--type", typ, "--progress", "none", "oci-archive:"+ociSrc, "oci-archive:"+out+":conv")
			if got := splitDigest(t, line, "oci-archive:"+out+":conv"); got != want {
				t.Errorf("oci-archive: %s, via oci: %s", got, want)
			}
			mustRun(t, "convert", "--type", typ, "--progress", "none", "oci-archive:"+ociSrc+":latest", "oci-archive:"+out+":again")
			unpacked := filepath.Join(dir, "unpacked")
			if err := unpackOCIArchive(out, unpacked); err != nil {
				t.Fatal(err)
			}
			for _, tag := range []string{"conv", "again"} {
				img := layoutImage(t, unpacked, tag)
				if got, _ := img.Digest(); got != want {
					t.Errorf("oci-archive %s: %s, via oci: %s", tag, got, want)
				}
				checkConverted(t, typ, img)
				sameBlobs(t, "oci-archive "+tag, layerBlobs(t, img), wantBlobs)
			}
			// The archive is read back as a source: its layers are
			// converted already.
			back := filepath.Join(dir, "back")
			if code, _, stderr := rafsCmd(t, "convert", "--type", typ, "oci-archive:"+out+":conv", "oci:"+back); code != 1 || !strings.Contains(stderr, "converted already") {
				t.Errorf("converting the result again: exit %d, %q", code, stderr)
			}

			// docker-archive to docker-archive.
			dout := filepath.Join(dir, "out-docker.tar")
			line, _ = mustRun(t, "convert", "--type", typ, "--progress", "none", "docker-archive:"+dockerSrc, "docker-archive:"+dout+":example.com/conv:v1")
			if !strings.HasPrefix(line, "docker-archive:"+dout+":example.com/conv:v1@sha256:") {
				t.Errorf("printed %q", line)
			}
			sameBlobs(t, "docker-archive", dockerLayerFiles(t, dout, "example.com/conv:v1"), wantBlobs)
			dtag, _ := name.NewTag("example.com/conv:v1")
			img, err := tarball.ImageFromPath(dout, &dtag)
			if err != nil {
				t.Fatal(err)
			}
			if cfg, err := img.ConfigFile(); err != nil || len(cfg.RootFS.DiffIDs) != len(wantBlobs) {
				t.Errorf("docker-archive read back: %v, %+v", err, cfg)
			}
			// A docker-archive source is read with its tag too.
			mustRun(t, "convert", "--type", typ, "--progress", "none", "docker-archive:"+dockerSrc+":example.com/sample:latest", "oci:"+filepath.Join(dir, "fromdocker"))
		})
	}

	if code, _, stderr := rafsCmd(t, "convert", "docker-archive:"+dockerSrc, "docker-archive:"+dockerSrc+":a/b:c"); code != 2 {
		t.Errorf("converting a docker-archive onto itself: exit %d, %q", code, stderr)
	}
}
