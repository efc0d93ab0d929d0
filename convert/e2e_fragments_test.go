package convert_test

// End-to-end tests of fragments (the packed inode), fragment dedupe and
// compressed data dedupe: every algorithm and option set against the
// kernel, our reader and fsck.erofs; cases that show the sharing saves
// what it should; and images that do not depend on the worker count.

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/convert/internal/fstree"
	"github.com/rafs-dev/rafs/convert/internal/mounttest"
	"github.com/rafs-dev/rafs/convert/internal/tartest"
	"github.com/rafs-dev/rafs/erofs"
)

// fragmentOptionSet is a combination of the fragment and dedupe options,
// named as mkfs.erofs -E spells it.
type fragmentOptionSet struct {
	name string
	set  func(c *erofs.Compression)
}

// fragmentOptionSets are the option sets the end-to-end tests build. The
// fragment dedupe mode defaults to full, as in mkfs.erofs, so "fragments"
// alone is "fragments,fragdedupe=full".
var fragmentOptionSets = []fragmentOptionSet{
	{"fragments,^fragdedupe", func(c *erofs.Compression) {
		c.Fragments, c.FragDedupe = true, erofs.FragDedupeOff
	}},
	{"fragments,fragdedupe=inode", func(c *erofs.Compression) {
		c.Fragments, c.FragDedupe = true, erofs.FragDedupeInode
	}},
	{"fragments,fragdedupe=full", func(c *erofs.Compression) {
		c.Fragments, c.FragDedupe = true, erofs.FragDedupeFull
	}},
	// The packed inode's clusters differ from the files' here
	// (-E all-fragments=SIZE): four times as large, up to 1 MiB.
	{"all-fragments=4C", func(c *erofs.Compression) {
		c.AllFragments = true
		c.PackedPclusterSize = min(4*max(c.PclusterSize, 4096), 1<<20)
	}},
	{"dedupe", func(c *erofs.Compression) { c.Dedupe = true }},
	{"fragments,dedupe", func(c *erofs.Compression) { c.Fragments, c.Dedupe = true, true }},
	{"all-fragments,dedupe", func(c *erofs.Compression) { c.AllFragments, c.Dedupe = true, true }},
}

// usesFragments reports whether an option set packs data into the packed
// inode.
func usesFragments(c *erofs.Compression) bool { return c.Fragments || c.AllFragments }

// fragmentOptions returns options for a compressed image with one of the
// fragment option sets.
func fragmentOptions(t testing.TB, alg string, pcluster int, ztail bool, set fragmentOptionSet) *convert.EROFSOptions {
	t.Helper()
	o := compressed(t, alg, pcluster, ztail)
	set.set(o.Image.Compression)
	return o
}

// mixed returns n bytes that compress to about half: text-like runs
// between runs of noise, determined by seed.
func mixed(seed string, n int) []byte {
	out := make([]byte, 0, n+1024)
	for i := 0; len(out) < n; i++ {
		out = append(out, tartest.Text(fmt.Sprint(seed, " text ", i), 700)...)
		out = append(out, tartest.Content(fmt.Sprint(seed, " noise ", i), 300)...)
	}
	return out[:n]
}

// concat returns the concatenation of parts in a new slice.
func concat(parts ...[]byte) []byte { return slices.Concat(parts...) }

// tarEntries collects the entries of a synthetic tar.
type tarEntries []tartest.Entry

func (e *tarEntries) dir(name string) {
	*e = append(*e, tartest.Entry{Header: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, Format: tar.FormatPAX}})
}

func (e *tarEntries) file(name string, data []byte) { e.fileX(name, data, nil) }

func (e *tarEntries) fileX(name string, data []byte, xattrs map[string]string) {
	*e = append(*e, tartest.Entry{Header: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644,
		PAXRecords: tartest.PAXXattrs(xattrs), Format: tar.FormatPAX}, Data: data})
}

func (e *tarEntries) link(name, target string) {
	*e = append(*e, tartest.Entry{Header: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Format: tar.FormatPAX}})
}

func (e *tarEntries) symlink(name, target string) {
	*e = append(*e, tartest.Entry{Header: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, Format: tar.FormatPAX}})
}

// fragmentsTar is a compact layer made to exercise fragments and dedupe
// with physical clusters of 4 KiB, 64 KiB and 1 MiB: small files that are
// whole fragments, tails of every length, identical small files, files
// sharing a tail, a file that is another's tail or the end of one, files
// of exactly one cluster and a byte more, a file with an inserted region,
// a repeated random block, zeros, hard links to fragment files, symlinks,
// xattrs and empty files. About 2.2 MB, 1 MiB of it zeros.
func fragmentsTar() []byte {
	var e tarEntries
	e.dir("f/")
	e.file("f/empty", nil)
	e.file("f/one", []byte("x"))
	e.file("f/zero-one", []byte{0})

	// Small files: whole-file fragments.
	for _, n := range []int{100, 1000, 3000, 4095} {
		e.file(fmt.Sprintf("f/small-text-%d", n), tartest.Text(fmt.Sprint("small ", n), n))
	}
	for _, n := range []int{100, 3000} {
		e.file(fmt.Sprintf("f/small-noise-%d", n), tartest.Content(fmt.Sprint("small ", n), n))
	}

	// Identical small files, compressible and not, and some that differ
	// only in their first byte.
	e.dir("f/same/")
	sameText, sameNoise := tartest.Text("same", 2500), tartest.Content("same", 1800)
	for i := range 6 {
		e.file(fmt.Sprintf("f/same/text-%d", i), sameText)
		e.file(fmt.Sprintf("f/same/noise-%d", i), sameNoise)
		e.file(fmt.Sprintf("f/same/almost-%d", i), concat([]byte{byte('a' + i)}, sameText[1:]))
	}

	// Files sharing a 3 KiB random tail after random heads of whole
	// blocks, and a 5000-byte text tail after 64 KiB heads; a file that is
	// the tail, and one that is the end of it.
	tail, textTail := tartest.Content("shared tail", 3072), tartest.Text("shared tail", 5000)
	e.dir("f/tail/")
	for i := range 6 {
		e.file(fmt.Sprintf("f/tail/noise-%d", i), concat(tartest.Content(fmt.Sprint("head ", i), 4096*(i%3+1)), tail))
	}
	for i := range 2 {
		e.file(fmt.Sprintf("f/tail/text-%d", i), concat(tartest.Content(fmt.Sprint("text head ", i), 65536), textTail))
	}
	e.file("f/tail/is-tail", tail)
	e.file("f/tail/tail-end", tail[1000:])
	e.file("f/tail/text-end", textTail[3000:])

	// Exactly one cluster of each size, a byte less and a byte more.
	for _, n := range []int{4096, 65536} {
		for _, m := range []int{n - 1, n, n + 1} {
			e.file(fmt.Sprintf("f/text-%d", m), tartest.Text(fmt.Sprint("text ", m), m))
			e.file(fmt.Sprintf("f/noise-%d", m), tartest.Content(fmt.Sprint("noise ", m), m))
		}
	}
	e.file("f/zeros-1M", make([]byte, 1<<20))

	// A file equal to another with 100 bytes inserted in the middle.
	ins := mixed("insert", 120000)
	e.file("f/insert-a", ins)
	e.file("f/insert-b", concat(ins[:60001], tartest.Content("inserted", 100), ins[60001:]))

	// A random block three times, larger than a 64 KiB cluster.
	block := tartest.Content("repeat", 72<<10)
	e.file("f/repeat", concat(block, block, block))

	// A zero tail after noise. (Files of several compression segments
	// are TestEndToEndFragmentsSegments's.)
	e.file("f/zero-tail", concat(tartest.Content("zero tail", 8192), make([]byte, 5000)))

	// Xattrs on a fragment file, on a file with a tail fragment, and
	// enough of them that an inline tail does not fit in the inode's block.
	e.fileX("f/xattr-small", tartest.Text("xattr small", 700), map[string]string{"user.a": "1", "user.b": "two"})
	e.fileX("f/xattr-tail", concat(tartest.Content("xattr tail", 8192), tail), map[string]string{"user.tail": "yes"})
	e.fileX("f/xattr-big", tartest.Text("xattr big", 9000), map[string]string{"user.big": string(tartest.Text("value", 3000))})

	// Hard links to a fragment file, a file with a tail fragment and a
	// deduped one; symlinks.
	e.link("f/link-small", "f/small-text-1000")
	e.link("f/link-tail", "f/tail/noise-1")
	e.link("f/link-repeat", "f/repeat")
	e.symlink("f/sym", "small-text-100")
	e.symlink("f/sym-dangling", "../nowhere")
	e.file("f/z-empty", nil)
	return tartest.Tar(e...)
}

// TestEndToEndFragments builds fragmentsTar with every algorithm, every
// fragment and dedupe option set, physical clusters of one block, 64 KiB
// and 1 MiB, with and without ztailpacking, and compares the image as the
// kernel and our reader see it with the tar. fsck.erofs --extract checks
// that every file decodes, and where the image has no packed inode what
// it extracts is compared with the tar too (see checkImageWith).
func TestEndToEndFragments(t *testing.T) {
	mounttest.Require(t)
	noteFsck(t)
	layer := fragmentsTar()
	want, err := fstree.FromTar(bytes.NewReader(layer), fstree.TarOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, alg := range compressors {
		for _, set := range fragmentOptionSets {
			for _, pcl := range []int{4096, 65536, 1 << 20} {
				for _, ztail := range []bool{false, true} {
					t.Run(fmt.Sprintf("%s/%s/C%d/ztail=%v", alg, set.name, pcl, ztail), func(t *testing.T) {
						t.Parallel()
						o := fragmentOptions(t, alg, pcl, ztail, set)
						image := buildImage(t, bytes.NewReader(layer), o)
						checkImageWith(t, image, want, checkOptions{mount: true, extracted: true})
						checkPacked(t, image, usesFragments(o.Image.Compression))
					})
				}
			}
		}
	}
}

// TestEndToEndFragmentsSegments builds files larger than a compression
// segment (4 MiB; the writer compresses segments independently) with
// fragments and dedupe: a file of sparse noise with a text tail, and the
// same data with another tail.
//
// Reading a file kept in the packed inode is slow in the kernel when
// its extents are long (about 0.4 s a MiB of zeros with LZ4, also for
// mkfs.erofs's images: each page of the packed inode decodes a whole
// extent of about 1 MiB), hence this separate, small test, and data
// that does not compress that well.
func TestEndToEndFragmentsSegments(t *testing.T) {
	mounttest.Require(t)
	// 16 random bytes in every 256, zeros otherwise: this compresses about
	// twelvefold, quickly with every algorithm, into extents the kernel
	// reads quickly also from the packed inode.
	sparse := make([]byte, 4<<20+1000)
	noise := tartest.Content("sparse", len(sparse)/16+16)
	for i := 0; i < len(sparse); i += 256 {
		copy(sparse[i:min(i+16, len(sparse))], noise[i/16:])
	}
	var e tarEntries
	e.file("a", concat(sparse, tartest.Text("tail a", 7000)))
	e.file("b", concat(sparse, tartest.Text("tail b", 5000)))
	layer := tartest.Tar(e...)
	want, err := fstree.FromTar(bytes.NewReader(layer), fstree.TarOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, alg := range compressors {
		for _, set := range fragmentOptionSets {
			if set.name != "fragments,dedupe" && set.name != "all-fragments,dedupe" {
				continue
			}
			t.Run(fmt.Sprintf("%s/%s", alg, set.name), func(t *testing.T) {
				t.Parallel()
				image := buildImage(t, bytes.NewReader(layer), fragmentOptions(t, alg, 65536, true, set))
				checkImageWith(t, image, want, checkOptions{mount: true, extracted: true})
				checkPacked(t, image, true)
			})
		}
	}
}

// checkPacked checks that an image has a packed inode and the fragments
// feature exactly when it should: fragmentsTar's small files always
// become fragments when fragments are on.
func checkPacked(t *testing.T, image string, fragments bool) {
	t.Helper()
	sb := superblock(t, image)
	if fragments {
		if sb.PackedNid == 0 || sb.FeatureIncompat&erofs.FeatureIncompatFragments == 0 {
			t.Errorf("fragments on: packed inode nid %d, feature_incompat %#x", sb.PackedNid, sb.FeatureIncompat)
		}
	} else if sb.PackedNid != 0 {
		t.Errorf("fragments off, but a packed inode (nid %d)", sb.PackedNid)
	}
}

// superblock returns an image's superblock, as our reader decodes it.
func superblock(t testing.TB, image string) erofs.Superblock {
	t.Helper()
	f, err := os.Open(image)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fsys, err := erofs.Open(f)
	if err != nil {
		t.Fatalf("our reader: %v", err)
	}
	return fsys.Superblock()
}

// imageSize returns the size of an image file.
func imageSize(t testing.TB, image string) int64 {
	t.Helper()
	fi, err := os.Stat(image)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestFragmentsDeterministic checks that with every fragment and dedupe
// option set the image does not depend on the number of compressing
// goroutines.
func TestFragmentsDeterministic(t *testing.T) {
	layer := fragmentsTar()
	for _, alg := range []string{"lz4hc", "zstd"} {
		for _, set := range fragmentOptionSets {
			for _, pcl := range []int{4096, 65536} {
				t.Run(fmt.Sprintf("%s/%s/C%d", alg, set.name, pcl), func(t *testing.T) {
					t.Parallel()
					var sums [][sha256.Size]byte
					for _, workers := range []int{1, 4} {
						o := fragmentOptions(t, alg, pcl, true, set)
						o.Image.Compression.Workers = workers
						img := &memImage{}
						if _, err := convert.TarToEROFS(bytes.NewReader(layer), img, o); err != nil {
							t.Fatal(err)
						}
						sums = append(sums, sha256.Sum256(img.b))
					}
					if sums[0] != sums[1] {
						t.Error("4 workers give a different image than 1")
					}
				})
			}
		}
	}
}

// sharingConfig is an algorithm and physical cluster size a sharing case
// is built with.
type sharingConfig struct {
	alg string
	pcl int
}

func (c sharingConfig) String() string { return fmt.Sprintf("%s/C%d", c.alg, c.pcl) }

// sharedImage builds a tar into an image with an algorithm, cluster size
// and option set, checks it against the tar (mounted, with our reader
// and with fsck.erofs), and returns its path and size.
func sharedImage(t *testing.T, layer []byte, cfg sharingConfig, set func(*erofs.Compression)) (string, int64) {
	t.Helper()
	want, err := fstree.FromTar(bytes.NewReader(layer), fstree.TarOptions{})
	if err != nil {
		t.Fatal(err)
	}
	o := compressed(t, cfg.alg, cfg.pcl, false)
	set(o.Image.Compression)
	image := buildImage(t, bytes.NewReader(layer), o)
	checkImageWith(t, image, want, checkOptions{mount: true, extracted: true})
	return image, imageSize(t, image)
}

func noOptions(*erofs.Compression) {}

// TestSharingInsertedRegion: a file equal to another with 100 bytes
// inserted in the middle costs, with dedupe, much less than the first.
//
// A is 1 MiB that compresses to about half, B is A with 100 random bytes
// inserted at 512 KiB + 37. With dedupe, B's extents before the insertion
// point at A's clusters (the last of them partially). Past the insertion,
// B's data is A's again, shifted by 100 bytes: a rolling hash finds the
// start of A's next cluster there, and from it on B points at A's
// clusters again. Ideally only the stretch from the insertion to that
// start, a cluster or two, is compressed anew, and B costs that and its
// full lcluster index (8 bytes a block, 2 KiB): under 3% of A with 4 KiB
// clusters, about a quarter with 64 KiB ones. The test allows B a quarter
// of what it costs without dedupe (about what A costs), so that the
// writer may compress a stretch after the insertion before it finds its
// way back. Sharing only the clusters before the insertion (matches at
// cluster starts alone) saves half, and fails.
func TestSharingInsertedRegion(t *testing.T) {
	mounttest.Require(t)
	noteFsck(t)
	a := mixed("inserted region", 1<<20)
	b := concat(a[:512<<10+37], tartest.Content("inserted", 100), a[512<<10+37:])
	var onlyA, both tarEntries
	onlyA.file("a", a)
	both.file("a", a)
	both.file("b", b)
	onlyATar, bothTar := tartest.Tar(onlyA...), tartest.Tar(both...)
	for _, cfg := range []sharingConfig{{"lz4hc", 4096}, {"zstd", 65536}, {"lzma", 65536}} {
		t.Run(cfg.String(), func(t *testing.T) {
			t.Parallel()
			dedupe := func(c *erofs.Compression) { c.Dedupe = true }
			_, a0 := sharedImage(t, onlyATar, cfg, noOptions)
			plain, ab0 := sharedImage(t, bothTar, cfg, noOptions)
			_, a1 := sharedImage(t, onlyATar, cfg, dedupe)
			deduped, ab1 := sharedImage(t, bothTar, cfg, dedupe)
			costPlain, costDedupe := ab0-a0, ab1-a1
			t.Logf("B costs %d bytes without dedupe, %d with; A alone: %d and %d bytes", costPlain, costDedupe, a0, a1)
			if costPlain < int64(len(a))/3 {
				t.Fatalf("without dedupe B costs only %d bytes: the case shows nothing", costPlain)
			}
			if costDedupe > costPlain/4 {
				t.Errorf("with dedupe B costs %d bytes, more than a quarter of the %d it costs without", costDedupe, costPlain)
			}
			checkDedupeFeature(t, plain, false)
			checkDedupeFeature(t, deduped, true)
		})
	}
}

// checkDedupeFeature checks that an image without fragments has the dedupe
// feature bit exactly when it should: when it was built with dedupe (and
// the data had something to share).
func checkDedupeFeature(t *testing.T, image string, dedupe bool) {
	t.Helper()
	sb := superblock(t, image)
	if got := sb.FeatureIncompat&erofs.FeatureIncompatDedupe != 0; got != dedupe {
		t.Errorf("built with dedupe=%v: dedupe feature bit %v (feature_incompat %#x)", dedupe, got, sb.FeatureIncompat)
	}
}

// TestSharingTails: 1,000 files with the same 3 KiB tail store it about
// once with fragments and fragdedupe=full.
//
// Each file is 4096 random bytes, its own, then the same 3072 random
// bytes. One-block clusters: the random head fills one raw cluster, and
// the 3072 bytes left would fill only part of one, so they are the file's
// tail fragment. Between these files come files of 1536 random bytes
// (whole-file fragments), so that the tails are more than a cluster's
// input apart in the packed inode and its compressor cannot share them:
// with ^fragdedupe the tail is stored 1,000 times. With fragdedupe=full
// each tail after the first points at the first one, which saves 999 x
// 3072 bytes (random data does not compress); the test asks for 80% of
// that. With fragdedupe=inode only whole-file fragments are shared, so the
// tails are not: it saves less than 20% of that.
func TestSharingTails(t *testing.T) {
	mounttest.Require(t)
	noteFsck(t)
	const files, tailSize = 1000, 3072
	tail := tartest.Content("the tail", tailSize)
	var e tarEntries
	e.dir("t/")
	for i := range files {
		e.file(fmt.Sprintf("t/%04d", i), concat(tartest.Content(fmt.Sprint("head ", i), 4096), tail))
		e.file(fmt.Sprintf("t/%04d-sep", i), tartest.Content(fmt.Sprint("separator ", i), 1536))
	}
	layer := tartest.Tar(e...)
	expected := int64((files - 1) * tailSize)
	for _, cfg := range []sharingConfig{{"lz4hc", 4096}, {"zstd", 4096}} {
		t.Run(cfg.String(), func(t *testing.T) {
			t.Parallel()
			frag := func(d erofs.FragDedupe) func(*erofs.Compression) {
				return func(c *erofs.Compression) { c.Fragments, c.FragDedupe = true, d }
			}
			off, sizeOff := sharedImage(t, layer, cfg, frag(erofs.FragDedupeOff))
			full, sizeFull := sharedImage(t, layer, cfg, frag(erofs.FragDedupeFull))
			inode, sizeInode := sharedImage(t, layer, cfg, frag(erofs.FragDedupeInode))
			t.Logf("^fragdedupe %d, fragdedupe=full %d, fragdedupe=inode %d bytes; full saves %d (expected about %d)",
				sizeOff, sizeFull, sizeInode, sizeOff-sizeFull, expected)
			// With the tails stored every time, the image holds at least
			// every file's bytes once.
			if floor := int64(files * (4096 + tailSize + 1536)); sizeOff < floor {
				t.Fatalf("^fragdedupe: %d bytes, less than the %d of the files: the case shows nothing", sizeOff, floor)
			}
			if saved := sizeOff - sizeFull; saved < expected*8/10 {
				t.Errorf("fragdedupe=full saves %d bytes, less than 80%% of %d", saved, expected)
			}
			if saved := sizeOff - sizeInode; saved > expected*2/10 {
				t.Errorf("fragdedupe=inode saves %d bytes, more than 20%% of %d: it shares tail fragments", saved, expected)
			}
			for _, img := range []string{off, full, inode} {
				checkPacked(t, img, true)
			}
		})
	}
}

// TestSharingIdenticalFiles: with fragments and fragment dedupe (full or
// inode), many identical small files cost next to nothing each.
//
// 300 identical files of 2000 random bytes, whole-file fragments, with a
// file of 2400 random bytes between each two, so that they are more than a
// cluster's input (one block) apart in the packed inode and its compressor
// cannot share them. A copy costs its inode, its (empty) index and its
// directory entry, about 100 bytes, when its fragment is shared; the test
// allows 160 bytes a copy. With ^fragdedupe a copy also costs its 2000
// bytes in the packed inode, which the test checks, so the bound can fail.
func TestSharingIdenticalFiles(t *testing.T) {
	mounttest.Require(t)
	noteFsck(t)
	const copies, copySize, perCopy = 300, 2000, 160
	same := tartest.Content("same file", copySize)
	layer := func(n int) []byte {
		var e tarEntries
		e.dir("s/")
		for i := range copies {
			if i < n {
				e.file(fmt.Sprintf("s/%04d-copy", i), same)
			}
			e.file(fmt.Sprintf("s/%04d-sep", i), tartest.Content(fmt.Sprint("separator ", i), 2400))
		}
		return tartest.Tar(e...)
	}
	oneTar, allTar := layer(1), layer(copies)
	for _, cfg := range []sharingConfig{{"lz4hc", 4096}, {"zstd", 4096}} {
		for _, d := range []erofs.FragDedupe{erofs.FragDedupeOff, erofs.FragDedupeFull, erofs.FragDedupeInode} {
			t.Run(fmt.Sprintf("%s/fragdedupe=%s", cfg, d), func(t *testing.T) {
				t.Parallel()
				set := func(c *erofs.Compression) { c.Fragments, c.FragDedupe = true, d }
				_, one := sharedImage(t, oneTar, cfg, set)
				img, all := sharedImage(t, allTar, cfg, set)
				cost := (all - one) / (copies - 1)
				t.Logf("one copy: %d bytes, %d copies: %d bytes; %d bytes a copy", one, copies, all, cost)
				if d == erofs.FragDedupeOff {
					if cost < copySize*3/4 {
						t.Errorf("^fragdedupe: a copy costs %d bytes, less than 3/4 of its %d: the case shows nothing", cost, copySize)
					}
				} else if cost > perCopy {
					t.Errorf("a copy costs %d bytes, more than %d", cost, perCopy)
				}
				checkPacked(t, img, true)
			})
		}
	}
}

// TestSharingRepeatedBlock: with dedupe, a file that repeats a 1 MiB
// random block 8 times stores the block about once.
//
// Random data does not compress, so without dedupe the file takes its 8
// MiB. With dedupe, each copy after the first points at the clusters of
// the first: the saving is 7 MiB less what the cluster boundaries at the
// copies' starts and the full lcluster index (8 bytes a block, 16 KiB)
// cost. The test asks for 80% of 7 MiB.
func TestSharingRepeatedBlock(t *testing.T) {
	mounttest.Require(t)
	noteFsck(t)
	block := tartest.Content("repeated block", 1<<20)
	var e tarEntries
	e.file("repeat", bytes.Repeat(block, 8))
	layer := tartest.Tar(e...)
	const expected = 7 << 20
	for _, cfg := range []sharingConfig{{"lz4hc", 4096}, {"zstd", 65536}, {"lzma", 1 << 20}} {
		t.Run(cfg.String(), func(t *testing.T) {
			t.Parallel()
			plain, sizePlain := sharedImage(t, layer, cfg, noOptions)
			deduped, sizeDedupe := sharedImage(t, layer, cfg, func(c *erofs.Compression) { c.Dedupe = true })
			t.Logf("without dedupe %d bytes, with %d; saves %d (expected about %d)", sizePlain, sizeDedupe, sizePlain-sizeDedupe, expected)
			if sizePlain < 8<<20 {
				t.Fatalf("without dedupe the image is %d bytes, less than the file: the case shows nothing", sizePlain)
			}
			if saved := sizePlain - sizeDedupe; saved < expected*8/10 {
				t.Errorf("dedupe saves %d bytes, less than 80%% of %d", saved, expected)
			}
			checkDedupeFeature(t, plain, false)
			checkDedupeFeature(t, deduped, true)
		})
	}
}

// TestSharingPackedRecurrence: with all-fragments and big clusters, data
// that recurs megabytes later in the packed inode is stored once, the way
// a Debian layer's .deb archives hold, between the 3-byte headers of xz's
// stored chunks, the bytes of the .gz files the packages installed.
//
// changelog.gz is 20 KiB of text and then 320 KiB of noise (the
// compressed part); 2.5 MiB of other files follow, so that a cluster's
// compressor cannot see both copies; pkg.deb then holds the noise again
// in 64 KiB pieces, each after a 3-byte header of its own. With dedupe
// the plan (erofs/dedupe_plan.go) cuts the packed inode's clusters where
// the noise and each piece start, and the pieces point at the first
// copy, all but the few blocks before each header that have to hold it:
// about 320 KiB less 4 x 3 blocks, and what full indexes add, some
// 270 KiB. The test asks for 70% of 320 KiB. Without the plan the pieces
// would have to start clusters by chance, and little is saved.
func TestSharingPackedRecurrence(t *testing.T) {
	mounttest.Require(t)
	noteFsck(t)
	const noiseSize, piece = 320 << 10, 64 << 10
	noise := tartest.Content("recurring noise", noiseSize)
	var e tarEntries
	e.file("changelog.gz", concat(tartest.Text("changelog head", 20<<10), noise))
	for i := range 10 {
		e.file(fmt.Sprintf("filler%02d", i), mixed(fmt.Sprint("filler ", i), 256<<10))
	}
	deb := tartest.Content("deb header", 2048)
	for off := 0; off < noiseSize; off += piece {
		deb = concat(deb, tartest.Content(fmt.Sprint("xz chunk header ", off), 3), noise[off:off+piece])
	}
	e.file("pkg.deb", concat(deb, tartest.Content("deb trailer", 5000)))
	layer := tartest.Tar(e...)
	for _, cfg := range []sharingConfig{{"lzma", 1 << 20}, {"zstd", 65536}, {"lz4hc", 16384}, {"deflate", 65536}} {
		t.Run(cfg.String(), func(t *testing.T) {
			t.Parallel()
			allFrag := func(c *erofs.Compression) { c.AllFragments, c.Ztailpacking = true, true }
			_, sizePlain := sharedImage(t, layer, cfg, allFrag)
			_, sizeDedupe := sharedImage(t, layer, cfg, func(c *erofs.Compression) { allFrag(c); c.Dedupe = true })
			t.Logf("without dedupe %d bytes, with %d; saves %d (expected about 270 KiB)", sizePlain, sizeDedupe, sizePlain-sizeDedupe)
			if saved := sizePlain - sizeDedupe; saved < noiseSize*7/10 {
				t.Errorf("dedupe saves %d bytes, less than 70%% of %d", saved, noiseSize)
			}
		})
	}
}

// TestEndToEndFragmentsLayouts builds fragmentsTar with fragments and
// dedupe on small blocks, with compact and full (legacy) indexes.
func TestEndToEndFragmentsLayouts(t *testing.T) {
	mounttest.Require(t)
	layer := fragmentsTar()
	want, err := fstree.FromTar(bytes.NewReader(layer), fstree.TarOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, alg := range compressors {
		for _, l := range []struct {
			bs   int
			full bool
		}{{512, false}, {1024, true}} {
			for _, set := range fragmentOptionSets {
				if set.name != "fragments,dedupe" && set.name != "all-fragments,dedupe" {
					continue
				}
				t.Run(fmt.Sprintf("%s/bs%d/full=%v/%s", alg, l.bs, l.full, set.name), func(t *testing.T) {
					t.Parallel()
					o := compressed(t, alg, 8*l.bs, true)
					o.Image.BlockSize = l.bs
					o.Image.Compression.FullIndexes = l.full
					set.set(o.Image.Compression)
					checkImage(t, buildImage(t, bytes.NewReader(layer), o), want, true)
				})
			}
		}
	}
}

// TestFragmentsFeatureBits checks that the fragments and dedupe options
// set their feature bit, and make a packed inode, only when the image uses
// them, as mkfs.erofs does: not for a layer with nothing to compress, nor
// for dedupe with nothing to share.
func TestFragmentsFeatureBits(t *testing.T) {
	var nothing tarEntries
	nothing.dir("d/")
	nothing.file("d/empty", nil)
	nothing.symlink("d/sym", "empty")
	var distinct tarEntries
	distinct.file("a", tartest.Text("distinct a", 20000))
	distinct.file("b", tartest.Content("distinct b", 20000))
	for _, set := range fragmentOptionSets {
		for _, c := range []struct {
			name  string
			layer []byte
		}{{"nothing to compress", tartest.Tar(nothing...)}, {"nothing to share", tartest.Tar(distinct...)}} {
			o := fragmentOptions(t, "lz4hc", 4096, false, set)
			if c.name == "nothing to share" && usesFragments(o.Image.Compression) {
				continue // the tails are fragments
			}
			t.Run(set.name+"/"+c.name, func(t *testing.T) {
				img := &memImage{}
				if _, err := convert.TarToEROFS(bytes.NewReader(c.layer), img, o); err != nil {
					t.Fatal(err)
				}
				fsys, err := erofs.Open(bytes.NewReader(img.b))
				if err != nil {
					t.Fatal(err)
				}
				sb := fsys.Superblock()
				if sb.PackedNid != 0 || sb.FeatureIncompat&(erofs.FeatureIncompatFragments|erofs.FeatureIncompatDedupe) != 0 {
					t.Errorf("packed inode nid %d, feature_incompat %#x", sb.PackedNid, sb.FeatureIncompat)
				}
			})
		}
	}
}
