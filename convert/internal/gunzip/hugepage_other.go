//go:build !linux

package gunzip

// adviseHugePages does nothing where madvise(2)'s MADV_HUGEPAGE is not
// known.
func adviseHugePages(b []byte) {}
