package dmveritytest

import (
	"archive/tar"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	dmverity "github.com/containerd/go-dmverity/pkg/verity"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/erofs/verity"
)

// layer returns a small layer tar with files of a few sizes.
func layer(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for i, size := range []int{0, 1, 4095, 4096, 100000, 1 << 20} {
		data := bytes.Repeat([]byte{byte(i + 1)}, size)
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("f%d", i), Mode: 0o644, Size: int64(size)}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestContainerdOpens builds EROFS layers with their trees (a full image,
// and a tar index with its tar and 512-byte verity blocks, as containerd's
// differ uses), writes containerd's metadata file, and verifies each layer
// as containerd's EROFS mount handler opens it: go-dmverity's default
// parameters, the hash offset and the root hash from the metadata file,
// the rest read from the superblock. A flipped byte of the image fails.
func TestContainerdOpens(t *testing.T) {
	dir := t.TempDir()
	tarData := layer(t)
	for _, c := range []struct {
		name     string
		tarIndex bool
		bs       int
	}{{"full", false, 4096}, {"tar-index", true, 512}} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name+".erofs")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			var res *convert.EROFSResult
			if c.tarIndex {
				res, err = convert.TarToEROFSIndex(bytes.NewReader(tarData), f, &convert.TarIndexOptions{Append: true})
			} else {
				res, err = convert.TarToEROFS(bytes.NewReader(tarData), f, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			vr, err := verity.Append(f, res.ImageSize, &verity.Options{BlockSize: c.bs})
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			b, err := vr.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			metaPath := path + verity.MetadataSuffix
			if err := os.WriteFile(metaPath, b, 0o644); err != nil {
				t.Fatal(err)
			}

			// As containerd's internal/dmverity ReadMetadata and Open do.
			var meta struct {
				RootHash   string `json:"roothash"`
				HashOffset uint64 `json:"hashoffset"`
			}
			raw, _ := os.ReadFile(metaPath)
			if err := json.Unmarshal(raw, &meta); err != nil || meta.RootHash == "" {
				t.Fatalf("metadata %s: %v", raw, err)
			}
			root, err := hex.DecodeString(meta.RootHash)
			if err != nil {
				t.Fatal(err)
			}
			verify := func(img string) error {
				params := dmverity.DefaultParams()
				params.HashAreaOffset = meta.HashOffset
				return dmverity.Verify(&params, img, img, root)
			}
			if err := verify(path); err != nil {
				t.Fatalf("go-dmverity Verify: %v", err)
			}
			img, _ := os.Open(path)
			sb, err := dmverity.ReadSuperblock(img, meta.HashOffset)
			img.Close()
			if err != nil {
				t.Fatal(err)
			}
			if u, err := sb.UUIDString(); err != nil || u != vr.UUIDString() || sb.DataBlocks != vr.DataBlocks || sb.DataBlockSize != uint32(c.bs) {
				t.Errorf("superblock UUID %q (%v), %d blocks of %d; want %s, %d of %d", u, err, sb.DataBlocks, sb.DataBlockSize, vr.UUIDString(), vr.DataBlocks, c.bs)
			}
			// go-dmverity's tree size agrees with ours.
			size, err := dmverity.GetHashTreeSize(&dmverity.Params{HashName: "sha256", DataBlockSize: uint32(c.bs), HashBlockSize: uint32(c.bs), DataBlocks: vr.DataBlocks, HashType: 1})
			if err != nil || int64(size) != vr.Size-vr.TreeOffset {
				t.Errorf("go-dmverity's tree size %d (%v), ours %d", size, err, vr.Size-vr.TreeOffset)
			}

			data, _ := os.ReadFile(path)
			data[res.ImageSize/2] ^= 0x80
			bad := filepath.Join(dir, c.name+".bad")
			os.WriteFile(bad, data, 0o644)
			if err := verify(bad); err == nil {
				t.Error("go-dmverity Verify accepted a flipped byte")
			}
		})
	}
}
