package snapshottertest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/erofs"
	"github.com/rafs-dev/rafs/rafs"
)

// config is one way of writing a blob.
type config struct {
	name       string
	compressor blob.Compressor
	digester   blob.Digester
	chunkSize  int
	ciV2       bool
	noData     bool // a layer without any file data: no chunks, no blob entry
}

var configs = []config{
	{name: "zstd-blake3-64k", compressor: blob.CompressorZstd, digester: blob.DigesterBlake3, chunkSize: 64 << 10},
	{name: "zstd-sha256-1m-v2", compressor: blob.CompressorZstd, digester: blob.DigesterSHA256, chunkSize: 1 << 20, ciV2: true},
	{name: "lz4-sha256-16k-v2", compressor: blob.CompressorLZ4Block, digester: blob.DigesterSHA256, chunkSize: 16 << 10, ciV2: true},
	{name: "lz4-blake3-4k", compressor: blob.CompressorLZ4Block, digester: blob.DigesterBlake3, chunkSize: 4 << 10},
	{name: "none-blake3-4k", compressor: blob.CompressorNone, digester: blob.DigesterBlake3, chunkSize: 4 << 10},
	{name: "none-sha256-32k-v2", compressor: blob.CompressorNone, digester: blob.DigesterSHA256, chunkSize: 32 << 10, ciV2: true},
	{name: "nodata-zstd-blake3", compressor: blob.CompressorZstd, digester: blob.DigesterBlake3, chunkSize: 1 << 20, noData: true},
}

// layer is a blob written by blob.Writer with the bootstrap it inlines.
type layer struct {
	cfg       config
	blob      []byte     // the complete blob
	info      *blob.Info // what Finish returned
	bootstrap []byte     // the bytes the BootstrapFunc returned
	model     *rafs.Bootstrap
	files     map[string][]byte // regular files' contents by path
	nchunks   int               // chunks passed to Add (duplicates included)
}

// fileContent makes deterministic contents of the given kind.
func fileContent(kind string, size int, seed uint64) []byte {
	b := make([]byte, size)
	switch kind {
	case "random": // incompressible: stored raw by every compressor
		r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
	case "text": // compressible
		r := rand.New(rand.NewPCG(seed, 1))
		words := []string{"nydus ", "rafs ", "erofs ", "blob ", "chunk ", "layer\n", "snapshotter ", "bootstrap "}
		var s strings.Builder
		for s.Len() < size {
			s.WriteString(words[r.IntN(len(words))])
		}
		copy(b, s.String())
	case "zero":
	default:
		panic(kind)
	}
	return b
}

// buildLayer writes a blob for cfg: a small tree whose regular files span
// several chunks (compressible, incompressible, zero-filled, duplicated
// and empty files, a hard link, a symlink, xattrs), with the layer's RAFS
// bootstrap inlined.
func buildLayer(t *testing.T, cfg config) *layer {
	t.Helper()
	cs := cfg.chunkSize
	type spec struct {
		path, kind string
		size       int
		seed       uint64
	}
	var specs []spec
	if !cfg.noData {
		specs = []spec{
			{"etc/hostname", "text", 12, 1},
			{"etc/empty", "text", 0, 2},
			{"usr/bin/tool", "random", 2*cs + cs/2 + 100, 3},
			{"usr/share/doc/README", "text", 3 * cs, 4},
			{"usr/share/doc/README.copy", "text", 3 * cs, 4}, // dedup: same chunks
			{"usr/lib/zeros", "zero", cs + 1, 5},
			{"usr/lib/one-block", "text", 4096, 6},
			{"opt/big/data.bin", "random", 5*cs - 7, 7},
		}
	} else {
		specs = []spec{
			{"etc/empty", "text", 0, 2},
			{"usr/share/empty-too", "text", 0, 3},
		}
	}

	root := &rafs.Node{Mode: erofs.ModeDir | 0o755}
	dir := func(path string) *rafs.Node {
		n := root
		if path == "" {
			return n
		}
		for _, name := range strings.Split(path, "/") {
			c := n.Child(name)
			if c == nil {
				c = &rafs.Node{Name: name, Mode: erofs.ModeDir | 0o755, Mtime: 1700000000}
				n.Children = append(n.Children, c)
			}
			n = c
		}
		return n
	}
	split := func(path string) (string, string) {
		i := strings.LastIndexByte(path, '/')
		if i < 0 {
			return "", path
		}
		return path[:i], path[i+1:]
	}

	var out bytes.Buffer
	w, err := blob.NewWriter(&out, &blob.WriterOptions{
		Compressor:   cfg.compressor,
		Uncompressed: cfg.compressor == blob.CompressorNone,
		Digester:     cfg.digester,
		ChunkSize:    cs,
		ChunkInfoV2:  cfg.ciV2,
		Workers:      2,
	})
	if err != nil {
		t.Fatal(err)
	}
	l := &layer{cfg: cfg, files: map[string][]byte{}}
	written := map[*rafs.Node][]*blob.StoredChunk{}
	byPath := map[string]*rafs.Node{}
	for _, s := range specs {
		data := fileContent(s.kind, s.size, s.seed)
		d, name := split(s.path)
		n := &rafs.Node{
			Name: name, Mode: erofs.ModeRegular | 0o644, UID: 1000, GID: 1000,
			Mtime: 1700000000 + int64(s.seed), MtimeNsec: 0, Size: uint64(len(data)),
		}
		if s.kind == "random" {
			n.Mode = erofs.ModeRegular | 0o755
		}
		parent := dir(d)
		parent.Children = append(parent.Children, n)
		byPath[s.path] = n
		l.files[s.path] = data
		for off := 0; off < len(data); off += cs {
			c, err := w.Add(data[off:min(off+cs, len(data))])
			if err != nil {
				t.Fatalf("Add %s@%d: %v", s.path, off, err)
			}
			written[n] = append(written[n], c)
			l.nchunks++
		}
	}
	dir("var/log") // an empty directory
	if !cfg.noData {
		tool := byPath["usr/bin/tool"]
		tool.Xattrs = map[string][]byte{"user.origin": []byte("snapshottertest"), "security.capability": {1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}
		usrBin := dir("usr/bin")
		usrBin.Children = append(usrBin.Children, &rafs.Node{Name: "tool-hardlink", Link: tool})
		l.files["usr/bin/tool-hardlink"] = l.files["usr/bin/tool"]
	}
	root.Children = append(root.Children, &rafs.Node{
		Name: "link", Mode: erofs.ModeSymlink | 0o777, Linkname: "usr/bin/tool", Mtime: 1700000000,
	})

	flags := rafs.FlagExplicitUIDGID | rafs.FlagInlinedChunkDigest | rafs.FlagEncryptionNone |
		rafs.AlgorithmFlags(cfg.compressor, cfg.digester)
	l.model = &rafs.Bootstrap{ChunkSize: uint32(cs), Flags: flags, Root: root}

	info, err := w.Finish(func(data *blob.Info) ([]byte, error) {
		if data.ChunkCount > 0 {
			// The per-layer blob-table entry of an inline bootstrap
			// (as nydus-image --blob-inline-meta writes it): placeholder id,
			// size before the
			// bootstrap, no TOC digest.
			l.model.Blobs = []rafs.BlobInfo{rafs.NewBlobInfo(strings.Repeat("x", 64), data)}
		}
		for n, chunks := range written {
			n.Chunks = n.Chunks[:0]
			for i, c := range chunks {
				rc := rafs.NewChunkRecord(c, 0, uint64(i)*uint64(cs))
				if cfg.ciV2 {
					rc.Flags |= rafs.ChunkFlagHasCRC32
					rc.CRC32 = c.CRC32
				}
				n.Chunks = append(n.Chunks, rc)
			}
		}
		b, err := l.model.MarshalBinary()
		if err != nil {
			return nil, err
		}
		l.bootstrap = b
		return b, nil
	})
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	l.info = info
	l.blob = out.Bytes()
	return l
}

// treeListing describes a bootstrap's tree, one line per node, with every
// field the layer sets (chunks in full).
func treeListing(t *testing.T, b *rafs.Bootstrap) string {
	t.Helper()
	var s strings.Builder
	err := b.Walk(func(path string, n *rafs.Node) error {
		if n.Link != nil {
			fmt.Fprintf(&s, "%s link\n", path)
			n = n.Link
		}
		keys := make([]string, 0, len(n.Xattrs))
		for k := range n.Xattrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(&s, "%s mode=%o uid=%d gid=%d mtime=%d.%d size=%d target=%q", path, n.Mode, n.UID, n.GID, n.Mtime, n.MtimeNsec, n.Size, n.Linkname)
		for _, k := range keys {
			fmt.Fprintf(&s, " %s=%x", k, n.Xattrs[k])
		}
		s.WriteByte('\n')
		for _, c := range n.Chunks {
			fmt.Fprintf(&s, "  %+v\n", c)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s.String()
}
