package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConvertOntoSource refuses a destination that is the source (the
// same layout directory, however named, and the tag of the source entry;
// the same registry repository and tag), leaving the layout as it was. A
// different tag is fine, and the source converts again after it.
func TestConvertOntoSource(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "img")
	copyDir(t, sampleImageDir, src)
	link := filepath.Join(dir, "link")
	if err := os.Symlink("img", link); err != nil {
		t.Fatal(err)
	}
	before := dirState(t, src)
	rel, err := filepath.Rel(mustGetwd(t), src)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"oci:" + src + ":latest", "oci:" + src + ":latest"},
		{"oci:" + src, "oci:" + src + ":latest"},
		{"oci:" + src + ":latest", "oci:" + link + ":latest"},
		{"oci:" + src + ":latest", "oci:" + src + "/:latest"},
		{"oci:" + rel + ":latest", "oci:" + src + ":latest"},
		{"--cache", "latest", "oci:" + src + ":latest", "oci:" + src + ":nydus"},
		{"--type", "erofs", "oci:" + src, "oci:" + link + "/../img:latest"},
		{"localhost:5000/a", "localhost:5000/a:latest"},
		{"--plain-http", "LOCALHOST:5000/a:v1", "localhost:5000/a:v1"},
		{"docker.io/library/debian:12", "debian:12"},
		{"--cache", "v1", "localhost:5000/a:v1", "localhost:5000/a:v1-nydus"},
	} {
		args = append([]string{"convert", "--progress", "none"}, args...)
		if code, _, stderr := rafsCmd(t, args...); code != 2 || !strings.Contains(stderr, "SRC") {
			t.Errorf("%s: exit code %d, want 2 naming SRC (%s)", strings.Join(args, " "), code, stderr)
		}
	}
	if after := dirState(t, src); after != before {
		t.Errorf("the refused conversions changed the layout:\n%s\nwant\n%s", after, before)
	}
	// Another tag of the same layout is another image.
	mustRun(t, "convert", "--progress", "none", "oci:"+src+":latest", "oci:"+link+":nydus")
	mustRun(t, "convert", "--progress", "none", "oci:"+src+":latest", "oci:"+src+":nydus")
	if d, _ := layoutEntry(t, src, "latest"); d.Digest != sampleDigest(t) {
		t.Errorf("the source is now tagged %s", d.Digest)
	}
}

func mustGetwd(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}
