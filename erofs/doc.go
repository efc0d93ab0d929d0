// Package erofs reads and writes EROFS images, the read-only file system
// of the Linux kernel's EROFS driver.
//
// A Writer builds an image in one pass from entries a program adds, much
// as archive/tar's Writer builds a tar: Add takes an Entry and, for a
// regular file, a reader of its data, which goes straight to the output;
// Close lays out directories and inodes and writes the superblock. Images
// are reproducible: the same entries and options give the same bytes.
//
// The entries form one namespace (namespace.go): hard links, whiteouts as
// the character devices they are added as, opaque directories as their
// xattr, implied parents, a later entry replacing an earlier one and a
// directory merging into a directory, and the rules for names and xattrs.
// The Writer keeps one; Tree is the same namespace for builders of other
// formats, such as the Nydus builder in package convert, which keep their
// per-inode data beside it.
//
// With WriterOptions.Compression the Writer compresses regular files with
// LZ4, LZ4HC, LZMA (MicroLZMA), DEFLATE or Zstandard into physical
// clusters of one block up to 1 MiB, on every core while entries are still
// being added; the image does not depend on the number of cores. The
// encoders for LZ4 and LZMA are in this module (erofs/lz4 and
// erofs/internal/lzma), since EROFS needs them to fill a cluster exactly.
// Compression.Fragments and AllFragments pack file tails, or whole files,
// into the packed inode (fragment.go); Compression.Dedupe shares
// compressed data between extents, partially where an extent needs only
// the start of a cluster (dedupe.go). Both work on every core too, and
// keep memory bounded: what they index has a fixed upper size.
//
// Open reads an image as an io/fs.FS. The fs.FileInfo values it returns
// carry a *Stat with what io/fs has no place for: the raw mode, owner,
// modification time with nanoseconds, link count, device numbers and
// extended attributes. It reads compressed images, from this package or
// mkfs.erofs, and chunk-based images with extra devices (Nydus RAFS v6).
// Images are treated as untrusted input.
//
// The on-disk records and their constants are in format.go, after the
// kernel's fs/erofs/erofs_fs.h: each record has one encoder and one
// decoder there, used by both the Writer and the reader, and exported
// where package rafs needs them (Superblock, SuperblockDevice, Inode,
// Dirent and EncodeDirBlock, XattrIbodyHeader and the xattr entries,
// ChunkIndex). The format is described in the kernel's
// Documentation/filesystems/erofs.rst and fs/erofs/erofs_fs.h; this
// package follows what mkfs.erofs 1.9.3 writes where the format leaves a
// choice.
package erofs
