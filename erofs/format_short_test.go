package erofs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// TestDecodersShortBuffers calls every exported decoder with every length
// shorter than its record (and one byte more, from a longer buffer's
// capacity): none may panic, and a short record decodes as if padded with
// zeros.
func TestDecodersShortBuffers(t *testing.T) {
	full := bytes.Repeat([]byte{0xA5}, 512)
	decoders := map[string]struct {
		size int
		fn   func(b []byte) any
	}{
		"DecodeSuperblock":       {SuperblockSize, func(b []byte) any { return DecodeSuperblock(b) }},
		"InodeRecordSize":        {2, func(b []byte) any { return InodeRecordSize(b) }},
		"DecodeInode":            {ExtendedInodeSize, func(b []byte) any { return DecodeInode(b) }},
		"DecodeDirent":           {DirentSize, func(b []byte) any { return DecodeDirent(b) }},
		"DecodeXattrIbodyHeader": {XattrIbodyHeaderSize, func(b []byte) any { return DecodeXattrIbodyHeader(b) }},
		"DecodeXattrEntryHeader": {4, func(b []byte) any { a, c, d := DecodeXattrEntryHeader(b); return [3]int{a, int(c), d} }},
		"DecodeXattrEntry":       {8, func(b []byte) any { e, n, err := DecodeXattrEntry(b); return fmt.Sprint(e, n, err) }},
		"DecodeChunkIndex":       {ChunkIndexSize, func(b []byte) any { return DecodeChunkIndex(b) }},
		"DecodeDeviceSlot":       {DeviceSlotSize, func(b []byte) any { return DecodeDeviceSlot(b) }},
		"DecodeDeviceSlot48":     {DeviceSlotSize, func(b []byte) any { return DecodeDeviceSlot48(b) }},
		"SharedXattrID":          {XattrIbodyHeaderSize + 8, func(b []byte) any { return SharedXattrID(b, 1) }},
		"DirBlockEntries":        {DirentSize, func(b []byte) any { n, err := DirBlockEntries(b); return fmt.Sprint(n, err) }},
		"DirentName":             {2 * DirentSize, func(b []byte) any { s, e := DirentName(b, 3, 1); return [2]int{s, e} }},
		"CString":                {16, func(b []byte) any { return CString(b) }},
	}
	for name, d := range decoders {
		for n := 0; n < d.size; n++ {
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("%s(%d bytes): panic: %v", name, n, r)
					}
				}()
				d.fn(full[:n])
				d.fn(full[:n:n])
			}()
		}
	}
	// Zero padding: a record cut short decodes as the full record with
	// its tail zeroed.
	rec := bytes.Clone(full[:SuperblockSize])
	cut := 100
	clear(rec[cut:])
	if got, want := DecodeSuperblock(full[:cut]), DecodeSuperblock(rec); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("short superblock: %+v, want %+v", got, want)
	}
}

// TestEncodersShortBuffers calls every exported encoder with every length
// shorter than its record: each must return an error wrapping
// io.ErrShortBuffer, not panic, and leave the buffer untouched; the full
// length must succeed.
func TestEncodersShortBuffers(t *testing.T) {
	sb := &Superblock{Magic: Magic, BlkSzBits: 12, RootNid: 1 << 20, Blocks: 1 << 33, FeatureIncompat: FeatureIncompat48Bit, VolumeName: "v"}
	compact := &Inode{Format: LayoutFlatPlain << 1, Mode: 0o100644, Size: 1}
	extended := &Inode{Format: inodeVersionExtended, Mode: 0o100644, Size: 1 << 40}
	names := []string{"a", "bc"}
	encoders := map[string]struct {
		size int
		fn   func(b []byte) error
	}{
		"Superblock.Encode":       {SuperblockSize, sb.Encode},
		"Inode.Encode (compact)":  {CompactInodeSize, compact.Encode},
		"Inode.Encode (extended)": {ExtendedInodeSize, extended.Encode},
		"Dirent.Encode":           {DirentSize, Dirent{Nid: 7, NameOff: 12, FileType: FileTypeRegular}.Encode},
		"XattrIbodyHeader.Encode": {XattrIbodyHeaderSize, XattrIbodyHeader{NameFilter: 1, SharedCount: 2}.Encode},
		"ChunkIndex.Encode":       {ChunkIndexSize, ChunkIndex{Advise: 1, DeviceID: 2, BlkAddr: 3}.Encode},
		"SuperblockDevice.Encode": {DeviceSlotSize, (&SuperblockDevice{Tag: "t", Blocks: 1, UniAddr: 2}).Encode},
		"EncodeDirBlock (2 names)": {2*DirentSize + 3, func(b []byte) error {
			return EncodeDirBlock(b, len(names), func(k int) (uint64, uint8, string) { return uint64(k + 1), FileTypeRegular, names[k] })
		}},
	}
	for name, enc := range encoders {
		if err := enc.fn(make([]byte, enc.size)); err != nil {
			t.Errorf("%s(%d bytes): %v", name, enc.size, err)
		}
		for n := 0; n < enc.size; n++ {
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("%s(%d bytes): panic: %v", name, n, r)
					}
				}()
				b := bytes.Repeat([]byte{0xA5}, n)
				err := enc.fn(b)
				if !errors.Is(err, io.ErrShortBuffer) {
					t.Errorf("%s(%d bytes): %v, want io.ErrShortBuffer", name, n, err)
				}
				if !bytes.Equal(b, bytes.Repeat([]byte{0xA5}, n)) {
					t.Errorf("%s(%d bytes): wrote to the buffer", name, n)
				}
			}()
		}
	}
	if err := EncodeDirBlock(make([]byte, 64), -1, func(int) (uint64, uint8, string) { return 0, 0, "" }); !errors.Is(err, io.ErrShortBuffer) {
		t.Errorf("EncodeDirBlock(n=-1): %v, want io.ErrShortBuffer", err)
	}
}

// TestEncodeDirBlockNameOffRange checks that a name a dirent's 16-bit
// nameoff cannot reach (possible only in a buffer over 64 KiB) is an
// error, with nothing written, and that one just in reach is encoded.
func TestEncodeDirBlockNameOffRange(t *testing.T) {
	b := make([]byte, 128<<10)
	for i := range b {
		b[i] = 0xAA
	}
	names := func(firstLen int) func(k int) (uint64, uint8, string) {
		return func(k int) (uint64, uint8, string) {
			if k == 0 {
				return 1, 1, strings.Repeat("a", firstLen)
			}
			return 2, 1, "b"
		}
	}
	// Two dirents (24 bytes), then a name of 65512 bytes: "b" starts at
	// 65536, one past the reach.
	if err := EncodeDirBlock(b, 2, names(65512)); err == nil {
		t.Fatal("a name at byte 65536 was encoded")
	}
	for i, c := range b {
		if c != 0xAA {
			t.Fatalf("byte %d written on error", i)
		}
	}
	if err := EncodeDirBlock(b, 2, names(65511)); err != nil {
		t.Fatalf("a name at byte 65535: %v", err)
	}
	if d := DecodeDirent(b[DirentSize:]); d.NameOff != 65535 || d.Nid != 2 {
		t.Errorf("second dirent %+v, want nameoff 65535", d)
	}
}
