package verity

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// memFile is a File in memory that grows on writes.
type memFile struct{ b []byte }

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}

// naiveTree computes the hash area of data the simple way, from the
// description in the kernel's verity.rst and cryptsetup's documentation,
// independently of Append: every level in full in memory, bottom up, then
// laid out top level first. It returns the bytes from the hash offset on,
// the superblock's block left zero, and the root hash.
func naiveTree(data []byte, bs int, salt []byte, superblock bool) (area, root []byte) {
	h := func(b []byte) []byte {
		s := sha256.Sum256(append(append([]byte{}, salt...), b...))
		return s[:]
	}
	padded := append([]byte{}, data...)
	for len(padded)%bs != 0 {
		padded = append(padded, 0)
	}
	var digests [][]byte
	for i := 0; i < len(padded); i += bs {
		digests = append(digests, h(padded[i:i+bs]))
	}
	var levels [][]byte // bottom up, each level's blocks concatenated
	for len(digests) > 1 {
		var lvl []byte
		var next [][]byte
		for i := 0; i < len(digests); i += bs / 32 {
			blk := make([]byte, bs)
			for j := 0; j < bs/32 && i+j < len(digests); j++ {
				copy(blk[j*32:], digests[i+j])
			}
			lvl = append(lvl, blk...)
			next = append(next, h(blk))
		}
		levels = append(levels, lvl)
		digests = next
	}
	root = digests[0]
	if superblock {
		area = make([]byte, bs)
	}
	for i := len(levels) - 1; i >= 0; i-- {
		area = append(area, levels[i]...)
	}
	return area, root
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestAppendNaive checks Append's tree byte for byte against naiveTree,
// for sizes around every level boundary (with 512-byte blocks, 16 digests
// a block, three levels are a few hundred KiB).
func TestAppendNaive(t *testing.T) {
	type tc struct {
		size, bs int
	}
	var cases []tc
	for _, bs := range []int{512, 4096} {
		per := bs / 32
		for _, blocks := range []int{1, 2, per, per + 1, per * per, per*per + 1} {
			if blocks*bs > 8<<20 {
				continue
			}
			cases = append(cases, tc{blocks * bs, bs}, tc{blocks*bs - 100, bs})
		}
		cases = append(cases, tc{1, bs})
	}
	cases = append(cases, tc{16*16*16*512 + 512, 512}) // four levels
	for _, c := range cases {
		for _, saltCase := range []struct {
			name string
			salt []byte
		}{{"default", nil}, {"none", []byte{}}, {"odd", []byte{1, 2, 3, 4, 5}}, {"max", bytes.Repeat([]byte{0xa5}, MaxSaltSize)}} {
			for _, sb := range []bool{true, false} {
				name := fmt.Sprintf("%d/bs%d/salt-%s/sb-%v", c.size, c.bs, saltCase.name, sb)
				t.Run(name, func(t *testing.T) {
					data := randomBytes(c.size, uint64(c.size))
					f := &memFile{b: append([]byte{}, data...)}
					res, err := Append(f, int64(c.size), &Options{BlockSize: c.bs, Salt: saltCase.salt, NoSuperblock: !sb})
					if err != nil {
						t.Fatal(err)
					}
					salt := saltCase.salt
					if salt == nil {
						salt = make([]byte, 32)
					}
					area, root := naiveTree(data, c.bs, salt, sb)
					if !bytes.Equal(res.RootHash, root) {
						t.Errorf("root hash %x, want %x", res.RootHash, root)
					}
					if !bytes.Equal(f.b[:c.size], data) {
						t.Fatal("the image changed")
					}
					hashOff := (c.size + c.bs - 1) / c.bs * c.bs
					if res.HashOffset != int64(hashOff) || res.DataBlocks != uint64(hashOff/c.bs) {
						t.Errorf("hash offset %d, data blocks %d; want %d, %d", res.HashOffset, res.DataBlocks, hashOff, hashOff/c.bs)
					}
					if !bytes.Equal(f.b[c.size:hashOff], make([]byte, hashOff-c.size)) {
						t.Error("padding before the hash area is not zero")
					}
					if want := int64(hashOff + len(area)); res.Size != want || int64(len(f.b)) != want {
						t.Fatalf("size %d (file %d), want %d", res.Size, len(f.b), want)
					}
					got := bytes.Clone(f.b[hashOff:])
					if sb {
						checkSuperblock(t, got[:c.bs], res, salt)
						clear(got[:c.bs])
					}
					if !bytes.Equal(got, area) {
						t.Errorf("hash area differs from the naive tree")
					}
					if n, err := TreeSize(int64(c.size), &Options{BlockSize: c.bs, Salt: saltCase.salt, NoSuperblock: !sb}); err != nil || n != res.Size-int64(c.size) {
						t.Errorf("TreeSize = %d, %v; want %d", n, err, res.Size-int64(c.size))
					}
				})
			}
		}
	}
}

// checkSuperblock decodes the superblock field by field, at the offsets
// of cryptsetup's struct verity_sb.
func checkSuperblock(t *testing.T, b []byte, res *Result, salt []byte) {
	t.Helper()
	le := binary.LittleEndian
	if string(b[:8]) != "verity\x00\x00" || le.Uint32(b[8:]) != 1 || le.Uint32(b[12:]) != 1 {
		t.Errorf("superblock header % x", b[:16])
	}
	if !bytes.Equal(b[16:32], res.UUID[:]) || res.UUID == ([16]byte{}) {
		t.Errorf("superblock UUID % x, result's % x", b[16:32], res.UUID)
	}
	if want := uuidFromRoot(res.RootHash); res.UUID != want {
		t.Errorf("UUID %x, want %x derived from the root hash", res.UUID, want)
	}
	if alg := strings.TrimRight(string(b[32:64]), "\x00"); alg != "sha256" {
		t.Errorf("algorithm %q", alg)
	}
	if le.Uint32(b[64:]) != uint32(res.BlockSize) || le.Uint32(b[68:]) != uint32(res.BlockSize) || le.Uint64(b[72:]) != res.DataBlocks {
		t.Errorf("block sizes %d, %d, data blocks %d", le.Uint32(b[64:]), le.Uint32(b[68:]), le.Uint64(b[72:]))
	}
	if n := int(le.Uint16(b[80:])); n != len(salt) || !bytes.Equal(b[88:88+n], salt) {
		t.Errorf("salt size %d, salt % x; want % x", n, b[88:88+n], salt)
	}
	if !bytes.Equal(b[88+len(salt):], make([]byte, len(b)-88-len(salt))) || !bytes.Equal(b[82:88], make([]byte, 6)) {
		t.Error("superblock padding is not zero")
	}
}

func TestAppendErrors(t *testing.T) {
	f := &memFile{b: make([]byte, 4096)}
	for _, o := range []*Options{{BlockSize: 256}, {BlockSize: 3000}, {BlockSize: 1 << 20}, {Salt: make([]byte, 257)}, {NoSuperblock: true, UUID: [16]byte{1}}} {
		if _, err := Append(f, 4096, o); err == nil {
			t.Errorf("Append with %+v: no error", o)
		}
	}
	if _, err := Append(f, 0, nil); !errors.Is(err, ErrEmpty) {
		t.Errorf("Append of nothing: %v, want ErrEmpty", err)
	}
	// An image shorter than it says: an error naming the offset.
	if _, err := Append(&memFile{b: make([]byte, 5000)}, 9000, nil); err == nil || !strings.Contains(err.Error(), "offset 5000") || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Append past the end: %v", err)
	}
	if _, err := Append(f, 1<<62, nil); err == nil {
		t.Error("Append of 2^62 bytes: no error")
	}
	if _, err := ParseSalt("xyz"); err == nil {
		t.Error("ParseSalt(xyz): no error")
	}
	if s, err := ParseSalt("-"); err != nil || s == nil || len(s) != 0 {
		t.Errorf("ParseSalt(-) = %v, %v", s, err)
	}
	if s, err := ParseSalt(""); err != nil || s == nil || len(s) != 0 {
		t.Errorf("ParseSalt(\"\") = %v, %v", s, err)
	}
}

// TestMetadata checks the metadata file's form: what containerd's
// internal/dmverity ReadMetadata parses.
func TestMetadata(t *testing.T) {
	f := &memFile{b: randomBytes(3*4096, 7)}
	res, err := Append(f, int64(len(f.b)), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := res.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || m["roothash"] != hex.EncodeToString(res.RootHash) || m["hashoffset"] != float64(3*4096) {
		t.Errorf("metadata %s", b)
	}
	res.Superblock = false
	if _, err := res.Metadata(); err == nil {
		t.Error("metadata without a superblock: no error")
	}
}

// veritysetup finds Debian's veritysetup (package cryptsetup-bin, which
// .ci/run installs), skipping the test without it unless RAFS_E2E is
// "require".
func veritysetup(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("veritysetup")
	if err != nil {
		for _, d := range []string{"/usr/sbin", "/sbin"} {
			if _, err := os.Stat(filepath.Join(d, "veritysetup")); err == nil {
				return filepath.Join(d, "veritysetup")
			}
		}
		if os.Getenv("RAFS_E2E") == "require" {
			t.Fatal("veritysetup (Debian package cryptsetup-bin) not found, and RAFS_E2E=require")
		}
		t.Skip("veritysetup (Debian package cryptsetup-bin) not found")
	}
	return p
}

// TestVeritysetup checks Append's output with veritysetup: verify accepts
// it with the root hash (reading the parameters from the superblock, or
// given them without one), refuses it after one flipped byte of data,
// and format, given the same parameters, writes the same bytes.
func TestVeritysetup(t *testing.T) {
	vs := veritysetup(t)
	dir := t.TempDir()
	for _, c := range []struct {
		size, bs int
		salt     []byte
		noSB     bool
	}{
		{300*4096 + 123, 4096, nil, false}, // three levels' worth of padding, two levels
		{1, 4096, nil, false},
		{4096, 4096, []byte{}, true},
		{200 * 512, 512, []byte("rafs"), false},
		{17 * 16 * 512, 512, nil, true},
	} {
		name := fmt.Sprintf("%d-bs%d-nosb%v", c.size, c.bs, c.noSB)
		t.Run(name, func(t *testing.T) {
			img := filepath.Join(dir, name+".img")
			data := randomBytes(c.size, uint64(c.size)+3)
			if err := os.WriteFile(img, data, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(img, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Append(f, int64(c.size), &Options{BlockSize: c.bs, Salt: c.salt, NoSuperblock: c.noSB})
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			args := []string{"--hash-offset", fmt.Sprint(res.HashOffset)}
			params := []string{"--data-block-size", fmt.Sprint(c.bs), "--hash-block-size", fmt.Sprint(c.bs),
				"--data-blocks", fmt.Sprint(res.DataBlocks), "--salt", res.SaltHex(), "--hash", "sha256", "--format", "1"}
			if c.noSB {
				args = append(args, "--no-superblock")
				args = append(args, params...)
			}
			run := func(args ...string) error {
				out, err := exec.Command(vs, args...).CombinedOutput()
				if err != nil {
					return fmt.Errorf("veritysetup %s: %v\n%s", strings.Join(args, " "), err, out)
				}
				return nil
			}
			if err := run(append(append([]string{"verify"}, args...), img, img, res.RootHashHex())...); err != nil {
				t.Fatal(err)
			}
			// veritysetup format with the same parameters (and UUID) into
			// a copy of the image writes the same hash area.
			ours, _ := os.ReadFile(img)
			ref := filepath.Join(dir, name+".ref")
			if err := os.WriteFile(ref, ours[:res.HashOffset], 0o644); err != nil {
				t.Fatal(err)
			}
			fargs := append([]string{"format"}, params...)
			fargs = append(fargs, "--hash-offset", fmt.Sprint(res.HashOffset))
			if c.noSB {
				fargs = append(fargs, "--no-superblock")
			} else {
				fargs = append(fargs, "--uuid", res.UUIDString())
			}
			if err := run(append(fargs, ref, ref)...); err != nil {
				t.Fatal(err)
			}
			theirs, _ := os.ReadFile(ref)
			if !bytes.Equal(ours, theirs) {
				t.Errorf("veritysetup format wrote %d bytes, different from ours (%d bytes)", len(theirs), len(ours))
			}
			// One flipped data byte, in the middle: verify fails.
			ours[c.size/2] ^= 0x40
			if err := os.WriteFile(img, ours, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := run(append(append([]string{"verify"}, args...), img, img, res.RootHashHex())...); err == nil {
				t.Fatal("veritysetup verify accepted the image with a flipped byte")
			}
		})
	}
}
