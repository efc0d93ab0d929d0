package erofs

import (
	"fmt"
	"io"
)

// ImageFile is what SetUUID rewrites: an EROFS image that can be read
// and written in place, such as an *os.File.
type ImageFile interface {
	io.ReaderAt
	io.WriterAt
}

// SetUUID sets the volume UUID of the EROFS image f (struct
// erofs_super_block's uuid in fs/erofs/erofs_fs.h) and, when the image
// has FeatureCompatSbChksum, stores the superblock checksum again. The
// rest of the image is left as it is, so an image written with
// WriterOptions.UUID set to u and one written with another UUID and then
// given u by SetUUID are the same bytes. It is for a UUID that is only
// known once the image is written, such as one derived from a digest of
// the input the image was made from.
func SetUUID(f ImageFile, uuid [16]byte) error {
	head := make([]byte, SuperblockSize)
	if err := readFull(f, head, SuperblockOffset); err != nil {
		return fmt.Errorf("erofs: set UUID: reading the superblock at offset %d: %w", SuperblockOffset, err)
	}
	sb := DecodeSuperblock(head)
	if sb.Magic != Magic {
		return fmt.Errorf("erofs: set UUID: no EROFS superblock at offset %d (magic %#08x)", SuperblockOffset, sb.Magic)
	}
	if sb.BlockSize < 512 || sb.BlockSize > 65536 {
		return fmt.Errorf("erofs: set UUID: superblock at offset %d: block size 2^%d", SuperblockOffset, sb.BlkSzBits)
	}
	if sb.FeatureCompat&FeatureCompatSbChksum == 0 {
		if _, err := f.WriteAt(uuid[:], int64(SuperblockFieldOffset("uuid"))); err != nil {
			return fmt.Errorf("erofs: set UUID: %w", err)
		}
		return nil
	}
	b := make([]byte, checksumLen(int(sb.BlockSize)))
	if err := readFull(f, b, SuperblockOffset); err != nil {
		return fmt.Errorf("erofs: set UUID: reading the superblock block at offset %d: %w", SuperblockOffset, err)
	}
	off := SuperblockFieldOffset("uuid") - SuperblockOffset
	copy(b[off:off+16], uuid[:])
	sealSuperblock(b)
	if _, err := f.WriteAt(b[:SuperblockSize], SuperblockOffset); err != nil {
		return fmt.Errorf("erofs: set UUID: %w", err)
	}
	return nil
}
