package blob

import "fmt"

// featureNames are nydus's names of the BlobFeatures bits
// (storage/src/device.rs of github.com/dragonflyoss/nydus).
var featureNames = []struct {
	bit  Features
	name string
}{
	{FeatureAligned, "ALIGNED"},
	{FeatureInlinedFSMeta, "INLINED_FS_META"},
	{FeatureChunkInfoV2, "CHUNK_INFO_V2"},
	{FeatureZran, "ZRAN"},
	{FeatureSeparate, "SEPARATE"},
	{FeatureInlinedChunkDigest, "INLINED_CHUNK_DIGEST"},
	{FeatureTarfs, "TARFS"},
	{FeatureBatch, "BATCH"},
	{FeatureEncrypted, "ENCRYPTED"},
	{FeatureChunkdictGenerated, "IS_CHUNKDICT_GENERATED"},
	{FeatureSeparatedPrefetch, "IS_SEPARATED_WITH_PREFETCH_FILES"},
	{FeatureExternal, "EXTERNAL"},
	{FeatureHasTarHeader, "HAS_TAR_HEADER"},
	{FeatureHasTOC, "HAS_TOC"},
	{FeatureCapTarTOC, "CAP_TAR_TOC"},
}

// Names returns nydus's names of the bits set in f, in bit order; a bit
// without a name is given as its hex value.
func (f Features) Names() []string {
	var names []string
	for _, n := range featureNames {
		if f&n.bit != 0 {
			names = append(names, n.name)
			f &^= n.bit
		}
	}
	for b := Features(1); f != 0; b <<= 1 {
		if f&b != 0 {
			names = append(names, fmt.Sprintf("%#x", uint32(b)))
			f &^= b
		}
	}
	return names
}
