package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/rafs-dev/rafs/convert"
)

const unpackEROFSUsage = `Usage: rafs unpack --type erofs [flags] -o TAR [--device PATH]... IMAGE

Writes the tree of an EROFS image as a tar. A multi-device image (chunked
with a blob device, a tar index, merged metadata) reads its extra devices
from the --device files, one per device table entry in order, as the
kernel takes them with mount -o device=PATH; without them, blocks on extra
devices cannot be read.

Flags:
`

// cmdUnpackEROFS is "rafs unpack --type erofs".
func cmdUnpackEROFS(args []string) int {
	var out string
	var devices pathList
	var quiet bool
	fs := flag.NewFlagSet("unpack", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, unpackEROFSUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&out, "o", "", "output tar `path`, or - for standard output (required)")
	fs.Var(&devices, "device", "an extra device `path`, in device table order (repeatable)")
	fs.BoolVar(&quiet, "q", false, "print nothing but errors")
	pos, err := parseArgs(fs, args)
	if err == flag.ErrHelp {
		return 0
	}
	if err == nil && len(pos) != 1 {
		fs.Usage()
		err = fmt.Errorf("want one IMAGE, got %d", len(pos))
	}
	if err == nil && out == "" {
		fs.Usage()
		err = errors.New("want -o TAR")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rafs unpack:", err)
		return 2
	}
	g := startGuard("rafs unpack", nil)
	defer g.stop()
	outs := newOutputs(g)
	defer outs.abort()
	var w io.Writer = os.Stdout
	if out != "-" {
		f, err := outs.add(out, true)
		if err != nil {
			fmt.Fprintln(os.Stderr, "rafs unpack:", err)
			return exitStatus(err)
		}
		w = f
	}
	res, err := unpackEROFS(w, pos[0], devices)
	if err == nil {
		err = outs.commit()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rafs unpack:", err)
		return exitStatus(err)
	}
	if !quiet && res.Sockets > 0 {
		fmt.Fprintf(os.Stderr, "rafs unpack: left out %d sockets (a tar cannot hold them)\n", res.Sockets)
	}
	return 0
}

// unpackEROFS writes the tree of the image at path, with its extra devices,
// to w as a tar.
func unpackEROFS(w io.Writer, path string, devices []string) (*convert.UnpackResult, error) {
	var c closers
	defer c.Close()
	img, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	c = append(c, img)
	f, err := openEROFS(&c, img, path, devices)
	if err != nil {
		return nil, err
	}
	return convert.UnpackEROFS(f, w)
}
