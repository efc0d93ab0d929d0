package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/erofs"
	"github.com/rafs-dev/rafs/rafs"
)

const checkUsage = `Usage: rafs check [flags] IMAGE|BLOB|BOOT

Reads back everything in an EROFS image, a Nydus blob or a Nydus
bootstrap, told apart by their magic numbers, and reports the first
problem with the path and offset it was found at. The exit status is 0
only when everything reads back, 1 for a problem, 2 for a usage error.

  EROFS image   every inode, directory, xattr and symlink, and every byte
                of every regular file (decompressed), from the image and
                the --device files (one per device table entry, in order;
                not needed when the devices are mapped into the image).
                EROFS keeps no checksums of data or metadata: a damaged
                byte is found only where it makes a record invalid or
                data undecodable (compressed data), never in plain data.
  Nydus blob    its inline bootstrap (if any) and every file's chunks
                through it, then every section (checked against the TOC
                digests) and every chunk of the blob, each decompressed
                and checked against its digest and CRC.
  bootstrap     the bootstrap's structure, then every file's chunks from
                the --blob files (matched to the blob table by the
                SHA-256 of their bytes, else in order), each chunk checked
                against the blob's digest and the bootstrap's chunk table,
                then each blob as a whole as above.

Flags:
`

// cmdCheck is "rafs check".
func cmdCheck(args []string) int {
	var devices, blobs pathList
	var quiet bool
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, checkUsage)
		fs.PrintDefaults()
	}
	fs.Var(&devices, "device", "an EROFS image's extra device `path`, in device table order (repeatable)")
	fs.Var(&blobs, "blob", "a bootstrap's Nydus blob `path` (repeatable)")
	fs.BoolVar(&quiet, "q", false, "print nothing but the problem")
	pos, err := parseArgs(fs, args)
	if err == flag.ErrHelp {
		return 0
	}
	if err == nil && len(pos) != 1 {
		fs.Usage()
		err = fmt.Errorf("want one IMAGE, BLOB or BOOT, got %d", len(pos))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rafs check:", err)
		return 2
	}
	g := startGuard("rafs check", nil)
	defer g.stop()
	sum, err := check(pos[0], devices, blobs)
	if err != nil {
		fmt.Fprintf(os.Stderr, "rafs check: %s: %v\n", pos[0], err)
		return exitStatus(err)
	}
	if !quiet {
		fmt.Printf("%s: ok (%s): %d entries, %d bytes of file data", pos[0], sum.kind, sum.entries, sum.bytes)
		if sum.chunks > 0 {
			fmt.Printf(", %d blob chunks", sum.chunks)
		}
		fmt.Println()
	}
	return 0
}

// checkSummary is what a check read.
type checkSummary struct {
	kind    imageKind
	entries int    // tree entries
	bytes   uint64 // file data bytes
	chunks  int    // blob chunks verified
}

// check reads back the image, blob or bootstrap at path.
func check(path string, devices, blobPaths []string) (*checkSummary, error) {
	var c closers
	defer c.Close()
	f, size, err := openFile(path)
	if err != nil {
		return nil, err
	}
	c = append(c, f)
	return checkInput(&c, f, size, path, devices, blobPaths)
}

// checkInput reads back the image, blob or bootstrap f of size bytes
// (named path in messages); files it opens are added to c.
func checkInput(c *closers, f io.ReaderAt, size int64, path string, devices, blobPaths []string) (*checkSummary, error) {
	kind, err := detectKind(f, size)
	if err != nil {
		return nil, err
	}
	if kind != kindEROFS && len(devices) > 0 {
		return nil, usagef("--device is for EROFS images; %s is a %s", path, kind)
	}
	if kind != kindBootstrap && len(blobPaths) > 0 {
		return nil, usagef("--blob is for Nydus bootstraps; %s is a %s", path, kind)
	}
	sum := &checkSummary{kind: kind}
	switch kind {
	case kindEROFS:
		img, err := openEROFS(c, f, path, devices)
		if err != nil {
			return nil, err
		}
		err = walkEROFS(img, func(p string, st *erofs.Stat) error {
			sum.entries++
			n, err := checkEROFSEntry(img, p, st)
			sum.bytes += n
			return err
		})
		if sb := img.Superblock(); err != nil && len(devices) == 0 && sb.ExtraDevices > 0 {
			err = fmt.Errorf("%w (the image has %d extra devices, read from the image itself at their unified addresses; give them with --device)", err, sb.ExtraDevices)
		}
		return sum, err
	case kindBootstrap:
		boot, err := rafs.Read(f, size)
		if err != nil {
			return nil, err
		}
		readers, mismatch, err := openNydusBlobs(c, boot, blobPaths, false)
		if err != nil {
			return nil, err
		}
		if err := checkNydusData(sum, boot, readers, blobPaths); err != nil {
			if mismatch != nil {
				return nil, fmt.Errorf("%w (and %v)", err, mismatch)
			}
			return nil, err
		}
		return sum, mismatch
	}
	br, err := blob.Open(f, size)
	if err != nil {
		return nil, err
	}
	if br.Features()&blob.FeatureInlinedFSMeta != 0 {
		boot, _, err := convert.ReadNydusLayer(f, size)
		if err != nil {
			return nil, err
		}
		if len(boot.Blobs) != 1 {
			return nil, fmt.Errorf("inline bootstrap: %d blobs in its table, want the blob itself", len(boot.Blobs))
		}
		br.SetDigester(boot.Blobs[0].Digester)
		br.SetCompressor(boot.Blobs[0].Compressor)
		return sum, checkNydusData(sum, boot, []*blob.Reader{br}, []string{path})
	}
	if err := br.Verify(); err != nil {
		return nil, err
	}
	sum.chunks = br.ChunkCount()
	return sum, nil
}

// checkNydusData reads every file of boot from its blobs, then each blob in
// full.
func checkNydusData(sum *checkSummary, boot *rafs.Bootstrap, readers []*blob.Reader, paths []string) error {
	res, err := convert.UnpackNydus(boot, readers, io.Discard)
	if err != nil {
		return err
	}
	sum.entries, sum.bytes = res.Entries, res.Bytes
	for i, br := range readers {
		if err := br.Verify(); err != nil {
			name := boot.Blobs[i].ID
			if i < len(paths) {
				name = paths[i]
			}
			return fmt.Errorf("blob %s: %w", name, err)
		}
		sum.chunks += br.ChunkCount()
	}
	return nil
}

// walkEROFS calls fn for the root (path ".") and then every entry of the
// tree, depth first in name order, with its path and Stat (xattrs
// loaded). It stops at the first error, naming the path. A directory
// reached twice is an error.
func walkEROFS(f *erofs.FS, fn func(path string, st *erofs.Stat) error) error {
	type dir struct {
		path string
		ents []fs.DirEntry
		next int
	}
	root, err := f.Lstat(".")
	if err != nil {
		return fmt.Errorf("root directory: %w", err)
	}
	st := root.Sys().(*erofs.Stat)
	if err := fn(".", st); err != nil {
		return err
	}
	seen := map[uint64]bool{st.Nid: true}
	ents, err := f.ReadDir(".")
	if err != nil {
		return fmt.Errorf("root directory: %w", err)
	}
	stack := []dir{{path: "", ents: ents}}
	for len(stack) > 0 {
		d := &stack[len(stack)-1]
		if d.next == len(d.ents) {
			stack = stack[:len(stack)-1]
			continue
		}
		p := d.path + d.ents[d.next].Name()
		d.next++
		fi, err := f.Lstat(p)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		st := fi.Sys().(*erofs.Stat)
		if err := fn(p, st); err != nil {
			return err
		}
		if fi.IsDir() {
			if seen[st.Nid] {
				return fmt.Errorf("%s: directory inode %d reached twice: %w", p, st.Nid, erofs.ErrCorrupt)
			}
			seen[st.Nid] = true
			sub, err := f.ReadDir(p)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			stack = append(stack, dir{path: p + "/", ents: sub})
		}
	}
	return nil
}

// checkPiece is how much of a file check reads at a time; a failed piece
// is read again block by block to find the offset of the problem.
const checkPiece = 256 << 10

// checkEROFSEntry reads an entry's symlink target or data, returning the
// data bytes read.
func checkEROFSEntry(img *erofs.FS, p string, st *erofs.Stat) (uint64, error) {
	switch st.Mode & erofs.ModeTypeMask {
	case erofs.ModeSymlink:
		if _, err := img.ReadLink(p); err != nil {
			return 0, fmt.Errorf("%s (inode %d): %w", p, st.Nid, err)
		}
		return 0, nil
	case erofs.ModeRegular:
	default:
		return 0, nil
	}
	file, err := img.Open(p)
	if err != nil {
		return 0, fmt.Errorf("%s (inode %d): %w", p, st.Nid, err)
	}
	defer file.Close()
	ra := file.(io.ReaderAt)
	// Holes hold nothing to read back: skip them, so that a huge sparse
	// file (or a damaged size) costs only its stored bytes.
	runs := []erofs.DataExtent{{Off: 0, Len: st.Size}}
	if st.Layout == erofs.LayoutChunkBased || st.Layout == erofs.LayoutFlatPlain {
		exts, err := img.DataExtents(st.Nid)
		if err != nil {
			return 0, fmt.Errorf("%s (inode %d): %w", p, st.Nid, err)
		}
		runs = exts[:0]
		for _, e := range exts {
			if e.Hole {
				continue
			}
			if k := len(runs) - 1; k >= 0 && runs[k].Off+runs[k].Len == e.Off {
				runs[k].Len += e.Len
			} else {
				runs = append(runs, e)
			}
		}
	}
	var read uint64
	for _, r := range runs {
		n, err := checkRun(ra, p, st, r.Off, r.Off+r.Len, int64(img.Superblock().BlockSize))
		read += n
		if err != nil {
			return read, err
		}
	}
	return read, nil
}

// checkRun reads bytes [off, end) of a regular file.
func checkRun(ra io.ReaderAt, p string, st *erofs.Stat, off, end, bs int64) (uint64, error) {
	buf := make([]byte, min(end-off, checkPiece))
	start := off
	for off < end {
		n := min(end-off, checkPiece)
		if _, err := ra.ReadAt(buf[:n], off); err != nil && !(errors.Is(err, io.EOF) && off+n == st.Size) {
			// Find the first block that fails.
			at := off
			for b := off; b < off+n; b += bs {
				k := min(bs, off+n-b)
				if _, e := ra.ReadAt(buf[:k], b); e != nil && !(errors.Is(e, io.EOF) && b+k == st.Size) {
					at, err = b, e
					break
				}
			}
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return uint64(off - start), fmt.Errorf("%s (inode %d): data at offset %d: %w", p, st.Nid, at, err)
		}
		off += n
	}
	return uint64(end - start), nil
}
