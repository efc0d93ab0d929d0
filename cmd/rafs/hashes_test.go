package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The output-hash test pins the bytes of every output form: a refactor
// must change none of them. testdata/output-hashes.txt holds one line per
// (input, case): "INPUT CASE SHA256". Regenerate it, after a change that
// is meant to change bytes, with
//
//	go test ./cmd/rafs -run OutputHashes -update-hashes
var updateHashes = flag.Bool("update-hashes", false, "rewrite testdata/output-hashes.txt from this build's outputs")

const hashesFile = "../../testdata/output-hashes.txt"

// hashCase is one row of the matrix: an EROFS build with the given flags,
// or, with nydus set, a Nydus blob and bootstrap.
type hashCase struct {
	name  string
	nydus bool
	args  []string
}

// hashCases is the matrix of issue 11: the uncompressed image, each
// algorithm, the cluster and tail-packing options, the block size, whole
// blocks only, and Nydus blobs with their bootstraps.
var hashCases = []hashCase{
	{name: "erofs"},
	{name: "erofs-lz4", args: []string{"-z", "lz4"}},
	{name: "erofs-lz4hc", args: []string{"-z", "lz4hc"}},
	{name: "erofs-lzma", args: []string{"-z", "lzma"}},
	{name: "erofs-deflate", args: []string{"-z", "deflate"}},
	{name: "erofs-zstd", args: []string{"-z", "zstd"}},
	{name: "erofs-lz4hc-C65536-ztailpacking", args: []string{"-z", "lz4hc", "-C", "65536", "-E", "ztailpacking"}},
	{name: "erofs-zstd-C131072", args: []string{"-z", "zstd", "-C", "131072"}},
	{name: "erofs-deflate-legacy", args: []string{"-z", "deflate", "-E", "legacy-compress"}},
	{name: "erofs-lz4hc-ztailpacking-fragments", args: []string{"-z", "lz4hc", "-E", "ztailpacking,fragments"}},
	{name: "erofs-lz4hc-all-fragments", args: []string{"-z", "lz4hc", "-E", "all-fragments"}},
	{name: "erofs-lz4hc-dedupe", args: []string{"-z", "lz4hc", "-E", "dedupe"}},
	{name: "erofs-zstd-C65536-ztailpacking-fragments-dedupe", args: []string{"-z", "zstd", "-C", "65536", "-E", "ztailpacking,fragments,dedupe"}},
	{name: "erofs-deflate-fragments-fragdedupe-inode", args: []string{"-z", "deflate", "-E", "fragments,fragdedupe=inode"}},
	{name: "erofs-lzma-C1048576-ztailpacking-all-fragments-dedupe", args: []string{"-z", "lzma", "-C", "1048576", "-E", "ztailpacking,all-fragments,dedupe"}},
	{name: "erofs-b512", args: []string{"-b", "512"}},
	{name: "erofs-noinline", args: []string{"-inline-data=false"}},
	{name: "erofs-whiteouts-strip", args: []string{"-whiteouts", "strip"}},
	{name: "erofs-chunk-4096", args: []string{"--chunk-size", "4096"}},
	{name: "erofs-chunk-1048576", args: []string{"--chunk-size", "1048576"}},
	{name: "erofs-verity", args: []string{"--verity"}},
	{name: "nydus", nydus: true},
	{name: "nydus-lz4-sha256-64k", nydus: true, args: []string{"--compressor", "lz4_block", "--digester", "sha256", "--chunk-size", "0x10000"}},
}

// slowOnLarge names the cases left out for the Debian layer to keep the
// suite's time down: lzma compresses at a few MB/s, and the smaller inputs
// cover it.
var slowOnLarge = map[string]bool{"erofs-lzma": true, "erofs-lz4hc": true,
	"erofs-lzma-C1048576-ztailpacking-all-fragments-dedupe": true}

func TestOutputHashes(t *testing.T) {
	dir := t.TempDir()
	synthetic := filepath.Join(dir, "synthetic.tar")
	writeSyntheticLayer(t, synthetic)
	inputs := []struct{ name, path string }{
		{"sample", sample},
		{"synthetic", synthetic},
	}
	// The Debian layer is made by debootstrap, so its bytes differ from
	// machine to machine and day to day: its records carry the layer's own
	// digest and apply only to that layer.
	if p := debianLayerPath(); p != "" {
		inputs = append(inputs, struct{ name, path string }{"debian-" + fileSHA256(t, p)[:16], p})
	}

	got := map[string]string{}
	put := func(input, name, path string) {
		got[input+" "+name] = fileSHA256(t, path)
		os.Remove(path)
	}
	for _, in := range inputs {
		large := strings.HasPrefix(in.name, "debian-")
		for _, c := range hashCases {
			if large && slowOnLarge[c.name] {
				continue
			}
			out := filepath.Join(dir, "out")
			if !c.nydus {
				mustRun(t, append(append([]string{"build", "-q"}, c.args...), "-o", out, in.path)...)
				put(in.name, c.name, out)
				continue
			}
			boot := filepath.Join(dir, "boot")
			mustRun(t, append(append([]string{"build", "--type", "nydus", "-q"}, c.args...), "-o", out, "--bootstrap", boot, in.path)...)
			put(in.name, c.name+"-blob", out)
			put(in.name, c.name+"-bootstrap", boot)
		}
	}

	// Data that recurs far apart in the packed inode, for dedupe's plan
	// (erofs/dedupe_plan.go): only the cases with dedupe.
	recurrence := filepath.Join(dir, "recurrence.tar")
	writeRecurrenceLayer(t, recurrence)
	for _, c := range hashCases {
		if strings.Contains(c.name, "dedupe") {
			out := filepath.Join(dir, "out")
			mustRun(t, append(append([]string{"build", "-q"}, c.args...), "-o", out, recurrence)...)
			put("recurrence", c.name, out)
		}
	}

	// A merged bootstrap of two layers, and what unpack makes of it.
	var blobs []string
	for i, in := range inputs[:2] {
		b := filepath.Join(dir, fmt.Sprintf("layer%d.blob", i))
		mustRun(t, "build", "--type", "nydus", "-q", "-o", b, in.path)
		blobs = append(blobs, b)
	}
	merged := filepath.Join(dir, "merged")
	mustRun(t, append([]string{"merge", "-q", "-o", merged}, blobs...)...)
	unpacked := filepath.Join(dir, "unpacked.tar")
	mustRun(t, "unpack", "-q", "-o", unpacked, "--bootstrap", merged, "--blob", blobs[0], "--blob", blobs[1])
	put("sample+synthetic", "nydus-merge", merged)
	put("sample+synthetic", "nydus-unpack", unpacked)

	// Tarfs bootstraps (--tarfs: the blob is the uncompressed tar, written
	// with --blob), their merge and what unpack makes of it.
	var tarfsBoots []string
	tarfsArgs := []string{"unpack", "-q", "-o", unpacked, "--bootstrap", merged}
	for i, in := range inputs {
		b, tarPath := filepath.Join(dir, fmt.Sprintf("tarfs%d.boot", i)), filepath.Join(dir, fmt.Sprintf("tarfs%d.tar", i))
		mustRun(t, "build", "--type", "nydus", "--tarfs", "-q", "-o", b, "--blob", tarPath, in.path)
		got[in.name+" nydus-tarfs-bootstrap"] = fileSHA256(t, b)
		if i < 2 {
			tarfsBoots = append(tarfsBoots, b)
			tarfsArgs = append(tarfsArgs, "--blob", tarPath)
		}
	}
	mustRun(t, append([]string{"merge", "-q", "-o", merged}, tarfsBoots...)...)
	mustRun(t, tarfsArgs...)
	put("sample+synthetic", "nydus-tarfs-merge", merged)
	put("sample+synthetic", "nydus-tarfs-unpack", unpacked)

	// rafs convert of the sample image in both types: the manifest digest
	// covers the config and every layer.
	for _, typ := range []string{"nydus", "erofs"} {
		line, _ := mustRun(t, "convert", "--progress", "none", "--type", typ, sampleSrc, "oci:"+filepath.Join(dir, "layout-"+typ)+":latest")
		i := strings.LastIndex(line, "@sha256:")
		if i < 0 {
			t.Fatalf("convert printed %q, want REF@DIGEST", line)
		}
		got["sample-image convert-"+typ] = line[i+len("@sha256:"):]
	}

	if *updateHashes {
		writeHashes(t, got)
		return
	}
	want := readHashes(t)
	for _, k := range slices.Sorted(maps.Keys(got)) {
		w, ok := want[k]
		switch {
		case !ok && strings.HasPrefix(k, "debian-"):
			t.Logf("no record for %s (a Debian layer other than the recorded one): not compared", k)
		case !ok:
			t.Errorf("%s: no record in %s; run with -update-hashes if the case is new", k, hashesFile)
		case w != got[k]:
			t.Errorf("%s: sha256 %s, recorded %s", k, got[k], w)
		}
	}
	for k := range want {
		if _, ok := got[k]; !ok && !strings.HasPrefix(k, "debian-") {
			t.Errorf("%s: recorded but not produced", k)
		}
	}
}

// debianLayerPath returns the Debian layer testdata/debian-layer.sh makes,
// or "" when there is none.
func debianLayerPath() string {
	p := os.Getenv("RAFS_DEBIAN_LAYER")
	if p == "" {
		dir, _ := os.UserCacheDir() // where testdata/debian-layer.sh puts it
		p = filepath.Join(dir, "rafs-bench", "debian-minbase.tar.gz")
	}
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func readHashes(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(hashesFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("%s: bad line %q", hashesFile, line)
		}
		m[f[0]+" "+f[1]] = f[2]
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

// writeHashes rewrites the records, keeping those of Debian layers other
// than the one hashed now.
func writeHashes(t *testing.T, got map[string]string) {
	t.Helper()
	all := map[string]string{}
	if _, err := os.Stat(hashesFile); err == nil {
		for k, v := range readHashes(t) {
			if strings.HasPrefix(k, "debian-") {
				all[k] = v
			}
		}
	}
	for k, v := range got {
		all[k] = v
	}
	var b strings.Builder
	b.WriteString("# sha256 of rafs outputs: INPUT CASE SHA256. Checked by TestOutputHashes\n")
	b.WriteString("# in cmd/rafs; see there how to regenerate.\n")
	for _, k := range slices.Sorted(maps.Keys(all)) {
		fmt.Fprintf(&b, "%s %s\n", k, all[k])
	}
	if err := os.WriteFile(hashesFile, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeSyntheticLayer writes a layer generated from a fixed seed: a few
// megabytes of text-like and random data in files of sizes around block
// and chunk boundaries, with every entry type, hard links, xattrs, long
// names, whiteouts and an opaque directory. It is the same on every
// machine, so its records hold everywhere.
func writeSyntheticLayer(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriter(f)
	tw := tar.NewWriter(bw)
	rng := rand.New(rand.NewPCG(11, 2026))
	epoch := time.Unix(1700000000, 0)
	add := func(h *tar.Header, data []byte) {
		t.Helper()
		h.Format = tar.FormatPAX
		if h.ModTime.IsZero() {
			h.ModTime = epoch.Add(time.Duration(rng.IntN(1<<20)) * time.Second)
		}
		h.Size = int64(len(data))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	words := strings.Fields("the quick brown fox jumps over lazy dog erofs rafs nydus chunk blob layer image block inode xattr " +
		"container registry kernel mount extent cluster tail packing fragment dedupe pipeline superblock")
	text := func(n int) []byte {
		b := make([]byte, 0, n+16)
		for len(b) < n {
			b = append(b, words[rng.IntN(len(words))]...)
			if rng.IntN(12) == 0 {
				b = append(b, '\n')
			} else {
				b = append(b, ' ')
			}
		}
		return b[:n]
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	sizes := []int{0, 1, 100, 511, 512, 513, 2000, 4095, 4096, 4097, 8191, 8192, 12000, 65535, 65536, 65537,
		131072 + 77, 300000, 1<<20 - 1, 1 << 20, 1<<20 + 1, 3<<20 + 12345}

	add(&tar.Header{Typeflag: tar.TypeDir, Name: "usr/", Mode: 0o755}, nil)
	add(&tar.Header{Typeflag: tar.TypeDir, Name: "usr/share/", Mode: 0o755}, nil)
	for d := range 6 {
		dir := fmt.Sprintf("usr/share/d%d/", d)
		add(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, Uid: d, Gid: 2 * d}, nil)
		for i, n := range sizes {
			var data []byte
			switch (d + i) % 3 {
			case 0, 1:
				data = text(n)
			default:
				data = random(n)
			}
			add(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("%sf%02d", dir, i), Mode: 0o644, Uid: 1000 + d, Gid: 1000}, data)
		}
	}
	// The same contents again, for dedupe; a few small files for
	// directory blocks of many entries.
	same := text(200000)
	for i := range 3 {
		add(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("usr/share/copy%d", i), Mode: 0o600}, same)
	}
	add(&tar.Header{Typeflag: tar.TypeDir, Name: "etc/", Mode: 0o755}, nil)
	for i := range 300 {
		add(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("etc/conf-%03d-%s", i, words[i%len(words)]), Mode: 0o644}, text(rng.IntN(3000)))
	}
	long := "usr/share/" + strings.Repeat("long-directory-name-", 8) + "/"
	add(&tar.Header{Typeflag: tar.TypeDir, Name: long, Mode: 0o700}, nil)
	add(&tar.Header{Typeflag: tar.TypeReg, Name: long + strings.Repeat("n", 200), Mode: 0o644}, text(5000))
	add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "usr/share/link", Linkname: "d0/f05", Mode: 0o777}, nil)
	add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "usr/share/longlink", Linkname: strings.Repeat("x/", 900), Mode: 0o777}, nil)
	add(&tar.Header{Typeflag: tar.TypeLink, Name: "usr/share/hard1", Linkname: "usr/share/d1/f10", Mode: 0o644}, nil)
	add(&tar.Header{Typeflag: tar.TypeLink, Name: "etc/hard2", Linkname: "usr/share/d1/f10", Mode: 0o644}, nil)
	add(&tar.Header{Typeflag: tar.TypeDir, Name: "dev/", Mode: 0o755}, nil)
	add(&tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Devmajor: 1, Devminor: 3, Mode: 0o666}, nil)
	add(&tar.Header{Typeflag: tar.TypeBlock, Name: "dev/sda", Devmajor: 8, Devminor: 0, Mode: 0o660, Gid: 6}, nil)
	add(&tar.Header{Typeflag: tar.TypeFifo, Name: "dev/fifo", Mode: 0o644}, nil)
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "usr/bin/ping", Mode: 0o4755, PAXRecords: map[string]string{
		"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
		"SCHILY.xattr.user.comment":        "a ping",
		"SCHILY.xattr.trusted.note":        strings.Repeat("v", 300),
	}}, random(30000))
	for i := range 20 {
		add(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("etc/x%02d", i), Mode: 0o644, PAXRecords: map[string]string{
			"SCHILY.xattr.user.shared": "same value on many files",
			"SCHILY.xattr.user.own":    fmt.Sprint(i),
		}}, text(100*i))
	}
	add(&tar.Header{Typeflag: tar.TypeDir, Name: "var/", Mode: 0o755}, nil)
	add(&tar.Header{Typeflag: tar.TypeDir, Name: "var/cache/", Mode: 0o755}, nil)
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "var/.wh.gone", Mode: 0o644}, nil)
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "var/cache/.wh..wh..opq", Mode: 0o644}, nil)
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "var/cache/kept", Mode: 0o644}, text(10))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
}

// writeRecurrenceLayer writes a tar whose last file holds, in 60,000-byte
// pieces between 3-byte headers (as xz stores incompressible data), the
// noise that ends its first file, 2.5 MiB of text earlier.
func writeRecurrenceLayer(t *testing.T, path string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(12, 2026))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	text := func(n int) []byte {
		b := make([]byte, 0, n+16)
		for len(b) < n {
			b = fmt.Appendf(b, "line %d of %x\n", rng.IntN(100000), rng.Uint32())
		}
		return b[:n]
	}
	noise := random(300000)
	deb := random(1000)
	for off := 0; off < len(noise); off += 60000 {
		deb = append(append(deb, random(3)...), noise[off:off+60000]...)
	}
	files := [][]byte{append(text(5000), noise...)}
	for range 10 {
		files = append(files, text(256<<10))
	}
	files = append(files, deb)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i, data := range files {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("f%02d", i), Mode: 0o644, Size: int64(len(data)),
			ModTime: time.Unix(1700000000, 0)}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
