package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/rafs-dev/rafs/convert/image"
)

// isTTY reports whether f is a terminal.
func isTTY(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// layerBars draws one progress line per layer being converted, redrawn in
// place a few times a second: the short source digest, a bar and the
// percentage of the source read, MB read of the layer's size, MB written,
// and "done" or "cached" at the end.
type layerBars struct {
	out io.Writer

	mu     sync.Mutex
	order  []v1.Hash
	layers map[v1.Hash]image.LayerProgress
	drawn  int  // lines drawn by the last redraw
	dirty  bool // changed since the last redraw

	stopOnce sync.Once
	done     chan struct{}
	wg       sync.WaitGroup
}

// newLayerBars starts redrawing on out every interval; stop ends it.
func newLayerBars(out io.Writer, interval time.Duration) *layerBars {
	b := &layerBars{out: out, layers: map[v1.Hash]image.LayerProgress{}, done: make(chan struct{})}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				b.redraw()
			case <-b.done:
				return
			}
		}
	}()
	return b
}

// update records a layer's progress (an image.Options.Progress
// function; safe for concurrent use).
func (b *layerBars) update(p image.LayerProgress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old, seen := b.layers[p.Source]
	if !seen {
		b.order = append(b.order, p.Source)
	} else if old.Done {
		return // a layer shared by several images reports once
	}
	b.layers[p.Source] = p
	b.dirty = true
}

// redraw moves the cursor back up over the lines drawn before and draws
// every layer's line again.
func (b *layerBars) redraw() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.dirty {
		return
	}
	b.dirty = false
	var sb strings.Builder
	if b.drawn > 0 {
		fmt.Fprintf(&sb, "\x1b[%dA", b.drawn)
	}
	for _, h := range b.order {
		sb.WriteString("\r\x1b[2K")
		sb.WriteString(barLine(b.layers[h]))
		sb.WriteByte('\n')
	}
	b.drawn = len(b.order)
	io.WriteString(b.out, sb.String())
}

// stop ends the redraws after drawing the final state.
func (b *layerBars) stop() {
	b.stopOnce.Do(func() {
		close(b.done)
		b.wg.Wait()
		b.redraw()
	})
}

// shortDigest is the first 12 hex digits of a digest.
func shortDigest(h v1.Hash) string {
	if len(h.Hex) > 12 {
		return h.Hex[:12]
	}
	return h.Hex
}

// mb formats a byte count in megabytes (10^6 bytes).
func mb(n int64) string { return fmt.Sprintf("%.1f", float64(n)/1e6) }

func barLine(p image.LayerProgress) string {
	const width = 24
	frac := 0.0
	switch {
	case p.Size > 0:
		frac = min(float64(p.Read)/float64(p.Size), 1)
	case p.Done:
		frac = 1
	}
	if p.Done {
		frac = 1
	}
	fill := int(frac * width)
	state := ""
	switch {
	case p.Cached:
		state = "cached"
	case p.Done:
		state = "done"
	}
	return fmt.Sprintf("%s [%s%s] %3.0f%% %7s/%s MB read %7s MB written %s",
		shortDigest(p.Source), strings.Repeat("=", fill), strings.Repeat(" ", width-fill), frac*100,
		mb(p.Read), mb(p.Size), mb(p.Written), state)
}

// summaryLine is the line rafs convert prints when it is done.
func summaryLine(s image.Stats, images int, elapsed time.Duration) string {
	return fmt.Sprintf("converted %s (%d cached) of %s: %.2f MB in, %.2f MB out, in %.1f s",
		plural(s.Layers, "layer"), s.Cached, plural(images, "image"), float64(s.BytesIn)/1e6, float64(s.BytesOut)/1e6, elapsed.Seconds())
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
