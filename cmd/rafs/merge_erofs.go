package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/rafs-dev/rafs/erofs/rebuild"
)

const mergeEROFSUsage = `Usage: rafs merge --type erofs [flags] -o META LAYER.erofs...

Merges EROFS layer images, the lowest first, into one metadata-only EROFS
image (what mkfs.erofs's rebuild mode makes), applying the layers'
overlayfs whiteouts and opaque directories. Its files point into the
layers, which are its extra devices: mount it with one device= per layer,
in order (for a layer with its data on an extra device, a tar index's tar
or a --blobdev file, that file). The layers' file data must be in whole
uncompressed blocks: build them with rafs build -inline-data=false or
--chunk-size, and without -z. The device tags (a layer's UUID in hex, or
its data device's tag) are printed on standard output in device order.

Flags:
`

// cmdMergeEROFS is "rafs merge --type erofs".
func cmdMergeEROFS(args []string) int {
	var out string
	var quiet bool
	fs := flag.NewFlagSet("merge", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, mergeEROFSUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&out, "o", "", "output image `path` (required)")
	fs.BoolVar(&quiet, "q", false, "print nothing but errors")
	pos, err := parseArgs(fs, args)
	if err == flag.ErrHelp {
		return 0
	}
	if err == nil && len(pos) == 0 {
		fs.Usage()
		err = errors.New("want at least one LAYER")
	}
	if err == nil && out == "" {
		fs.Usage()
		err = errors.New("-o META is required")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rafs merge:", err)
		return 2
	}
	g := startGuard("rafs merge", nil)
	defer g.stop()
	outs := newOutputs(g)
	defer outs.abort()
	metaOut, err := outs.add(out, false)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rafs merge:", err)
		return exitStatus(err)
	}
	var layers []rebuild.Layer
	for _, p := range pos {
		fh, err := os.Open(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "rafs merge:", err)
			return 1
		}
		defer fh.Close()
		fi, err := fh.Stat()
		if err != nil {
			fmt.Fprintln(os.Stderr, "rafs merge:", err)
			return 1
		}
		layers = append(layers, rebuild.Layer{Name: p, Image: fh, Size: fi.Size()})
	}
	res, err := rebuild.Merge(metaOut, layers, nil)
	if err == nil {
		err = outs.commit()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rafs merge:", err)
		return 1
	}
	if !quiet {
		for _, d := range res.Devices {
			fmt.Println(d.Tag)
		}
	}
	return 0
}
