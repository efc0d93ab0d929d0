package convert

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/zeebo/blake3"

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
func UnpackNydus(boot *rafs.Bootstrap, blobs []*blob.Reader, w io.Writer) (*UnpackResult, error) {
	if boot == nil || boot.Root == nil {
		return nil, errors.New("convert: unpack: no bootstrap")
	}
	if len(blobs) != len(boot.Blobs) {
		return nil, fmt.Errorf("convert: unpack: %d blob readers for %d blobs", len(blobs), len(boot.Blobs))
	}
	u := &unpacker{boot: boot, blobs: blobs, tw: tar.NewWriter(w), first: map[*rafs.Node]string{}, res: &UnpackResult{}}
	err := boot.Walk(func(path string, n *rafs.Node) error {
		if err := u.entry(path, n); err != nil {
			return fmt.Errorf("convert: unpack %s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := u.tw.Close(); err != nil {
		return nil, fmt.Errorf("convert: unpack: %w", err)
	}
	return u.res, nil
}

type unpacker struct {
	boot  *rafs.Bootstrap
	blobs []*blob.Reader
	tw    *tar.Writer
	first map[*rafs.Node]string // inode → name written
	buf   []byte
	res   *UnpackResult
}

func (u *unpacker) entry(path string, n *rafs.Node) error {
	name := strings.TrimPrefix(path, "/")
	in := n
	if n.Link != nil {
		in = n.Link
	}
	if path == "/" {
		if isImplicitDir(n) {
			return nil
		}
		name = "./"
	}
	if target, ok := u.first[in]; ok {
		u.res.Entries++
		return u.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Format: tar.FormatPAX})
	}
	h := &tar.Header{
		Name:    name,
		Mode:    int64(in.Mode & erofs.ModePermMask),
		Uid:     int(in.UID),
		Gid:     int(in.GID),
		ModTime: time.Unix(in.Mtime, int64(in.MtimeNsec)),
		Format:  tar.FormatPAX,
	}
	if len(in.Xattrs) > 0 {
		h.PAXRecords = make(map[string]string, len(in.Xattrs))
		for k, v := range in.Xattrs {
			if strings.ContainsRune(k, '=') {
				// A PAX key cannot hold '=': use libarchive's form.
				h.PAXRecords["LIBARCHIVE.xattr."+percentEncode(k)] = base64.StdEncoding.EncodeToString(v)
				continue
			}
			h.PAXRecords["SCHILY.xattr."+k] = string(v)
		}
	}
	switch in.Mode & erofs.ModeTypeMask {
	case erofs.ModeDir:
		h.Typeflag = tar.TypeDir
		if name != "./" {
			h.Name += "/"
		}
	case erofs.ModeRegular:
		h.Typeflag, h.Size = tar.TypeReg, int64(in.Size)
	case erofs.ModeSymlink:
		h.Typeflag, h.Linkname = tar.TypeSymlink, in.Target
	case erofs.ModeCharDevice:
		h.Typeflag, h.Devmajor, h.Devminor = tar.TypeChar, int64(in.RdevMajor), int64(in.RdevMinor)
	case erofs.ModeBlockDevice:
		h.Typeflag, h.Devmajor, h.Devminor = tar.TypeBlock, int64(in.RdevMajor), int64(in.RdevMinor)
	case erofs.ModeFIFO:
		h.Typeflag = tar.TypeFifo
	case erofs.ModeSocket:
		u.res.Sockets++
		return nil
	default:
		return fmt.Errorf("unknown file type %#o", in.Mode)
	}
	if !in.IsDir() {
		u.first[in] = name
	}
	if err := u.tw.WriteHeader(h); err != nil {
		return err
	}
	u.res.Entries++
	if h.Typeflag == tar.TypeReg {
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
			return fmt.Errorf("chunk %d: %w", i, err)
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
func (u *unpacker) chunk(c rafs.Chunk) ([]byte, error) {
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
func readNydusChunk(br *blob.Reader, bi rafs.BlobInfo, c rafs.Chunk, dst []byte) ([]byte, error) {
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
		if bi.Digester == rafs.DigesterSHA256 {
			d = sha256.Sum256(data)
		} else {
			d = blake3.Sum256(data)
		}
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
		return compareU64(infos[a].UncompressedOffset, infos[b].UncompressedOffset)
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

func compareU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
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
		br.SetDigester(blob.Digester(bi.Digester))
		br.SetCompressor(blob.Compressor(bi.Compressor))
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
