package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// sampleImageDir is the committed OCI layout of the sample image.
const sampleImageDir = "../../testdata/sample-image"

var updateSample = flag.Bool("update-sample", false, "rewrite testdata/sample-image from testdata/sample-layer.tar.gz")

// sampleTime is the time of every entry, config and history item of the
// sample image.
var sampleTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func hashOf(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// sampleLayer2 is the sample image's second layer, an uncompressed tar
// over the sample layer: it deletes etc/motd (a whiteout), makes
// home/user opaque with a new file, replaces etc/hostname and adds a
// file with a user xattr and a hard link to it.
func sampleLayer2() ([]byte, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	hdr := func(name string, typ byte, mode int64, body string) *tar.Header {
		return &tar.Header{Name: name, Typeflag: typ, Mode: mode, Size: int64(len(body)), ModTime: sampleTime, Format: tar.FormatPAX}
	}
	type entry struct {
		h    *tar.Header
		body string
	}
	greet := "#!/bin/sh\necho hello from layer 2\n"
	entries := []entry{
		{h: hdr("./etc/", tar.TypeDir, 0o755, "")},
		{h: hdr("./etc/.wh.motd", tar.TypeReg, 0o644, "")},
		{h: hdr("./etc/hostname", tar.TypeReg, 0o644, "rafs-sample-2\n"), body: "rafs-sample-2\n"},
		{h: hdr("./home/user/", tar.TypeDir, 0o750, "")},
		{h: hdr("./home/user/.wh..wh..opq", tar.TypeReg, 0o644, "")},
		{h: hdr("./home/user/todo.txt", tar.TypeReg, 0o644, "convert the image\n"), body: "convert the image\n"},
		{h: hdr("./usr/bin/", tar.TypeDir, 0o755, "")},
		{h: hdr("./usr/bin/greet", tar.TypeReg, 0o755, greet), body: greet},
		{h: hdr("./usr/bin/greet-again", tar.TypeLink, 0o755, "")},
	}
	for _, e := range entries {
		switch e.h.Name {
		case "./home/user/", "./home/user/todo.txt":
			e.h.Uid, e.h.Gid = 1000, 1000
		case "./usr/bin/greet":
			e.h.PAXRecords = map[string]string{"SCHILY.xattr.user.comment": "rafs sample"}
		case "./usr/bin/greet-again":
			e.h.Linkname = "./usr/bin/greet"
		}
		if err := tw.WriteHeader(e.h); err != nil {
			return nil, err
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// buildSampleImage returns the files of the sample image's OCI layout by
// path: a linux/amd64 image of testdata/sample-layer.tar.gz (as is) and
// sampleLayer2, tagged "latest".
func buildSampleImage() (map[string][]byte, error) {
	l1, err := os.ReadFile(sample)
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(l1))
	if err != nil {
		return nil, err
	}
	l1tar, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	l2, err := sampleLayer2()
	if err != nil {
		return nil, err
	}
	created := v1.Time{Time: sampleTime}
	cfg := v1.ConfigFile{
		Architecture: "amd64",
		OS:           "linux",
		Created:      created,
		Config: v1.Config{
			Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cmd:        []string{"/usr/bin/greet"},
			WorkingDir: "/",
		},
		RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{hashOf(l1tar), hashOf(l2)}},
		History: []v1.History{
			{Created: created, CreatedBy: "ADD sample-layer.tar.gz /"},
			{Created: created, CreatedBy: "COPY layer2 /"},
		},
	}
	rawCfg, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(rawCfg)), Digest: hashOf(rawCfg)},
		Layers: []v1.Descriptor{
			{MediaType: types.OCILayer, Size: int64(len(l1)), Digest: hashOf(l1)},
			{MediaType: types.OCIUncompressedLayer, Size: int64(len(l2)), Digest: hashOf(l2)},
		},
	}
	rawManifest, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	idx := v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests: []v1.Descriptor{{
			MediaType:   types.OCIManifestSchema1,
			Size:        int64(len(rawManifest)),
			Digest:      hashOf(rawManifest),
			Annotations: map[string]string{"org.opencontainers.image.ref.name": "latest"},
			Platform:    &v1.Platform{OS: "linux", Architecture: "amd64"},
		}},
	}
	rawIndex, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{
		"oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}` + "\n"),
		"index.json": append(rawIndex, '\n'),
	}
	for _, b := range [][]byte{l1, l2, rawCfg, rawManifest} {
		files["blobs/sha256/"+hashOf(b).Hex] = b
	}
	return files, nil
}

// TestSampleImage checks that testdata/sample-image is what
// buildSampleImage makes (go test -run TestSampleImage -update-sample
// rewrites it).
func TestSampleImage(t *testing.T) {
	want, err := buildSampleImage()
	if err != nil {
		t.Fatal(err)
	}
	if *updateSample {
		if err := os.RemoveAll(sampleImageDir); err != nil {
			t.Fatal(err)
		}
		for p, b := range want {
			full := filepath.Join(sampleImageDir, p)
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(full, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := map[string][]byte{}
	total := 0
	err = filepath.WalkDir(sampleImageDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(sampleImageDir, p)
		got[filepath.ToSlash(rel)] = b
		total += len(b)
		return nil
	})
	if err != nil {
		t.Fatalf("%v (run go test -run TestSampleImage -update-sample ./cmd/rafs/ to make it)", err)
	}
	for _, p := range slices.Sorted(maps.Keys(want)) {
		if !bytes.Equal(got[p], want[p]) {
			t.Errorf("%s differs from what buildSampleImage makes (-update-sample rewrites it)", p)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: unexpected file in %s", p, sampleImageDir)
		}
	}
	if total > 200<<10 {
		t.Errorf("the sample image is %d bytes, more than 200 KiB", total)
	}
}
