package erofs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"testing"
)

// patternDevice is a device of size bytes whose byte at offset off is
// derived from off, so that reading from the wrong place shows.
type patternDevice struct{ size int64 }

func patternByte(off int64) byte {
	x := uint64(off)
	x ^= x >> 29
	x *= 0x9E3779B97F4A7C15
	return byte(x ^ x>>32)
}

func (d patternDevice) ReadAt(p []byte, off int64) (int, error) {
	if off >= d.size {
		return 0, io.EOF
	}
	n := len(p)
	if int64(n) > d.size-off {
		n = int(d.size - off)
	}
	for i := range p[:n] {
		p[i] = patternByte(off + int64(i))
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func patternBytes(off, n int64) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = patternByte(off + int64(i))
	}
	return b
}

// TestChunked48Bit writes chunks past block 2^32 of a device of more
// than 2^32 512-byte blocks: the image takes the 48-bit layout (chunk
// format, superblock feature, device slot blocks_hi), and reads back.
func TestChunked48Bit(t *testing.T) {
	const bs = 512
	blocks := uint64(1)<<32 + 1000
	dev := patternDevice{size: int64(blocks) * bs}
	img := &ddImage{}
	w, err := NewWriter(img, &WriterOptions{BlockSize: bs, Devices: []SuperblockDevice{{Tag: "big", Blocks: blocks}}})
	if err != nil {
		t.Fatal(err)
	}
	far := uint64(1)<<32 + 7 // past 32 bits
	want := map[string][]byte{
		"far":   patternBytes(int64(far)*bs, 3000),
		"mixed": append(patternBytes(5*bs, 1024), append(make([]byte, 1024), patternBytes(int64(far+100)*bs, 700)...)...),
		"near":  patternBytes(9*bs, 600),
	}
	add := func(name string, f ChunkedFile) {
		t.Helper()
		if err := w.AddChunks(&Entry{Path: name, Mode: ModeRegular | 0o644, Size: int64(len(want[name]))}, f); err != nil {
			t.Fatal(err)
		}
	}
	add("far", ChunkedFile{ChunkSize: 4096, Chunks: []Chunk{{Device: 1, Block: far}}})
	add("mixed", ChunkedFile{ChunkSize: 1024, Chunks: []Chunk{{Device: 1, Block: 5}, {Hole: true}, {Device: 1, Block: far + 100}}})
	add("near", ChunkedFile{ChunkSize: 1024, Chunks: []Chunk{{Device: 1, Block: 9}}})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	f, err := Open(bytes.NewReader(img.b), WithDevices(dev))
	if err != nil {
		t.Fatal(err)
	}
	sb := f.Superblock()
	if sb.FeatureIncompat&FeatureIncompat48Bit == 0 {
		t.Errorf("feature_incompat %#x: no 48-bit layout", sb.FeatureIncompat)
	}
	if len(sb.Devices) != 1 || sb.Devices[0].Blocks != blocks {
		t.Errorf("devices %+v: want one of %d blocks", sb.Devices, blocks)
	}
	for name, data := range want {
		got, err := fs.ReadFile(f, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("%s: content differs", name)
		}
	}

	// The 48-bit files' chunk format says so; the 32-bit one's does not.
	for name, wide := range map[string]bool{"far": true, "mixed": true, "near": false} {
		fi, err := fs.Stat(f, name)
		if err != nil {
			t.Fatal(err)
		}
		ino, err := f.inode(fi.Sys().(*Stat).Nid)
		if err != nil {
			t.Fatal(err)
		}
		if got := uint16(ino.u)&ChunkFormat48Bit != 0; got != wide {
			t.Errorf("%s: chunk format %#x: 48-bit %v, want %v", name, ino.u, got, wide)
		}
	}

	// A reader that ignored startblk_hi would read block far&(2^32-1).
	if bytes.Equal(patternBytes(int64(far&(1<<32-1))*bs, 3000), want["far"]) {
		t.Fatal("the pattern does not tell the blocks apart")
	}
}

// TestChunked48BitHole checks the 48-bit hole encoding (all 48 bits set,
// as mkfs.erofs writes it) and that a block whose low 32 bits are the
// hole marker is refused.
func TestChunked48BitHole(t *testing.T) {
	w, err := NewWriter(&ddImage{}, &WriterOptions{BlockSize: 512, Devices: []SuperblockDevice{{}}})
	if err != nil {
		t.Fatal(err)
	}
	_, b, err := w.planChunks(2048, ChunkedFile{ChunkSize: 1024, Chunks: []Chunk{{Hole: true}, {Device: 1, Block: 1 << 40}}})
	if err != nil {
		t.Fatal(err)
	}
	hole, data := DecodeChunkIndex(b[:8]), DecodeChunkIndex(b[8:])
	if hole != (ChunkIndex{Advise: 0xFFFF, BlkAddr: NullAddr}) {
		t.Errorf("hole %+v", hole)
	}
	if data.StartBlock(true) != 1<<40 || data.DeviceID != 1 || data.StartBlock(false) != 0 {
		t.Errorf("chunk %+v: start %#x", data, data.StartBlock(true))
	}
	for _, blk := range []uint64{uint64(NullAddr), 1<<33 | uint64(NullAddr), 1 << 48} {
		if _, _, err := w.planChunks(1024, ChunkedFile{ChunkSize: 1024, Chunks: []Chunk{{Device: 1, Block: blk}}}); err == nil {
			t.Errorf("block %#x: no error", blk)
		}
	}
	if _, err := NewWriter(&ddImage{}, &WriterOptions{Devices: []SuperblockDevice{{Blocks: 1 << 48}}}); err == nil {
		t.Error("device of 2^48 blocks: no error")
	}
}

// TestSuperblock48Bit round-trips the 48-bit superblock and device slot
// fields, and checks that without the feature they are not read.
func TestSuperblock48Bit(t *testing.T) {
	sb := Superblock{Magic: Magic, BlkSzBits: 9, FeatureIncompat: FeatureIncompat48Bit, RootNid: 1 << 20, Blocks: 1<<40 + 3}
	b := make([]byte, SuperblockSize)
	if err := sb.Encode(b); err != nil {
		t.Fatal(err)
	}
	got := DecodeSuperblock(b)
	if got.RootNid != sb.RootNid || got.Blocks != sb.Blocks {
		t.Errorf("48-bit: root %d blocks %d, want %d %d", got.RootNid, got.Blocks, sb.RootNid, sb.Blocks)
	}
	le.PutUint32(b[sbFeatureIncompat:], 0)
	if got := DecodeSuperblock(b); got.Blocks != 3 || got.RootNid != uint64(le.Uint16(b[sbRootNid:])) {
		t.Errorf("without the feature: root %d blocks %d", got.RootNid, got.Blocks)
	}
	// Small values keep the 16-bit root NID, as mkfs.erofs writes them.
	small := Superblock{Magic: Magic, BlkSzBits: 9, FeatureIncompat: FeatureIncompat48Bit, RootNid: 40, Blocks: 100}
	if err := small.Encode(b); err != nil {
		t.Fatal(err)
	}
	if le.Uint64(b[sbRootNid8b:]) != 0 || le.Uint16(b[sbRootNid:]) != 40 {
		t.Errorf("small 48-bit superblock: rootnid_8b %d, rootnid_2b %d", le.Uint64(b[sbRootNid8b:]), le.Uint16(b[sbRootNid:]))
	}

	d := SuperblockDevice{Tag: "t", Blocks: 1<<33 + 5, UniAddr: 1<<34 + 9}
	slot := make([]byte, DeviceSlotSize)
	if err := d.Encode(slot); err != nil {
		t.Fatal(err)
	}
	if got := DecodeDeviceSlot48(slot); got != d {
		t.Errorf("slot %+v, want %+v", got, d)
	}
	if got := DecodeDeviceSlot(slot); got.Blocks != 5 || got.UniAddr != 9 {
		t.Errorf("32-bit slot %+v", got)
	}
}

// TestDevicesAppended checks that DevicesAppended places the devices
// after the image, and that the image followed by its device reads
// alone.
func TestDevicesAppended(t *testing.T) {
	const bs = 512
	dev := patternBytes(0, 8*bs)
	img := &ddImage{}
	w, err := NewWriter(img, &WriterOptions{BlockSize: bs, Devices: []SuperblockDevice{{}}, DevicesAppended: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddChunks(&Entry{Path: "f", Mode: ModeRegular | 0o644, Size: 1500}, ChunkedFile{ChunkSize: 2048, Chunks: []Chunk{{Device: 1, Block: 3}}}); err != nil {
		t.Fatal(err)
	}
	if err := w.SetDeviceBlocks(1, 8); err != nil {
		t.Fatal(err)
	}
	if err := w.SetDeviceBlocks(2, 8); err == nil {
		t.Error("SetDeviceBlocks(2): no error")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.SetDeviceBlocks(1, 8); err == nil {
		t.Error("SetDeviceBlocks after Close: no error")
	}
	whole := append(bytes.Clone(img.b), dev...)
	f, err := Open(bytes.NewReader(whole))
	if err != nil {
		t.Fatal(err)
	}
	if d := f.Superblock().Devices[0]; d.UniAddr != uint64(len(img.b))/bs || d.Blocks != 8 {
		t.Errorf("device %+v: want 8 blocks at block %d", d, len(img.b)/bs)
	}
	got, err := fs.ReadFile(f, "f")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, dev[3*bs:3*bs+1500]) {
		t.Error("content differs")
	}
	// Given the device, the image reads it there instead.
	f, err = Open(bytes.NewReader(img.b), WithDevices(bytes.NewReader(dev)))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := fs.ReadFile(f, "f"); err != nil || !bytes.Equal(got, dev[3*bs:3*bs+1500]) {
		t.Errorf("with the device: %v, or content differs", err)
	}
	if _, err := fs.ReadFile(f, "missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
