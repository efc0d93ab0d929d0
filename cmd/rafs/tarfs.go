package main

// rafs build --type nydus --tarfs, and the tarfs side of rafs unpack.

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/rafs"
)

// tarfsOptions checks the flags of a tarfs build (--tarfs) from src.
func (f *nydusBuildFlags) tarfsOptions(src string) error {
	for _, name := range []string{"bootstrap", "chunk-dict", "workers"} {
		if f.set[name] {
			return fmt.Errorf("--%s: not for --tarfs, whose bootstrap is -o and whose chunks are the tar's", name)
		}
	}
	if f.compressor != "none" && f.set["compressor"] {
		return fmt.Errorf("--compressor %s: a tarfs blob is the plain tar (--compressor none)", f.compressor)
	}
	if f.digester != "sha256" && f.set["digester"] {
		return fmt.Errorf("--digester %s: tarfs bootstraps are SHA-256 (--digester sha256)", f.digester)
	}
	if f.blobID != "" && len(f.blobID) != 64 {
		return fmt.Errorf("--blob-id %q: want 64 characters (a hex SHA-256)", f.blobID)
	}
	if src == "-" && f.blob == "" {
		return errors.New("SOURCE - (standard input): --tarfs needs --blob TAR, for the tar the bootstrap refers to")
	}
	if f.blob != "" && f.blob == f.out {
		return fmt.Errorf("--blob %s is the bootstrap (-o) too: give each output its own", f.blob)
	}
	if _, err := f.options(); err != nil { // the chunk size
		return err
	}
	return nil
}

// buildTarfs writes the tarfs bootstrap of src (rafs build --type nydus
// --tarfs) and, with --blob, its uncompressed tar.
func buildTarfs(src string, f *nydusBuildFlags) int {
	opts, _ := f.options()
	g := startGuard("rafs build", nil)
	defer g.stop()
	outs := newOutputs(g)
	defer outs.abort()
	bootOut, err := outs.add(f.out, true)
	var tarOut *os.File
	if err == nil && f.blob != "" {
		tarOut, err = outs.add(f.blob, true)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rafs build:", err)
		return exitStatus(err)
	}
	start := time.Now()
	res, err := func() (*convert.NydusTarfsResult, error) {
		in, total, err := openSource(src)
		if err != nil {
			return nil, err
		}
		defer in.Close()
		r, stop := withProgress(in, total, f.quiet, f.progress)
		defer stop()
		o := &convert.NydusTarfsOptions{ChunkSize: opts.ChunkSize, BlobID: f.blobID}
		var w io.Writer
		if tarOut != nil {
			w = tarOut
		}
		res, err := convert.TarToNydusTarfs(r, bootOut, w, o)
		if errors.Is(err, convert.ErrTarfsNoBlobOutput) {
			err = fmt.Errorf("%w: give --blob TAR to write it", err)
		}
		return res, err
	}()
	if err == nil {
		err = outs.commit()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rafs build:", err)
		return 1
	}
	if !f.quiet {
		if res.DroppedXattrs > 0 {
			fmt.Fprintf(os.Stderr, "rafs build: warning: left out %d xattrs whose names are in no Linux namespace\n", res.DroppedXattrs)
		}
		warnEmpty("rafs build", src, res.Entries, false)
		if len(res.Bootstrap.Blobs) > 0 {
			fmt.Println(res.BlobID)
		} else {
			fmt.Fprintln(os.Stderr, "rafs build: note: no file has data: the bootstrap has no blob and mounts without a device")
		}
		if isTTY(os.Stderr) {
			fmt.Fprintf(os.Stderr, "rafs build: %s: %d entries, %d bytes of tar (%s) -> %d bytes, %d chunks in %.2fs\n",
				f.out, res.Entries, res.TarSize, res.Encoding, res.BootstrapSize, res.Chunks, time.Since(start).Seconds())
		}
	}
	return 0
}

// openTarfsBlobs opens the tars a tarfs bootstrap's blobs are, from the
// candidate files: a candidate is blob ID's tar when its name is ID (as
// nydus-snapshotter keeps the tars) or its SHA-256 is ID (the default
// blob id). Every blob must be found. The files opened are added to
// files, for the caller to close.
func openTarfsBlobs(boot *rafs.Bootstrap, candidates []string, files *[]*os.File) ([]io.ReaderAt, error) {
	want := map[string]int{}
	for i, bi := range boot.Blobs {
		want[bi.ID] = i
	}
	out := make([]io.ReaderAt, len(boot.Blobs))
	for _, p := range candidates {
		fh, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		*files = append(*files, fh)
		k, ok := want[filepath.Base(p)]
		if !ok {
			h := sha256.New()
			if _, err := io.Copy(h, fh); err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			k, ok = want[hex.EncodeToString(h.Sum(nil))]
		}
		if ok && out[k] == nil {
			out[k] = fh
		}
	}
	for i, ra := range out {
		if ra == nil {
			return nil, fmt.Errorf("the tar of blob %s of the tarfs bootstrap was not given (tars are matched by name or by the SHA-256 of their bytes)", boot.Blobs[i].ID)
		}
	}
	return out, nil
}
