// Command rafs converts OCI container image layers into EROFS images and
// Nydus (RAFS v6) layers.
//
// Usage:
//
//	rafs build [flags] -o OUT SOURCE
//	rafs build --type nydus [flags] -o BLOB [--bootstrap BOOT] SOURCE
//	rafs merge -o BOOT LAYER...
//	rafs merge --type erofs -o META LAYER.erofs...
//	rafs unpack [-o TAR] [--bootstrap BOOT] [--blob PATH]... [--cache-dir DIR] [BLOB]
//	rafs unpack [--type erofs] (-o TAR | --dir DIR) [--device PATH]... IMAGE
//	rafs check [--device PATH]... [--blob PATH]... IMAGE|BLOB|BOOT
//	rafs inspect [--json] IMAGE|BLOB|BOOT
//	rafs convert [--type nydus|erofs] [flags] SRC DST
//	rafs push OCI_DIR[:TAG] REF
//	rafs serve [flags] [-- RAFS-CONVERT-FLAGS...]
//	rafs mkfs [mkfs.erofs OPTIONS] FILE SOURCE...
//
// Run as mkfs.erofs (through a symlink or hard link of that name), or as
// "rafs mkfs", it takes mkfs.erofs 1.9's command line (rafs mkfs --help
// lists the options it maps onto rafs build and rafs merge --type erofs).
//
// SOURCE is a tar, a tar.gz (or tar.zst), "-" for standard input, or (for
// EROFS) a directory. SRC and DST of convert are registry references or OCI
// image layouts (oci:DIR[:TAG]) or archives (oci-archive:FILE[:TAG],
// docker-archive:FILE[:REF]). Run "rafs COMMAND -h" for the flags.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
)

const usage = `rafs converts OCI image layers into EROFS images and Nydus layers.

Usage:
  rafs build [flags] -o OUT SOURCE     build an EROFS image from a layer tar or a directory
  rafs build --type nydus [flags] -o BLOB [--bootstrap BOOT] SOURCE
                                       build a Nydus blob (with its RAFS v6 bootstrap) from a layer tar
  rafs merge -o BOOT LAYER...          merge Nydus layers (blobs or bootstraps) into an image bootstrap
  rafs merge --type erofs -o META LAYER.erofs...
                                       merge EROFS layers into metadata over the layers as devices
  rafs unpack -o TAR [--bootstrap BOOT] [--blob PATH]... [BLOB]
                                       write a Nydus bootstrap's tree as a tar (or blob cache files)
  rafs unpack [--type erofs] (-o TAR | --dir DIR) [--device PATH]... IMAGE
                                       write an EROFS image's tree as a tar or into a directory
                                       (the type of IMAGE or BLOB is told by its magic number)
  rafs check [--device PATH]... [--blob PATH]... IMAGE|BLOB|BOOT
                                       read back everything in an EROFS image, a Nydus blob or
                                       bootstrap; report the first problem with its path and offset
  rafs inspect [--json] IMAGE|BLOB|BOOT
                                       print the superblock, features, devices, counts and sizes
  rafs convert [--type nydus|erofs] [flags] SRC DST
                                       convert a whole image or index; SRC and DST are registry
                                       references, OCI layouts (oci:DIR[:TAG]) or archives
                                       (oci-archive:FILE[:TAG], docker-archive:FILE[:REF])
  rafs push OCI_DIR[:TAG] REF          push an image or index of an OCI layout to a registry
  rafs serve [flags] [-- RAFS-CONVERT-FLAGS...]
                                       convert images as they are pushed: an HTTP service taking
                                       registry notifications, with a durable queue (bbolt or Redis)
  rafs mkfs [OPTIONS] FILE SOURCE...   mkfs.erofs's command line (also when run as mkfs.erofs,
                                       through a link): --tar=f|i, --aufs, -z, -E, -T, -U, ...
  rafs version                         print the version

Run "rafs COMMAND -h" for a command's flags ("rafs build --type nydus -h" for Nydus).
`

// version is set at link time with -ldflags "-X main.version=...".
var version = "devel"

// memoryLimit is the soft limit on the Go runtime's memory unless
// GOMEMLIMIT sets one: LZMA match finders and the pipeline's buffers make
// the live heap large, and the collector's default target (twice the live
// heap) would take the resident set well past it.
const memoryLimit = 224 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	if filepath.Base(os.Args[0]) == "mkfs.erofs" {
		os.Exit(cmdMkfs("mkfs.erofs", os.Args[1:]))
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	switch args[0] {
	case "build":
		typ, rest, err := splitType(args[1:], "erofs")
		if err != nil {
			fmt.Fprintln(os.Stderr, "rafs build:", err)
			return 2
		}
		if typ == "nydus" {
			return cmdBuildNydus(rest)
		}
		return cmdBuild(rest)
	case "merge":
		typ, rest, err := splitType(args[1:], "nydus")
		if err != nil {
			fmt.Fprintln(os.Stderr, "rafs merge:", err)
			return 2
		}
		if typ == "erofs" {
			return cmdMergeEROFS(rest)
		}
		return cmdMerge(rest)
	case "unpack":
		typ, rest, err := unpackType(args[1:])
		if err != nil {
			fmt.Fprintln(os.Stderr, "rafs unpack:", err)
			return 2
		}
		if typ == "erofs" {
			return cmdUnpackEROFS(rest)
		}
		return cmdUnpack(rest)
	case "check":
		return cmdCheck(args[1:])
	case "inspect":
		return cmdInspect(args[1:])
	case "mkfs":
		return cmdMkfs("rafs mkfs", args[1:])
	case "convert":
		return cmdConvert(args[1:])
	case "push":
		return cmdPush(args[1:])
	case "serve":
		return cmdServe(args[1:])
	case "version", "--version":
		fmt.Println("rafs", version)
		return 0
	case "help", "-h", "--help":
		fmt.Print(usage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "rafs: unknown command %q\n\n%s", args[0], usage)
	return 2
}
