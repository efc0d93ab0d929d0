package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// withProgress returns r wrapped in a progress bar on standard error when
// one is wanted (forced, or standard error is a terminal, and not quiet),
// and the function that stops it.
func withProgress(r io.Reader, total int64, quiet, force bool) (io.Reader, func()) {
	if quiet || !force && !isTTY(os.Stderr) {
		return r, func() {}
	}
	p := newProgress(os.Stderr, r, total)
	return p, p.stop
}

// progress counts the bytes read through it and redraws a one-line bar on
// a terminal a few times a second.
type progress struct {
	r     io.Reader
	out   io.Writer
	total int64
	n     atomic.Int64
	start time.Time
	done  chan struct{}
	wg    sync.WaitGroup
}

func newProgress(out io.Writer, r io.Reader, total int64) *progress {
	p := &progress{r: r, out: out, total: total, start: time.Now(), done: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.draw()
			case <-p.done:
				return
			}
		}
	}()
	return p
}

func (p *progress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n.Add(int64(n))
	return n, err
}

// Seek seeks the reader under the bar when it can (a plain tar file,
// whose entries' data a tar index skips), and counts the bytes skipped
// as read.
func (p *progress) Seek(offset int64, whence int) (int64, error) {
	s, ok := p.r.(io.Seeker)
	if !ok {
		return 0, errors.New("progress: the source does not seek")
	}
	before, err := s.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	pos, err := s.Seek(offset, whence)
	if err == nil {
		p.n.Add(pos - before)
	}
	return pos, err
}

func (p *progress) draw() {
	n := p.n.Load()
	secs := time.Since(p.start).Seconds()
	rate := float64(n) / (1 << 20) / max(secs, 1e-9)
	if p.total <= 0 {
		fmt.Fprintf(p.out, "\r%8.1f MiB read  %6.1f MiB/s ", float64(n)/(1<<20), rate)
		return
	}
	const width = 30
	frac := min(float64(n)/float64(p.total), 1)
	fill := int(frac * width)
	fmt.Fprintf(p.out, "\r[%s%s] %3.0f%%  %6.1f MiB/s ", strings.Repeat("=", fill), strings.Repeat(" ", width-fill), frac*100, rate)
}

// stop ends the redraws and clears the line.
func (p *progress) stop() {
	close(p.done)
	p.wg.Wait()
	fmt.Fprintf(p.out, "\r%s\r", strings.Repeat(" ", 60))
}
