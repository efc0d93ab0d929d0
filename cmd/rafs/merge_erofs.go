package main

import (
	"fmt"
	"os"

	"github.com/rafs-dev/rafs/erofs/rebuild"
)

// mergeEROFS is rafs merge --type erofs: the merged metadata of the EROFS
// layer images layers (the lowest first), written to out.
func mergeEROFS(out string, layers []string, quiet bool) int {
	g := startGuard("rafs merge", nil)
	defer g.stop()
	outs := newOutputs(g)
	defer outs.abort()
	metaOut, err := outs.add(out, false)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rafs merge:", err)
		return exitStatus(err)
	}
	var ls []rebuild.Layer
	for _, p := range layers {
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
		ls = append(ls, rebuild.Layer{Name: p, Image: fh, Size: fi.Size()})
	}
	res, err := rebuild.Merge(metaOut, ls, nil)
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
