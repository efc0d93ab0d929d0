package main

import (
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
	return mergeCommand(args, mergeEROFSUsage, "image", "META", false, func(out *os.File, paths []string) ([]string, error) {
		res, err := mergeEROFSFiles(out, paths, nil)
		if err != nil {
			return nil, err
		}
		tags := make([]string, len(res.Devices))
		for i, d := range res.Devices {
			tags[i] = d.Tag
		}
		return tags, nil
	})
}

// mergeEROFSFiles merges the EROFS layer images at paths, the lowest
// first, into out (rafs merge --type erofs, and mkfs.erofs's rebuild
// mode).
func mergeEROFSFiles(out *os.File, paths []string, opts *rebuild.Options) (*rebuild.Result, error) {
	var layers []rebuild.Layer
	for _, p := range paths {
		fh, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		defer fh.Close()
		fi, err := fh.Stat()
		if err != nil {
			return nil, err
		}
		layers = append(layers, rebuild.Layer{Name: p, Image: fh, Size: fi.Size()})
	}
	return rebuild.Merge(out, layers, opts)
}
