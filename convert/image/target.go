package image

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// RemotePush returns an Options.Push function that uploads each
// converted layer to repo while it is being converted (a Nydus blob
// streams to the registry as it is written). Store the converted image
// with p.Push or remote.Write afterwards: its layers are then found in
// the repository and not sent again.
func RemotePush(p *remote.Pusher, repo name.Repository) func(context.Context, v1.Layer) error {
	return func(ctx context.Context, l v1.Layer) error {
		return p.Upload(ctx, repo, l)
	}
}

// IsNotFound reports whether a registry error says the manifest (or the
// repository) does not exist.
func IsNotFound(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		if te.StatusCode == http.StatusNotFound {
			return true
		}
		for _, d := range te.Errors {
			if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
				return true
			}
		}
	}
	return false
}

// RegistryTarget is where ConvertToRegistry stores a conversion.
type RegistryTarget struct {
	// Tag is the reference the result is pushed to.
	Tag name.Tag
	// CacheTag, when not empty, keeps a layer cache (Cache) under this
	// tag of Tag's repository: read before converting, so that layers
	// converted before are reused, and pushed after the result.
	CacheTag string
	// Remote are the go-containerregistry options (context, credentials,
	// transport, retries) of every request to the target registry.
	Remote []remote.Option
	// BeforeCommit, when set, is called once the conversion is complete,
	// before the result's manifest is pushed; an error it returns stops
	// there (rafs convert stops taking signals at this point).
	BeforeCommit func() error
}

// Converted is what ConvertToRegistry stored.
type Converted struct {
	// Image or Index is the result (an Index for a source index, or
	// for a single image with LinkMergeIndex).
	Image v1.Image
	Index v1.ImageIndex
	// Digest is the digest of the result's manifest, pushed to the
	// target tag.
	Digest v1.Hash
	// Stats counts what the conversion did.
	Stats Stats
}

// ConvertToRegistry converts src, an image (v1.Image) or an index
// (v1.ImageIndex), with opts into a registry: each converted layer is
// uploaded to dst's repository while it is made (Options.Push), the
// cache is read from and written to dst.CacheTag when set, and the
// result is pushed to dst.Tag. opts.Push and opts.Cache must be nil (they
// are set here). The converter's temporary files, in opts.TempDir, are
// removed before it returns.
//
// When pushing the cache fails, the result is stored: ConvertToRegistry
// returns it with the error.
func ConvertToRegistry(ctx context.Context, src any, opts Options, dst RegistryTarget) (conv *Converted, err error) {
	var img v1.Image
	var idx v1.ImageIndex
	switch s := src.(type) {
	case v1.ImageIndex:
		idx = s
	case v1.Image:
		img = s
	default:
		return nil, fmt.Errorf("convert: source %T is neither an image nor an index", src)
	}
	if opts.Push != nil || opts.Cache != nil {
		return nil, errors.New("convert: ConvertToRegistry sets Options.Push and Options.Cache itself")
	}
	pusher, err := remote.NewPusher(dst.Remote...)
	if err != nil {
		return nil, err
	}
	repo := dst.Tag.Context()
	opts.Push = RemotePush(pusher, repo)
	var cache *Cache
	if dst.CacheTag != "" {
		prev, err := remote.Image(repo.Tag(dst.CacheTag), dst.Remote...)
		if IsNotFound(err) {
			prev, err = nil, nil
		}
		if err == nil {
			cache, err = NewCache(prev)
		}
		if err != nil {
			return nil, fmt.Errorf("cache %s: %w", dst.CacheTag, err)
		}
		opts.Cache = cache
	}

	c, err := NewConverter(&opts)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := c.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	out := &Converted{}
	switch {
	case idx != nil:
		out.Index, err = c.Index(ctx, idx)
	case opts.Link == LinkMergeIndex:
		if idx, err = IndexOf(img); err == nil {
			out.Index, err = c.Index(ctx, idx)
		}
	default:
		out.Image, err = c.Image(ctx, img)
	}
	if err != nil {
		return nil, err
	}
	var result remote.Taggable = out.Image
	if out.Index != nil {
		result = out.Index
		out.Digest, err = out.Index.Digest()
	} else {
		out.Digest, err = out.Image.Digest()
	}
	if err != nil {
		return nil, err
	}
	var cacheImg v1.Image
	if cache != nil && cache.Len() > 0 {
		if cacheImg, err = cache.Image(); err != nil {
			return nil, err
		}
	}
	out.Stats = c.Stats()
	if dst.BeforeCommit != nil {
		if err := dst.BeforeCommit(); err != nil {
			return nil, err
		}
	}
	if err := pusher.Push(ctx, dst.Tag, result); err != nil {
		return nil, fmt.Errorf("pushing %s: %w", dst.Tag, err)
	}
	if cacheImg != nil {
		if err := pusher.Push(ctx, repo.Tag(dst.CacheTag), cacheImg); err != nil {
			return out, fmt.Errorf("pushing the cache %s: %w", dst.CacheTag, err)
		}
	}
	return out, nil
}
