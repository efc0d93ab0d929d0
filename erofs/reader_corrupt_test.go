package erofs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// Tests of the reader against corrupt and hostile images. Every test here
// must end with an error or a valid answer: never a panic, a hang or a
// huge allocation.

const corruptTimeout = 60 * time.Second

// mutate returns a copy of the named golden image changed by fn, with the
// superblock checksum recomputed so that the change reaches the parser.
func mutate(t *testing.T, name string, fn func(img []byte, f *FS)) []byte {
	t.Helper()
	img := bytes.Clone(loadGolden(t, name))
	fn(img, openGolden(t, name))
	return fixChecksum(img)
}

// inodePos returns the byte offset of the inode a path resolves to.
func inodePos(t *testing.T, f *FS, name string) int64 {
	t.Helper()
	return statNid(t, f, name).pos
}

// direntPos returns the byte offset in the primary device of the directory
// entry name in directory dirName.
func direntPos(t *testing.T, f *FS, dirName, name string) int64 {
	t.Helper()
	dir := statNid(t, f, dirName)
	d, err := f.data(dir)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, f.blkSize)
	for b := range f.dirBlocks(dir) {
		blk, ents, err := f.dirBlock(dir, d, b, buf, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, e := range ents {
			if string(blk[e.start:e.end]) == name {
				ext, err := d.m.mapExtent(b << f.blkBits)
				if err != nil || ext.dev != f.r {
					t.Fatalf("mapExtent: %v", err)
				}
				return ext.pos + (b<<f.blkBits - ext.off) + int64(k*direntSize)
			}
		}
	}
	t.Fatalf("no entry %q in %q", name, dirName)
	return 0
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error = %v, want %v", what, err, target)
	}
}

func TestCorruptSuperblock(t *testing.T) {
	img := loadGolden(t, "plain.erofs")
	set := func(fn func(b []byte)) []byte {
		b := bytes.Clone(img)
		fn(b)
		return fixChecksum(b)
	}
	open := func(b []byte) error {
		_, err := Open(bytes.NewReader(b))
		return err
	}
	sb := SuperblockOffset

	wantErr(t, "bad magic", open(set(func(b []byte) { b[sb] ^= 1 })), ErrNotEROFS)
	wantErr(t, "empty image", open(nil), ErrCorrupt)
	wantErr(t, "short image", open(img[:sb+100]), ErrCorrupt)
	wantErr(t, "blkszbits 8", open(set(func(b []byte) { b[sb+sbBlkszBits] = 8 })), ErrCorrupt)
	wantErr(t, "blkszbits 17", open(set(func(b []byte) { b[sb+sbBlkszBits] = 17 })), ErrCorrupt)
	wantErr(t, "dirblkbits", open(set(func(b []byte) { b[sb+sbDirBlkBits] = 1 })), ErrCorrupt)
	wantErr(t, "extslots", open(set(func(b []byte) { b[sb+sbExtSlots] = 255 })), ErrCorrupt)
	for _, bit := range []uint32{0x200, 0x80000000, FeatureIncompatMetabox} {
		err := open(set(func(b []byte) { le.PutUint32(b[sb+sbFeatureIncompat:], bit) }))
		wantErr(t, fmt.Sprintf("incompat %#x", bit), err, errors.ErrUnsupported)
	}
	// The compression bits only announce compressed inodes; the 48-bit
	// layout changes nothing in an image whose addresses fit 32 bits.
	for _, bit := range []uint32{FeatureIncompat48Bit, FeatureIncompatZeroPadding, FeatureIncompatComprCfgs, FeatureIncompatZtailpacking, FeatureIncompatFragments} {
		if err := open(set(func(b []byte) { le.PutUint32(b[sb+sbFeatureIncompat:], bit) })); err != nil {
			t.Errorf("incompat %#x: %v", bit, err)
		}
	}
	// Unknown compression algorithms in the bitmap.
	err := open(set(func(b []byte) {
		le.PutUint32(b[sb+sbFeatureIncompat:], FeatureIncompatComprCfgs)
		le.PutUint16(b[sb+sbU1:], 0x30)
	}))
	wantErr(t, "unknown algorithm", err, errors.ErrUnsupported)
	if err == nil || !strings.Contains(err.Error(), "compression") {
		t.Errorf("unknown algorithm: error %v does not mention compression", err)
	}
	// Root NID pointing at a regular file, or out of the image.
	f := openGolden(t, "plain.erofs")
	one := statNid(t, f, "one").nid
	wantErr(t, "root is a file", open(set(func(b []byte) { le.PutUint16(b[sb+sbRootNid:], uint16(one)) })), ErrCorrupt)
	wantErr(t, "root beyond image", open(set(func(b []byte) { le.PutUint32(b[sb+sbMetaBlkAddr:], 1<<31) })), ErrCorrupt)

	// Without fixing the checksum, any change to block 0 after the
	// superblock's start is detected.
	for off := sb; off < 4096; off += 5 {
		b := bytes.Clone(img)
		b[off] ^= 0x41
		err := open(b)
		if off < sb+4 {
			wantErr(t, fmt.Sprintf("flip at %d", off), err, ErrNotEROFS)
			continue
		}
		wantErr(t, fmt.Sprintf("flip at %d", off), err, ErrCorrupt)
		if err != nil && off >= sb+sbBlkszBits+1 && !strings.Contains(err.Error(), "checksum") {
			t.Errorf("flip at %d: %v (want a checksum error)", off, err)
		}
	}
	// With a fixed checksum, every superblock byte flip gives an error or
	// a usable file system.
	small := loadGolden(t, "small512.erofs")
	withTimeout(t, corruptTimeout, func() {
		for off := sb; off < sb+superblockSize; off++ {
			for _, x := range []byte{0x01, 0x80, 0xFF} {
				b := bytes.Clone(small)
				b[off] ^= x
				fuzzOpen(t, fixChecksum(b))
			}
		}
	})
}

func TestCorruptTruncated(t *testing.T) {
	for _, name := range []string{"plain.erofs", "b512.erofs", "chunk8k.erofs", "prefix.erofs", "small512.erofs", "smallchunk.erofs"} {
		t.Run(name, func(t *testing.T) {
			img := loadGolden(t, name)
			offs := []int{0, 1, 1023, 1024, 1100, 1151, 1152, 1536, 2048, 4095, 4096, 4097}
			steps := 150
			if len(img) > 64<<10 || testing.Short() {
				steps = 30
			}
			for n := 0; n < len(img); n += len(img)/steps + 1 {
				offs = append(offs, n)
			}
			withTimeout(t, corruptTimeout, func() {
				for _, n := range offs {
					if n > len(img) {
						continue
					}
					fuzzOpen(t, img[:n])
					if f, err := Open(sizelessReader{bytes.NewReader(img[:n])}); err == nil {
						exercise(t, f)
					}
				}
			})
		})
	}
	// Data never comes back wrong: a read either fails or returns the
	// expected bytes.
	img := loadGolden(t, "plain.erofs")
	var files []wantEntry
	for _, w := range mainTree() {
		if w.mode&ModeTypeMask == ModeRegular && len(w.data) > 0 {
			files = append(files, w)
		}
	}
	withTimeout(t, corruptTimeout, func() {
		for n := 8192; n < len(img); n += 1999 {
			f, err := Open(bytes.NewReader(img[:n]))
			if err != nil {
				continue
			}
			for _, w := range files {
				b, err := f.ReadFile(w.path)
				if err == nil && !bytes.Equal(b, w.data) {
					t.Errorf("truncated at %d: ReadFile(%s) returned wrong data", n, w.path)
				}
				if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("truncated at %d: ReadFile(%s): unexpected error %v", n, w.path, err)
				}
			}
		}
	})
}

func TestCorruptRandomFlips(t *testing.T) {
	iters := 300
	if testing.Short() {
		iters = 30
	}
	for _, name := range []string{"plain.erofs", "b512.erofs", "chunk8k.erofs", "blobdev.erofs", "prefix.erofs", "small512.erofs", "smallchunk.erofs"} {
		t.Run(name, func(t *testing.T) {
			img := loadGolden(t, name)
			iters := iters
			if len(img) > 64<<10 {
				iters /= 5
			}
			rng := rand.New(rand.NewPCG(1, uint64(len(img))))
			// Metadata lives in the first blocks of mkfs images; aim there.
			span := min(len(img), 16384)
			withTimeout(t, corruptTimeout, func() {
				for range iters {
					b := bytes.Clone(img)
					for range 1 + rng.IntN(4) {
						off := SuperblockOffset + rng.IntN(span-SuperblockOffset)
						b[off] ^= byte(1 + rng.IntN(255))
					}
					fuzzOpen(t, fixChecksum(b))
				}
			})
		})
	}
}

func TestCorruptInodeBytes(t *testing.T) {
	for _, name := range []string{"plain.erofs", "chunk8k.erofs", "prefix.erofs", "small512.erofs", "smallchunk.erofs"} {
		f := openGolden(t, name)
		var paths []string
		for _, p := range []string{"one", "f4097", "f10000", "owned", "sym_long", "chr", "bigdir", "xa1", "zeros", "p1", "q", ".", "n00", "n05", "big", "symlong", "d", "d/e/f"} {
			if _, err := f.Lstat(p); err == nil {
				paths = append(paths, p)
			}
		}
		t.Run(name, func(t *testing.T) {
			img := loadGolden(t, name)
			big := len(img) > 64<<10 // slow to walk: fewer variants
			if big {
				paths = slices.DeleteFunc(paths, func(p string) bool { return !slices.Contains([]string{"f10000", "owned", "sym_long", "bigdir"}, p) })
			}
			withTimeout(t, corruptTimeout, func() {
				for _, p := range paths {
					ino := statNid(t, f, p)
					end := min(ino.metaEnd(), ino.pos+256) + 16
					for off := ino.pos; off < end && off < int64(len(img)); off++ {
						vals := []byte{0x00, 0xFF, img[off] ^ 0x80, img[off] + 1}
						if big {
							vals = vals[1:3]
						}
						for _, v := range vals {
							b := bytes.Clone(img)
							b[off] = v
							fuzzOpen(t, fixChecksum(b))
						}
					}
				}
			})
		})
	}
}

func TestCorruptDirentBytes(t *testing.T) {
	img := loadGolden(t, "b512.erofs")
	f := openGolden(t, "b512.erofs")
	withTimeout(t, corruptTimeout, func() {
		for _, de := range [][2]string{{".", "."}, {".", ".."}, {".", "dir1"}, {".", "sym_dir"}, {"dir1", "sub"}, {"bigdir", "entry-300-"}, {"bigdir", "entry-599-xxxxxxxxxxxxxxxxxxx"}} {
			pos := direntPos(t, f, de[0], de[1])
			for off := pos; off < pos+direntSize; off++ {
				for _, v := range []byte{0x00, 0x01, 0x02, 0x07, 0x08, 0x0C, 0xFF, img[off] + 1, img[off] - 1} {
					b := bytes.Clone(img)
					b[off] = v
					fuzzOpen(t, fixChecksum(b))
				}
			}
		}
	})
}

func TestCorruptDirectoryGraph(t *testing.T) {
	f := openGolden(t, "plain.erofs")
	root := f.sb.RootNid
	dir1 := statNid(t, f, "dir1").nid
	sticky := statNid(t, f, "sticky").nid
	setNid := func(dirName, name string, nid uint64) *FS {
		b := mutate(t, "plain.erofs", func(img []byte, f *FS) {
			le.PutUint64(img[direntPos(t, f, dirName, name):], nid)
		})
		g, err := Open(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	for _, tc := range []struct {
		dir, name string
		nid       uint64
		list      string // directory whose listing must fail
	}{
		{".", "sgid", root, "."},             // a directory containing itself
		{".", "sgid", sticky, "."},           // two entries for one directory
		{"dir1", "sub", dir1, "dir1"},        // itself, one level down
		{"dir1", "sub", root, "dir1"},        // its parent
		{"dir1/sub", "..", root, "dir1/sub"}, // ".." not the parent
		{"dir1", ".", root, "dir1"},          // "." not itself
	} {
		g := setNid(tc.dir, tc.name, tc.nid)
		_, err := g.ReadDir(tc.list)
		wantErr(t, fmt.Sprintf("%s/%s -> %d: ReadDir(%s)", tc.dir, tc.name, tc.nid, tc.list), err, ErrCorrupt)
		withTimeout(t, corruptTimeout, func() { exercise(t, g) })
	}

	// A directory entry typed as a directory whose inode is a symlink to
	// the root must not be followed (it would make walks unbounded).
	b := mutate(t, "plain.erofs", func(img []byte, f *FS) {
		pos := direntPos(t, f, ".", "sym_dir")
		img[pos+direntType] = FileTypeDir
	})
	g, err := Open(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.ReadDir("sym_dir")
	wantErr(t, "ReadDir via mistyped symlink", err, ErrCorrupt)
	_, err = g.Stat("sym_dir/inner")
	wantErr(t, "Stat via mistyped symlink", err, ErrCorrupt)
	withTimeout(t, corruptTimeout, func() { exercise(t, g) })
}

func TestCorruptSizesAndOffsets(t *testing.T) {
	open := func(b []byte, opts ...OpenOption) *FS {
		t.Helper()
		f, err := Open(bytes.NewReader(b), opts...)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	// allocs returns the bytes allocated by fn.
	allocs := func(fn func()) uint64 {
		var a, b runtime.MemStats
		runtime.ReadMemStats(&a)
		fn()
		runtime.ReadMemStats(&b)
		return b.TotalAlloc - a.TotalAlloc
	}

	// A 4 GiB compact file in a 100 KiB image: reading fails quickly
	// without allocating gigabytes.
	f := open(mutate(t, "plain.erofs", func(img []byte, f *FS) {
		le.PutUint32(img[inodePos(t, f, "f4096")+icSize:], 0xFFFFFFFF)
	}))
	var err error
	if n := allocs(func() { _, err = f.ReadFile("f4096") }); n > 32<<20 {
		t.Errorf("ReadFile of a huge corrupt file allocated %d bytes", n)
	}
	wantErr(t, "huge flat file", err, ErrCorrupt)

	// Extended inodes: an absurd size, and a negative one.
	f = open(mutate(t, "plain.erofs", func(img []byte, f *FS) {
		le.PutUint64(img[inodePos(t, f, "f4097")+ieSize:], 1<<62)
		le.PutUint64(img[inodePos(t, f, "owned")+ieSize:], 1<<63)
	}))
	if n := allocs(func() { _, err = f.ReadFile("f4097") }); n > 32<<20 {
		t.Errorf("ReadFile of a huge corrupt file allocated %d bytes", n)
	}
	if err == nil {
		t.Error("ReadFile of a 2^62-byte inline file succeeded")
	}
	_, err = f.Lstat("owned")
	wantErr(t, "negative size", err, ErrCorrupt)

	// Inline tail crossing the block boundary.
	f = open(mutate(t, "plain.erofs", func(img []byte, f *FS) {
		le.PutUint32(img[inodePos(t, f, "one")+icSize:], 4095)
	}))
	_, err = f.ReadFile("one")
	wantErr(t, "inline tail crossing a block", err, ErrCorrupt)

	// Bad layout, bad i_format bits, bogus mode, xattr icount 1.
	for _, tc := range []struct {
		what string
		fn   func(pos int64, img []byte)
	}{
		{"layout 5", func(pos int64, img []byte) { img[pos] = img[pos]&^0x0E | 5<<1 }},
		{"format bit 4", func(pos int64, img []byte) { img[pos] |= 0x10 }},
		{"format bit 8", func(pos int64, img []byte) { img[pos+1] |= 0x01 }},
		{"mode type 0", func(pos int64, img []byte) { le.PutUint16(img[pos+icMode:], 0o644) }},
		{"xattr icount 1", func(pos int64, img []byte) { le.PutUint16(img[pos+icXattrIcount:], 1) }},
	} {
		f = open(mutate(t, "plain.erofs", func(img []byte, f *FS) { tc.fn(inodePos(t, f, "f4095"), img) }))
		_, err = f.Lstat("f4095")
		wantErr(t, tc.what, err, ErrCorrupt)
	}
	// A compressed layout over garbage indexes stats but does not read.
	f = open(mutate(t, "plain.erofs", func(img []byte, f *FS) {
		pos := inodePos(t, f, "f4095")
		img[pos] = img[pos]&^0x0E | LayoutCompressedFull<<1
	}))
	if _, err := f.Lstat("f4095"); err != nil {
		t.Errorf("Lstat of a compressed inode: %v", err)
	}
	_, err = f.ReadFile("f4095")
	wantErr(t, "compressed inode", err, ErrCorrupt)

	// Symlink targets longer than PATH_MAX.
	f = open(mutate(t, "plain.erofs", func(img []byte, f *FS) {
		le.PutUint32(img[inodePos(t, f, "sym_dir")+icSize:], 5000)
	}))
	_, err = f.ReadLink("sym_dir")
	wantErr(t, "long symlink", err, ErrCorrupt)

	// Shared xattr count overflowing the xattr body; shared xattr ID
	// beyond the image.
	f = open(mutate(t, "plain.erofs", func(img []byte, f *FS) {
		img[inodePos(t, f, "xa2")+compactInodeSize+4] = 255
		ino := statNid(t, f, "xa3")
		le.PutUint32(img[ino.pos+ino.coreSize+12:], 0xFFFFFFFF)
	}))
	_, err = f.Lstat("xa2")
	wantErr(t, "shared xattr count", err, ErrCorrupt)
	_, err = f.Lstat("xa3")
	wantErr(t, "shared xattr id", err, ErrCorrupt)

	// Inline xattr entry longer than the body.
	f = open(mutate(t, "plain.erofs", func(img []byte, f *FS) {
		ino := statNid(t, f, "opaque")
		le.PutUint16(img[ino.pos+ino.coreSize+12+2:], 0xFFFF)
	}))
	_, err = f.Lstat("opaque")
	wantErr(t, "inline xattr overflow", err, ErrCorrupt)

	// Long prefix index out of range; prefix table with a zero length.
	f = open(mutate(t, "prefix.erofs", func(img []byte, f *FS) {
		ino := statNid(t, f, "q")
		img[ino.pos+ino.coreSize+12+1] = xattrLongPrefixFlag | 5
	}))
	_, err = f.Lstat("q")
	wantErr(t, "long prefix index", err, ErrCorrupt)
	b := mutate(t, "prefix.erofs", func(img []byte, f *FS) {
		le.PutUint16(img[int64(f.sb.XattrPrefixStart)*4:], 0)
	})
	_, err = Open(bytes.NewReader(b))
	wantErr(t, "zero-length long prefix", err, ErrCorrupt)

	// Directory blocks with bad name offsets.
	f = open(mutate(t, "plain.erofs", func(img []byte, f *FS) {
		le.PutUint16(img[direntPos(t, f, "dir1", ".")+direntOff:], 7)
	}))
	_, err = f.ReadDir("dir1")
	wantErr(t, "bad nameoff", err, ErrCorrupt)
	_, err = f.Stat("dir1/inner")
	wantErr(t, "lookup with bad nameoff", err, ErrCorrupt)
	f = open(mutate(t, "plain.erofs", func(img []byte, f *FS) {
		img[direntPos(t, f, "dir1", "inner")+direntType] = 9
	}))
	_, err = f.ReadDir("dir1")
	wantErr(t, "bad file type", err, ErrCorrupt)

	// Chunk-based files: a chunk array beyond the image, bad chunk format.
	f = open(mutate(t, "chunk8k.erofs", func(img []byte, f *FS) {
		le.PutUint32(img[inodePos(t, f, "f10000")+icSize:], 0xFFFFFFFF)
	}))
	if n := allocs(func() { _, err = f.ReadFile("f10000") }); n > 32<<20 {
		t.Errorf("ReadFile of a huge chunked file allocated %d bytes", n)
	}
	wantErr(t, "huge chunked file", err, ErrCorrupt)
	f = open(mutate(t, "chunk8k.erofs", func(img []byte, f *FS) {
		le.PutUint16(img[inodePos(t, f, "f10000")+icU:], chunkFormat48Bit)
	}))
	_, err = f.Lstat("f10000")
	wantErr(t, "48-bit chunk format", err, ErrCorrupt)

	// Device IDs beyond the device table.
	blob := loadGolden(t, "blob.img")
	b = mutate(t, "blobdev.erofs", func(img []byte, f *FS) {
		le.PutUint16(img[SuperblockOffset+sbExtraDevices:], 2) // device mask 3
		m := newChunkMapper(f, statNid(t, f, "f5000"))
		le.PutUint16(img[m.array+2:], 3)
	})
	f = open(b, WithDevices(bytes.NewReader(blob), bytes.NewReader(blob)))
	_, err = f.ReadFile("f5000")
	wantErr(t, "device id out of range", err, ErrCorrupt)
	if err != nil && !strings.Contains(err.Error(), "inode") {
		t.Errorf("error %q lacks inode context", err)
	}
	// A device table beyond the image.
	b = mutate(t, "blobdev.erofs", func(img []byte, f *FS) {
		le.PutUint16(img[SuperblockOffset+sbDevtSlotOff:], 0xFFFF)
	})
	_, err = Open(bytes.NewReader(b))
	wantErr(t, "device table beyond image", err, ErrCorrupt)
}

// TestCorruptHugeDirectory checks that a directory claiming a huge size is
// read only as far as its blocks exist.
func TestCorruptHugeDirectory(t *testing.T) {
	b := mutate(t, "b512.erofs", func(img []byte, f *FS) {
		ino := statNid(t, f, "bigdir")
		// Make it FLAT_PLAIN with a 4 GiB size (compact inode).
		img[ino.pos] = img[ino.pos] &^ 0x0E
		le.PutUint32(img[ino.pos+icSize:], 0xFFFFFFFF)
	})
	f, err := Open(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	withTimeout(t, corruptTimeout, func() {
		_, err := f.ReadDir("bigdir")
		wantErr(t, "ReadDir(huge)", err, ErrCorrupt)
		_, err = f.Lstat("bigdir/entry-300-")
		if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Lstat in huge dir: %v", err)
		}
	})
}
