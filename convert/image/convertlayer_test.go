package image_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/convert/image"
	"github.com/rafs-dev/rafs/erofs"
)

// sampleImage returns the sample image of testdata.
func sampleImage(t *testing.T) v1.Image {
	t.Helper()
	idx, err := layout.ImageIndexFromPath("../../testdata/sample-image")
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// pathCase is one set of options the layer paths are compared under.
type pathCase struct {
	name string
	opts image.Options
}

func pathCases() []pathCase {
	return []pathCase{
		{"erofs", image.Options{Type: image.TypeEROFS}},
		{"erofs-tar-index", image.Options{Type: image.TypeEROFS, EROFSTarIndex: true}},
		{"erofs-noinline", image.Options{Type: image.TypeEROFS, EROFS: convert.EROFSOptions{Image: erofs.WriterOptions{NoInlineData: true}}}},
		{"nydus", image.Options{Type: image.TypeNydus}},
	}
}

// TestLayerPathsAgree converts the sample image's layers through every
// library path — Converter.Image, ConvertLayer (given a descriptor with
// no annotations, so that it computes the diff ID itself) and
// Converter.Layer — and checks that each gives the same bytes, and, for
// Nydus, that the bootstrap layer made with MergeNydusLayers and
// NydusBootstrapLayer is the image's.
func TestLayerPathsAgree(t *testing.T) {
	ctx := context.Background()
	src := sampleImage(t)
	srcLayers, err := src.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range pathCases() {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			opts.TempDir = t.TempDir()
			c, err := image.NewConverter(&opts)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			img, err := c.Image(ctx, src)
			if err != nil {
				t.Fatal(err)
			}
			m, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			want := m.Layers

			// ConvertLayer, as containerd's converter calls it.
			var streamed [][]byte
			for i, l := range srcLayers {
				d, err := partial.Descriptor(l)
				if err != nil {
					t.Fatal(err)
				}
				rc, err := l.Compressed()
				if err != nil {
					t.Fatal(err)
				}
				var out bytes.Buffer
				desc := ocispec.Descriptor{MediaType: string(d.MediaType), Digest: digest.Digest(d.Digest.String()), Size: d.Size}
				got, err := image.ConvertLayer(ctx, desc, rc, &out, &opts)
				rc.Close()
				if err != nil {
					t.Fatalf("ConvertLayer %d: %v", i, err)
				}
				if got.Digest.String() != want[i].Digest.String() || got.Size != want[i].Size || got.MediaType != string(want[i].MediaType) {
					t.Errorf("ConvertLayer %d: %s %d %s, Image gives %s %d %s", i, got.Digest, got.Size, got.MediaType, want[i].Digest, want[i].Size, want[i].MediaType)
				}
				if digest.FromBytes(out.Bytes()) != got.Digest || int64(out.Len()) != got.Size {
					t.Errorf("ConvertLayer %d: wrote %d bytes %s, returned %s", i, out.Len(), digest.FromBytes(out.Bytes()), got.Digest)
				}
				if got.Annotations[image.AnnotationUncompressed] != got.Digest.String() {
					t.Errorf("ConvertLayer %d: diff ID annotation %q", i, got.Annotations[image.AnnotationUncompressed])
				}
				if image.IsNydusBlob(got) != (opts.Type == image.TypeNydus) || image.IsEROFSLayer(got) != (opts.Type == image.TypeEROFS) {
					t.Errorf("ConvertLayer %d: IsNydusBlob %t, IsEROFSLayer %t", i, image.IsNydusBlob(got), image.IsEROFSLayer(got))
				}
				streamed = append(streamed, out.Bytes())
			}

			// Converter.Layer, as a go-containerregistry user calls it.
			c2, err := image.NewConverter(&opts)
			if err != nil {
				t.Fatal(err)
			}
			defer c2.Close()
			var converted []v1.Layer
			for i, l := range srcLayers {
				cl, err := c2.Layer(ctx, l)
				if err != nil {
					t.Fatalf("Layer %d: %v", i, err)
				}
				d, err := partial.Descriptor(cl)
				if err != nil {
					t.Fatal(err)
				}
				if d.Digest != want[i].Digest || d.Size != want[i].Size || d.MediaType != want[i].MediaType || len(d.Annotations) != len(want[i].Annotations) {
					t.Errorf("Layer %d: %+v, Image gives %+v", i, d, want[i])
				}
				if did, err := cl.DiffID(); err != nil || did != d.Digest {
					t.Errorf("Layer %d: diff ID %s, %v", i, did, err)
				}
				converted = append(converted, cl)
			}
			// ConvertedManifest over Layer's layers gives Image's manifest
			// and config.
			all := converted
			if opts.Type == image.TypeNydus {
				boot, err := image.MergeNydusLayers(t.TempDir(), converted...)
				if err != nil {
					t.Fatal(err)
				}
				bl, err := image.NydusBootstrapLayer(boot)
				if err != nil {
					t.Fatal(err)
				}
				all = append(all[:len(all):len(all)], bl)
			}
			var descs []v1.Descriptor
			var diffIDs []v1.Hash
			for _, l := range all {
				descs = append(descs, *must(partial.Descriptor(l)))
				diffIDs = append(diffIDs, must(l.DiffID()))
			}
			srcDesc := v1.Descriptor{MediaType: must(src.MediaType()), Size: must(src.Size()), Digest: must(src.Digest())}
			man, cfg, err := image.ConvertedManifest(&opts, srcDesc, must(src.RawConfigFile()), descs, diffIDs)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(man, must(img.RawManifest())) || !bytes.Equal(cfg, must(img.RawConfigFile())) {
				t.Errorf("ConvertedManifest:\n%s\n%s\nImage:\n%s\n%s", man, cfg, must(img.RawManifest()), must(img.RawConfigFile()))
			}
			if opts.Type != image.TypeNydus {
				if len(want) != len(srcLayers) {
					t.Fatalf("%d layers, want %d", len(want), len(srcLayers))
				}
				return
			}
			wantBoot := want[len(want)-1]
			for name, layers := range map[string][]v1.Layer{"Layer": converted, "ConvertLayer": blobLayers(t, streamed)} {
				boot, err := image.MergeNydusLayers(t.TempDir(), layers...)
				if err != nil {
					t.Fatal(err)
				}
				bl, err := image.NydusBootstrapLayer(boot)
				if err != nil {
					t.Fatal(err)
				}
				d, err := partial.Descriptor(bl)
				if err != nil {
					t.Fatal(err)
				}
				if d.Digest != wantBoot.Digest || d.Size != wantBoot.Size || d.MediaType != wantBoot.MediaType ||
					d.Annotations[image.AnnotationNydusBootstrap] != "true" || d.Annotations[image.AnnotationNydusFsVersion] != "6" {
					t.Errorf("%s: bootstrap layer %+v, Image gives %+v", name, d, wantBoot)
				}
				cfg, err := img.ConfigFile()
				if err != nil {
					t.Fatal(err)
				}
				if did, err := bl.DiffID(); err != nil || did != cfg.RootFS.DiffIDs[len(cfg.RootFS.DiffIDs)-1] {
					t.Errorf("%s: bootstrap diff ID %s (%v), the config says %s", name, did, err, cfg.RootFS.DiffIDs[len(cfg.RootFS.DiffIDs)-1])
				}
			}
		})
	}
}

// blobLayers makes layers of Nydus blobs held in memory.
func blobLayers(t *testing.T, blobs [][]byte) []v1.Layer {
	var out []v1.Layer
	for _, b := range blobs {
		l, err := partial.CompressedToLayer(&rawLayer{b: b})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

type rawLayer struct{ b []byte }

func (l *rawLayer) Digest() (v1.Hash, error) {
	return v1.NewHash(digest.FromBytes(l.b).String())
}
func (l *rawLayer) Size() (int64, error) { return int64(len(l.b)), nil }
func (l *rawLayer) MediaType() (types.MediaType, error) {
	return types.MediaType(image.MediaTypeNydusBlob), nil
}
func (l *rawLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.b)), nil
}

// TestConvertLayerChecks gives ConvertLayer descriptors that do not match
// the blob: a wrong digest, a wrong size, a wrong diff ID annotation.
// Each is a *BlobMismatchError; the right diff ID annotation changes
// nothing.
func TestConvertLayerChecks(t *testing.T) {
	ctx := context.Background()
	l := must(sampleImage(t).Layers())[0]
	blob := readBlob(t, l)
	d := must(partial.Descriptor(l))
	diffID := must(l.DiffID())
	good := ocispec.Descriptor{MediaType: string(d.MediaType), Digest: digest.Digest(d.Digest.String()), Size: d.Size}
	opts := &image.Options{Type: image.TypeEROFS, TempDir: t.TempDir()}
	var ref bytes.Buffer
	want, err := image.ConvertLayer(ctx, good, bytes.NewReader(blob), &ref, opts)
	if err != nil {
		t.Fatal(err)
	}
	annotated := good
	annotated.Annotations = map[string]string{image.AnnotationUncompressed: diffID.String()}
	if got, err := image.ConvertLayer(ctx, annotated, bytes.NewReader(blob), io.Discard, opts); err != nil || got.Digest != want.Digest {
		t.Errorf("with the right diff ID: %s, %v; want %s", got.Digest, err, want.Digest)
	}
	bad := map[string]ocispec.Descriptor{}
	d1 := good
	d1.Digest = digest.FromString("other")
	bad["digest"] = d1
	d2 := good
	d2.Size++
	bad["size"] = d2
	d3 := good
	d3.Annotations = map[string]string{image.AnnotationUncompressed: digest.FromString("other").String()}
	bad["diff ID"] = d3
	for name, desc := range bad {
		for _, typ := range []image.Type{image.TypeEROFS, image.TypeNydus} {
			_, err := image.ConvertLayer(ctx, desc, bytes.NewReader(blob), io.Discard, &image.Options{Type: typ, TempDir: t.TempDir()})
			var me *image.BlobMismatchError
			if !errors.As(err, &me) || !errors.Is(err, image.ErrBlobMismatch) {
				t.Errorf("%s, %s: %v, want a BlobMismatchError", name, typ, err)
			}
		}
	}
}

// blockingReader gives the first n bytes of b, then blocks until unblock
// is closed.
type blockingReader struct {
	b       []byte
	n       int
	unblock chan struct{}
	reached chan struct{}
	once    bool
}

func (r *blockingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		if !r.once {
			r.once = true
			close(r.reached)
		}
		<-r.unblock
		return 0, io.ErrUnexpectedEOF
	}
	k := copy(p, r.b[:r.n])
	r.b, r.n = r.b[k:], r.n-k
	return k, nil
}

// TestConvertLayerCancel cancels ConvertLayer while a read from the layer
// blocks, half-way through a layer: it must return ctx.Err() at once.
func TestConvertLayerCancel(t *testing.T) {
	l := must(sampleImage(t).Layers())[1]
	blob := readBlob(t, l)
	for _, typ := range []image.Type{image.TypeEROFS, image.TypeNydus} {
		for _, cause := range []string{"cancel", "deadline"} {
			var ctx context.Context
			var cancel context.CancelFunc
			r := &blockingReader{b: blob, n: len(blob) / 2, unblock: make(chan struct{}), reached: make(chan struct{})}
			if cause == "cancel" {
				ctx, cancel = context.WithCancel(context.Background())
				go func() { <-r.reached; cancel() }()
			} else {
				ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
			}
			done := make(chan error, 1)
			go func() {
				_, err := image.ConvertLayer(ctx, ocispec.Descriptor{}, r, io.Discard, &image.Options{Type: typ, TempDir: t.TempDir()})
				done <- err
			}()
			select {
			case err := <-done:
				if err != ctx.Err() || err == nil {
					t.Errorf("%s, %s: %v, want %v", typ, cause, err, ctx.Err())
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s, %s: ConvertLayer did not return", typ, cause)
			}
			close(r.unblock)
			cancel()
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// readBlob reads l's compressed blob.
func readBlob(t *testing.T, l v1.Layer) []byte {
	t.Helper()
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	return readAll(t, rc)
}
