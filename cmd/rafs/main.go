// Command rafs converts OCI container image layers into EROFS images.
//
// Usage:
//
//	rafs build [flags] -o OUT SOURCE
//
// SOURCE is a tar, a tar.gz (or tar.zst), "-" for standard input, or a
// directory. Run "rafs build -h" for the flags.
package main

import (
	"fmt"
	"os"
)

const usage = `rafs converts OCI image layers into EROFS images.

Usage:
  rafs build [flags] -o OUT SOURCE   build an EROFS image from a layer tar or a directory
  rafs version                       print the version

Run "rafs build -h" for the build flags.
`

// version is set at link time with -ldflags "-X main.version=...".
var version = "devel"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	switch args[0] {
	case "build":
		return cmdBuild(args[1:])
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
