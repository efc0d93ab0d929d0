package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rafs-dev/rafs/convert/image"
	"github.com/rafs-dev/rafs/erofs"
	"github.com/rafs-dev/rafs/erofs/verity"
)

// memFile is a verity.File in memory.
type memFile struct{ b []byte }

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(m.b).ReadAt(p, off)
}

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}

// parseVerityOutput reads build's "name value" lines.
func parseVerityOutput(t *testing.T, stdout string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		k, v, ok := strings.Cut(l, " ")
		if !ok {
			t.Fatalf("output line %q", l)
		}
		m[k] = v
	}
	return m
}

// veritysetupPath finds Debian's veritysetup (package cryptsetup-bin,
// which .ci/run installs), skipping without it unless RAFS_E2E=require.
func veritysetupPath(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("veritysetup"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/veritysetup", "/sbin/veritysetup"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("RAFS_E2E") == "require" {
		t.Fatal("veritysetup (Debian package cryptsetup-bin) not found, and RAFS_E2E=require")
	}
	t.Skip("veritysetup (Debian package cryptsetup-bin) not found")
	return ""
}

// TestBuildVerity checks build --verity: the image is the one build makes
// without it, followed by the hash area verity.Append writes; the printed
// parameters and containerd's metadata file match it; veritysetup verify
// accepts the file with them. For a tar index (512-byte blocks) the
// verity blocks are 512 bytes too, so the kernel can mount it through the
// device.
func TestBuildVerity(t *testing.T) {
	dir := t.TempDir()
	tarPath, _ := sampleTar(t, dir)
	for _, c := range []struct {
		name string
		args []string
		bs   int
		salt []byte
	}{
		{"plain", nil, 4096, nil},
		{"lz4-salt", []string{"-z", "lz4", "--verity-salt", "0123456789abcdef"}, 4096, []byte{1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}},
		{"append-tar", []string{"--append-tar"}, 512, nil},
		{"b512-bs1024", []string{"-b", "512", "--verity-block-size", "1024", "--verity-salt", "-"}, 1024, []byte{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			plain := filepath.Join(dir, c.name+".plain")
			mustRun(t, append(append([]string{"build", "-q"}, c.args[:min(len(c.args), 2)]...), "-o", plain, tarPath)...)
			out := filepath.Join(dir, c.name+".erofs")
			code, stdout, stderr := rafsCmd(t, append(append([]string{"build", "--verity"}, c.args...), "-o", out, tarPath)...)
			if code != 0 {
				t.Fatalf("exit code %d: %s", code, stderr)
			}
			img, _ := os.ReadFile(plain)
			got, _ := os.ReadFile(out)
			want := &memFile{b: bytes.Clone(img)}
			res, err := verity.Append(want, int64(len(img)), &verity.Options{BlockSize: c.bs, Salt: c.salt})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want.b) {
				t.Fatalf("build --verity wrote %d bytes, want the plain image (%d bytes) and its tree (%d bytes in all)", len(got), len(img), len(want.b))
			}
			p := parseVerityOutput(t, stdout)
			if p["roothash"] != res.RootHashHex() || p["hashoffset"] != fmt.Sprint(res.HashOffset) || p["salt"] != res.SaltHex() ||
				p["blocksize"] != fmt.Sprint(c.bs) || p["uuid"] != res.UUIDString() {
				t.Errorf("printed %q, want %+v", stdout, res)
			}
			var meta verity.Metadata
			b, err := os.ReadFile(out + ".dmverity")
			if err == nil {
				err = json.Unmarshal(b, &meta)
			}
			if err != nil || meta.RootHash != res.RootHashHex() || meta.HashOffset != uint64(res.HashOffset) {
				t.Errorf("metadata %s, %v", b, err)
			}
			// The image still reads as it did: the tree is past its end.
			if fsys, err := erofs.Open(bytes.NewReader(got)); err != nil {
				t.Error(err)
			} else if sb := fsys.Superblock(); int64(sb.Blocks)*int64(sb.BlockSize) > res.HashOffset {
				t.Errorf("the image's %d blocks reach into the hash area at %d", sb.Blocks, res.HashOffset)
			}
			vs := veritysetupPath(t)
			if o, err := exec.Command(vs, "verify", out, out, res.RootHashHex(), "--hash-offset", fmt.Sprint(res.HashOffset)).CombinedOutput(); err != nil {
				t.Fatalf("veritysetup verify: %v\n%s", err, o)
			}
			got[len(img)/3] ^= 1
			bad := filepath.Join(dir, c.name+".bad")
			os.WriteFile(bad, got, 0o644)
			if err := exec.Command(vs, "verify", bad, bad, res.RootHashHex(), "--hash-offset", fmt.Sprint(res.HashOffset)).Run(); err == nil {
				t.Error("veritysetup verify accepted a flipped byte")
			}
		})
	}
}

// TestBuildVerityFlags checks the flags' errors, --verity-metadata and
// --verity-no-superblock, -q, and that a failed build leaves nothing.
func TestBuildVerityFlags(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.erofs")
	for _, args := range [][]string{
		{"--verity-salt", "00"},
		{"--verity-block-size", "4096"},
		{"--verity-no-superblock"},
		{"--verity", "--verity-salt", "0g"},
		{"--verity", "--verity-salt", strings.Repeat("00", 257)},
		{"--verity", "--verity-block-size", "256"},
		{"--verity", "--verity-block-size", "3000"},
		{"--verity", "--verity-no-superblock", "--verity-metadata", filepath.Join(dir, "m")},
		{"--verity", "--verity-metadata", out},
		{"--verity", "--chunk-size", "4096", "--blobdev", filepath.Join(dir, "blob")},
		{"--verity", "--tar-index"},
	} {
		if code, _, stderr := rafsCmd(t, append(append([]string{"build"}, args...), "-o", out, sample)...); code != 2 {
			t.Errorf("%v: exit code %d, want 2 (%s)", args, code, stderr)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}

	meta := filepath.Join(dir, "meta.json")
	code, stdout, stderr := rafsCmd(t, "build", "-q", "--verity", "--verity-metadata", meta, "-o", out, sample)
	if code != 0 || stdout != "" {
		t.Fatalf("-q: exit code %d, printed %q: %s", code, stdout, stderr)
	}
	if _, err := os.Stat(meta); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(out + ".dmverity"); err == nil {
		t.Error("OUT.dmverity written besides --verity-metadata")
	}

	nosb := filepath.Join(dir, "nosb.erofs")
	code, stdout, stderr = rafsCmd(t, "build", "--verity", "--verity-no-superblock", "-o", nosb, sample)
	if code != 0 {
		t.Fatalf("--verity-no-superblock: exit code %d: %s", code, stderr)
	}
	if _, err := os.Stat(nosb + ".dmverity"); err == nil {
		t.Error("metadata written without a superblock")
	}
	p := parseVerityOutput(t, stdout)
	if _, ok := p["uuid"]; ok {
		t.Errorf("a UUID printed without a superblock: %q", stdout)
	}
	vs := veritysetupPath(t)
	if o, err := exec.Command(vs, "verify", "--no-superblock", "--hash-offset", p["hashoffset"], "--data-blocks", p["datablocks"],
		"--salt", p["salt"], nosb, nosb, p["roothash"]).CombinedOutput(); err != nil {
		t.Errorf("veritysetup verify --no-superblock: %v\n%s", err, o)
	}

	// A failed build (a source that is not a tar) leaves neither file.
	bad := filepath.Join(dir, "bad.tar")
	os.WriteFile(bad, []byte("not a tar, not at all, and long enough to be read as one: "+strings.Repeat("x", 600)), 0o644)
	failed := filepath.Join(dir, "failed.erofs")
	if code, _, _ := rafsCmd(t, "build", "--verity", "-o", failed, bad); code != 1 {
		t.Errorf("bad source: exit code %d, want 1", code)
	}
	for _, p := range []string{failed, failed + ".dmverity"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left behind", p)
		}
	}
}

// layerAnnotations returns the annotations of img's layers, in order.
func layerAnnotations(t *testing.T, img v1.Image) []map[string]string {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var anns []map[string]string
	for _, d := range m.Layers {
		anns = append(anns, d.Annotations)
	}
	return anns
}

// TestConvertVerity checks convert --type erofs --verity: each layer is
// the layer convert makes without it followed by its tree, annotated with
// containerd's metadata for it, which veritysetup verify accepts; a
// second conversion through the layer cache keeps the annotations; the
// tar-index form gets 512-byte verity blocks.
func TestConvertVerity(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	for _, c := range []struct {
		tag  string
		args []string
		bs   int
	}{
		{"v", nil, 4096},
		{"ti", []string{"--tar-index"}, 512},
	} {
		mustRun(t, append(append([]string{"convert", "--type", "erofs", "--progress", "none"}, c.args...), sampleSrc, "oci:"+out+":"+c.tag+"-plain")...)
		mustRun(t, append(append([]string{"convert", "--type", "erofs", "--verity", "--progress", "none", "--cache", "cache-" + c.tag}, c.args...), sampleSrc, "oci:"+out+":"+c.tag)...)
		// Again, every layer from the cache.
		_, stderr := mustRun(t, append(append([]string{"convert", "--type", "erofs", "--verity", "--progress", "plain", "--cache", "cache-" + c.tag}, c.args...), sampleSrc, "oci:"+out+":"+c.tag+"-cached")...)
		plain := layerBlobs(t, layoutImage(t, out, c.tag+"-plain"))
		if want := fmt.Sprintf("converted 0 layers (%d cached)", len(plain)); !strings.Contains(stderr, want) {
			t.Errorf("%s: the second conversion said %q, want %q", c.tag, stderr, want)
		}
		got := layerBlobs(t, layoutImage(t, out, c.tag))
		anns := layerAnnotations(t, layoutImage(t, out, c.tag))
		cached := layerBlobs(t, layoutImage(t, out, c.tag+"-cached"))
		canns := layerAnnotations(t, layoutImage(t, out, c.tag+"-cached"))
		if len(got) != len(plain) || len(got) == 0 {
			t.Fatalf("%s: %d layers, %d without --verity", c.tag, len(got), len(plain))
		}
		for i := range got {
			want := &memFile{b: bytes.Clone(plain[i])}
			res, err := verity.Append(want, int64(len(plain[i])), &verity.Options{BlockSize: c.bs})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[i], want.b) || !bytes.Equal(cached[i], want.b) {
				t.Errorf("%s: layer %d is not the plain layer and its tree", c.tag, i)
			}
			wantMeta, _ := json.Marshal(verity.Metadata{RootHash: res.RootHashHex(), HashOffset: uint64(res.HashOffset)})
			if a, ca := anns[i][image.AnnotationDmverity], canns[i][image.AnnotationDmverity]; a != string(wantMeta) || ca != a {
				t.Errorf("%s: layer %d annotated %q (from the cache %q), want %s", c.tag, i, a, ca, wantMeta)
			}
			blob := filepath.Join(dir, fmt.Sprintf("%s-%d.erofs", c.tag, i))
			os.WriteFile(blob, got[i], 0o644)
			vs := veritysetupPath(t)
			if o, err := exec.Command(vs, "verify", blob, blob, res.RootHashHex(), "--hash-offset", fmt.Sprint(res.HashOffset)).CombinedOutput(); err != nil {
				t.Errorf("%s: layer %d: veritysetup verify: %v\n%s", c.tag, i, err, o)
			}
		}
	}
	for _, args := range [][]string{
		{"convert", "--verity", sampleSrc, "oci:" + out}, // Nydus
		{"convert", "--type", "erofs", "--verity-salt", "00", sampleSrc, "oci:" + out},
		{"convert", "--type", "erofs", "--verity", "--verity-no-superblock", sampleSrc, "oci:" + out},
	} {
		if code, _, _ := rafsCmd(t, args...); code != 2 {
			t.Errorf("%s: exit code %d, want 2", strings.Join(args, " "), code)
		}
	}
}

// TestMkfsVerity checks --verity in the mkfs.erofs front end: the image
// mkfs makes without it, followed by its tree; OUTPUT.dmverity; the
// parameters printed before mkfs.erofs's summary; the options refused (a
// tar index with its tar as another device, rebuild mode, --verity-*
// without --verity).
func TestMkfsVerity(t *testing.T) {
	dir := t.TempDir()
	tarPath, _ := sampleTar(t, dir)
	plain := filepath.Join(dir, "plain.erofs")
	mustRunLines := func(args ...string) string {
		t.Helper()
		code, stdout, stderr := rafsCmd(t, args...)
		if code != 0 {
			t.Fatalf("rafs %s: exit code %d\n%s", strings.Join(args, " "), code, stderr)
		}
		return stdout
	}
	mustRunLines("mkfs", "--tar=f", "--aufs", "--quiet", "-Uclear", "-T0", plain, tarPath)
	out := filepath.Join(dir, "v.erofs")
	stdout := mustRunLines("mkfs", "--tar=f", "--aufs", "--verity", "--verity-salt=aa55", "-Uclear", "-T0", out, tarPath)
	img, _ := os.ReadFile(plain)
	got, _ := os.ReadFile(out)
	want := &memFile{b: bytes.Clone(img)}
	res, err := verity.Append(want, int64(len(img)), &verity.Options{Salt: []byte{0xaa, 0x55}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.b) {
		t.Fatalf("mkfs --verity wrote %d bytes, want the plain image and its tree (%d)", len(got), len(want.b))
	}
	verityPart, summary, ok := strings.Cut(stdout, "------\n")
	if p := parseVerityOutput(t, verityPart); !ok || p["roothash"] != res.RootHashHex() || p["salt"] != "aa55" || !strings.HasPrefix(summary, "Filesystem UUID: ") {
		t.Errorf("printed %q", stdout)
	}
	var meta verity.Metadata
	if b, err := os.ReadFile(out + ".dmverity"); err != nil || json.Unmarshal(b, &meta) != nil || meta.RootHash != res.RootHashHex() || meta.HashOffset != uint64(res.HashOffset) {
		t.Errorf("metadata %+v, %v", meta, err)
	}
	vs := veritysetupPath(t)
	if o, err := exec.Command(vs, "verify", out, out, res.RootHashHex(), "--hash-offset", fmt.Sprint(res.HashOffset)).CombinedOutput(); err != nil {
		t.Errorf("veritysetup verify: %v\n%s", err, o)
	}

	bad := filepath.Join(dir, "bad.erofs")
	for _, args := range [][]string{
		{"--tar=i", "--verity", bad, tarPath},
		{"--tar=f", "--verity-salt=00", bad, tarPath},
		{"--tar=f", "--verity", "--verity-block-size=x", bad, tarPath},
		{"--aufs", "--ovlfs-strip=1", "--verity", bad, plain},
	} {
		if code, _, stderr := rafsCmd(t, append([]string{"mkfs"}, args...)...); code != 2 {
			t.Errorf("mkfs %s: exit code %d, want 2 (%s)", strings.Join(args, " "), code, stderr)
		}
	}
	for _, p := range []string{bad, bad + ".dmverity"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left behind", p)
		}
	}
}
