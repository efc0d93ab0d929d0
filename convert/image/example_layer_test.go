package image_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rafs-dev/rafs/convert/image"
)

// Convert the layers of a go-containerregistry image one by one into
// Nydus blob layers, then make the bootstrap layer that goes last, and
// put them into an image of one's own with mutate. For EROFS, set Type to
// image.TypeEROFS: each converted layer is then a whole EROFS image and
// there is no bootstrap layer.
func ExampleConverter_Layer() {
	idx, err := layout.ImageIndexFromPath("../../testdata/sample-image")
	if err != nil {
		log.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		log.Fatal(err)
	}
	src, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		log.Fatal(err)
	}
	layers, err := src.Layers()
	if err != nil {
		log.Fatal(err)
	}

	c, err := image.NewConverter(&image.Options{Type: image.TypeNydus})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close() // the converted layers live until then
	var adds []mutate.Addendum
	var blobs []v1.Layer
	for _, l := range layers {
		nl, err := c.Layer(context.Background(), l)
		if err != nil {
			log.Fatal(err)
		}
		d, err := partial.Descriptor(nl) // media type and annotations for the manifest
		if err != nil {
			log.Fatal(err)
		}
		adds = append(adds, mutate.Addendum{Layer: nl, MediaType: d.MediaType, Annotations: d.Annotations})
		blobs = append(blobs, nl)
	}
	boot, err := image.MergeNydusLayers("", blobs...) // the blobs' bootstraps, merged
	if err != nil {
		log.Fatal(err)
	}
	if err != nil {
		log.Fatal(err)
	}
	bl, err := image.NydusBootstrapLayer(boot)
	if err != nil {
		log.Fatal(err)
	}
	d, err := partial.Descriptor(bl)
	if err != nil {
		log.Fatal(err)
	}
	adds = append(adds, mutate.Addendum{Layer: bl, MediaType: d.MediaType, Annotations: d.Annotations})
	img, err := mutate.Append(empty.Image, adds...) // or onto a copy of the source's config
	if err != nil {
		log.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		log.Fatal(err)
	}
	for _, l := range m.Layers {
		fmt.Println(l.MediaType, l.Annotations[image.AnnotationNydusBlob]+l.Annotations[image.AnnotationNydusBootstrap])
	}
	// Output:
	// application/vnd.oci.image.layer.nydus.blob.v1 true
	// application/vnd.oci.image.layer.nydus.blob.v1 true
	// application/vnd.oci.image.layer.v1.tar+gzip true
}

// Convert one layer blob, read from wherever it is (here the sample
// image's first layer, a tar.gz), into an EROFS layer written to any
// io.Writer, as a containerd content writer would take it. The returned
// descriptor is the converted layer's; its diff ID annotation is its own
// digest. The EROFS UUID comes from the diff ID, which ConvertLayer
// computes as it reads, so the bytes are those rafs convert writes.
func ExampleConvertLayer() {
	f, err := os.Open("../../testdata/sample-image/blobs/sha256/de08d188f48485baff3c4f39ab6f61f50eea3231b16bd8a4e3baa5412ac80ca9")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	src := ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageLayerGzip,
		Digest:    "sha256:de08d188f48485baff3c4f39ab6f61f50eea3231b16bd8a4e3baa5412ac80ca9", // checked as it is read
		Size:      30286,
	}
	var out bytes.Buffer
	desc, err := image.ConvertLayer(context.Background(), src, f, &out, &image.Options{Type: image.TypeEROFS})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(desc.MediaType, desc.Size == int64(out.Len()), desc.Annotations[image.AnnotationUncompressed] == desc.Digest.String())
	fmt.Println(desc.Digest)
	// Output:
	// application/vnd.erofs.layer.v1 true true
	// sha256:56be91cd2319fac6b5500de0c6bfc6260ffdb4caad49a3baf5b27d2161e4741b
}
