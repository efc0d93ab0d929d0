package image

import (
	"context"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
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
