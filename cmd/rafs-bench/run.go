package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A tool is one image builder under test, run as a child process.
type tool struct {
	name    string
	path    string   // executable
	args    []string // full command line, args[0] included
	env     []string // nil: the parent's environment
	out     string   // image path
	samples []sample
}

// sample holds the measurements of one run.
type sample struct {
	wall time.Duration
	cpu  time.Duration // user + system
	rss  int64         // peak resident set size in bytes
	size int64         // image size in bytes
}

// rafsTool runs this executable in its child mode.
func rafsTool(self string, c *config, out string) *tool {
	args := []string{self}
	if c.blockSize > 0 {
		args = append(args, "-b", strconv.Itoa(c.blockSize))
	}
	if c.compress != "" {
		args = append(args, "-z", c.compress, "-workers", strconv.Itoa(c.workers))
	}
	if c.pcluster > 0 {
		args = append(args, "-C", strconv.Itoa(c.pcluster))
	}
	if c.extended != "" {
		args = append(args, "-E", c.extended)
	}
	args = append(args, c.rafsArgs...)
	args = append(args, c.layer, out)
	return &tool{
		name: "rafs",
		path: self,
		args: args,
		env:  append(os.Environ(), childEnv+"=1"),
		out:  out,
	}
}

// mkfsTool runs mkfs.erofs in tar mode with the flags that make its image
// comparable to rafs's defaults: overlayfs whiteouts, build time 0 and
// per-file mtimes kept.
func mkfsTool(mkfs string, c *config, kind layerKind, out string) *tool {
	args := []string{mkfs, "--tar=f", "--aufs"}
	switch kind {
	case kindGzip:
		args = append(args, "--ungzip")
	case kindXz:
		args = append(args, "--unxz")
	}
	args = append(args, "-T0", "--mkfs-time", "--quiet")
	if c.blockSize > 0 {
		args = append(args, "-b"+strconv.Itoa(c.blockSize))
	}
	if c.compress != "" {
		args = append(args, "-z"+c.compress, "--workers="+strconv.Itoa(c.workers))
	}
	if c.pcluster > 0 {
		args = append(args, "-C"+strconv.Itoa(c.pcluster))
	}
	if c.extended != "" {
		args = append(args, "-E"+mkfsExtended(c.extended))
	}
	args = append(args, c.mkfsArgs...)
	args = append(args, out, c.layer)
	return &tool{name: "mkfs.erofs", path: mkfs, args: args, out: out}
}

// mkfsExtended rewrites extended options for mkfs.erofs 1.9.3. It reads
// two spellings otherwise than its man page and rafs do: any fragdedupe
// value but inode as full, and ^noinline_data as noinline_data. They
// become ^fragdedupe and inline_data, which it reads as rafs does; the
// other options pass as they are.
func mkfsExtended(s string) string {
	opts := strings.Split(s, ",")
	for i, o := range opts {
		switch o {
		case "fragdedupe=off":
			opts[i] = "^fragdedupe"
		case "^noinline_data":
			opts[i] = "inline_data"
		}
	}
	return strings.Join(opts, ",")
}

// run builds the image once and records a sample. The previous image is
// removed first so that every run creates a new file.
func (t *tool) run(verbose bool) error {
	if err := os.Remove(t.out); err != nil && !os.IsNotExist(err) {
		return err
	}
	var stderr bytes.Buffer
	cmd := &exec.Cmd{Path: t.path, Args: t.args, Env: t.env, Stderr: &stderr}
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if verbose && stderr.Len() > 0 {
		fmt.Fprintf(os.Stderr, "%s: %s", t.name, stderr.Bytes())
	}
	if err != nil {
		return fmt.Errorf("%s: %v: %w", t.name, err, errOutput(stderr.Bytes()))
	}
	fi, err := os.Stat(t.out)
	if err != nil {
		return fmt.Errorf("%s: %w", t.name, err)
	}
	ps := cmd.ProcessState
	t.samples = append(t.samples, sample{
		wall: wall,
		cpu:  ps.UserTime() + ps.SystemTime(),
		rss:  maxRSS(ps),
		size: fi.Size(),
	})
	return nil
}

// median returns the median of each measurement separately.
func (t *tool) median() sample {
	var m sample
	m.wall = median(t.samples, func(s sample) time.Duration { return s.wall })
	m.cpu = median(t.samples, func(s sample) time.Duration { return s.cpu })
	m.rss = median(t.samples, func(s sample) int64 { return s.rss })
	m.size = median(t.samples, func(s sample) int64 { return s.size })
	return m
}

// median returns the median of f over samples: for an even count, the
// mean of the middle two.
func median[T time.Duration | int64](samples []sample, f func(sample) T) T {
	if len(samples) == 0 {
		return 0
	}
	v := make([]T, len(samples))
	for i, s := range samples {
		v[i] = f(s)
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}
