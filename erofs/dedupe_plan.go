package erofs

// Dedupe's plan for the packed inode. Dedupe (see dedupe.go) can only
// point an extent at the start of an earlier physical cluster, so it
// finds data repeated in a file only where the earlier copy happens to
// start a cluster. With big clusters those starts are megabytes apart,
// and the all-fragments packed inode of a whole layer shares almost
// nothing that way. But the packed inode's content is known in full
// before it is compressed, so dedupe plans where its clusters end: it
// splits the content into content-defined chunks (a gear rolling hash,
// as in FastCDC), finds runs of chunks that recur at least
// planDistancePcl cluster sizes further on, extends each run byte by byte
// to where the copies differ, and asks for a cluster to end where the run
// first occurs, where it recurs and where the recurrence ends. The
// recurrence then starts a worker cluster, which the sink matches against
// the cluster the first copy starts and replaces with a (partial)
// reference to it; the sink's matches stop at the next cut.
//
// A cut costs a partly filled block, and the compressor's context on
// both sides of it: for data that compresses well that often outweighs
// what the run saves. So a run is planned only when it compresses (with
// zstd's fastest level, as an estimate) to at least planMinSave blocks
// and to at least half its length. References need full lcluster indexes for
// the whole packed inode, so the plan is kept only when the runs save at
// least twice what full indexes add. Where a recurrence ends less than a
// block before the next cut, its end moves back to a block before that
// cut, since each cluster needs a logical cluster of its own.
//
// Memory is bounded: at most planIndexMax chunks are indexed (48 bytes
// each), a run costs 24 bytes and its cuts 24 more.

import (
	"cmp"
	"io"
	"slices"

	"github.com/klauspost/compress/zstd"
	"github.com/zeebo/blake3"
)

const (
	planChunkBits = 13      // the chunks average about 1<<planChunkBits bytes
	planChunkMin  = 2 << 10 // and are at least this long
	planChunkMax  = 64 << 10
	planIndexMax  = 1 << 18
	planMinRun    = 16 << 10 // the least run compared
	// planMinSave is the least a run must save, in blocks: its three
	// cuts may each cost a partly filled block and the compressor's
	// context.
	planMinSave     = 6
	planDistancePcl = 2
	// planMinPcl is the least packed cluster size, in blocks, planned
	// for; a cut in incompressible data may need a cluster of 3 blocks.
	planMinPcl = 4
)

// gearTable is the gear hash's table: 256 values of the splitmix64
// sequence.
func gearTable() *[256]uint64 {
	var t [256]uint64
	x := uint64(0x6a09e667f3bcc908)
	for i := range t {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		t[i] = z ^ z>>31
	}
	return &t
}

// chunkRun is data at from that recurs at at, length bytes long.
type chunkRun struct {
	from, at, length int64
}

// planPackedCuts reads the size bytes of the packed inode's content from
// ra and returns, in increasing order, the offsets where dedupe wants its
// clusters to end, or none when the plan would not pay. bs is the block
// size and pcl the packed inode's largest cluster.
func planPackedCuts(ra io.ReaderAt, size int64, bs, pcl int) ([]int64, error) {
	if pcl < planMinPcl*bs {
		return nil, nil // clusters start often enough for dedupe as it is
	}
	runs, err := findRuns(ra, size, int64(planDistancePcl*pcl))
	if err != nil {
		return nil, err
	}
	if runs, err = extendRuns(ra, size, runs); err != nil {
		return nil, err
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	defer enc.Close()
	var data, z []byte
	var saved int64
	kept := runs[:0]
	for _, u := range runs {
		data = slices.Grow(data[:0], int(u.length))[:u.length]
		if _, err := ra.ReadAt(data, u.at); err != nil {
			return nil, err
		}
		z = enc.EncodeAll(data, z[:0])
		if n := int64(len(z)); n >= planMinSave*int64(bs) && 2*n >= u.length {
			kept = append(kept, u)
			saved += n
		}
	}
	// Full indexes cost about 6 bytes per logical cluster more than
	// compact ones.
	if saved < 2*6*lclusterCount(size, bs) {
		return nil, nil
	}
	return runCuts(kept, bs), nil
}

// runCuts turns runs into cuts: where each run first occurs and recurs,
// and where the recurrence ends. That end is rounded down to a whole
// number of blocks from the recurrence's start, since the first copy, when
// stored raw, is in blocks from its start and a reference shorter than a
// block may not fit a logical cluster of its own; and, where the next cut
// is near, moved back by blocks until the data between them can be stored
// in pclusters of their own (see gapFits).
func runCuts(runs []chunkRun, bs int) []int64 {
	type cut struct {
		pos   int64
		start int64 // for the end of a recurrence, its start; else -1
	}
	b := int64(bs)
	cs := make([]cut, 0, 3*len(runs))
	for _, u := range runs {
		cs = append(cs, cut{u.from, -1}, cut{u.at, -1}, cut{u.at + u.length/b*b, u.at})
	}
	slices.SortFunc(cs, func(x, y cut) int { return cmp.Compare(x.pos, y.pos) })
	out := make([]int64, 0, len(cs))
	for i, c := range cs {
		if c.start >= 0 && i+1 < len(cs) {
			for next := cs[i+1].pos; next > c.pos && c.pos-c.start > b && !gapFits(c.pos, next, b); {
				c.pos -= b
			}
		}
		if len(out) > 0 && c.pos <= out[len(out)-1] {
			continue
		}
		out = append(out, c.pos)
	}
	return out
}

// gapFits reports whether the data from offset e to offset n of the
// packed inode can be stored in pclusters that each start in a logical
// cluster of their own and end at n, even when it is stored raw (see
// zworker.rawTo): in raw blocks, the first of them partial, or after a
// compressed pcluster of three blocks.
func gapFits(e, n, bs int64) bool {
	d := n - e
	f := d % bs
	return d >= bs && (f == 0 || e%bs+f >= bs || d >= 2*bs)
}

// findRuns splits the content into chunks and returns, in the order they
// recur, the runs of chunks seen at least minDist bytes earlier that are
// at least planMinRun long.
func findRuns(ra io.ReaderAt, size, minDist int64) ([]chunkRun, error) {
	gear := gearTable()
	const mask = 1<<planChunkBits - 1
	index := make(map[[16]byte]int64)
	var runs []chunkRun
	var cur chunkRun
	finish := func() {
		if cur.length >= planMinRun {
			runs = append(runs, cur)
		}
		cur = chunkRun{}
	}
	chunk := func(start, end int64, key [16]byte) {
		from, ok := index[key]
		if ok && start-from >= minDist {
			if cur.length > 0 && cur.at+cur.length == start && cur.from+cur.length == from {
				cur.length += end - start
			} else {
				finish()
				cur = chunkRun{from: from, at: start, length: end - start}
			}
			return
		}
		finish()
		if !ok && len(index) < planIndexMax {
			index[key] = start
		}
	}

	r := io.NewSectionReader(ra, 0, size)
	buf := make([]byte, 1<<20)
	h := blake3.New()
	var sum [32]byte
	var key [16]byte
	var g uint64
	var start, off int64 // the chunk's start, the offset of buf's first byte
	emit := func(end int64) {
		h.Sum(sum[:0])
		h.Reset()
		copy(key[:], sum[:])
		chunk(start, end, key)
		start = end
	}
	for off < size {
		k, err := io.ReadFull(r, buf[:min(int64(len(buf)), size-off)])
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		b := buf[:k]
		w := 0 // b[w:i] is not hashed yet
		for i := 0; i < len(b); {
			// The gear hash depends on the last 64 bytes only: skip
			// what a chunk shorter than planChunkMin would hold.
			if skip := start + planChunkMin - 64 - off; int64(i) < skip {
				i = int(min(skip, int64(len(b))))
				g = 0
				continue
			}
			g = g<<1 + gear[b[i]]
			i++
			if l := off + int64(i) - start; l >= planChunkMin && g&mask == 0 || l >= planChunkMax {
				h.Write(b[w:i])
				w = i
				emit(off + int64(i))
			}
		}
		h.Write(b[w:])
		off += int64(k)
	}
	if start < size {
		emit(size)
	}
	finish()
	return runs, nil
}

// extendRuns extends each run byte by byte, backwards and forwards, while
// its two copies agree, by at most planChunkMax bytes each way and
// without reaching into the recurrence of the run before or after it.
func extendRuns(ra io.ReaderAt, size int64, runs []chunkRun) ([]chunkRun, error) {
	a := make([]byte, planChunkMax)
	b := make([]byte, planChunkMax)
	for i := range runs {
		u := &runs[i]
		lo := int64(0)
		if i > 0 {
			lo = runs[i-1].at + runs[i-1].length
		}
		n := min(int64(planChunkMax), u.from, u.at-lo)
		if n > 0 {
			if _, err := ra.ReadAt(a[:n], u.from-n); err != nil {
				return nil, err
			}
			if _, err := ra.ReadAt(b[:n], u.at-n); err != nil {
				return nil, err
			}
			k := int64(0)
			for k < n && a[n-1-k] == b[n-1-k] {
				k++
			}
			u.from, u.at, u.length = u.from-k, u.at-k, u.length+k
		}
		hi := size
		if i+1 < len(runs) {
			hi = runs[i+1].at
		}
		n = min(int64(planChunkMax), hi-(u.at+u.length), u.at-u.from-u.length)
		if n > 0 {
			if _, err := ra.ReadAt(a[:n], u.from+u.length); err != nil {
				return nil, err
			}
			if _, err := ra.ReadAt(b[:n], u.at+u.length); err != nil {
				return nil, err
			}
			u.length += int64(commonPrefix(a[:n], b[:n]))
		}
	}
	return runs, nil
}
