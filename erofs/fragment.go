package erofs

// Fragments and the packed inode (EROFS_FEATURE_INCOMPAT_FRAGMENTS; struct
// erofs_super_block packed_nid, Z_EROFS_ADVISE_FRAGMENT_PCLUSTER and
// Z_EROFS_FRAGMENT_INODE_BIT in fs/erofs/erofs_fs.h). With fragments, the
// end of a compressed file that would fill only part of a physical cluster
// — or, with all-fragments, the whole file — is not compressed on its own:
// it becomes a fragment, appended to the content of the packed inode, a
// regular file no directory names. Close compresses that content like any
// file's, so the fragments of many files share clusters. A file's map
// header then gives its fragment's offset in the packed inode; a file that
// is all fragment has no lcluster indexes at all.
//
// The sink places fragments in submission order, so their offsets do not
// depend on the number of workers. With fragment dedupe, a fragment equal
// to an earlier one, or to the end of one, is not stored again: it points
// into the earlier one.

import (
	"fmt"
	"hash/crc32"
	"io"
	"slices"

	"github.com/zeebo/blake3"
)

// fragHashLen is how many bytes at a fragment's end key it in the dedupe
// index: fragments that end alike are compared byte by byte.
const fragHashLen = 64

// fragStore is the packed inode's content as the sink builds it: an
// unlinked temporary file, and an index of the fragments in it by their
// last bytes.
type fragStore struct {
	sp    spool
	mode  FragDedupe
	index map[uint32][]fragRef
	buf   []byte
}

// fragRef is a stored fragment: bytes [end-length, end) of the content.
type fragRef struct {
	end, length int64
}

func fragKey(b []byte) uint32 {
	return crc32.Checksum(b[len(b)-min(len(b), fragHashLen):], castagnoli)
}

// put stores fragment b and returns its offset in the packed inode's
// content; index says whether later fragments may share its bytes.
func (f *fragStore) put(b []byte, index bool) (int64, error) {
	off, err := f.sp.write(b)
	if err != nil {
		return 0, err
	}
	if index && f.mode != FragDedupeOff {
		if f.index == nil {
			f.index = make(map[uint32][]fragRef)
		}
		k := fragKey(b)
		f.index[k] = append(f.index[k], fragRef{end: off + int64(len(b)), length: int64(len(b))})
	}
	return off, nil
}

// match finds the longest end of b that is also the end of an earlier
// fragment, and returns where those bytes start in the content and their
// length (0 for none). Fragments are found by their last fragHashLen
// bytes (all of them, when shorter) and compared backwards.
func (f *fragStore) match(b []byte) (off int64, n int, err error) {
	const step = 16 << 10
	for _, c := range f.index[fragKey(b)] {
		total := int(min(c.length, int64(len(b))))
		m := 0
		for m < total {
			k := min(step, total-m)
			f.buf = slices.Grow(f.buf[:0], k)[:k]
			if err := f.sp.readAt(f.buf, c.end-int64(m+k)); err != nil {
				return 0, 0, err
			}
			src := b[len(b)-m-k : len(b)-m]
			i := k
			for i > 0 && f.buf[i-1] == src[i-1] {
				i--
			}
			m += k - i
			if i > 0 {
				break
			}
		}
		if m > n {
			off, n = c.end-int64(m), m
			if n == len(b) {
				break
			}
		}
	}
	return off, n, nil
}

// minTailShare is the least a whole file stored with all-fragments must
// share at its end with an earlier fragment (the bytes that find it, so
// fragHashLen) for it to be stored as with fragments instead: its head in
// full clusters, its tail a fragment, shared where it lies within the
// earlier one. mkfs.erofs does the same; on a Debian base layer it makes
// the image smaller than packing such files whole.
const minTailShare = fragHashLen

// placeFragment stores the fragment of the file being written, which ends
// the segment r. The fragment of a file with all-fragments may span
// segments; only one within a single segment is deduplicated. A fragment
// that is the end of an earlier one points there (FragDedupeFull; whole
// files only with FragDedupeInode). With all-fragments, a whole file
// larger than a pcluster whose end is the end of an earlier fragment is
// compressed here as with fragments, stopping early once what is left
// lies within the shared end, which then points at the earlier bytes
// (mkfs.erofs too compresses such a file's head and packs only its tail).
func (s *zsink) placeFragment(j *zjob, r zresult) error {
	cur := s.cur
	f := s.frags
	b := r.frag
	whole := j.first && j.last && len(r.pclusters) == 0
	single := cur.fragLen == 0 && j.last
	if single && (f.mode == FragDedupeFull || f.mode == FragDedupeInode && whole) {
		off, n, err := f.match(b)
		if err != nil {
			return fmt.Errorf("packed inode: %w", err)
		}
		switch {
		case n == len(b):
			cur.fragOff, cur.fragLen = off, int64(n)
			return nil
		case s.head != nil && whole && f.mode == FragDedupeFull && n >= minTailShare && len(b) > s.pcl:
			if s.head.files == nil {
				if s.head.files, err = s.filesCoder(); err != nil {
					return err
				}
			}
			h, err := s.head.cut(&zjob{in: b, first: true, last: true, shared: n})
			if err == nil && s.same != nil {
				h.sum(s.bs)
			}
			if err == nil {
				err = s.apply(cur, h)
			}
			s.bufs.put(h.out)
			if err != nil {
				return err
			}
			if b = h.frag; len(b) <= n {
				if len(b) > 0 {
					cur.fragOff, cur.fragLen = off+int64(n-len(b)), int64(len(b))
				}
				return nil
			}
		}
	}
	off, err := f.put(b, single)
	if err != nil {
		return fmt.Errorf("packed inode: %w", err)
	}
	if cur.fragLen == 0 {
		cur.fragOff = off
	} else if off != cur.fragOff+cur.fragLen {
		return fmt.Errorf("erofs: internal error: a file's fragment is not contiguous in the packed inode")
	}
	cur.fragLen += int64(len(b))
	return nil
}

// packFragments ends the files' data with the packed inode: once the sink
// has placed every fragment, it adds the inode, unlinked, and submits the
// content for compression. It does nothing when no file has a fragment.
func (w *Writer) packFragments() error {
	p := w.zp
	if err := p.pipe.Flush(); err != nil {
		return err
	}
	w.applyPlaced()
	f := p.sink.frags
	if f == nil || f.sp.size == 0 {
		return nil
	}
	if err := f.sp.flush(); err != nil {
		return err
	}
	id, n, err := w.inodes.add()
	if err != nil {
		return fmt.Errorf("erofs: packed inode: %w", err)
	}
	*n = inode{mode: ModeRegular | 0o644, size: f.sp.size, mtime: w.opts.BuildTime, u: noID}
	w.packedID = id
	var cuts []int64
	if w.opts.Compression.Dedupe {
		cuts, err = planPackedCuts(io.NewSectionReader(f.sp.file, 0, f.sp.size), f.sp.size, w.bs, w.packedPclusterSize())
		if err != nil {
			return fmt.Errorf("erofs: packed inode: %w", err)
		}
	}
	r := io.NewSectionReader(f.sp.file, 0, f.sp.size)
	if err := w.submit(id, n, w.coreSize(n), r, true, cuts); err != nil {
		return fmt.Errorf("erofs: packed inode: %w", err)
	}
	return nil
}

// wholeFragment is the layout of a file stored whole in the packed inode:
// COMPRESSED_FULL with no blocks, a map header holding the offset with
// Z_EROFS_FRAGMENT_INODE_BIT, 8 reserved bytes, and no indexes.
type wholeFragment struct{}

func (wholeFragment) format(*layout, *inode) (uint16, uint32) { return LayoutCompressedFull, 0 }

func (wholeFragment) recordSize(l *layout, n *inode) int64 {
	w := l.w
	return int64(roundUp(w.coreSize(n)+w.ibody(n), 8) + mapHeaderSize + fullIndexReserved)
}

func (wholeFragment) reservedBlock(*layout, *inode) int64 { return -1 }

func (wholeFragment) writeReserved(*layout, uint32, *inode) error { return nil }

func (wholeFragment) appendInline(l *layout, b []byte, _ uint32, n *inode) ([]byte, error) {
	w := l.w
	start := len(b) - w.coreSize(n) - w.ibody(n)
	for (len(b)-start)%8 != 0 {
		b = append(b, 0)
	}
	h := zMapHeader{clusterBits: mhClusterBitsFragment, wholeFragOff: uint64(w.zf(n).fragOff)}
	b = appendZeros(b, mapHeaderSize+fullIndexReserved)
	h.encode(b[len(b)-mapHeaderSize-fullIndexReserved:])
	return b, nil
}

// isWhole reports whether the file is all fragment.
func (z *zfile) isWhole() bool { return z.fragLen > 0 && z.nPcl == 0 }

// Sharing equal pclusters. With fragments or dedupe, a pcluster whose
// stored bytes equal those of one written earlier, in any file, is not
// written again: the extent points at the earlier one (as mkfs.erofs does
// with -E fragments). Equal bytes decode to the same output, so the
// reference is whole, never partial. Workers hash each stored pcluster;
// the sink, in submission order, looks the hashes up, so what is shared
// does not depend on the number of workers.

// sameIndexMax bounds the pclusters the sink remembers: the first
// sameIndexMax distinct ones written (a 4 KiB-cluster image of about
// 1 GiB of compressed data). Memory stays under about 16 MiB however large
// the input; later pclusters can still share the remembered ones.
const sameIndexMax = 1 << 18

// pclusterSum identifies a stored pcluster by its content: a 128-bit
// BLAKE3 hash of its blocks, its block count and whether it is raw.
type pclusterSum struct {
	hash   [16]byte
	blocks uint16
	raw    bool
}

// sameIndex is the sink's index of written pclusters, by content.
type sameIndex struct {
	addr map[pclusterSum]uint32
}

// sharesPclusters reports whether equal pclusters are shared.
func (c *Compression) sharesPclusters() bool {
	return c.Fragments || c.AllFragments || c.Dedupe
}

// sum hashes the result's stored pclusters.
func (r *zresult) sum(bs int) {
	off := 0
	for _, e := range r.pclusters {
		if e.inline {
			r.sums = append(r.sums, pclusterSum{})
			continue
		}
		n := int(e.blocks) * bs
		h := blake3.Sum256(r.out[off : off+n])
		var ps pclusterSum
		copy(ps.hash[:], h[:16])
		ps.blocks, ps.raw = uint16(e.blocks), e.raw
		r.sums = append(r.sums, ps)
		off += n
	}
}

// share writes the result's pclusters that were not written before and
// points the others at their earlier copies.
func (s *zsink) share(cur *zfile, r zresult) error {
	bs := s.bs
	off, run := 0, 0 // r.out[run:off] is to be written
	for i := range r.pclusters {
		e := &r.pclusters[i]
		if e.inline || e.shared { // shared: by dedupe, no blocks here
			continue
		}
		n := int(e.blocks) * bs
		sum := r.sums[i]
		if a, ok := s.same.addr[sum]; ok {
			if err := s.writeOut(cur, r.out[run:off]); err != nil {
				return err
			}
			e.shared, e.addr = true, a
			cur.full, cur.shared = true, true
			off += n
			run = off
			continue
		}
		if s.same.addr == nil {
			s.same.addr = make(map[pclusterSum]uint32)
		}
		if len(s.same.addr) < sameIndexMax {
			s.same.addr[sum] = uint32(s.next + int64((off-run)/bs))
		}
		off += n
	}
	return s.writeOut(cur, r.out[run:off])
}
