package rafs

import "fmt"

// flagNames are nydus's names of the s_flags bits (RafsSuperFlags in
// rafs/src/metadata/mod.rs of github.com/dragonflyoss/nydus).
var flagNames = []struct {
	bit  uint64
	name string
}{
	{FlagCompressionNone, "COMPRESSION_NONE"},
	{FlagCompressionLZ4, "COMPRESSION_LZ4"},
	{FlagHashBlake3, "HASH_BLAKE3"},
	{FlagHashSHA256, "HASH_SHA256"},
	{FlagExplicitUIDGID, "EXPLICIT_UID_GID"},
	{FlagHasXattr, "HAS_XATTR"},
	{FlagCompressionGzip, "COMPRESSION_GZIP"},
	{FlagCompressionZstd, "COMPRESSION_ZSTD"},
	{FlagInlinedChunkDigest, "INLINED_CHUNK_DIGEST"},
	{FlagTarfsMode, "TARTFS_MODE"},
	{FlagEncryptionNone, "ENCRYPTION_NONE"},
	{FlagEncryptionAES128, "ENCRYPTION_ASE_128_XTS"},
}

// FlagNames returns nydus's names of the bits set in a bootstrap's
// s_flags (Bootstrap.Flags), in bit order; a bit without a name is given
// as its hex value.
func FlagNames(flags uint64) []string {
	var names []string
	for _, f := range flagNames {
		if flags&f.bit != 0 {
			names = append(names, f.name)
			flags &^= f.bit
		}
	}
	for b := uint64(1); flags != 0; b <<= 1 {
		if flags&b != 0 {
			names = append(names, fmt.Sprintf("%#x", b))
			flags &^= b
		}
	}
	return names
}
