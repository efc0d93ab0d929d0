package erofs

import "fmt"

// Feature names, as fs/erofs/erofs_fs.h spells the EROFS_FEATURE_*
// macros (lower case, without the prefix). Three incompatible bits have
// two names, one for compressed images and one for the others; both are
// given, joined by "|".
var (
	compatNames = []struct {
		bit  uint32
		name string
	}{
		{FeatureCompatSbChksum, "sb_chksum"},
		{FeatureCompatMtime, "mtime"},
		{FeatureCompatXattrFilter, "xattr_filter"},
		{FeatureCompatSharedEaMbox, "shared_ea_in_metabox"},
		{FeatureCompatPlainXattrPf, "plain_xattr_pfx"},
		{FeatureCompatIshareXattrs, "ishare_xattrs"},
	}
	incompatNames = []struct {
		bit  uint32
		name string
	}{
		{FeatureIncompatZeroPadding, "zero_padding"},
		{FeatureIncompatComprCfgs, "compr_cfgs|big_pcluster"},
		{FeatureIncompatChunkedFile, "chunked_file"},
		{FeatureIncompatDeviceTable, "device_table|compr_head2"},
		{FeatureIncompatZtailpacking, "ztailpacking"},
		{FeatureIncompatFragments, "fragments|dedupe"},
		{FeatureIncompatXattrPrefixes, "xattr_prefixes"},
		{FeatureIncompat48Bit, "48bit"},
		{FeatureIncompatMetabox, "metabox"},
	}
)

// FeatureNames returns the names of the feature bits set in a
// superblock's feature_compat and feature_incompat, in bit order; a bit
// without a name is given as its hex value ("compat:0x40000000",
// "incompat:0x200"). Package rafs's marker bit is among those.
func FeatureNames(compat, incompat uint32) []string {
	var names []string
	for _, f := range compatNames {
		if compat&f.bit != 0 {
			names = append(names, f.name)
			compat &^= f.bit
		}
	}
	for b := uint32(1); compat != 0; b <<= 1 {
		if compat&b != 0 {
			names = append(names, fmt.Sprintf("compat:%#x", b))
			compat &^= b
		}
	}
	for _, f := range incompatNames {
		if incompat&f.bit != 0 {
			names = append(names, f.name)
			incompat &^= f.bit
		}
	}
	for b := uint32(1); incompat != 0; b <<= 1 {
		if incompat&b != 0 {
			names = append(names, fmt.Sprintf("incompat:%#x", b))
			incompat &^= b
		}
	}
	return names
}

// CompressionAlgorithmNames returns the names of the algorithms set in a
// compressed image's available_compr_algs bitmap (Superblock.U1 when
// FeatureIncompatComprCfgs is set): "lz4", "lzma", "deflate", "zstd", or
// "alg:N" for an unknown one.
func CompressionAlgorithmNames(algs uint16) []string {
	known := []string{"lz4", "lzma", "deflate", "zstd"}
	var names []string
	for i := 0; i < 16; i++ {
		if algs&(1<<i) == 0 {
			continue
		}
		if i < len(known) {
			names = append(names, known[i])
		} else {
			names = append(names, fmt.Sprintf("alg:%d", i))
		}
	}
	return names
}
