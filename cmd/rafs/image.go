package main

// Opening the images that unpack, check and inspect read: an EROFS image
// (with its extra devices), a Nydus bootstrap (with its blobs) or a Nydus
// blob, told apart by their magic numbers.

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/erofs"
	"github.com/rafs-dev/rafs/rafs"
)

// imageKind is what an input file holds.
type imageKind int

const (
	kindEROFS     imageKind = iota // an EROFS image
	kindBootstrap                  // a Nydus (RAFS v6) bootstrap
	kindBlob                       // a Nydus blob
)

func (k imageKind) String() string {
	switch k {
	case kindEROFS:
		return "erofs"
	case kindBootstrap:
		return "nydus-bootstrap"
	}
	return "nydus-blob"
}

// errUnknownImage is the error of detectKind for a file that is none of
// the kinds.
var errUnknownImage = errors.New("not an EROFS image, a Nydus bootstrap or a Nydus blob")

// detectKind tells what r (of size bytes) holds: an EROFS superblock with
// the RAFS v6 compat bit is a bootstrap, any other an EROFS image; a file
// blob.Open accepts is a Nydus blob.
func detectKind(r io.ReaderAt, size int64) (imageKind, error) {
	var b [erofs.SuperblockSize]byte
	if n, _ := r.ReadAt(b[:], erofs.SuperblockOffset); n == len(b) && binary.LittleEndian.Uint32(b[:4]) == erofs.Magic {
		if erofs.DecodeSuperblock(b[:]).FeatureCompat&rafs.FeatureCompatRAFSV6 != 0 {
			return kindBootstrap, nil
		}
		return kindEROFS, nil
	}
	if _, err := blob.Open(r, size); err != nil {
		return 0, fmt.Errorf("%w (as a blob: %v)", errUnknownImage, err)
	}
	return kindBlob, nil
}

// openFile opens path for reading and returns it with its size.
func openFile(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if fi.IsDir() {
		f.Close()
		return nil, 0, fmt.Errorf("%s is a directory", path)
	}
	return f, fi.Size(), nil
}

// closers closes files opened along the way.
type closers []io.Closer

func (c *closers) Close() {
	for _, f := range *c {
		f.Close()
	}
	*c = nil
}

// openEROFS opens the EROFS image img (the file at path) with the extra
// devices at the paths devices, in device table order. Without devices, an
// image whose extra devices are not all mapped into the primary device
// (unified addresses) is an error naming --device.
func openEROFS(c *closers, img io.ReaderAt, path string, devices []string) (*erofs.FS, error) {
	var opts []erofs.OpenOption
	if len(devices) > 0 {
		devs := make([]io.ReaderAt, len(devices))
		for i, p := range devices {
			d, err := os.Open(p)
			if err != nil {
				return nil, err
			}
			*c = append(*c, d)
			devs[i] = d
		}
		opts = append(opts, erofs.WithDevices(devs...))
	}
	f, err := erofs.Open(img, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if sb := f.Superblock(); len(devices) == 0 && sb.ExtraDevices > 0 {
		for _, d := range sb.Devices {
			if d.UniAddr == 0 { // not mapped into the primary device
				return nil, usagef("%s has %d extra devices: give them with --device, in order", path, sb.ExtraDevices)
			}
		}
	}
	return f, nil
}

// nydusBlob is a blob file given for a bootstrap.
type nydusBlob struct {
	path string
	r    *os.File
	size int64
	id   string // hex SHA-256 of its bytes
}

// openNydusBlobs opens the blob files at paths and matches them to the
// blob table of boot by id (the SHA-256 of a blob's bytes). When strict is
// false, blobs left unmatched are paired in order with the table entries
// left without a file, if there are as many of each, and mismatch names
// the first such pairing (so that a check can look for the damaged chunk
// before reporting the id). A table entry without a file is an error.
func openNydusBlobs(c *closers, boot *rafs.Bootstrap, paths []string, strict bool) (readers []*blob.Reader, mismatch error, err error) {
	var given []*nydusBlob
	for _, p := range paths {
		f, size, err := openFile(p)
		if err != nil {
			return nil, nil, err
		}
		*c = append(*c, f)
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(f, 0, size)); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", p, err)
		}
		given = append(given, &nydusBlob{path: p, r: f, size: size, id: hex.EncodeToString(h.Sum(nil))})
	}
	files := make([]*nydusBlob, len(boot.Blobs))
	used := make([]bool, len(given))
	for i, bi := range boot.Blobs {
		for k, g := range given {
			if !used[k] && g.id == bi.ID {
				files[i], used[k] = g, true
				break
			}
		}
	}
	if !strict {
		var left []int
		for k := range given {
			if !used[k] {
				left = append(left, k)
			}
		}
		var empty []int
		for i := range files {
			if files[i] == nil {
				empty = append(empty, i)
			}
		}
		if len(left) > 0 && len(left) == len(empty) {
			for j, i := range empty {
				g := given[left[j]]
				files[i], used[left[j]] = g, true
				if mismatch == nil {
					mismatch = fmt.Errorf("blob %s: its SHA-256 is %s, but blob %d of the bootstrap has id %s", g.path, g.id, i, boot.Blobs[i].ID)
				}
			}
		}
	}
	for k, g := range given {
		if !used[k] {
			return nil, nil, usagef("blob %s (SHA-256 %s) is not in the bootstrap's blob table", g.path, g.id)
		}
	}
	readers = make([]*blob.Reader, len(files))
	for i, g := range files {
		if g == nil {
			return nil, nil, usagef("blob %d of the bootstrap (id %s) was not given: give it with --blob", i, boot.Blobs[i].ID)
		}
		br, err := blob.Open(g.r, g.size)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", g.path, err)
		}
		br.SetDigester(boot.Blobs[i].Digester)
		br.SetCompressor(boot.Blobs[i].Compressor)
		readers[i] = br
	}
	return readers, mismatch, nil
}
