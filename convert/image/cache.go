package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// A LayerCache remembers converted layers by a key that names the source
// layer and the conversion options, so that a layer converted once is not
// converted again. Its methods may be called concurrently.
type LayerCache interface {
	// Lookup returns the layer stored under key, or nil if there is none.
	Lookup(ctx context.Context, key string) (*CachedLayer, error)
	// Store records a converted layer under key. The layer's blob is
	// already stored where the converted image goes.
	Store(ctx context.Context, key string, l *CachedLayer) error
}

// CachedLayer is a converted layer in a LayerCache.
type CachedLayer struct {
	// Layer is the converted layer.
	Layer v1.Layer
	// Bootstrap is the layer's own RAFS bootstrap (Nydus layers only),
	// which the merge of an image needs.
	Bootstrap []byte
	// Annotations go on the layer's descriptor in the converted manifest
	// (AnnotationDmverity); Cache keeps them on the layer's entry.
	Annotations map[string]string
}

// Cache is a LayerCache kept as an OCI image manifest beside the
// converted images, as nydusify keeps its build cache: each cached layer
// is a layer of the manifest annotated with its key, followed, for a Nydus
// layer, by its bootstrap as a small blob. Keeping the cache in the target
// repository also keeps its blobs from being garbage collected. Read a
// previous cache with NewCache, and store Image() after converting.
type Cache struct {
	mu      sync.Mutex
	entries map[string]*CachedLayer
	order   []string
}

// cacheBootstrapMediaType is the media type of a cached layer bootstrap.
const cacheBootstrapMediaType types.MediaType = "application/vnd.rafs.nydus.bootstrap.v1"

// NewCache returns a cache holding the layers recorded in img, a
// manifest an earlier Cache made (nil for an empty cache). What is
// read of img is checked as VerifyImage does: its manifest and the layer
// bootstraps here, a cached layer's blob if it is ever read.
func NewCache(img v1.Image) (*Cache, error) {
	c := &Cache{entries: map[string]*CachedLayer{}}
	if img == nil {
		return c, nil
	}
	img = verifyImage(img)
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("convert: layer cache: %w", err)
	}
	if m.ArtifactType != artifactTypeCache {
		return nil, fmt.Errorf("convert: layer cache: manifest has artifact type %q, not %s", m.ArtifactType, artifactTypeCache)
	}
	for _, d := range m.Layers {
		key := d.Annotations[annotationCacheKey]
		if key == "" {
			continue
		}
		l, err := img.LayerByDigest(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("convert: layer cache: %s: %w", d.Digest, err)
		}
		switch d.Annotations[annotationCacheRole] {
		case "layer":
			if c.entries[key] == nil {
				c.order = append(c.order, key)
			}
			var ann map[string]string
			for k, v := range d.Annotations {
				if k != annotationCacheKey && k != annotationCacheRole {
					if ann == nil {
						ann = map[string]string{}
					}
					ann[k] = v
				}
			}
			c.entries[key] = &CachedLayer{Layer: l, Annotations: ann}
		case "bootstrap":
			e := c.entries[key]
			if e == nil {
				return nil, fmt.Errorf("convert: layer cache: bootstrap %s before its layer", d.Digest)
			}
			if d.Size > 1<<30 {
				return nil, fmt.Errorf("convert: layer cache: bootstrap %s is %d bytes", d.Digest, d.Size)
			}
			rc, err := l.Compressed()
			if err != nil {
				return nil, fmt.Errorf("convert: layer cache: %w", err)
			}
			e.Bootstrap, err = io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return nil, fmt.Errorf("convert: layer cache: bootstrap %s: %w", d.Digest, err)
			}
		}
	}
	return c, nil
}

// Lookup implements LayerCache.
func (c *Cache) Lookup(_ context.Context, key string) (*CachedLayer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries[key], nil
}

// Store implements LayerCache.
func (c *Cache) Store(_ context.Context, key string, l *CachedLayer) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries[key] == nil {
		c.order = append(c.order, key)
	}
	c.entries[key] = l
	return nil
}

// Len returns the number of cached layers.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// Image returns the cache as an OCI manifest (artifact type
// application/vnd.rafs.cache.v1+json) to store beside the converted
// images. Layers are listed by key, so the same cache gives the same
// manifest.
func (c *Cache) Image() (v1.Image, error) {
	c.mu.Lock()
	keys := slices.Sorted(maps.Keys(c.entries))
	entries := maps.Clone(c.entries)
	c.mu.Unlock()

	cfg := []byte("{}")
	core := &imageCore{
		config:    cfg,
		mediaType: types.OCIManifestSchema1,
		layers:    map[v1.Hash]v1.Layer{},
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  artifactTypeCache,
		Config:        v1.Descriptor{MediaType: "application/vnd.oci.empty.v1+json", Size: int64(len(cfg)), Digest: sha256Hash(cfg)},
	}
	for _, k := range keys {
		e := entries[k]
		d, err := partial.Descriptor(e.Layer)
		if err != nil {
			return nil, fmt.Errorf("convert: layer cache: %w", err)
		}
		d.Annotations = maps.Clone(e.Annotations)
		if d.Annotations == nil {
			d.Annotations = map[string]string{}
		}
		d.Annotations[annotationCacheKey], d.Annotations[annotationCacheRole] = k, "layer"
		d.Platform = nil
		m.Layers = append(m.Layers, *d)
		core.layers[d.Digest] = e.Layer
		if e.Bootstrap != nil {
			bl := static.NewLayer(e.Bootstrap, cacheBootstrapMediaType)
			bd, err := partial.Descriptor(bl)
			if err != nil {
				return nil, fmt.Errorf("convert: layer cache: %w", err)
			}
			bd.Annotations = map[string]string{annotationCacheKey: k, annotationCacheRole: "bootstrap"}
			m.Layers = append(m.Layers, *bd)
			core.layers[bd.Digest] = bl
		}
	}
	if len(m.Layers) == 0 {
		// An empty layer list is valid OCI but some registries reject it;
		// an empty cache is not worth storing anyway.
		return nil, fmt.Errorf("convert: layer cache: empty")
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	core.manifest = raw
	return partial.CompressedToImage(core)
}
