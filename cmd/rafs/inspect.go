package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/erofs"
	"github.com/rafs-dev/rafs/rafs"
)

const inspectUsage = `Usage: rafs inspect [--json] IMAGE|BLOB|BOOT

Describes an EROFS image, a Nydus bootstrap or a Nydus blob (told apart by
their magic numbers): the superblock's fields, its features by name, the
device table, the entries of the tree counted by type and data layout,
their xattrs, and sizes; for Nydus, the blob table (or the blob's own
sections and chunks) and the chunk counts. It reads metadata only, not
file data (rafs check reads everything). Counts come from a walk of the
tree: "entries" counts names, "inodes" distinct inodes (hard links share
one).

Flags:
`

// cmdInspect is "rafs inspect".
func cmdInspect(args []string) int {
	var asJSON bool
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, inspectUsage)
		fs.PrintDefaults()
	}
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	pos, err := parseArgs(fs, args)
	if err == flag.ErrHelp {
		return 0
	}
	if err == nil && len(pos) != 1 {
		fs.Usage()
		err = fmt.Errorf("want one IMAGE, BLOB or BOOT, got %d", len(pos))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rafs inspect:", err)
		return 2
	}
	rep, err := inspect(pos[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "rafs inspect: %s: %v\n", pos[0], err)
		return exitStatus(err)
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = rep.writeText(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rafs inspect:", err)
		return 1
	}
	return 0
}

// inspectReport is what inspect prints; its JSON form is the --json
// output.
type inspectReport struct {
	Path      string            `json:"path"`
	Kind      string            `json:"kind"` // erofs, nydus-bootstrap, nydus-blob
	FileSize  int64             `json:"file_size"`
	EROFS     *erofsReport      `json:"erofs,omitempty"`     // an EROFS image or a bootstrap's EROFS side
	Bootstrap *bootstrapReport  `json:"bootstrap,omitempty"` // a bootstrap, or a blob's inline one
	Blob      *blobReport       `json:"blob,omitempty"`
	Tree      *treeCounts       `json:"tree,omitempty"`
	Sizes     map[string]uint64 `json:"sizes,omitempty"`
}

// superblockReport is the EROFS superblock.
type superblockReport struct {
	Magic              string   `json:"magic"`
	Checksum           string   `json:"checksum"`
	FeatureCompat      string   `json:"feature_compat"`
	FeatureIncompat    string   `json:"feature_incompat"`
	Features           []string `json:"features"`
	BlockSize          uint32   `json:"block_size"`
	RootNid            uint64   `json:"root_nid"`
	Inodes             uint64   `json:"inodes"`
	Epoch              int64    `json:"epoch"`
	FixedNsec          uint32   `json:"fixed_nsec"`
	Blocks             uint64   `json:"blocks"`
	MetaBlkAddr        uint32   `json:"meta_blkaddr"`
	XattrBlkAddr       uint32   `json:"xattr_blkaddr"`
	UUID               string   `json:"uuid"`
	VolumeName         string   `json:"volume_name"`
	ComprAlgs          []string `json:"compression_algorithms,omitempty"`
	LZ4MaxDistance     uint16   `json:"lz4_max_distance,omitempty"`
	ExtraDevices       uint16   `json:"extra_devices"`
	DevtSlotOff        uint16   `json:"devt_slotoff"`
	XattrPrefixCount   uint8    `json:"xattr_prefix_count"`
	XattrPrefixStart   uint32   `json:"xattr_prefix_start"`
	PackedNid          uint64   `json:"packed_nid"`
	ExtSlots           uint8    `json:"sb_extslots"`
	PrimaryDeviceBytes uint64   `json:"primary_device_bytes"`
}

// deviceReport is one device table slot.
type deviceReport struct {
	ID      int    `json:"id"` // device_id: slot index + 1
	Tag     string `json:"tag"`
	Blocks  uint64 `json:"blocks"`
	UniAddr uint64 `json:"uniaddr"`
	Bytes   uint64 `json:"bytes"`
}

type erofsReport struct {
	Superblock superblockReport `json:"superblock"`
	Devices    []deviceReport   `json:"devices"`
}

// treeCounts counts the tree of an image or bootstrap.
type treeCounts struct {
	Entries         int            `json:"entries"` // names, the root included
	Inodes          int            `json:"inodes"`  // distinct inodes
	ByType          map[string]int `json:"by_type"` // inodes by type: dir, reg, symlink, chr, blk, fifo, sock
	ByLayout        map[string]int `json:"by_layout,omitempty"`
	ExtendedInodes  int            `json:"extended_inodes,omitempty"`
	HardLinks       int            `json:"hard_links"`        // names beyond an inode's first
	Xattrs          int            `json:"xattrs"`            // name/value pairs over distinct inodes
	InodesWithXattr int            `json:"inodes_with_xattr"` // distinct inodes with at least one
	FileBytes       uint64         `json:"file_bytes"`        // regular files' sizes, distinct inodes
}

// layoutNames names the EROFS data layouts.
var layoutNames = map[uint8]string{
	erofs.LayoutFlatPlain:         "flat_plain",
	erofs.LayoutCompressedFull:    "compressed_full",
	erofs.LayoutFlatInline:        "flat_inline",
	erofs.LayoutCompressedCompact: "compressed_compact",
	erofs.LayoutChunkBased:        "chunk_based",
}

// typeName names a file type of a raw mode.
func typeName(mode uint32) string {
	switch mode & erofs.ModeTypeMask {
	case erofs.ModeDir:
		return "dir"
	case erofs.ModeRegular:
		return "reg"
	case erofs.ModeSymlink:
		return "symlink"
	case erofs.ModeCharDevice:
		return "chr"
	case erofs.ModeBlockDevice:
		return "blk"
	case erofs.ModeFIFO:
		return "fifo"
	case erofs.ModeSocket:
		return "sock"
	}
	return fmt.Sprintf("mode:%#o", mode&erofs.ModeTypeMask)
}

type bootstrapReport struct {
	Flags          string       `json:"flags"`
	FlagNames      []string     `json:"flag_names"`
	ChunkSize      uint32       `json:"chunk_size"`
	Blobs          []blobEntry  `json:"blobs"`
	Chunks         int          `json:"chunks"`          // chunk records of regular files (distinct inodes)
	DistinctChunks int          `json:"distinct_chunks"` // distinct (blob, CI index)
	ChunksPerBlob  map[int]int  `json:"chunks_per_blob"` // distinct chunks by blob index
	EROFS          *erofsReport `json:"erofs,omitempty"` // a blob's inline bootstrap's EROFS side
}

// blobEntry is one blob table entry.
type blobEntry struct {
	Index              int      `json:"index"`
	ID                 string   `json:"id"`
	ChunkCount         uint32   `json:"chunk_count"`
	Compressor         string   `json:"compressor"`
	Digester           string   `json:"digester"`
	Features           []string `json:"features"`
	CompressedSize     uint64   `json:"compressed_size"`
	UncompressedSize   uint64   `json:"uncompressed_size"`
	TOCSize            uint32   `json:"toc_size"`
	CIOffset           uint64   `json:"ci_offset"`
	CICompressedSize   uint64   `json:"ci_compressed_size"`
	CIUncompressedSize uint64   `json:"ci_uncompressed_size"`
	CICompressor       string   `json:"ci_compressor"`
}

type blobReport struct {
	Features         []string        `json:"features"`
	Compressor       string          `json:"compressor,omitempty"` // when the blob records it
	Chunks           int             `json:"chunks"`
	UncompressedSize uint64          `json:"uncompressed_size"`
	Sections         []sectionReport `json:"sections"`
}

type sectionReport struct {
	Name             string `json:"name"`
	Offset           int64  `json:"offset"`
	Size             int64  `json:"size"`
	UncompressedSize int64  `json:"uncompressed_size"`
	Compressor       string `json:"compressor"`
	Digest           string `json:"digest,omitempty"`
}

// inspect describes the image, bootstrap or blob at path.
func inspect(path string) (*inspectReport, error) {
	f, size, err := openFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return inspectImage(f, size, path)
}

// inspectImage describes the image, bootstrap or blob f of size bytes.
func inspectImage(f io.ReaderAt, size int64, path string) (*inspectReport, error) {
	kind, err := detectKind(f, size)
	if err != nil {
		return nil, err
	}
	rep := &inspectReport{Path: path, Kind: kind.String(), FileSize: size}
	switch kind {
	case kindEROFS:
		// Devices are not read: metadata lives in the primary device.
		img, err := erofs.Open(f)
		if err != nil {
			return nil, err
		}
		rep.EROFS = describeEROFS(img.Superblock())
		if rep.Tree, rep.Sizes, err = countEROFS(img); err != nil {
			return nil, err
		}
		primary := rep.EROFS.Superblock.PrimaryDeviceBytes
		rep.Sizes["primary_device"] = primary
		for _, d := range rep.EROFS.Devices {
			rep.Sizes[fmt.Sprintf("device_%d", d.ID)] = d.Bytes
		}
		// Inline tails lie in metadata blocks; compressed data's stored
		// size is not known without reading every map.
		meta := "metadata"
		if rep.Sizes["data_compressed"] > 0 {
			meta = "metadata_and_compressed_data"
		}
		if d0 := rep.Sizes["data_device_0"]; d0 <= primary {
			rep.Sizes[meta] = primary - d0
		}
		return rep, nil
	case kindBootstrap:
		boot, err := rafs.Read(f, size)
		if err != nil {
			return nil, err
		}
		if rep.EROFS, err = bootstrapSuperblock(f); err != nil {
			return nil, err
		}
		rep.Bootstrap, rep.Tree = describeBootstrap(boot)
		rep.Sizes = map[string]uint64{"metadata": uint64(size)}
		for _, bi := range boot.Blobs {
			rep.Sizes["blobs_compressed"] += bi.CompressedSize
			rep.Sizes["blobs_uncompressed"] += bi.UncompressedSize
		}
		return rep, nil
	}
	br, err := blob.Open(f, size)
	if err != nil {
		return nil, err
	}
	rep.Blob = describeBlob(br)
	rep.Sizes = map[string]uint64{"data": 0, "metadata": uint64(size)}
	if s, ok := br.Lookup(blob.SectionData); ok && s.Size <= size {
		rep.Sizes["data"], rep.Sizes["metadata"] = uint64(s.Size), uint64(size-s.Size)
	}
	rep.Sizes["data_uncompressed"] = br.UncompressedSize()
	if br.Features()&blob.FeatureInlinedFSMeta != 0 {
		boot, _, err := convert.ReadNydusLayer(f, size)
		if err != nil {
			return nil, err
		}
		raw, err := br.Bootstrap()
		if err != nil {
			return nil, err
		}
		rep.Bootstrap, rep.Tree = describeBootstrap(boot)
		if rep.Bootstrap.EROFS, err = bootstrapSuperblock(bytes.NewReader(raw)); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// bootstrapSuperblock decodes a bootstrap's EROFS superblock and device
// table with package erofs.
func bootstrapSuperblock(r io.ReaderAt) (*erofsReport, error) {
	img, err := erofs.Open(r)
	if err != nil {
		return nil, err
	}
	return describeEROFS(img.Superblock()), nil
}

func describeEROFS(sb erofs.Superblock) *erofsReport {
	r := &erofsReport{Superblock: superblockReport{
		Magic:              fmt.Sprintf("%#08x", sb.Magic),
		Checksum:           fmt.Sprintf("%#08x", sb.Checksum),
		FeatureCompat:      fmt.Sprintf("%#x", sb.FeatureCompat),
		FeatureIncompat:    fmt.Sprintf("%#x", sb.FeatureIncompat),
		Features:           erofs.FeatureNames(sb.FeatureCompat&^rafs.FeatureCompatRAFSV6, sb.FeatureIncompat),
		BlockSize:          sb.BlockSize,
		RootNid:            sb.RootNid,
		Inodes:             sb.Inodes,
		Epoch:              sb.Epoch,
		FixedNsec:          sb.FixedNsec,
		Blocks:             sb.Blocks,
		MetaBlkAddr:        sb.MetaBlkAddr,
		XattrBlkAddr:       sb.XattrBlkAddr,
		UUID:               formatUUID(sb.UUID),
		VolumeName:         sb.VolumeName,
		ExtraDevices:       sb.ExtraDevices,
		DevtSlotOff:        sb.DevtSlotOff,
		XattrPrefixCount:   sb.XattrPrefixCount,
		XattrPrefixStart:   sb.XattrPrefixStart,
		PackedNid:          sb.PackedNid,
		ExtSlots:           sb.ExtSlots,
		PrimaryDeviceBytes: sb.Blocks * uint64(sb.BlockSize),
	}}
	if sb.FeatureCompat&rafs.FeatureCompatRAFSV6 != 0 {
		r.Superblock.Features = append(r.Superblock.Features, "rafs_v6")
	}
	if r.Superblock.Features == nil {
		r.Superblock.Features = []string{}
	}
	if sb.FeatureIncompat&erofs.FeatureIncompatComprCfgs != 0 {
		r.Superblock.ComprAlgs = erofs.CompressionAlgorithmNames(sb.U1)
	} else {
		r.Superblock.LZ4MaxDistance = sb.U1
	}
	r.Devices = []deviceReport{}
	for i, d := range sb.Devices {
		r.Devices = append(r.Devices, deviceReport{ID: i + 1, Tag: d.Tag, Blocks: d.Blocks, UniAddr: d.UniAddr, Bytes: d.Blocks * uint64(sb.BlockSize)})
	}
	return r
}

// formatUUID formats a UUID in its canonical form.
func formatUUID(u [16]byte) string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// countEROFS walks an EROFS tree (metadata only) and counts it. The sizes
// are file data bytes by where they lie: "data_device_N" the bytes of
// block-addressed data (flat and chunk-based files, distinct inodes) on
// device N (0 the image), "data_inline" inline tails, "data_compressed"
// the uncompressed size of compressed files, "data_holes" unstored
// (sparse) bytes.
func countEROFS(img *erofs.FS) (*treeCounts, map[string]uint64, error) {
	c := newTreeCounts()
	c.ByLayout = map[string]int{}
	sizes := map[string]uint64{}
	seen := map[uint64]bool{}
	err := walkEROFS(img, func(p string, st *erofs.Stat) error {
		c.Entries++
		if seen[st.Nid] {
			c.HardLinks++
			return nil
		}
		seen[st.Nid] = true
		c.inode(st.Mode, uint64(st.Size), len(st.Xattrs))
		if st.Extended {
			c.ExtendedInodes++
		}
		if st.Mode&erofs.ModeTypeMask != erofs.ModeRegular {
			return nil
		}
		name := layoutNames[st.Layout]
		if name == "" {
			name = fmt.Sprintf("layout:%d", st.Layout)
		}
		c.ByLayout[name]++
		switch st.Layout {
		case erofs.LayoutCompressedFull, erofs.LayoutCompressedCompact:
			sizes["data_compressed"] += uint64(st.Size)
			return nil
		}
		exts, err := img.DataExtents(st.Nid)
		if errors.Is(err, erofs.ErrNotBlockAddressed) {
			// An inline tail: the blocks before it are one extent.
			bs := int64(img.Superblock().BlockSize)
			whole := st.Size / bs * bs
			sizes["data_device_0"] += uint64(whole)
			sizes["data_inline"] += uint64(st.Size - whole)
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		for _, e := range exts {
			if e.Hole {
				sizes["data_holes"] += uint64(e.Len)
			} else {
				sizes[fmt.Sprintf("data_device_%d", e.Device)] += uint64(e.Len)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return c, sizes, nil
}

func newTreeCounts() *treeCounts {
	return &treeCounts{ByType: map[string]int{}}
}

// inode counts one distinct inode.
func (c *treeCounts) inode(mode uint32, size uint64, xattrs int) {
	c.Inodes++
	c.ByType[typeName(mode)]++
	if xattrs > 0 {
		c.Xattrs += xattrs
		c.InodesWithXattr++
	}
	if mode&erofs.ModeTypeMask == erofs.ModeRegular {
		c.FileBytes += size
	}
}

// describeBootstrap describes a bootstrap's RAFS side and counts its tree.
func describeBootstrap(boot *rafs.Bootstrap) (*bootstrapReport, *treeCounts) {
	r := &bootstrapReport{
		Flags:         fmt.Sprintf("%#x", boot.Flags),
		FlagNames:     rafs.FlagNames(boot.Flags),
		ChunkSize:     boot.ChunkSize,
		Blobs:         []blobEntry{},
		ChunksPerBlob: map[int]int{},
	}
	for i, bi := range boot.Blobs {
		r.Blobs = append(r.Blobs, blobEntry{
			Index: i, ID: bi.ID, ChunkCount: bi.ChunkCount,
			Compressor: bi.Compressor.String(), Digester: bi.Digester.String(),
			Features:       nonNil(bi.Features.Names()),
			CompressedSize: bi.CompressedSize, UncompressedSize: bi.UncompressedSize,
			TOCSize: bi.TOCSize, CIOffset: bi.CIOffset,
			CICompressedSize: bi.CICompressedSize, CIUncompressedSize: bi.CIUncompressedSize,
			CICompressor: bi.CICompressor.String(),
		})
	}
	c := newTreeCounts()
	type key struct{ blob, index uint32 }
	distinct := map[key]bool{}
	boot.Visit(func(_ []*rafs.Node, n *rafs.Node) error {
		c.Entries++
		if n.Link != nil {
			c.HardLinks++
			return nil
		}
		c.inode(n.Mode, n.Size, len(n.Xattrs))
		for _, ch := range n.Chunks {
			r.Chunks++
			k := key{ch.BlobIndex, ch.Index}
			if !distinct[k] {
				distinct[k] = true
				r.ChunksPerBlob[int(ch.BlobIndex)]++
			}
		}
		return nil
	})
	r.DistinctChunks = len(distinct)
	return r, c
}

func describeBlob(br *blob.Reader) *blobReport {
	r := &blobReport{
		Features:         nonNil(br.Features().Names()),
		Chunks:           br.ChunkCount(),
		UncompressedSize: br.UncompressedSize(),
		Sections:         []sectionReport{},
	}
	if c, ok := br.Compressor(); ok {
		r.Compressor = c.String()
	}
	for _, s := range br.Sections() {
		sr := sectionReport{Name: s.Name, Offset: s.Offset, Size: s.Size, UncompressedSize: s.UncompressedSize, Compressor: s.Compressor.String()}
		if s.Digest != ([32]byte{}) {
			sr.Digest = "sha256:" + hex.EncodeToString(s.Digest[:])
		}
		r.Sections = append(r.Sections, sr)
	}
	return r
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// writeText prints the report for people: one "key: value" line per
// field, sections indented.
func (r *inspectReport) writeText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s, %d bytes\n", r.Path, r.Kind, r.FileSize)
	if r.EROFS != nil {
		writeEROFSText(&b, "", r.EROFS)
	}
	if r.Blob != nil {
		bl := r.Blob
		fmt.Fprintf(&b, "blob:\n  features: %s\n", strings.Join(bl.Features, " "))
		if bl.Compressor != "" {
			fmt.Fprintf(&b, "  compressor: %s\n", bl.Compressor)
		}
		fmt.Fprintf(&b, "  chunks: %d\n  uncompressed size: %d\n", bl.Chunks, bl.UncompressedSize)
		for _, s := range bl.Sections {
			fmt.Fprintf(&b, "  section %s: offset %d, %d bytes stored (%s), %d uncompressed", s.Name, s.Offset, s.Size, s.Compressor, s.UncompressedSize)
			if s.Digest != "" {
				fmt.Fprintf(&b, ", %s", s.Digest)
			}
			b.WriteByte('\n')
		}
	}
	if bo := r.Bootstrap; bo != nil {
		fmt.Fprintf(&b, "bootstrap:\n  flags: %s (%s)\n  chunk size: %d\n", bo.Flags, strings.Join(bo.FlagNames, " "), bo.ChunkSize)
		fmt.Fprintf(&b, "  chunks: %d (%d distinct)\n", bo.Chunks, bo.DistinctChunks)
		for _, e := range bo.Blobs {
			fmt.Fprintf(&b, "  blob %d: %s\n    chunks: %d in the table, %d used\n    compressor: %s, digester: %s, CI compressor: %s\n    features: %s\n    compressed size: %d, uncompressed size: %d, TOC size: %d\n    CI: offset %d, %d bytes stored, %d uncompressed\n",
				e.Index, e.ID, e.ChunkCount, bo.ChunksPerBlob[e.Index], e.Compressor, e.Digester, e.CICompressor,
				strings.Join(e.Features, " "), e.CompressedSize, e.UncompressedSize, e.TOCSize,
				e.CIOffset, e.CICompressedSize, e.CIUncompressedSize)
		}
		if bo.EROFS != nil {
			b.WriteString("  inline bootstrap:\n")
			writeEROFSText(&b, "    ", bo.EROFS)
		}
	}
	if t := r.Tree; t != nil {
		fmt.Fprintf(&b, "tree:\n  entries: %d (%d hard links)\n  inodes: %d%s\n", t.Entries, t.HardLinks, t.Inodes, sortedCounts(t.ByType))
		if len(t.ByLayout) > 0 {
			fmt.Fprintf(&b, "  regular files by layout: %s\n", strings.TrimPrefix(sortedCounts(t.ByLayout), ", "))
		}
		if t.ExtendedInodes > 0 {
			fmt.Fprintf(&b, "  extended inodes: %d\n", t.ExtendedInodes)
		}
		fmt.Fprintf(&b, "  xattrs: %d on %d inodes\n  file bytes: %d\n", t.Xattrs, t.InodesWithXattr, t.FileBytes)
	}
	if len(r.Sizes) > 0 {
		b.WriteString("sizes:\n")
		for _, k := range sortedKeys(r.Sizes) {
			fmt.Fprintf(&b, "  %s: %d\n", k, r.Sizes[k])
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeEROFSText(b *strings.Builder, in string, e *erofsReport) {
	s := e.Superblock
	fmt.Fprintf(b, "%ssuperblock:\n", in)
	line := func(k string, v any) { fmt.Fprintf(b, "%s  %s: %v\n", in, k, v) }
	line("magic", s.Magic)
	line("checksum", s.Checksum)
	line("features", fmt.Sprintf("compat %s, incompat %s: %s", s.FeatureCompat, s.FeatureIncompat, strings.Join(s.Features, " ")))
	line("block size", s.BlockSize)
	line("blocks", fmt.Sprintf("%d (%d bytes)", s.Blocks, s.PrimaryDeviceBytes))
	line("inodes", s.Inodes)
	line("root nid", s.RootNid)
	line("meta_blkaddr", s.MetaBlkAddr)
	line("xattr_blkaddr", s.XattrBlkAddr)
	line("epoch", fmt.Sprintf("%d + %d ns", s.Epoch, s.FixedNsec))
	line("uuid", s.UUID)
	line("volume name", fmt.Sprintf("%q", s.VolumeName))
	if s.ComprAlgs != nil {
		line("compression algorithms", strings.Join(s.ComprAlgs, " "))
	} else if s.LZ4MaxDistance != 0 {
		line("lz4 max distance", s.LZ4MaxDistance)
	}
	if s.XattrPrefixCount > 0 {
		line("xattr prefixes", fmt.Sprintf("%d at %d", s.XattrPrefixCount, s.XattrPrefixStart))
	}
	if s.PackedNid != 0 {
		line("packed nid", s.PackedNid)
	}
	if s.ExtSlots != 0 {
		line("extension slots", s.ExtSlots)
	}
	line("extra devices", s.ExtraDevices)
	for _, d := range e.Devices {
		fmt.Fprintf(b, "%s  device %d: tag %q, %d blocks (%d bytes), uniaddr %d\n", in, d.ID, d.Tag, d.Blocks, d.Bytes, d.UniAddr)
	}
}

// sortedCounts formats counts as ", k n" pairs in key order.
func sortedCounts(m map[string]int) string {
	var b strings.Builder
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, ", %s %d", k, m[k])
	}
	return b.String()
}

func sortedKeys(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
