package image_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/rafs-dev/rafs/convert/image"
)

// Convert the sample image of testdata (an OCI layout) into a Nydus image
// and store it in another OCI layout. With a registry, read the source
// with remote.Image, set Options.Push to image.RemotePush so that
// layers upload while they are converted, and store the result with
// remote.Write.
func ExampleConverter() {
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

	c, err := image.NewConverter(&image.Options{Type: image.TypeNydus})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close() // removes the converted layers' temporary files
	img, err := c.Image(context.Background(), src)
	if err != nil {
		log.Fatal(err)
	}

	dir, err := os.MkdirTemp("", "nydus-layout")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	out, err := layout.Write(dir, empty.Index)
	if err != nil {
		log.Fatal(err)
	}
	if err := out.AppendImage(img); err != nil {
		log.Fatal(err)
	}

	m, err := img.Manifest()
	if err != nil {
		log.Fatal(err)
	}
	for _, l := range m.Layers {
		fmt.Println(l.MediaType, l.Annotations[image.AnnotationNydusBlob]+l.Annotations[image.AnnotationNydusBootstrap])
	}
	fmt.Println(c.Stats().Layers, "layers converted")
	// Output:
	// application/vnd.oci.image.layer.nydus.blob.v1 true
	// application/vnd.oci.image.layer.nydus.blob.v1 true
	// application/vnd.oci.image.layer.v1.tar+gzip true
	// 2 layers converted
}
