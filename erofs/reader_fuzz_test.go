package erofs

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"io/fs"
	"path"
	"testing"
)

// exerciseLimits bounds the work exercise does on one image, so that
// images with huge sparse files or many hard links still finish quickly.
type exerciseLimits struct {
	entries int   // directory entries visited
	bytes   int64 // file bytes read
}

// exercise walks the whole tree of f the way fs.WalkDir does (listing a
// directory before descending into entries typed as directories), reading
// every file, link and xattr through every API. It fails tb if a directory
// inode is listed twice: the reader's "." / ".." and duplicate checks must
// keep walks of corrupt images finite. It returns the number of entries
// visited.
func exercise(tb testing.TB, f *FS) int {
	lim := exerciseLimits{entries: 20000, bytes: 8 << 20}
	listed := map[uint64]string{}
	visited := 0
	buf := make([]byte, 64<<10)

	readFile := func(p string, size int64) {
		file, err := f.Open(p)
		if err != nil {
			return
		}
		defer file.Close()
		if _, err := file.Stat(); err != nil {
			return
		}
		var streamed bytes.Buffer
		var n int64
		if size >= 0 && size <= 64<<10 {
			n, _ = io.Copy(&streamed, file)
		} else {
			n, _ = io.CopyBuffer(io.Discard, io.LimitReader(file, min(lim.bytes, 1<<20)), buf)
		}
		lim.bytes -= n
		if ra, ok := file.(io.ReaderAt); ok && size > 0 {
			for _, off := range []int64{size - 1, size / 2, size - 4097} {
				if off >= 0 {
					ra.ReadAt(buf[:min(4097, len(buf))], off)
				}
			}
		}
		if s, ok := file.(io.Seeker); ok {
			s.Seek(0, io.SeekStart)
			file.Read(buf[:1])
		}
		if size >= 0 && size <= 64<<10 && lim.bytes > size {
			if b, err := f.ReadFile(p); err == nil {
				lim.bytes -= int64(len(b))
				if int64(len(b)) != size {
					tb.Fatalf("ReadFile(%s) returned %d bytes, size %d", p, len(b), size)
				}
				if int64(streamed.Len()) == size && !bytes.Equal(b, streamed.Bytes()) {
					tb.Fatalf("ReadFile(%s) and Read disagree", p)
				}
			}
		}
	}

	var walk func(p string)
	walk = func(p string) {
		ents, err := f.ReadDir(p)
		if err != nil {
			return
		}
		res, err := f.resolve(p, true)
		if err != nil {
			tb.Fatalf("ReadDir(%s) succeeded but resolve failed: %v", p, err)
		}
		nid := res.ino.nid
		if prev, dup := listed[nid]; dup {
			tb.Fatalf("directory inode %d listed twice: as %q and %q", nid, prev, p)
		}
		listed[nid] = p
		if d, err := f.Open(p); err == nil {
			if rd, ok := d.(fs.ReadDirFile); ok {
				rd.ReadDir(1)
			}
			d.Close()
		}
		for k, e := range ents {
			if visited >= lim.entries {
				return
			}
			visited++
			cp := path.Join(p, e.Name())
			if info, err := e.Info(); err == nil {
				_ = info.Sys().(*Stat).Xattrs
				_ = info.Mode()
			}
			if k >= 64 && !e.IsDir() {
				// Path resolution is what costs; in big directories
				// the inode (above) is enough for the rest.
				continue
			}
			f.Stat(cp)
			li, err := f.Lstat(cp)
			switch {
			case e.Type()&fs.ModeSymlink != 0:
				f.ReadLink(cp)
				if fi, err := f.Stat(cp); err == nil && fi.Mode().IsRegular() {
					readFile(cp, fi.Size())
				}
			case e.IsDir():
				walk(cp)
			case err == nil && li.Mode().IsRegular():
				readFile(cp, li.Size())
			case err == nil:
				readFile(cp, -1)
			}
		}
	}
	walk(".")
	return visited
}

// fuzzOpen opens data as an image; if it declares extra devices, data
// itself also serves as each device (which exercises device addressing).
func fuzzOpen(t *testing.T, data []byte) {
	f, err := Open(bytes.NewReader(data))
	if err != nil {
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotEROFS) && !errors.Is(err, errors.ErrUnsupported) {
			t.Fatalf("Open: unexpected error class: %v", err)
		}
		return
	}
	f.Superblock()
	exercise(t, f)
	if n := int(f.sb.ExtraDevices); n > 0 && n <= 16 {
		devs := make([]io.ReaderAt, n)
		for i := range devs {
			devs[i] = bytes.NewReader(data)
		}
		if f, err := Open(bytes.NewReader(data), WithDevices(devs...)); err == nil {
			exercise(t, f)
		}
	}
}

// fuzzMinimizeTime is FuzzOpen's default for -test.fuzzminimizetime.
const fuzzMinimizeTime = "0"

// fixChecksum returns img with a recomputed superblock checksum (if it has
// one), so that mutated images get past the checksum to the code behind it.
func fixChecksum(img []byte) []byte {
	const at = SuperblockOffset
	if len(img) < at+superblockSize || le.Uint32(img[at+sbFeatureCompat:])&FeatureCompatSbChksum == 0 {
		return img
	}
	bits := img[at+sbBlkszBits]
	if bits < 9 || bits > 16 {
		return img
	}
	n := checksumLen(1 << bits)
	if at+n > len(img) {
		return img
	}
	out := bytes.Clone(img)
	le.PutUint32(out[at+sbChecksum:], 0)
	le.PutUint32(out[at+sbChecksum:], superblockChecksum(out[at:at+n]))
	return out
}

// FuzzOpen opens arbitrary bytes as an image and walks the whole tree. Run
// it with
//
//	go test ./erofs -run XXX -fuzz FuzzOpen -fuzztime 60s
//
// Crashers are written to testdata/fuzz/FuzzOpen and then run as regression
// seeds by every go test.
func FuzzOpen(f *testing.F) {
	// The fuzzing engine minimizes every input that finds new coverage,
	// by default for up to 60s, with a quadratic algorithm: for
	// kilobyte-sized images that is the whole time budget, so fuzzing
	// makes no progress. Unless the flag was given, minimize only briefly.
	minimizeSet := false
	flag.Visit(func(fl *flag.Flag) { minimizeSet = minimizeSet || fl.Name == "test.fuzzminimizetime" })
	if fl := flag.Lookup("test.fuzzminimizetime"); fl != nil && !minimizeSet {
		if err := fl.Value.Set(fuzzMinimizeTime); err != nil {
			f.Fatal(err)
		}
	}
	// Small seeds keep executions and input minimization fast; the big
	// golden images are exercised by the corruption tests instead.
	seeds := []string{"small512.erofs", "smallchunk.erofs", "blobdev.erofs", "prefix.erofs",
		"zseed-lz4.erofs", "zseed-lzma.erofs", "zseed-zstd.erofs", "zseed-deflate.erofs"}
	// Packed inodes, shared fragments, shared and partially referenced
	// pclusters of every algorithm.
	for _, g := range zseedShareGoldens() {
		seeds = append(seeds, g.name)
	}
	for _, name := range seeds {
		f.Add(loadGolden(f, name))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzOpen(t, data)
		if fixed := fixChecksum(data); !bytes.Equal(fixed, data) {
			fuzzOpen(t, fixed)
		}
	})
}
