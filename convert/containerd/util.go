package containerd

import (
	"bytes"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
)

func hashOf(d digest.Digest) v1.Hash {
	return v1.Hash{Algorithm: d.Algorithm().String(), Hex: d.Encoded()}
}

func v1MediaType(mt string) types.MediaType { return types.MediaType(mt) }

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
