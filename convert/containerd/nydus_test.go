package containerd_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/pkg/archive/compression"
	nconv "github.com/containerd/nydus-snapshotter/pkg/converter"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/convert/image"
)

// nydusImageShim is a stand-in for nydus-image's "unpack" command, which
// nydus-snapshotter's converter.Unpack executes (there is no nydus-image
// binary on Debian): it runs `rafs unpack` on the blob whose data section
// Unpack extracted (--blob), found in $RAFS_BLOB_DIR: the data section
// begins the blob. rafs reads the bootstrap inlined in the blob, which is
// the one Unpack extracted (--bootstrap) with the blob's id in place of
// the placeholder a blob's own bootstrap must carry, so the shim checks
// only that the extracted one is a bootstrap of that size.
const nydusImageShim = `#!/bin/sh
set -e
[ "$1" = unpack ] || { echo "shim: only unpack" >&2; exit 2; }
shift
boot= out= blob=
while [ $# -gt 0 ]; do
	case "$1" in
	--bootstrap) boot=$2; shift 2 ;;
	--output) out=$2; shift 2 ;;
	--blob) blob=$2; shift 2 ;;
	--log-level) shift 2 ;;
	*) echo "shim: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ -s "$boot" ] || { echo "shim: no bootstrap" >&2; exit 1; }
found=
for f in "$RAFS_BLOB_DIR"/*; do
	if cmp -s -n "$(stat -c %s "$blob")" "$blob" "$f"; then found=$f; fi
done
[ -n "$found" ] || { echo "shim: the data section is no blob's" >&2; exit 1; }
exec "$RAFS" unpack -q -o "$out" "$found"
`

// entrySummary describes a tar entry for comparison.
func entrySummary(h *tar.Header, data []byte) string {
	name := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "/"), "/")
	if h.Typeflag == tar.TypeLink {
		// A hard link is its target: its header's own mode and owner
		// mean nothing.
		return fmt.Sprintf("%s link %s", name, strings.TrimPrefix(h.Linkname, "./"))
	}
	s := fmt.Sprintf("%s type=%c mode=%o uid=%d gid=%d", name, h.Typeflag, h.Mode&0o7777, h.Uid, h.Gid)
	switch h.Typeflag {
	case tar.TypeReg:
		s += fmt.Sprintf(" size=%d sha256=%x", len(data), sha256.Sum256(data))
	case tar.TypeSymlink:
		s += " -> " + h.Linkname
	case tar.TypeChar, tar.TypeBlock:
		s += fmt.Sprintf(" dev=%d,%d", h.Devmajor, h.Devminor)
	}
	return s
}

// tarEntries reads a tar (any compression) into name -> summary.
func tarEntries(t *testing.T, r io.Reader) map[string]string {
	t.Helper()
	dr, err := compression.DecompressStream(r)
	if err != nil {
		t.Fatal(err)
	}
	defer dr.Close()
	out := map[string]string{}
	tr := tar.NewReader(dr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "/"), "/")
		if name == "" || name == "." {
			continue
		}
		out[name] = entrySummary(h, data)
	}
}

// TestNydusSnapshotterReadsAdapterOutput converts the sample image with
// containerd's converter and the Nydus adapters, then reads each Nydus
// blob layer with nydus-snapshotter's own code: its TOC reader
// (converter.UnpackEntry, which must find every section through the
// TOC), and converter.Unpack, whose tar must hold every entry of the
// source layer as it was (the nydus-image step run by the shim above).
func TestNydusSnapshotterReadsAdapterOutput(t *testing.T) {
	var nydus convertCase
	for _, tc := range convertCases() {
		if tc.name == "nydus" {
			nydus = tc
		}
	}
	ctx, c, target := containerdConvert(t, nydus)
	var m, src ocispec.Manifest
	readBlobJSON(t, ctx, c, target, &m)
	var idx ocispec.Index
	readJSONFile(t, filepath.Join(sampleImage, "index.json"), &idx)
	readJSONFile(t, filepath.Join(sampleImage, "blobs", "sha256", idx.Manifests[0].Digest.Encoded()), &src)

	blobDir := t.TempDir()
	dir := t.TempDir()
	shim := filepath.Join(dir, "nydus-image")
	if err := os.WriteFile(shim, []byte(nydusImageShim), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RAFS", rafsBinary(t))
	t.Setenv("RAFS_BLOB_DIR", blobDir)
	var blobs []ocispec.Descriptor
	for _, l := range m.Layers {
		if image.IsNydusBlob(l) {
			b, err := content.ReadBlob(ctx, c.cs, l)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(blobDir, l.Digest.Encoded()), b, 0o644); err != nil {
				t.Fatal(err)
			}
			blobs = append(blobs, l)
		}
	}
	if len(blobs) != len(src.Layers) {
		t.Fatalf("%d blobs for %d source layers", len(blobs), len(src.Layers))
	}
	for i, l := range blobs {
		ra, err := c.cs.ReaderAt(ctx, l)
		if err != nil {
			t.Fatal(err)
		}
		// The TOC reader.
		var boot bytes.Buffer
		e, err := nconv.UnpackEntry(ra, nconv.EntryBootstrap, &boot)
		if err != nil || e == nil {
			t.Fatalf("layer %d: UnpackEntry(%s): %v (TOC entry %v)", i, nconv.EntryBootstrap, err, e)
		}
		if got := fmt.Sprintf("%x", sha256.Sum256(boot.Bytes())); e.GetUncompressedDigest() != got {
			t.Errorf("layer %d: bootstrap TOC digest %s, bytes %s", i, e.GetUncompressedDigest(), got)
		}
		_, id, err := convert.ReadNydusLayer(ra, ra.Size())
		if err != nil || id != l.Digest.Encoded() {
			t.Errorf("layer %d: blob id %s (%v), digest %s", i, id, err, l.Digest)
		}
		for _, name := range []string{nconv.EntryBlob, nconv.EntryBlobMeta, nconv.EntryBlobMetaHeader} {
			var b bytes.Buffer
			e, err := nconv.UnpackEntry(ra, name, &b)
			if err != nil || e == nil {
				t.Errorf("layer %d: UnpackEntry(%s): %v (TOC entry %v)", i, name, err, e)
			}
		}

		// Unpack, back to an OCI tar. (It returns no error when its
		// nydus-image fails after opening the output: the entries are
		// checked below.)
		var out bytes.Buffer
		if err := nconv.Unpack(ctx, ra, &out, nconv.UnpackOption{WorkDir: t.TempDir(), BuilderPath: shim}); err != nil {
			t.Fatalf("layer %d: Unpack: %v", i, err)
		}
		ra.Close()
		got := tarEntries(t, bytes.NewReader(out.Bytes()))
		sb, err := os.ReadFile(filepath.Join(sampleImage, "blobs", "sha256", src.Layers[i].Digest.Encoded()))
		if err != nil {
			t.Fatal(err)
		}
		want := tarEntries(t, bytes.NewReader(sb))
		if len(want) == 0 {
			t.Fatalf("layer %d: source has no entries", i)
		}
		for name, w := range want {
			if got[name] != w {
				t.Errorf("layer %d: %s:\n unpacked %q\n source   %q", i, name, got[name], w)
			}
		}
		t.Logf("layer %d (%s): nydus-snapshotter's Unpack gives the %d entries of the source layer", i, l.Digest, len(want))
	}
}

func readBlobJSON(t *testing.T, ctx context.Context, c *client, d ocispec.Descriptor, v any) {
	t.Helper()
	b, err := content.ReadBlob(ctx, c.cs, d)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}
