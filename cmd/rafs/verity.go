package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/rafs-dev/rafs/convert/image"
	"github.com/rafs-dev/rafs/erofs/verity"
)

// verityFlags are the dm-verity flags of rafs build, rafs convert --type
// erofs and the mkfs.erofs front end.
type verityFlags struct {
	on           bool   // --verity
	salt         string // --verity-salt
	blockSize    int    // --verity-block-size
	noSuperblock bool   // --verity-no-superblock
	metadata     string // --verity-metadata (build only)

	set      []string // the --verity-* flags given, besides --verity
	sidecars bool     // the command writes a metadata file
}

// define adds the verity flags to fs; sidecars adds --verity-metadata
// and --verity-no-superblock, for commands writing files (not convert,
// whose layers carry containerd's metadata in an annotation, which needs
// the superblock).
func (v *verityFlags) define(fs *flag.FlagSet, sidecars bool) {
	v.sidecars = sidecars
	usage := "append a dm-verity hash tree (SHA-256, veritysetup's format 1, with its superblock) after the image, write containerd's metadata file for it and print its root hash, hash offset and salt: the form containerd's EROFS differ leaves a layer in with enable_dmverity"
	if !sidecars {
		usage = "EROFS: append a dm-verity hash tree (as rafs build --verity) to each layer and annotate the layer with containerd's metadata for it (" + image.AnnotationDmverity + ")"
	}
	fs.BoolVar(&v.on, "verity", false, usage)
	fs.StringVar(&v.salt, "verity-salt", "", "with --verity, the salt in `hex`, at most 256 bytes, \"-\" for none (default 32 zero bytes, containerd's)")
	fs.IntVar(&v.blockSize, "verity-block-size", 0, "with --verity, the dm-verity data and hash block size in `bytes`: a power of two from 512 to 524288 (default 4096, or the image's block size when smaller, which the kernel needs to mount the image through the verity device)")
	if sidecars {
		fs.BoolVar(&v.noSuperblock, "verity-no-superblock", false, "with --verity, leave out the verity superblock (veritysetup --no-superblock): opening the device then needs every parameter; containerd's snapshotter needs the superblock")
		fs.StringVar(&v.metadata, "verity-metadata", "", "with --verity, write containerd's dm-verity metadata (JSON: roothash, hashoffset) to this `file` (default OUT.dmverity, the name containerd's snapshotter reads); not with --verity-no-superblock")
	}
}

// visit records which verity flags fs was given; call it after parsing.
func (v *verityFlags) visit(fs *flag.FlagSet) {
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "verity-salt", "verity-block-size", "verity-no-superblock", "verity-metadata":
			v.set = append(v.set, fl.Name)
		}
	})
}

// options checks the flags and returns the verity options for an image
// of imageBlockSize-byte blocks, or nil without --verity.
func (v *verityFlags) options(imageBlockSize int) (*verity.Options, error) {
	if !v.on {
		if len(v.set) > 0 {
			return nil, usagef("--%s needs --verity", v.set[0])
		}
		return nil, nil
	}
	o := &verity.Options{BlockSize: v.blockSize, NoSuperblock: v.noSuperblock}
	if o.BlockSize == 0 {
		o.BlockSize = min(verity.DefaultBlockSize, imageBlockSize)
	}
	if bs := o.BlockSize; bs < verity.MinBlockSize || bs > verity.MaxBlockSize || bs&(bs-1) != 0 {
		return nil, usagef("--verity-block-size %d: want a power of two from %d to %d", bs, verity.MinBlockSize, verity.MaxBlockSize)
	}
	if v.salt != "" {
		s, err := verity.ParseSalt(v.salt)
		if err != nil {
			return nil, usageError{err}
		}
		o.Salt = s
	}
	if v.noSuperblock && v.metadata != "" {
		return nil, usagef("--verity-metadata: containerd's metadata file needs the verity superblock (--verity-no-superblock leaves it out)")
	}
	return o, nil
}

// verityOptions returns the verity options of a build, or nil without
// --verity. The tree covers the one output file: an image whose file data
// is on another device (--blobdev, or a tar index without its tar
// appended) is refused, since that data would go unchecked.
func (f *buildFlags) verityOptions() (*verity.Options, error) {
	if f.verity.on {
		switch {
		case f.chunks.blobdev != "":
			return nil, usagef("--verity and --blobdev: the tree would cover the image but not the chunk data on the blob device")
		case f.tarIndex && !f.appendTar:
			return nil, usagef("--verity and a tar index (--tar-index, mkfs.erofs --tar=i) whose tar is another device: the tree would cover the index but not the file data in the tar; rafs build --append-tar appends the tar")
		}
	}
	return f.verity.options(f.blockSize)
}

// metadataPath returns the file for containerd's metadata beside out, or
// "" when none is written (no --verity, or no superblock).
func (v *verityFlags) metadataPath(out string) string {
	switch {
	case !v.on || !v.sidecars || v.noSuperblock:
		return ""
	case v.metadata != "":
		return v.metadata
	}
	return out + verity.MetadataSuffix
}

// appendVerity appends the hash tree to the size-byte image in out (a
// temporary file or a block device, opened for writing only, so it is
// read through its name) and writes containerd's metadata to meta, when
// not nil.
func appendVerity(out *os.File, size int64, o *verity.Options, meta io.Writer) (*verity.Result, error) {
	r, err := os.Open(out.Name())
	if err != nil {
		return nil, err
	}
	defer r.Close()
	res, err := verity.Append(struct {
		io.ReaderAt
		io.WriterAt
	}{r, out}, size, o)
	if err != nil {
		return nil, err
	}
	if meta != nil {
		b, err := res.Metadata()
		if err != nil {
			return nil, err
		}
		if _, err := meta.Write(b); err != nil {
			return nil, fmt.Errorf("writing the dm-verity metadata: %w", err)
		}
	}
	return res, nil
}

// printVerity prints a hash tree's parameters on w, one "name value" per
// line: what veritysetup needs to open or verify the image (veritysetup
// verify IMG IMG ROOTHASH --hash-offset HASHOFFSET; with
// --no-superblock also the block sizes, data blocks and salt).
func printVerity(w io.Writer, r *verity.Result) error {
	var errs []error
	p := func(format string, a ...any) {
		_, err := fmt.Fprintf(w, format, a...)
		errs = append(errs, err)
	}
	p("roothash %s\n", r.RootHashHex())
	p("hashoffset %d\n", r.HashOffset)
	p("salt %s\n", r.SaltHex())
	p("blocksize %d\n", r.BlockSize)
	p("datablocks %d\n", r.DataBlocks)
	if r.Superblock {
		p("uuid %s\n", r.UUIDString())
	}
	return errors.Join(errs...)
}

// setVerity returns the mkfs.erofs front end's setter of a --verity-*
// option: set stores the value (nil: --verity-block-size, parsed here).
func setVerity(name string, set func(v *verityFlags, s string)) func(m *mkfsArgs, val string, _ bool) error {
	return func(m *mkfsArgs, val string, _ bool) error {
		v := &m.f.verity
		v.sidecars = true
		v.set = append(v.set, name)
		if set != nil {
			set(v, val)
			return nil
		}
		n, err := strconv.Atoi(val)
		if err != nil {
			return errors.New("not a number")
		}
		v.blockSize = n
		return nil
	}
}
