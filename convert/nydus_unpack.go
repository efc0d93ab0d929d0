package convert

import (
	"archive/tar"
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/erofs"
	"github.com/rafs-dev/rafs/rafs"
)

// UnpackResult describes what UnpackNydus wrote.
type UnpackResult struct {
	Entries int    // tar entries written
	Bytes   uint64 // bytes of file data written
	// Sockets counts sockets left out: a tar cannot hold them.
	Sockets int
}

// UnpackNydus writes the tree of bootstrap boot to w as a PAX tar, reading
// file contents from the blobs: blobs[i] is the blob of boot.Blobs[i] (it
// may be nil if no file has a chunk there). Entries come in the
// bootstrap's visit order, every directory before its contents; the root
// is written as "./" unless it has the attributes of an implicit directory
// (mode 0755, owner 0:0, mtime 0, no xattrs). Hard links become link
// entries to the first name written, xattrs SCHILY.xattr records, and
// times keep their nanoseconds. Every chunk is checked against the blob's
// chunk digest and the bootstrap's (digest, size and offset), so a
// mismatched or corrupt blob is an error, never wrong content. The tar is
// finished (trailer written) but w is not closed.
//
// Memory grows with the entries of the tree, not with its depth: each
// entry's name is built in one buffer from the directories above it, and
// the first name of a hard-linked inode is found again from a directory's
// parent when a link to it is written.
//
// A tarfs bootstrap (rafs.FlagTarfsMode), whose blobs are tars, is
// unpacked by UnpackNydusTarfs.
func UnpackNydus(boot *rafs.Bootstrap, blobs []*blob.Reader, w io.Writer) (*UnpackResult, error) {
	if boot != nil && boot.Flags&rafs.FlagTarfsMode != 0 {
		return nil, errors.New("convert: unpack: a tarfs bootstrap, whose blobs are tars: use UnpackNydusTarfs")
	}
	if boot != nil && len(blobs) != len(boot.Blobs) {
		return nil, fmt.Errorf("convert: unpack: %d blob readers for %d blobs", len(blobs), len(boot.Blobs))
	}
	return unpackNydus(boot, blobs, nil, w)
}

// unpackNydus does the work of UnpackNydus and UnpackNydusTarfs: file
// data comes from the Nydus blobs, or (tarfs) from the tars.
func unpackNydus(boot *rafs.Bootstrap, blobs []*blob.Reader, tars []io.ReaderAt, w io.Writer) (*UnpackResult, error) {
	if boot == nil || boot.Root == nil {
		return nil, errors.New("convert: unpack: no bootstrap")
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	u := &unpacker{boot: boot, blobs: blobs, tars: tars, tw: &tarWriter{w: bw}, res: &UnpackResult{}, multi: namedTwice(boot)}
	if len(u.multi) > 0 {
		u.first = map[*rafs.Node]nameAt{}
		u.parent = map[*rafs.Node]*rafs.Node{}
	}
	err := boot.Visit(func(dirs []*rafs.Node, n *rafs.Node) error {
		if err := u.entry(dirs, n); err != nil {
			return fmt.Errorf("convert: unpack %s: %w", rafs.AppendPath(nil, dirs, n), err)
		}
		return nil
	})
	if err == nil {
		err = finishTar(u.tw, bw)
	}
	if err != nil {
		return nil, err
	}
	return u.res, nil
}

// finishTar writes the tar's trailer and flushes bw, the buffer under it.
func finishTar(tw *tarWriter, bw *bufio.Writer) error {
	err := tw.Close()
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return fmt.Errorf("convert: unpack: %w", err)
	}
	return nil
}

// paxXattrs returns the PAX records of xattrs: SCHILY.xattr.NAME, or
// libarchive's form for a name a PAX key cannot hold ('=').
func paxXattrs[V ~string | ~[]byte](xattrs map[string]V) map[string]string {
	if len(xattrs) == 0 {
		return nil
	}
	records := make(map[string]string, len(xattrs))
	for k, v := range xattrs {
		if strings.ContainsRune(k, '=') {
			records["LIBARCHIVE.xattr."+percentEncode(k)] = base64.StdEncoding.EncodeToString([]byte(v))
			continue
		}
		records["SCHILY.xattr."+k] = string(v)
	}
	return records
}

// namedTwice returns the non-directory inodes that have more than one name
// in the tree: hard-link targets, and a node that is in the tree twice.
func namedTwice(boot *rafs.Bootstrap) map[*rafs.Node]bool {
	seen := map[*rafs.Node]bool{}
	multi := map[*rafs.Node]bool{}
	boot.Visit(func(_ []*rafs.Node, n *rafs.Node) error {
		if n.Link != nil {
			multi[n.Link] = true
		} else if !n.IsDir() {
			if seen[n] {
				multi[n] = true
			}
			seen[n] = true
		}
		return nil
	})
	return multi
}

// nameAt is a name in a directory.
type nameAt struct {
	dir  *rafs.Node
	name string
}

type unpacker struct {
	boot   *rafs.Bootstrap
	blobs  []*blob.Reader
	tars   []io.ReaderAt // the blobs of a tarfs bootstrap, instead of blobs
	tw     *tarWriter
	multi  map[*rafs.Node]bool       // inodes with several names
	first  map[*rafs.Node]nameAt     // such an inode → its name written first
	parent map[*rafs.Node]*rafs.Node // directory → its parent, when there are hard links
	link   []byte                    // a hard link's target name
	hdr    tarHeader
	buf    []byte
	res    *UnpackResult

	// The directories of the entries being written, as Visit passes
	// them, and their tar name "a/b/c/" built as a stack: lens[i] is
	// the length of the name of dirs[:i+1], plain[i] whether it has
	// only components tarWriter writes itself (see plainPath).
	dirs  []*rafs.Node
	name  []byte
	lens  []int
	plain []bool
}

// enter brings u.dirs and the name prefix in line with dirs: Visit has
// left some directories and entered the last one of dirs, if any.
func (u *unpacker) enter(dirs []*rafs.Node) {
	n := len(dirs)
	if n == len(u.dirs) && (n == 0 || u.dirs[n-1] == dirs[n-1]) {
		return
	}
	k := min(n, len(u.dirs))
	for k > 0 && u.dirs[k-1] != dirs[k-1] {
		k--
	}
	u.dirs, u.lens, u.plain = u.dirs[:k], u.lens[:k], u.plain[:k]
	for _, d := range dirs[k:] {
		length, plain := 0, true
		if len(u.dirs) > 0 {
			u.name = append(u.name[:u.lens[len(u.lens)-1]], d.Name...)
			u.name = append(u.name, '/')
			length, plain = len(u.name), u.plain[len(u.plain)-1] && plainName(d.Name)
			if u.parent != nil {
				u.parent[d] = u.dirs[len(u.dirs)-1]
			}
		}
		u.dirs, u.lens, u.plain = append(u.dirs, d), append(u.lens, length), append(u.plain, plain)
	}
}

// plainName reports whether a name is a path component tarWriter writes
// itself: not empty, "." or "..", and ASCII without NUL or '/'.
func plainName(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == 0 || c == '/' || c >= 0x80 {
			return false
		}
	}
	return true
}

// appendName appends the tar name of entry name in directory d (as
// recorded in u.parent): the names from the root down, slash-separated.
func (u *unpacker) appendName(dst []byte, d *rafs.Node, name string) []byte {
	start := len(dst)
	dst = append(dst, name...)
	for ; d != nil && d != u.boot.Root; d = u.parent[d] {
		dst = append(dst, '/')
		dst = append(dst, d.Name...)
	}
	// Reverse the components, then each component's bytes.
	s := dst[start:]
	slices.Reverse(s)
	for i := 0; i < len(s); {
		j := bytes.IndexByte(s[i:], '/')
		if j < 0 {
			j = len(s) - i
		}
		slices.Reverse(s[i : i+j])
		i += j + 1
	}
	return dst
}

func (u *unpacker) entry(dirs []*rafs.Node, n *rafs.Node) error {
	in := n
	if n.Link != nil {
		in = n.Link
	}
	var parent *rafs.Node
	var name []byte
	plain := true
	if len(dirs) == 0 {
		if isImplicitDir(n) {
			return nil
		}
		name = append(u.name[:0], "./"...)
	} else {
		u.enter(dirs)
		parent = dirs[len(dirs)-1]
		name = append(u.name[:u.lens[len(u.lens)-1]], n.Name...)
		plain = u.plain[len(u.plain)-1] && plainName(n.Name)
	}
	u.name = name
	h := &u.hdr
	*h = tarHeader{name: name, plain: plain, typeflag: tar.TypeLink, noTime: true}
	if at, ok := u.first[in]; ok {
		u.link = u.appendName(u.link[:0], at.dir, at.name)
		h.linkname = u.link
		u.res.Entries++
		return u.tw.WriteHeader(h)
	}
	h.mode = int64(in.Mode & erofs.ModePermMask)
	h.uid, h.gid = int64(in.UID), int64(in.GID)
	h.mtime, h.nsec, h.noTime = in.Mtime, int64(in.MtimeNsec), false
	h.records = paxXattrs(in.Xattrs)
	switch in.Mode & erofs.ModeTypeMask {
	case erofs.ModeDir:
		h.typeflag = tar.TypeDir
		if len(dirs) > 0 {
			u.name = append(u.name, '/')
			h.name = u.name
		}
	case erofs.ModeRegular:
		h.typeflag, h.size = tar.TypeReg, int64(in.Size)
	case erofs.ModeSymlink:
		h.typeflag = tar.TypeSymlink
		u.link = append(u.link[:0], in.Linkname...)
		h.linkname = u.link
	case erofs.ModeCharDevice:
		h.typeflag, h.devmajor, h.devminor = tar.TypeChar, int64(in.Devmajor), int64(in.Devminor)
	case erofs.ModeBlockDevice:
		h.typeflag, h.devmajor, h.devminor = tar.TypeBlock, int64(in.Devmajor), int64(in.Devminor)
	case erofs.ModeFIFO:
		h.typeflag = tar.TypeFifo
	case erofs.ModeSocket:
		u.res.Sockets++
		return nil
	default:
		return fmt.Errorf("unknown file type %#o", in.Mode)
	}
	if !in.IsDir() && u.multi[in] {
		u.first[in] = nameAt{parent, n.Name}
	}
	if err := u.tw.WriteHeader(h); err != nil {
		return err
	}
	u.res.Entries++
	if h.typeflag == tar.TypeReg {
		return u.data(in)
	}
	return nil
}

// data writes a regular file's contents, chunk by chunk.
func (u *unpacker) data(n *rafs.Node) error {
	cs := uint64(u.boot.ChunkSize)
	if cs == 0 || uint64(len(n.Chunks)) != (n.Size+cs-1)/cs {
		return fmt.Errorf("file of %d bytes has %d chunks of %d bytes", n.Size, len(n.Chunks), cs)
	}
	for i, c := range n.Chunks {
		data, err := u.chunk(c)
		if err != nil {
			return fmt.Errorf("chunk %d (file offset %d): %w", i, uint64(i)*cs, err)
		}
		want := min(cs, n.Size-uint64(i)*cs)
		if c.FileOffset != uint64(i)*cs || uint64(len(data)) != want {
			return fmt.Errorf("chunk %d: %d bytes at file offset %d, want %d at %d", i, len(data), c.FileOffset, want, uint64(i)*cs)
		}
		if _, err := u.tw.Write(data); err != nil {
			return err
		}
		u.res.Bytes += uint64(len(data))
	}
	return nil
}

// chunk reads and checks one chunk.
func (u *unpacker) chunk(c rafs.ChunkRecord) ([]byte, error) {
	if u.tars != nil {
		return u.tarfsChunk(c)
	}
	if int(c.BlobIndex) >= len(u.blobs) {
		return nil, fmt.Errorf("blob index %d, but there are %d blobs", c.BlobIndex, len(u.blobs))
	}
	br := u.blobs[c.BlobIndex]
	bi := u.boot.Blobs[c.BlobIndex]
	if br == nil {
		return nil, fmt.Errorf("blob %s is not available", bi.ID)
	}
	data, err := readNydusChunk(br, bi, c, u.buf[:0])
	if err == nil {
		u.buf = data
	}
	return data, err
}

// readNydusChunk reads chunk c from blob br (whose table entry is bi) and
// checks it against the bootstrap: CI index, offsets, size and digest.
func readNydusChunk(br *blob.Reader, bi rafs.BlobInfo, c rafs.ChunkRecord, dst []byte) ([]byte, error) {
	infos := br.ChunkInfos()
	if int(c.Index) >= len(infos) {
		return nil, fmt.Errorf("CI index %d, but blob %s has %d chunks", c.Index, bi.ID, len(infos))
	}
	ci := infos[c.Index]
	if ci.UncompressedOffset != c.UncompressedOffset || ci.UncompressedSize != c.UncompressedSize {
		return nil, fmt.Errorf("blob %s chunk %d is at %#x+%d, the bootstrap says %#x+%d",
			bi.ID, c.Index, ci.UncompressedOffset, ci.UncompressedSize, c.UncompressedOffset, c.UncompressedSize)
	}
	data, err := br.ReadChunk(int(c.Index), dst)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", bi.ID, err)
	}
	if uint32(len(data)) != c.UncompressedSize {
		return nil, fmt.Errorf("blob %s chunk %d: %d bytes, want %d", bi.ID, c.Index, len(data), c.UncompressedSize)
	}
	// ReadChunk checked the data against the blob's digest array; the
	// bootstrap must name the same digest. Without the array, hash.
	d, ok := br.ChunkDigest(int(c.Index))
	if !ok {
		d = bi.Digester.Sum(data)
	}
	if d != c.Digest {
		return nil, fmt.Errorf("blob %s chunk %d: digest %x, the bootstrap says %x", bi.ID, c.Index, d[:8], c.Digest[:8])
	}
	return data, nil
}

// WriteBlobCache writes the uncompressed form of a blob to w: every chunk
// at its uncompressed offset, the gaps and the end up to the blob's
// uncompressed size zero-filled — what nydusd keeps as a blob's cache file
// for fscache, and what the kernel reads as the blob's EROFS device. Each
// chunk is verified as ReadChunk verifies it. It returns the bytes written.
func WriteBlobCache(w io.Writer, br *blob.Reader) (int64, error) {
	infos := slices.Clone(br.ChunkInfos())
	idx := make([]int, len(infos))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		return cmp.Compare(infos[a].UncompressedOffset, infos[b].UncompressedOffset)
	})
	var pos uint64
	var buf []byte
	var err error
	for _, i := range idx {
		ci := infos[i]
		if ci.UncompressedOffset < pos {
			return int64(pos), fmt.Errorf("convert: blob cache: chunk %d at %#x overlaps the previous chunk", i, ci.UncompressedOffset)
		}
		if err := writeZeros(w, ci.UncompressedOffset-pos); err != nil {
			return int64(pos), fmt.Errorf("convert: blob cache: %w", err)
		}
		pos = ci.UncompressedOffset
		if buf, err = br.ReadChunk(i, buf[:0]); err != nil {
			return int64(pos), fmt.Errorf("convert: blob cache: %w", err)
		}
		if _, err := w.Write(buf); err != nil {
			return int64(pos), fmt.Errorf("convert: blob cache: %w", err)
		}
		pos += uint64(len(buf))
	}
	if end := br.UncompressedSize(); end > pos {
		if err := writeZeros(w, end-pos); err != nil {
			return int64(pos), fmt.Errorf("convert: blob cache: %w", err)
		}
		pos = end
	}
	return int64(pos), nil
}

// percentEncode escapes every byte of s but ASCII letters, digits and
// "-_.~" as %XX, as libarchive's xattr records do.
func percentEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

var zeroBlock [64 << 10]byte

func writeZeros(w io.Writer, n uint64) error {
	for n > 0 {
		k := min(n, uint64(len(zeroBlock)))
		if _, err := w.Write(zeroBlock[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// OpenNydusBlobs opens the blobs of a bootstrap's table from n candidate
// files given in any order: each blob is matched by id, the hex SHA-256 of
// its bytes. open returns the reader and size of candidate i; candidates
// matching no blob are skipped. A blob of the table without a candidate
// is an error when required is true (otherwise its reader is nil).
func OpenNydusBlobs(boot *rafs.Bootstrap, n int, open func(i int) (io.ReaderAt, int64, error), required bool) ([]*blob.Reader, error) {
	want := map[string]int{}
	for i, bi := range boot.Blobs {
		want[bi.ID] = i
	}
	out := make([]*blob.Reader, len(boot.Blobs))
	for i := range n {
		ra, size, err := open(i)
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(ra, 0, size)); err != nil {
			return nil, fmt.Errorf("convert: blob %d: %w", i, err)
		}
		id := fmt.Sprintf("%x", h.Sum(nil))
		k, ok := want[id]
		if !ok || out[k] != nil {
			continue
		}
		br, err := blob.Open(ra, size)
		if err != nil {
			return nil, fmt.Errorf("convert: blob %s: %w", id, err)
		}
		bi := boot.Blobs[k]
		br.SetDigester(bi.Digester)
		br.SetCompressor(bi.Compressor)
		out[k] = br
	}
	if required {
		for i, br := range out {
			if br == nil {
				return nil, fmt.Errorf("convert: blob %s of the bootstrap was not given (blobs are matched by the SHA-256 of their bytes)", boot.Blobs[i].ID)
			}
		}
	}
	return out, nil
}
