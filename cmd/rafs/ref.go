package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/rafs-dev/rafs/convert/image"
)

// layoutPrefix marks an OCI layout location: oci:DIR[:TAG].
const layoutPrefix = "oci:"

// Archive locations: oci-archive:FILE[:TAG], a tar of an OCI layout (as
// skopeo and podman write them), and docker-archive:FILE[:REF], a docker
// save tarball.
const (
	ociArchivePrefix    = "oci-archive:"
	dockerArchivePrefix = "docker-archive:"
)

// tagPattern is what an image tag may be (OCI distribution spec).
var tagPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

// location is where an image is read from or written to: a registry
// reference, or a directory holding an OCI image layout with an optional
// tag (the org.opencontainers.image.ref.name annotation of an index.json
// entry).
type location struct {
	ref      name.Reference // registry; nil for a layout or an archive
	dir, tag string         // layout (of an oci-archive: where it is unpacked)
	spelled  string         // the directory or archive file as given, for messages

	archive   string    // ociArchivePrefix or dockerArchivePrefix, or ""
	file      string    // the archive file
	dockerTag *name.Tag // docker-archive's REF
}

// parseLocation parses a registry reference or oci:DIR[:TAG]. The tag is
// what follows the last colon when that is a valid tag; otherwise all of
// it is the directory.
func parseLocation(s string, plainHTTP bool) (*location, error) {
	if rest, ok := strings.CutPrefix(s, ociArchivePrefix); ok {
		file, tag := rest, ""
		if i := strings.LastIndexByte(rest, ':'); i >= 0 && tagPattern.MatchString(rest[i+1:]) {
			file, tag = rest[:i], rest[i+1:]
		}
		if file == "" {
			return nil, fmt.Errorf("%q: want oci-archive:FILE[:TAG]", s)
		}
		return &location{archive: ociArchivePrefix, file: file, tag: tag, spelled: file}, nil
	}
	if rest, ok := strings.CutPrefix(s, dockerArchivePrefix); ok {
		// FILE is all of it if that exists, else what precedes the
		// first colon.
		file, ref := rest, ""
		if _, err := os.Stat(rest); err != nil {
			if i := strings.IndexByte(rest, ':'); i >= 0 {
				file, ref = rest[:i], rest[i+1:]
			}
		}
		if file == "" {
			return nil, fmt.Errorf("%q: want docker-archive:FILE[:REF]", s)
		}
		l := &location{archive: dockerArchivePrefix, file: file, spelled: file}
		if ref != "" {
			t, err := name.NewTag(ref)
			if err != nil {
				return nil, fmt.Errorf("%q: REF %q is not an image tag: %w", s, ref, err)
			}
			l.dockerTag = &t
		}
		return l, nil
	}
	if rest, ok := strings.CutPrefix(s, layoutPrefix); ok {
		dir, tag := rest, ""
		if i := strings.LastIndexByte(rest, ':'); i >= 0 && tagPattern.MatchString(rest[i+1:]) {
			dir, tag = rest[:i], rest[i+1:]
		}
		if dir == "" {
			return nil, fmt.Errorf("%q: want oci:DIR[:TAG]", s)
		}
		return &location{dir: dir, tag: tag, spelled: dir}, nil
	}
	var opts []name.Option
	if plainHTTP {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(s, opts...)
	if err != nil {
		return nil, fmt.Errorf("%q: not an image reference or oci:DIR[:TAG]: %w", s, err)
	}
	return &location{ref: ref}, nil
}

// isLayout reports whether l is an OCI layout: oci:DIR, or an oci-archive
// (unpacked into a layout directory).
func (l *location) isLayout() bool { return l.ref == nil && l.archive != dockerArchivePrefix }

// String returns the location as it is written on the command line.
func (l *location) String() string {
	if l.ref != nil {
		return l.ref.Name()
	}
	switch {
	case l.archive == dockerArchivePrefix && l.dockerTag != nil:
		return l.archive + l.spelled + ":" + l.dockerTag.String()
	case l.archive == dockerArchivePrefix, l.archive != "" && l.tag == "":
		return l.archive + l.spelled
	case l.archive != "":
		return l.archive + l.spelled + ":" + l.tag
	}
	if l.tag == "" {
		return layoutPrefix + l.spelled
	}
	return layoutPrefix + l.spelled + ":" + l.tag
}

// withDigest returns the location pinned to digest h: what the commands
// print.
func (l *location) withDigest(h v1.Hash) string {
	if d, ok := l.ref.(name.Digest); ok {
		return d.Name()
	}
	return l.String() + "@" + h.String()
}

// remoteFlags are the registry flags of convert and push.
type remoteFlags struct {
	plainHTTP bool
	retries   int
}

func (r *remoteFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&r.plainHTTP, "plain-http", false, "talk to registries over plain HTTP (localhost and 127.0.0.1 always may)")
	fs.IntVar(&r.retries, "retries", 5, "retry a failed registry request up to `N` times, with exponential backoff")
}

func (r *remoteFlags) check() error {
	if r.retries < 0 {
		return fmt.Errorf("--retries %d: want 0 or more", r.retries)
	}
	return nil
}

// retryStatusCodes are the HTTP statuses a registry request is retried on.
var retryStatusCodes = []int{
	http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
	http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout,
}

// options returns the go-containerregistry options for ctx: credentials
// from the default keychain (docker config, credential helpers) and the
// retries.
func (r *remoteFlags) options(ctx context.Context) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		// Steps counts attempts; with 0 go-containerregistry would not
		// even try once.
		remote.WithRetryBackoff(remote.Backoff{Duration: time.Second, Factor: 2, Jitter: 0.1, Steps: r.retries + 1}),
		remote.WithRetryStatusCodes(retryStatusCodes...),
		remote.WithUserAgent("rafs/" + version),
	}
}

// source is an image or an index read from a location.
type source struct {
	img v1.Image
	idx v1.ImageIndex
}

// digest returns the manifest digest of the image or index.
func (s source) digest() (v1.Hash, error) {
	if s.idx != nil {
		return s.idx.Digest()
	}
	return s.img.Digest()
}

// read reads the image or index at l.
func (l *location) read(ctx context.Context, ropts []remote.Option) (source, error) {
	switch {
	case l.archive == dockerArchivePrefix:
		img, err := tarball.ImageFromPath(l.file, l.dockerTag)
		if err != nil {
			return source{}, fmt.Errorf("%s: %w", l, err)
		}
		return source{img: image.VerifyImage(img)}, nil
	case l.archive != "" && l.dir == "":
		return source{}, fmt.Errorf("%s: an OCI archive is read only as the SRC of convert", l)
	}
	if l.isLayout() {
		root, err := layout.ImageIndexFromPath(l.dir)
		if err != nil {
			return source{}, fmt.Errorf("%s: %w", l, err)
		}
		// A layout's blobs are read unchecked by go-containerregistry:
		// check each one against the descriptor it is reached by.
		root = image.VerifyIndex(root)
		d, err := pickEntry(root, l.tag)
		if err != nil {
			return source{}, fmt.Errorf("%s: %w", l, err)
		}
		return entryOf(root, d)
	}
	d, err := remote.Get(l.ref, ropts...)
	if err != nil {
		return source{}, err
	}
	if d.MediaType.IsIndex() {
		idx, err := d.ImageIndex()
		return source{idx: idx}, err
	}
	img, err := d.Image()
	return source{img: img}, err
}

// entryOf opens the manifest d of root as an image or an index.
func entryOf(root v1.ImageIndex, d v1.Descriptor) (source, error) {
	switch {
	case d.MediaType.IsIndex():
		idx, err := root.ImageIndex(d.Digest)
		return source{idx: idx}, err
	case d.MediaType.IsImage():
		img, err := root.Image(d.Digest)
		return source{img: img}, err
	}
	return source{}, fmt.Errorf("entry %s has media type %s, neither an image nor an index", d.Digest, d.MediaType)
}

// pickEntry returns the entry of a layout's index.json tagged tag, or
// with no tag the only entry.
func pickEntry(root v1.ImageIndex, tag string) (v1.Descriptor, error) {
	im, err := root.IndexManifest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	if tag == "" {
		if len(im.Manifests) == 1 {
			return im.Manifests[0], nil
		}
		if len(im.Manifests) == 0 {
			return v1.Descriptor{}, errors.New("the layout's index.json lists no image")
		}
		var tags []string
		for _, d := range im.Manifests {
			if t := d.Annotations[image.AnnotationImageRefName]; t != "" {
				tags = append(tags, t)
			} else {
				tags = append(tags, "(untagged "+d.Digest.String()+")")
			}
		}
		return v1.Descriptor{}, fmt.Errorf("the layout has %d images; name one with oci:DIR:TAG (tags: %s)", len(im.Manifests), strings.Join(tags, ", "))
	}
	for _, d := range slices.Backward(im.Manifests) {
		if d.Annotations[image.AnnotationImageRefName] == tag {
			return d, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("no image tagged %q in the layout", tag)
}

// layoutTarget is an OCI layout being written: created if missing, and
// removed again if it was created and the command fails.
type layoutTarget struct {
	loc     *location
	existed bool // the directory existed before
	path    layout.Path
	opened  bool
	fresh   bool // open made the layout in the existing, empty directory

	blobs     map[string]bool // of an existing layout, before the command
	committed bool            // index.json has been replaced
}

func newLayoutTarget(loc *location) (*layoutTarget, error) {
	t := &layoutTarget{loc: loc}
	fi, err := os.Stat(loc.dir)
	switch {
	case err == nil && !fi.IsDir():
		return nil, fmt.Errorf("%s: not a directory", loc)
	case err == nil:
		t.existed = true
		if _, err := os.Stat(filepath.Join(loc.dir, "index.json")); err != nil {
			ents, rerr := os.ReadDir(loc.dir)
			if rerr != nil {
				return nil, rerr
			}
			if len(ents) > 0 {
				return nil, fmt.Errorf("%s: not an OCI layout (no index.json) and not empty", loc)
			}
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	return t, nil
}

// lookup returns the image tagged tag in the layout, or nil if the layout
// or the tag does not exist.
func (t *layoutTarget) lookup(tag string) (v1.Image, error) {
	root, err := layout.ImageIndexFromPath(t.loc.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.loc, err)
	}
	root = image.VerifyIndex(root)
	im, err := root.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range slices.Backward(im.Manifests) {
		if d.Annotations[image.AnnotationImageRefName] == tag {
			if !d.MediaType.IsImage() {
				return nil, fmt.Errorf("%s: %q is not an image manifest", t.loc, tag)
			}
			return root.Image(d.Digest)
		}
	}
	return nil, nil
}

// open makes the directory a layout if it is not one yet. Of an existing
// layout it notes the blobs, so that abandon can remove the ones the
// command added.
func (t *layoutTarget) open() error {
	if t.opened {
		return nil
	}
	if _, err := os.Stat(filepath.Join(t.loc.dir, "index.json")); err == nil {
		p, err := layout.FromPath(t.loc.dir)
		if err != nil {
			return fmt.Errorf("%s: %w", t.loc, err)
		}
		if t.blobs, err = listBlobs(t.loc.dir); err != nil {
			return fmt.Errorf("%s: %w", t.loc, err)
		}
		t.path = p
	} else {
		t.fresh = t.existed
		p, err := layout.Write(t.loc.dir, empty.Index)
		if err != nil {
			return fmt.Errorf("%s: %w", t.loc, err)
		}
		t.path = p
	}
	t.opened = true
	return nil
}

// listBlobs returns the names under a layout's blobs directory: ALG and
// ALG/HEX.
func listBlobs(dir string) (map[string]bool, error) {
	names := map[string]bool{}
	algs, err := os.ReadDir(filepath.Join(dir, "blobs"))
	if errors.Is(err, os.ErrNotExist) {
		return names, nil
	}
	if err != nil {
		return nil, err
	}
	for _, a := range algs {
		names[a.Name()] = true
		if !a.IsDir() {
			continue
		}
		ents, err := os.ReadDir(filepath.Join(dir, "blobs", a.Name()))
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			names[a.Name()+"/"+e.Name()] = true
		}
	}
	return names, nil
}

// taggedSource is an image or index to store in a layout under a tag.
type taggedSource struct {
	s   source
	tag string
}

// commit stores the entries in the layout: their blobs first, then one
// new index.json, written next to the old one and renamed over it (the
// commit, after which g lets no signal interrupt). Each entry replaces the
// entry with its tag; one without a tag is added untagged, replacing only
// an untagged entry with the same digest.
func (t *layoutTarget) commit(g *guard, entries []taggedSource) error {
	if err := t.open(); err != nil {
		return err
	}
	for _, e := range entries {
		if err := writeBlobs(t.path, e.s); err != nil {
			return fmt.Errorf("writing %s: %w", t.loc, err)
		}
	}
	ii, err := t.path.ImageIndex()
	if err != nil {
		return fmt.Errorf("%s: %w", t.loc, err)
	}
	for _, e := range entries {
		if ii, err = withEntry(ii, e); err != nil {
			return fmt.Errorf("%s: %w", t.loc, err)
		}
	}
	im, err := ii.IndexManifest()
	if err != nil {
		return fmt.Errorf("%s: %w", t.loc, err)
	}
	// As go-containerregistry's layout package writes index.json.
	raw, err := json.MarshalIndent(im, "", "   ")
	if err != nil {
		return err
	}
	outs := newOutputs(g)
	defer outs.abort()
	f, err := outs.add(filepath.Join(t.loc.dir, "index.json"), false)
	if err != nil {
		return fmt.Errorf("%s: %w", t.loc, err)
	}
	if _, err := f.Write(raw); err != nil {
		return fmt.Errorf("writing %s: %w", t.loc, err)
	}
	if err := outs.commit(); err != nil {
		return fmt.Errorf("writing %s: %w", t.loc, err)
	}
	t.committed = true
	return nil
}

// withEntry returns ii with e in place of the entries it replaces (see
// commit).
func withEntry(ii v1.ImageIndex, e taggedSource) (v1.ImageIndex, error) {
	var add mutate.Appendable = e.s.img
	if e.s.idx != nil {
		add = e.s.idx
	}
	desc, err := partial.Descriptor(add)
	if err != nil {
		return nil, err
	}
	var m match.Matcher
	if e.tag != "" {
		m = match.Annotation(image.AnnotationImageRefName, e.tag)
		if desc.Annotations == nil {
			desc.Annotations = map[string]string{}
		}
		desc.Annotations[image.AnnotationImageRefName] = e.tag
	} else {
		dg := desc.Digest
		m = func(d v1.Descriptor) bool {
			_, tagged := d.Annotations[image.AnnotationImageRefName]
			return !tagged && d.Digest == dg
		}
	}
	return mutate.AppendManifests(mutate.RemoveManifests(ii, m), mutate.IndexAddendum{Add: add, Descriptor: *desc}), nil
}

// writeBlobs writes the blobs of an image or index to the layout: layers,
// configs and manifests, those of an index's children too. Blobs already
// there are not written again (go-containerregistry's layout package,
// which also writes each new blob of known digest straight to its name;
// abandon removes them if the command fails).
func writeBlobs(p layout.Path, s source) error {
	if s.img != nil {
		return p.WriteImage(s.img)
	}
	im, err := s.idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range im.Manifests {
		switch {
		case d.MediaType.IsIndex():
			child, err := s.idx.ImageIndex(d.Digest)
			if err == nil {
				err = writeBlobs(p, source{idx: child})
			}
			if err != nil {
				return err
			}
		case d.MediaType.IsImage():
			img, err := s.idx.Image(d.Digest)
			if err == nil {
				err = p.WriteImage(img)
			}
			if err != nil {
				return err
			}
		default:
			// Something else an index lists: as a blob.
			bl, ok := s.idx.(interface {
				Blob(v1.Hash) (io.ReadCloser, error)
			})
			if !ok {
				return fmt.Errorf("manifest %s has media type %s, neither an image nor an index", d.Digest, d.MediaType)
			}
			rc, err := bl.Blob(d.Digest)
			if err == nil {
				err = p.WriteBlob(d.Digest, rc)
			}
			if err != nil {
				return err
			}
		}
	}
	dg, err := s.idx.Digest()
	if err != nil {
		return err
	}
	raw, err := s.idx.RawManifest()
	if err != nil {
		return err
	}
	return p.WriteBlob(dg, io.NopCloser(bytes.NewReader(raw)))
}

// abandon removes what the command made of the layout when it fails
// before its commit: the whole directory if it did not exist, the layout
// files in a directory that was empty, or the blobs it added to an
// existing layout.
func (t *layoutTarget) abandon() {
	if t.committed {
		return
	}
	if !t.existed {
		os.RemoveAll(t.loc.dir)
		return
	}
	if t.fresh {
		for _, n := range []string{"index.json", "oci-layout", "blobs"} {
			os.RemoveAll(filepath.Join(t.loc.dir, n))
		}
		return
	}
	if t.blobs == nil {
		return
	}
	now, err := listBlobs(t.loc.dir)
	if err != nil {
		return
	}
	for n := range now {
		if !t.blobs[n] {
			os.RemoveAll(filepath.Join(t.loc.dir, "blobs", filepath.FromSlash(n)))
		}
	}
}

// isNotFound reports whether a registry error says the manifest does not
// exist.
func isNotFound(err error) bool { return image.IsNotFound(err) }
