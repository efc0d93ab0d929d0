package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sys/unix"
)

const pushUsage = `Usage: rafs push [flags] OCI_DIR[:TAG] REF

Pushes an image or index of an OCI layout (the entry tagged TAG, or the
only entry) to the registry reference REF, with every blob and child
manifest it needs, and prints REF with the pushed digest. A manifest with
a subject is also listed under the subject's referrers (the fallback tag
on registries without the referrers API). OCI_DIR may be written oci:DIR.

Flags:
`

func cmdPush(args []string) int {
	var rf remoteFlags
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, pushUsage)
		fs.PrintDefaults()
	}
	rf.register(fs)
	pos, err := parseArgs(fs, args)
	if err == flag.ErrHelp {
		return 0
	}
	if err == nil && len(pos) != 2 {
		fs.Usage()
		err = fmt.Errorf("want OCI_DIR[:TAG] and REF, got %d arguments", len(pos))
	}
	var src, dst *location
	if err == nil {
		err = rf.check()
	}
	if err == nil {
		p := pos[0]
		if !strings.HasPrefix(p, layoutPrefix) {
			p = layoutPrefix + p
		}
		src, err = parseLocation(p, false)
	}
	if err == nil {
		if dst, err = parseLocation(pos[1], rf.plainHTTP); err == nil && dst.isLayout() {
			err = errors.New("REF must be a registry reference")
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rafs push:", err)
		return 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g := startGuard("rafs push", cancel)
	defer g.stop()
	line, err := push(ctx, &rf, src, dst)
	if s := g.interrupted(); s != 0 {
		fmt.Fprintf(os.Stderr, "rafs push: interrupted by %s: %v\n", unix.SignalName(s), err)
		return 128 + int(s)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rafs push:", err)
		return 1
	}
	fmt.Println(line)
	return 0
}

// push writes the layout entry src to the registry reference dst.
func push(ctx context.Context, rf *remoteFlags, src, dst *location) (string, error) {
	ropts := rf.options(ctx)
	s, err := src.read(ctx, ropts)
	if err != nil {
		return "", err
	}
	dg, err := s.digest()
	if err != nil {
		return "", err
	}
	if s.idx != nil {
		err = remote.WriteIndex(dst.ref, s.idx, ropts...)
	} else {
		err = remote.Write(dst.ref, s.img, ropts...)
	}
	if err != nil {
		return "", fmt.Errorf("pushing %s to %s: %w", src, dst.ref, err)
	}
	return dst.withDigest(dg), nil
}
