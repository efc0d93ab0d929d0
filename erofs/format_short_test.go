package erofs

import (
	"bytes"
	"fmt"
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
