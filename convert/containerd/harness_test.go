package containerd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/metadata"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// sampleImage is the OCI layout of the rafs module's testdata.
const sampleImage = "../../testdata/sample-image"

// client is a containerd client over a real content store (content/local
// under containerd's metadata store, which keeps the labels) and image
// store, enough for converter.Convert.
type client struct {
	cs content.Store
	is images.Store
}

func (c *client) WithLease(ctx context.Context, _ ...leases.Opt) (context.Context, func(context.Context) error, error) {
	return ctx, func(context.Context) error { return nil }, nil
}
func (c *client) ContentStore() content.Store { return c.cs }
func (c *client) ImageService() images.Store  { return c.is }

// newClient opens a content and an image store in a temporary directory.
func newClient(t *testing.T) (context.Context, *client) {
	t.Helper()
	ctx := namespaces.WithNamespace(context.Background(), "rafs-test")
	dir := t.TempDir()
	cs, err := local.NewStore(filepath.Join(dir, "content"))
	if err != nil {
		t.Fatal(err)
	}
	bdb, err := bolt.Open(filepath.Join(dir, "meta.db"), 0o644, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bdb.Close() })
	db := metadata.NewDB(bdb, cs, nil)
	if err := db.Init(ctx); err != nil {
		t.Fatal(err)
	}
	return ctx, &client{cs: db.ContentStore(), is: metadata.NewImageStore(db)}
}

// importLayout copies every blob of an OCI layout into the content store
// and creates the image "src" of its single index.json entry, returning
// that entry's descriptor.
func importLayout(t *testing.T, ctx context.Context, c *client, dir string) ocispec.Descriptor {
	t.Helper()
	var idx ocispec.Index
	readJSONFile(t, filepath.Join(dir, "index.json"), &idx)
	if len(idx.Manifests) != 1 {
		t.Fatalf("%s: %d index entries", dir, len(idx.Manifests))
	}
	root := idx.Manifests[0]
	var put func(d ocispec.Descriptor)
	put = func(d ocispec.Descriptor) {
		b, err := os.ReadFile(filepath.Join(dir, "blobs", d.Digest.Algorithm().String(), d.Digest.Encoded()))
		if err != nil {
			t.Fatal(err)
		}
		if err := content.WriteBlob(ctx, c.cs, d.Digest.String(), bytes.NewReader(b), d); err != nil {
			t.Fatal(err)
		}
		if images.IsManifestType(d.MediaType) {
			var m ocispec.Manifest
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			put(m.Config)
			for _, l := range m.Layers {
				put(l)
			}
		}
	}
	put(root)
	if _, err := c.is.Create(ctx, images.Image{Name: "src", Target: root}); err != nil {
		t.Fatal(err)
	}
	return root
}

func readJSONFile(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

var (
	rafsOnce sync.Once
	rafsBin  string
	rafsErr  error
)

// rafsBinary builds the rafs CLI of the enclosing module once, unless
// $RAFS_TEST_BINARY names one.
func rafsBinary(t *testing.T) string {
	t.Helper()
	rafsOnce.Do(func() {
		if b := os.Getenv("RAFS_TEST_BINARY"); b != "" {
			// A rafs binary built already (by CI, say).
			rafsBin = b
			return
		}
		dir, err := os.MkdirTemp("", "rafs-bin-")
		if err != nil {
			rafsErr = err
			return
		}
		rafsBin = filepath.Join(dir, "rafs")
		out, err := exec.Command("go", "build", "-C", "../..", "-o", rafsBin, "./cmd/rafs").CombinedOutput()
		if err != nil {
			rafsErr = err
			t.Logf("%s", out)
		}
	})
	if rafsErr != nil {
		t.Fatalf("building rafs: %v", rafsErr)
	}
	return rafsBin
}

// rafsConvert runs `rafs convert ARGS... oci:SRC oci:OUT` and returns
// the output layout's directory and the converted manifest's digest.
func rafsConvert(t *testing.T, args ...string) (string, digest.Digest) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	cmd := exec.Command(rafsBinary(t), append(append([]string{"convert", "--progress", "none"}, args...), "oci:"+sampleImage, "oci:"+out)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("rafs convert %v: %v\n%s", args, err, stderr.Bytes())
	}
	s := strings.TrimSpace(string(stdout))
	i := strings.LastIndex(s, "@")
	if i < 0 {
		t.Fatalf("rafs convert printed %q", s)
	}
	d, err := digest.Parse(s[i+1:])
	if err != nil {
		t.Fatalf("rafs convert printed %q: %v", s, err)
	}
	return out, d
}

// sourceLayers returns the sample image's layer descriptors and blobs.
func sourceLayers(t *testing.T) ([]ocispec.Descriptor, [][]byte) {
	t.Helper()
	var idx ocispec.Index
	readJSONFile(t, filepath.Join(sampleImage, "index.json"), &idx)
	var m ocispec.Manifest
	readJSONFile(t, filepath.Join(sampleImage, "blobs", "sha256", idx.Manifests[0].Digest.Encoded()), &m)
	var blobs [][]byte
	for _, l := range m.Layers {
		b, err := os.ReadFile(filepath.Join(sampleImage, "blobs", "sha256", l.Digest.Encoded()))
		if err != nil {
			t.Fatal(err)
		}
		blobs = append(blobs, b)
	}
	return m.Layers, blobs
}
