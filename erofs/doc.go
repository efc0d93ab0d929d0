// Package erofs reads and writes EROFS images, the read-only file system
// of the Linux kernel's EROFS driver.
//
// A Writer builds an uncompressed image in one pass from entries a program
// adds, much as archive/tar's Writer builds a tar: Add takes an Entry and,
// for a regular file, a reader of its data, which goes straight to the
// output; Close lays out directories and inodes and writes the superblock.
// Images are reproducible: the same entries and options give the same bytes.
//
// Open reads an image as an io/fs.FS. The fs.FileInfo values it returns
// carry a *Stat with what io/fs has no place for: the raw mode, owner,
// modification time with nanoseconds, link count, device numbers and
// extended attributes. Images are treated as untrusted input.
//
// The on-disk structures and constants are in format.go. The format is
// described in the kernel's Documentation/filesystems/erofs.rst and by
// erofs-utils; this package follows what mkfs.erofs 1.9.3 writes where the
// format leaves a choice.
package erofs
