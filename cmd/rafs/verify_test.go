package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// swappedSample copies the sample image to a new layout whose first layer
// blob holds another valid tar.gz, and returns the layout and the text
// naming that layer in errors.
func swappedSample(t *testing.T) (string, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "swapped")
	copyDir(t, sampleImageDir, dir)
	m, err := layoutImage(t, sampleImageDir, "latest").Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "etc/hostname", Typeflag: tar.TypeReg, Mode: 0o644, Size: 8})
	tw.Write([]byte("swapped\n"))
	tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tb.Bytes())
	zw.Close()
	l := m.Layers[0]
	if err := os.WriteFile(filepath.Join(dir, "blobs", l.Digest.Algorithm, l.Digest.Hex), gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, "layer 0 " + l.Digest.String() + " of manifest " + sampleDigest(t).String() + ": size mismatch"
}

// TestConvertVerifyLayout converts a layout whose layer was swapped for
// another valid tar.gz into layouts: exit code 1, the layer named, and
// the destination as it was (none created, an existing one unchanged).
func TestConvertVerifyLayout(t *testing.T) {
	swapped, want := swappedSample(t)
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing")
	mustRun(t, "convert", "--progress", "none", sampleSrc, "oci:"+existing+":keep")
	index, _ := os.ReadFile(filepath.Join(existing, "index.json"))
	blobs, _ := os.ReadDir(filepath.Join(existing, "blobs", "sha256"))
	for _, typ := range []string{"nydus", "erofs"} {
		for _, ref := range []bool{false, true} {
			args := []string{"convert", "--type", typ, "--progress", "none"}
			if ref {
				args = append(args, "--referrer")
			}
			fresh := filepath.Join(dir, "fresh-"+typ)
			for _, dst := range []string{"oci:" + fresh, "oci:" + existing + ":conv"} {
				code, stdout, stderr := rafsCmd(t, append(args, "oci:"+swapped, dst)...)
				if code != 1 || stdout != "" || !strings.Contains(stderr, want) {
					t.Errorf("%s to %s: exit code %d, stdout %q, stderr %q; want 1 and %q", strings.Join(args, " "), dst, code, stdout, stderr, want)
				}
			}
			if _, err := os.Stat(fresh); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s: the failed conversion made %s", strings.Join(args, " "), fresh)
			}
			if after, _ := os.ReadFile(filepath.Join(existing, "index.json")); !bytes.Equal(after, index) {
				t.Errorf("%s: index.json changed:\n%s", strings.Join(args, " "), after)
			}
			if after, _ := os.ReadDir(filepath.Join(existing, "blobs", "sha256")); len(after) != len(blobs) {
				t.Errorf("%s: %d blobs in the layout, %d before", strings.Join(args, " "), len(after), len(blobs))
			}
		}
	}
}

// TestConvertVerifyRegistry converts the swapped layout into a registry,
// with --referrer: exit code 1, the layer named, no manifest pushed (so no
// referrer of the genuine source), and no upload completed but of what a
// conversion of the genuine image uploads.
func TestConvertVerifyRegistry(t *testing.T) {
	swapped, want := swappedSample(t)
	host, uploads := startRegistryLog(t)
	for _, typ := range []string{"nydus", "erofs"} {
		good := host + "/good-" + typ + ":latest"
		mustRun(t, "convert", "--type", typ, "--referrer", "--progress", "none", sampleSrc, good)
		allowed := uploads.take()
		dst := host + "/bad-" + typ + ":latest"
		code, stdout, stderr := rafsCmd(t, "convert", "--type", typ, "--referrer", "--progress", "none", "oci:"+swapped, dst)
		if code != 1 || stdout != "" || !strings.Contains(stderr, want) {
			t.Errorf("%s: exit code %d, stdout %q, stderr %q; want 1 and %q", typ, code, stdout, stderr, want)
		}
		for _, d := range uploads.take() {
			if !slices.Contains(allowed, d) {
				t.Errorf("%s: upload of %s completed", typ, d)
			}
		}
		repo, err := name.NewRepository(host+"/bad-"+typ, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if tags, err := remote.List(repo); err == nil && len(tags) > 0 {
			t.Errorf("%s: tags %v pushed", typ, tags)
		}
		if _, err := remote.Get(repo.Tag("latest")); !isNotFound(err) {
			t.Errorf("%s: the manifest was pushed (%v)", typ, err)
		}
		refs, err := remote.Referrers(repo.Digest(sampleDigest(t).String()))
		if err != nil {
			t.Fatal(err)
		}
		if im, _ := refs.IndexManifest(); len(im.Manifests) != 0 {
			t.Errorf("%s: the source has referrers %v", typ, im.Manifests)
		}
	}
}

// TestConvertVerifyLayoutManifest edits the manifest of a layout entry in
// place (its layers reordered, valid JSON) so that it no longer has the
// digest index.json gives it: the conversion fails naming the manifest,
// before any layer is read.
func TestConvertVerifyLayoutManifest(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "edited")
	copyDir(t, sampleImageDir, dir)
	d := sampleDigest(t)
	p := filepath.Join(dir, "blobs", d.Algorithm, d.Hex)
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	m, err := layoutImage(t, sampleImageDir, "latest").Manifest()
	if err != nil || len(m.Layers) < 2 {
		t.Fatalf("sample manifest: %v, %d layers", err, len(m.Layers))
	}
	a, b := m.Layers[0].Digest.String(), m.Layers[1].Digest.String()
	edited := strings.NewReplacer(a, b, b, a).Replace(string(raw))
	if edited == string(raw) {
		t.Fatal("the manifest did not change")
	}
	if err := os.WriteFile(p, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	want := "manifest " + d.String()
	for _, typ := range []string{"nydus", "erofs"} {
		out := filepath.Join(t.TempDir(), "out")
		code, _, stderr := rafsCmd(t, "convert", "--type", typ, "--progress", "none", "--referrer", "oci:"+dir, "oci:"+out)
		if code != 1 || !strings.Contains(stderr, want) || !strings.Contains(stderr, "digest mismatch") {
			t.Errorf("%s: exit code %d, stderr %q; want 1 and %q with a digest mismatch", typ, code, stderr, want)
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: the failed conversion made %s", typ, out)
		}
	}
}
