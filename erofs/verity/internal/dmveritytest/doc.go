// Package dmveritytest checks rafs's dm-verity trees with the library
// containerd's EROFS snapshotter opens them with, go-dmverity (by
// containerd): given only what containerd's metadata file holds (the root
// hash and the superblock's offset), it reads the parameters from our
// superblock and verifies every block of the image against our tree. It
// is a module of its own, so that go-dmverity stays out of rafs's
// dependencies.
package dmveritytest
