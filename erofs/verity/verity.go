// Package verity appends a dm-verity hash tree to an image, so that the
// Linux kernel's device-mapper "verity" target can check every block the
// image's file system reads against one root hash, which a signature can
// pin. It works on any image (an EROFS image, a tar index with its tar,
// a Nydus bootstrap): it knows nothing of what the bytes mean.
//
// The tree is the one veritysetup(8) formats (cryptsetup's DMVerity
// documentation; the kernel's Documentation/admin-guide/device-mapper/
// verity.rst): hash format version 1, SHA-256, the salt prepended to each
// hashed block, each digest in a 32-byte slot, a hash block's unused tail
// zeroed, the levels laid out from the top one (a single block) down to
// the one hashing the data, and the root hash the salted digest of the
// top block. By default the hash area begins with veritysetup's 512-byte
// verity superblock, padded to a hash block, which records the salt, the
// block sizes and the number of data blocks, so that only the root hash
// and the superblock's offset are needed to open the device.
//
// That is the form containerd's EROFS differ writes with enable_dmverity
// (its internal/dmverity package): the tree appended to the layer blob
// after the image, rounded up to whole data blocks, and a "layer.erofs
// .dmverity" file beside it holding the root hash and the superblock's
// offset (Result.Metadata), which its snapshotter reads to open the
// device. Unlike containerd, which picks a random superblock UUID, this
// package derives it from the root hash, so the output is reproducible;
// its default salt is containerd's, 32 zero bytes, so that the root hash
// of an image is the one containerd computes for it.
package verity

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
)

// Sizes and limits of the format.
const (
	// DefaultBlockSize is the data and hash block size when
	// Options.BlockSize is 0.
	DefaultBlockSize = 4096
	// MinBlockSize and MaxBlockSize bound Options.BlockSize, as
	// veritysetup does (the kernel opens blocks up to its page size).
	MinBlockSize = 512
	MaxBlockSize = 512 << 10
	// SuperblockSize is the size of the verity superblock, which takes a
	// whole hash block at the start of the hash area.
	SuperblockSize = 512
	// MaxSaltSize is the longest salt the superblock holds.
	MaxSaltSize = 256
	// DigestSize is the size of a SHA-256 digest, the root hash's length.
	DigestSize = sha256.Size
	// HashType is the hash format version written: 1, veritysetup's
	// default (the salt prepended; version 0 appended it).
	HashType = 1
	// Algorithm is the hash algorithm's name, as the superblock and
	// veritysetup's --hash spell it.
	Algorithm = "sha256"
	// MetadataSuffix is what containerd appends to a layer blob's path
	// for the file holding its root hash and hash offset
	// (internal/dmverity's MetadataPath): "layer.erofs.dmverity".
	MetadataSuffix = ".dmverity"
)

// DefaultSaltHex is the salt used when Options.Salt is nil, in hex: 32
// zero bytes, the salt of containerd's DefaultDmverityOptions. A salt
// keeps precomputed digests of known blocks from being reused against a
// device; the superblock, and so anyone holding the image, has it anyway.
const DefaultSaltHex = "0000000000000000000000000000000000000000000000000000000000000000"

// superblockMagic is the verity superblock's signature, "verity" and two
// zero bytes.
const superblockMagic = "verity\x00\x00"

// ErrEmpty is returned for an image of no bytes: dm-verity needs at least
// one data block.
var ErrEmpty = errors.New("verity: empty image: a hash tree needs at least one data block")

// Options configures the hash area. The zero value gives containerd's
// form: 4096-byte blocks, a superblock, 32 zero bytes of salt.
type Options struct {
	// BlockSize is the size of data blocks and of hash blocks, a power of
	// two from MinBlockSize to MaxBlockSize; 0 means DefaultBlockSize.
	// The kernel gives the verity device a logical block size of the data
	// block size, and EROFS mounts only a device whose logical block size
	// is no larger than its own block size: an image of 512-byte blocks
	// (a tar index) needs 512 here, as containerd's differ uses for its
	// tar-index layers.
	BlockSize int
	// Salt is prepended to every hashed block, at most MaxSaltSize bytes.
	// nil means the default, DefaultSaltHex; an empty non-nil slice
	// means no salt (veritysetup --salt=-).
	Salt []byte
	// NoSuperblock leaves the superblock out (veritysetup
	// --no-superblock): the tree begins at the hash offset, and opening
	// the device needs every parameter (block size, data blocks, salt)
	// besides the root hash. containerd's snapshotter expects the
	// superblock.
	NoSuperblock bool
	// UUID is the superblock's UUID. The zero UUID means one derived
	// from the root hash: its first 16 bytes, marked as an RFC 9562
	// version 8 UUID. veritysetup and containerd's dm-verity library
	// refuse a superblock whose UUID is zero. Unused with NoSuperblock.
	UUID [16]byte
}

// Result describes a hash area written by Append.
type Result struct {
	// RootHash is the digest that pins the image: the salted SHA-256 of
	// the top hash block (of the only data block, for a one-block image).
	RootHash []byte
	// Salt is the salt used.
	Salt []byte
	// BlockSize is the data and hash block size.
	BlockSize int
	// DataBlocks is the number of data blocks hashed: the image's size
	// rounded up to whole blocks, zero-filled to there.
	DataBlocks uint64
	// HashOffset is the byte offset of the hash area: DataBlocks *
	// BlockSize, where the superblock is (veritysetup --hash-offset, and
	// containerd's "hashoffset"), or the top hash block with
	// NoSuperblock.
	HashOffset int64
	// TreeOffset is the byte offset of the top hash block: HashOffset,
	// plus one hash block for the superblock.
	TreeOffset int64
	// HashBlocks is the number of hash blocks in the tree, the
	// superblock not counted.
	HashBlocks uint64
	// Size is the file's size with the hash area: its end.
	Size int64
	// UUID is the superblock's UUID (zero with NoSuperblock).
	UUID [16]byte
	// Superblock reports whether the hash area begins with a superblock.
	Superblock bool
}

// RootHashHex returns the root hash in hex, as veritysetup takes it.
func (r *Result) RootHashHex() string { return hex.EncodeToString(r.RootHash) }

// SaltHex returns the salt in hex, as veritysetup's --salt takes it ("-"
// for no salt).
func (r *Result) SaltHex() string {
	if len(r.Salt) == 0 {
		return "-"
	}
	return hex.EncodeToString(r.Salt)
}

// UUIDString returns the superblock's UUID in its usual 8-4-4-4-12 form,
// or "" without a superblock.
func (r *Result) UUIDString() string {
	if !r.Superblock {
		return ""
	}
	return formatUUID(r.UUID)
}

// Metadata is the content of containerd's dm-verity metadata file
// (internal/dmverity's DmverityMetadata), which its EROFS snapshotter
// reads from the file named by the layer blob's path and MetadataSuffix.
type Metadata struct {
	RootHash   string `json:"roothash"`
	HashOffset uint64 `json:"hashoffset"`
}

// Metadata returns the result as containerd's dm-verity metadata file
// holds it: JSON, indented as containerd writes it. containerd reads the
// rest of the parameters from the superblock, so for a result without one
// it returns an error.
func (r *Result) Metadata() ([]byte, error) {
	if !r.Superblock {
		return nil, errors.New("verity: containerd's metadata file needs the superblock (the hash area was written without it)")
	}
	return json.MarshalIndent(Metadata{RootHash: r.RootHashHex(), HashOffset: uint64(r.HashOffset)}, "", "  ")
}

// File is what Append needs of the image's file: reading the image and
// writing after it.
type File interface {
	io.ReaderAt
	io.WriterAt
}

// ParseSalt parses a salt in hex, as veritysetup's --salt: "-" (or "")
// means no salt. The result is never nil, so Options.Salt takes it as given.
func ParseSalt(s string) ([]byte, error) {
	if s == "-" {
		return []byte{}, nil
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("verity: salt %q: not hex (or \"-\" for none): %w", s, err)
	}
	if len(b) > MaxSaltSize {
		return nil, fmt.Errorf("verity: salt of %d bytes: at most %d", len(b), MaxSaltSize)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

// Validate reports whether o is valid, as Append would.
func (o *Options) Validate() error {
	_, _, err := o.check()
	return err
}

// check validates o and returns its block size and salt.
func (o *Options) check() (int, []byte, error) {
	bs := o.BlockSize
	if bs == 0 {
		bs = DefaultBlockSize
	}
	if bs < MinBlockSize || bs > MaxBlockSize || bs&(bs-1) != 0 {
		return 0, nil, fmt.Errorf("verity: block size %d: want a power of two from %d to %d", bs, MinBlockSize, MaxBlockSize)
	}
	salt := o.Salt
	if salt == nil {
		salt = make([]byte, len(DefaultSaltHex)/2)
	}
	if len(salt) > MaxSaltSize {
		return 0, nil, fmt.Errorf("verity: salt of %d bytes: at most %d", len(salt), MaxSaltSize)
	}
	if o.NoSuperblock && o.UUID != ([16]byte{}) {
		return 0, nil, errors.New("verity: a UUID is given but there is no superblock to hold it")
	}
	return bs, salt, nil
}

// layout returns where the hash area of an image of size bytes goes, and
// each level of its tree, bottom up.
func layout(size int64, bs int, superblock bool) (dataBlocks uint64, hashOffset, treeOffset int64, levels []level, err error) {
	if size < 0 {
		return 0, 0, 0, nil, fmt.Errorf("verity: image size %d", size)
	}
	if size == 0 {
		return 0, 0, 0, nil, ErrEmpty
	}
	if size > math.MaxInt64/2 {
		return 0, 0, 0, nil, fmt.Errorf("verity: image size %d: a tree after it would pass 2^63", size)
	}
	dataBlocks = uint64((size + int64(bs) - 1) / int64(bs))
	hashOffset = int64(dataBlocks) * int64(bs)
	treeOffset = hashOffset
	if superblock {
		treeOffset += int64(bs) // the superblock, padded to a hash block
	}
	perBlock := uint64(bs / DigestSize)
	// Level 0 hashes the data; each level above hashes the one below, up
	// to a level of one block. Its block counts, bottom up.
	for n := dataBlocks; n > 1; {
		n = (n + perBlock - 1) / perBlock
		levels = append(levels, level{blocks: n})
	}
	// On disk the top level comes first.
	off := treeOffset
	for i := len(levels) - 1; i >= 0; i-- {
		levels[i].offset = off
		off += int64(levels[i].blocks) * int64(bs)
		if off < 0 {
			return 0, 0, 0, nil, fmt.Errorf("verity: a tree for %d bytes passes 2^63", size)
		}
	}
	return dataBlocks, hashOffset, treeOffset, levels, nil
}

// level is one level of the tree.
type level struct {
	offset int64  // of its first block
	blocks uint64 // how many
}

// TreeSize returns the number of bytes Append adds after an image of size
// bytes, padding to a whole data block included.
func TreeSize(size int64, opts *Options) (int64, error) {
	if opts == nil {
		opts = &Options{}
	}
	bs, _, err := opts.check()
	if err != nil {
		return 0, err
	}
	_, _, treeOffset, levels, err := layout(size, bs, !opts.NoSuperblock)
	if err != nil {
		return 0, err
	}
	end := treeOffset
	for _, l := range levels {
		end += int64(l.blocks) * int64(bs)
	}
	return end - size, nil
}

// Append hashes the first size bytes of f, the image, in one sequential
// pass and writes the hash area after them: zeros up to a whole data
// block, the superblock (unless opts.NoSuperblock) and the tree. It
// returns where it put them and the root hash. A nil opts means the zero
// Options. Memory is one block per tree level and a read buffer; nothing
// grows with the image.
//
// The image is not changed, and its file system does not know of the tree
// after it: an EROFS image still mounts as it did (its superblock counts
// its own blocks only), and through a verity device made with the root
// hash, every block it reads is checked.
func Append(f File, size int64, opts *Options) (*Result, error) {
	if opts == nil {
		opts = &Options{}
	}
	bs, salt, err := opts.check()
	if err != nil {
		return nil, err
	}
	dataBlocks, hashOffset, treeOffset, levels, err := layout(size, bs, !opts.NoSuperblock)
	if err != nil {
		return nil, err
	}
	t := &tree{w: f, bs: bs, salt: salt, h: sha256.New(), levels: levels}
	t.pending = make([][]byte, len(levels))
	t.next = make([]int64, len(levels))
	for i, l := range levels {
		t.pending[i] = make([]byte, 0, bs)
		t.next[i] = l.offset
	}

	// Level 0: the data, read in order, the last block zero-filled.
	const readAhead = 1 << 20
	buf := make([]byte, max(bs, readAhead/bs*bs))
	var root []byte
	for off := int64(0); off < hashOffset; {
		n := int(min(int64(len(buf)), hashOffset-off))
		chunk := buf[:n]
		m, err := f.ReadAt(chunk[:min(int64(n), size-off)], off)
		if m < n && off+int64(m) < size {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("verity: reading the image at offset %d: %w", off+int64(m), err)
		}
		clear(chunk[m:])
		for b := 0; b < n; b += bs {
			d := t.digest(chunk[b : b+bs])
			if len(levels) == 0 {
				root = bytes.Clone(d) // a one-block image: its digest is the root
				break
			}
			if err := t.add(0, d); err != nil {
				return nil, err
			}
		}
		off += int64(n)
	}
	// The partly filled blocks, bottom up; the top level's one block
	// gives the root hash.
	for i := range levels {
		d, err := t.flush(i)
		if err != nil {
			return nil, err
		}
		if d != nil && i+1 < len(levels) {
			if err := t.add(i+1, d); err != nil {
				return nil, err
			}
		}
	}
	if len(levels) > 0 {
		root = t.root
	}
	for i, l := range levels {
		if t.next[i] != l.offset+int64(l.blocks)*int64(bs) {
			// The layout and the tree disagree: a bug, not bad input.
			return nil, fmt.Errorf("verity: level %d ends at %d, want %d", i, t.next[i], l.offset+int64(l.blocks)*int64(bs))
		}
	}

	res := &Result{
		RootHash:   root,
		Salt:       salt,
		BlockSize:  bs,
		DataBlocks: dataBlocks,
		HashOffset: hashOffset,
		TreeOffset: treeOffset,
		Size:       treeOffset,
		Superblock: !opts.NoSuperblock,
	}
	for _, l := range levels {
		res.HashBlocks += l.blocks
		res.Size += int64(l.blocks) * int64(bs)
	}
	if size < hashOffset {
		if _, err := f.WriteAt(make([]byte, hashOffset-size), size); err != nil {
			return nil, fmt.Errorf("verity: padding the image at offset %d: %w", size, err)
		}
	}
	if res.Superblock {
		res.UUID = opts.UUID
		if res.UUID == ([16]byte{}) {
			res.UUID = uuidFromRoot(root)
		}
		sb := make([]byte, bs)
		encodeSuperblock(sb, res)
		if _, err := f.WriteAt(sb, hashOffset); err != nil {
			return nil, fmt.Errorf("verity: writing the superblock at offset %d: %w", hashOffset, err)
		}
	}
	return res, nil
}

// tree builds the levels of a hash tree as digests arrive, writing each
// hash block once it is full.
type tree struct {
	w       io.WriterAt
	bs      int
	salt    []byte
	h       hash.Hash
	levels  []level
	pending [][]byte // by level: the digests of its block being filled
	next    []int64  // by level: where its next block goes
	sum     [DigestSize]byte
	root    []byte // the top block's digest, once written
}

// digest returns the salted digest of a block (version 1: the salt
// first).
func (t *tree) digest(block []byte) []byte {
	t.h.Reset()
	t.h.Write(t.salt)
	t.h.Write(block)
	return t.h.Sum(t.sum[:0])
}

// add appends a digest to level i's block, writing the block when full
// and passing its digest up.
func (t *tree) add(i int, d []byte) error {
	t.pending[i] = append(t.pending[i], d...)
	if len(t.pending[i]) < t.bs {
		return nil
	}
	up, err := t.flush(i)
	if err != nil {
		return err
	}
	if i+1 < len(t.levels) {
		return t.add(i+1, up)
	}
	return nil
}

// flush writes level i's block being filled, zero-padded, and returns its
// digest, which for the top level is the root hash; a level with no block
// being filled returns nil.
func (t *tree) flush(i int) ([]byte, error) {
	p := t.pending[i]
	if len(p) == 0 {
		return nil, nil
	}
	p = p[:t.bs]
	clear(p[len(t.pending[i]):])
	if _, err := t.w.WriteAt(p, t.next[i]); err != nil {
		return nil, fmt.Errorf("verity: writing hash block of level %d at offset %d: %w", i, t.next[i], err)
	}
	t.next[i] += int64(t.bs)
	t.pending[i] = p[:0]
	d := bytes.Clone(t.digest(p))
	if i == len(t.levels)-1 {
		t.root = d
	}
	return d, nil
}

// encodeSuperblock writes the verity superblock for r into b (cryptsetup's
// struct verity_sb, little-endian): signature, version 1, hash type, UUID,
// algorithm name, data and hash block sizes, data blocks, salt size, salt.
// The rest of b stays zero.
func encodeSuperblock(b []byte, r *Result) {
	le := binary.LittleEndian
	copy(b[0:8], superblockMagic)
	le.PutUint32(b[8:], 1) // superblock version
	le.PutUint32(b[12:], HashType)
	copy(b[16:32], r.UUID[:])
	copy(b[32:64], Algorithm)
	le.PutUint32(b[64:], uint32(r.BlockSize))
	le.PutUint32(b[68:], uint32(r.BlockSize))
	le.PutUint64(b[72:], r.DataBlocks)
	le.PutUint16(b[80:], uint16(len(r.Salt)))
	copy(b[88:88+MaxSaltSize], r.Salt)
}

// uuidFromRoot derives the superblock UUID from the root hash: its first
// 16 bytes, with the version (8, RFC 9562's custom UUIDs) and variant
// bits set.
func uuidFromRoot(root []byte) [16]byte {
	var u [16]byte
	copy(u[:], root)
	u[6] = u[6]&0x0f | 0x80
	u[8] = u[8]&0x3f | 0x80
	return u
}

// formatUUID formats a UUID as 8-4-4-4-12 hex digits.
func formatUUID(u [16]byte) string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
