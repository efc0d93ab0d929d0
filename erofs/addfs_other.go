//go:build !linux

package erofs

// sysMeta reads nothing from FileInfo.Sys() values of other systems.
func sysMeta(any) (fsMeta, bool) { return fsMeta{}, false }
