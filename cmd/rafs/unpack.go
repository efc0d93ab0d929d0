package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/rafs-dev/rafs/convert"
)

const unpackEROFSUsage = `Usage: rafs unpack [--type erofs] [flags] (-o TAR | --dir DIR) [--device PATH]... IMAGE

Writes the tree of an EROFS image as a PAX tar (-o TAR, or -o - for
standard output) or into a directory (--dir DIR). Without --type, the
type of IMAGE is told by its magic number (an EROFS image, or a Nydus
blob or bootstrap, which "rafs unpack --type nydus -h" describes).

A multi-device image (chunked with a blob device, a tar index, merged
metadata) reads its extra devices from the --device files, one per device
table entry in order, as the kernel takes them with mount -o device=PATH;
without them, only devices mapped into the image itself can be read.

The tar holds owners, modes, times with nanoseconds, xattrs (SCHILY.xattr
records), hard links, symlinks and device nodes; sockets are left out.
Whiteouts stay as the image holds them: overlayfs character devices 0:0
(and trusted.overlay.opaque xattrs), not .wh. files.

--dir writes the same tree, as the kernel shows the mounted image, into a
new directory: it is filled beside DIR (.DIR.tmp-PID) and renamed to DIR
at the end, so DIR appears complete or not at all. An existing DIR must be
empty unless --force is given, which replaces it (the old tree is removed
once the new one is in place). Nothing is written through a symlink: each
entry is created anew inside the directory. Owners are set, and device
nodes (whiteouts too) created, only when running as root; otherwise
device nodes are left out and counted. Whiteouts are kept as overlayfs
0:0 devices, so DIR can serve as an overlayfs lower directory as the
image itself would.

Flags:
`

// cmdUnpackEROFS is "rafs unpack --type erofs".
func cmdUnpackEROFS(args []string) int {
	var out, dir string
	var devices pathList
	var quiet, force bool
	fs := flag.NewFlagSet("unpack", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, unpackEROFSUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&out, "o", "", "output tar `path`, or - for standard output")
	fs.StringVar(&dir, "dir", "", "output `directory` (instead of -o)")
	fs.BoolVar(&force, "force", false, "with --dir, replace a non-empty directory")
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
	if err == nil && (out == "") == (dir == "") {
		fs.Usage()
		err = errors.New("want -o TAR or --dir DIR")
	}
	if err == nil && force && dir == "" {
		err = errors.New("--force is for --dir")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rafs unpack:", err)
		return 2
	}
	g := startGuard("rafs unpack", nil)
	defer g.stop()
	var res *convert.UnpackResult
	var skipped int
	if dir != "" {
		res, skipped, err = unpackToDir(g, dir, force, func(w io.Writer) (*convert.UnpackResult, error) {
			return unpackEROFS(w, pos[0], devices)
		})
	} else {
		res, err = unpackToTar(g, out, func(w io.Writer) (*convert.UnpackResult, error) {
			return unpackEROFS(w, pos[0], devices)
		})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rafs unpack:", err)
		return exitStatus(err)
	}
	if !quiet && res.Sockets > 0 {
		fmt.Fprintf(os.Stderr, "rafs unpack: left out %d sockets (a tar cannot hold them)\n", res.Sockets)
	}
	if !quiet && skipped > 0 {
		fmt.Fprintf(os.Stderr, "rafs unpack: left out %d device nodes (creating them needs root)\n", skipped)
	}
	return 0
}

// unpackToTar runs unpack with the tar output out (- for standard
// output), committed when it succeeds.
func unpackToTar(g *guard, out string, unpack func(io.Writer) (*convert.UnpackResult, error)) (*convert.UnpackResult, error) {
	outs := newOutputs(g)
	defer outs.abort()
	var w io.Writer = os.Stdout
	if out != "-" {
		f, err := outs.add(out, true)
		if err != nil {
			return nil, err
		}
		w = f
	}
	res, err := unpack(w)
	if err == nil {
		err = outs.commit()
	}
	return res, err
}

// unpackToDir runs unpack with its tar extracted into the directory dir
// (see unpackEROFSUsage), put in place when both succeed. It returns the
// number of device nodes left out.
func unpackToDir(g *guard, dir string, force bool, unpack func(io.Writer) (*convert.UnpackResult, error)) (*convert.UnpackResult, int, error) {
	t, err := newDirTarget(g, dir, force)
	if err != nil {
		return nil, 0, err
	}
	defer t.abort()
	res, x, err := convert.UnpackDirFunc(t.tmp, unpack)
	if err == nil {
		err = g.beginCommit()
	}
	if err == nil {
		err = t.commit()
	}
	if err != nil {
		return nil, 0, err
	}
	return res, x.SkippedNodes, nil
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

// unpackType takes --type out of unpack's arguments; without it, the type
// is told by the magic number of the IMAGE or BLOB argument: an EROFS
// image (not a Nydus bootstrap) is "erofs", anything else "nydus" (whose
// command reports what it cannot read).
func unpackType(args []string) (string, []string, error) {
	typ, rest, err := splitType(args, "nydus")
	if err != nil || len(rest) != len(args) {
		return typ, rest, err
	}
	// The flags of both forms, to find the positional argument.
	var boot string
	var l pathList
	var b bool
	fs := flag.NewFlagSet("unpack", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&boot, "bootstrap", "", "")
	for _, name := range []string{"o", "dir", "blob-dir", "cache-dir"} {
		fs.String(name, "", "")
	}
	for _, name := range []string{"device", "blob"} {
		fs.Var(&l, name, "")
	}
	for _, name := range []string{"q", "force"} {
		fs.BoolVar(&b, name, false, "")
	}
	pos, err := parseArgs(fs, rest)
	if err != nil || len(pos) != 1 || boot != "" {
		return "nydus", rest, nil
	}
	f, size, err := openFile(pos[0])
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	kind, err := detectKind(f, size)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", pos[0], err)
	}
	if kind == kindEROFS {
		return "erofs", rest, nil
	}
	return "nydus", rest, nil
}
