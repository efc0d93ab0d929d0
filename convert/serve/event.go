package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Push is one image manifest or index pushed to a registry.
type Push struct {
	// Registry is the host[:port] the pusher used.
	Registry string `json:"registry"`
	// Repository is the repository pushed to, e.g. "library/debian".
	Repository string `json:"repository"`
	// Tag is the tag pushed, "" for a push by digest.
	Tag string `json:"tag,omitempty"`
	// Digest is the manifest's digest, "sha256:...".
	Digest string `json:"digest"`
	// MediaType is the manifest's or index's media type; "" when the
	// payload does not say (Harbor's webhook).
	MediaType string `json:"mediaType,omitempty"`
}

// Ref returns the pushed manifest's reference, REGISTRY/REPO@DIGEST.
func (p Push) Ref() string {
	return p.Registry + "/" + p.Repository + "@" + p.Digest
}

// Media types of the distribution registry's notification envelope: v1
// (distribution 2.x) and v2 (distribution 3.x), which carry the same
// events as far as ParseNotifications reads them.
const (
	NotificationsMediaType   = "application/vnd.docker.distribution.events.v1+json"
	NotificationsMediaTypeV2 = "application/vnd.docker.distribution.events.v2+json"
)

// imageMediaTypes are the manifest and index media types whose pushes
// are conversions' sources: Docker schema 2 manifests and manifest lists,
// OCI image manifests and indexes. Docker schema 1 manifests (long
// deprecated, no layer descriptors rafs converts) are not among them.
var imageMediaTypes = map[string]bool{
	"application/vnd.docker.distribution.manifest.v2+json":      true,
	"application/vnd.docker.distribution.manifest.list.v2+json": true,
	"application/vnd.oci.image.manifest.v1+json":                true,
	"application/vnd.oci.image.index.v1+json":                   true,
}

// IsImageMediaType reports whether mediaType (parameters such as
// "; charset=utf-8" aside) is an image manifest or index media type that
// rafs serve converts.
func IsImageMediaType(mediaType string) bool {
	return imageMediaTypes[baseMediaType(mediaType)]
}

func baseMediaType(mt string) string {
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	return strings.ToLower(strings.TrimSpace(mt))
}

// distribution's notification envelope, only the fields read. Events
// also carry id, timestamp, target.size/length/url, request.id/addr/
// method/useragent, actor and source, which tell nothing the conversion
// needs; unknown fields are ignored.
type envelope struct {
	Events *[]event `json:"events"`
}

type event struct {
	Action *string `json:"action"`
	Target struct {
		MediaType  string `json:"mediaType"`
		Digest     string `json:"digest"`
		Repository string `json:"repository"`
		URL        string `json:"url"`
		Tag        string `json:"tag"`
	} `json:"target"`
	Request struct {
		Host string `json:"host"`
	} `json:"request"`
}

// ParseNotifications decodes the CNCF distribution registry's notification
// envelope ({"events":[...]}, media type NotificationsMediaType or
// NotificationsMediaTypeV2) and returns its pushes of image manifests and
// indexes (IsImageMediaType), in order. Pulls, mounts, deletes and blob
// pushes (a layer's or config's media type) are dropped, as are pushes of
// Docker schema 1 manifests.
//
// Push.Registry is the event's request.host (the Host header the pusher
// sent, which is how the registry is reached from outside), or else the
// host of its target.url. A malformed body is an error naming the offset
// or the field (events[2].target.digest), so that the HTTP handler can
// answer 400 with it: bad JSON, a missing events array, an event without
// an action, or a manifest push without a repository, a valid digest or
// a host.
func ParseNotifications(body []byte) ([]Push, error) {
	var env envelope
	if err := unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("notification envelope: %w", err)
	}
	if env.Events == nil {
		return nil, errors.New("notification envelope: events: missing")
	}
	var pushes []Push
	for i, ev := range *env.Events {
		field := func(name string) string { return fmt.Sprintf("events[%d].%s", i, name) }
		if ev.Action == nil || *ev.Action == "" {
			return nil, fmt.Errorf("notification envelope: %s: missing", field("action"))
		}
		if *ev.Action != "push" {
			continue
		}
		t := ev.Target
		if t.MediaType == "" {
			return nil, fmt.Errorf("notification envelope: %s: missing", field("target.mediaType"))
		}
		if !IsImageMediaType(t.MediaType) {
			continue
		}
		if t.Repository == "" {
			return nil, fmt.Errorf("notification envelope: %s: missing", field("target.repository"))
		}
		d, err := parseDigest(t.Digest)
		if err != nil {
			return nil, fmt.Errorf("notification envelope: %s: %w", field("target.digest"), err)
		}
		host := ev.Request.Host
		if host == "" && t.URL != "" {
			u, err := url.Parse(t.URL)
			if err != nil {
				return nil, fmt.Errorf("notification envelope: %s: %w", field("target.url"), err)
			}
			host = u.Host
		}
		if host == "" {
			return nil, fmt.Errorf("notification envelope: %s: missing (and no target.url)", field("request.host"))
		}
		if err := checkHost(host); err != nil {
			return nil, fmt.Errorf("notification envelope: %s: %w", field("request.host"), err)
		}
		pushes = append(pushes, Push{
			Registry:   host,
			Repository: t.Repository,
			Tag:        t.Tag,
			Digest:     d,
			MediaType:  baseMediaType(t.MediaType),
		})
	}
	return pushes, nil
}

// HarborPushArtifact is the type of Harbor's webhook event for a pushed
// artifact, the one ParseHarborWebhook takes pushes from.
const HarborPushArtifact = "PUSH_ARTIFACT"

// Harbor's webhook payload, only the fields read. It also carries
// occur_at, operator, event_data.repository's date_created, name,
// namespace and repo_type, and event_data.custom_attributes.
type harborPayload struct {
	Type      *string `json:"type"`
	EventData *struct {
		Resources *[]struct {
			Digest      string `json:"digest"`
			Tag         string `json:"tag"`
			ResourceURL string `json:"resource_url"`
		} `json:"resources"`
		Repository struct {
			Name         string `json:"name"`
			Namespace    string `json:"namespace"`
			RepoFullName string `json:"repo_full_name"`
		} `json:"repository"`
	} `json:"event_data"`
}

// ParseHarborWebhook decodes Harbor's webhook payload (its "Default"
// payload format). A PUSH_ARTIFACT event gives its resources as pushes,
// in order; other event types give none.
//
// A resource's resource_url is HOST/REPO:TAG or HOST/REPO@DIGEST, as
// Harbor's external URL reaches it; Push.Registry is its host.
// Push.Repository is event_data.repository.repo_full_name (else
// namespace/name, else the path of resource_url), Push.Digest the
// resource's digest (else the one in resource_url), Push.Tag its tag
// (else the one in resource_url). Harbor does not say the media type,
// so Push.MediaType is "": the artifact may also be a Helm chart or a
// signature, which the conversion finds out when it reads the manifest.
//
// A malformed body is an error naming the offset or the field: bad JSON,
// no type, or a PUSH_ARTIFACT without event_data.resources, or a resource
// without a resource_url or a valid digest.
func ParseHarborWebhook(body []byte) ([]Push, error) {
	var p harborPayload
	if err := unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("harbor webhook: %w", err)
	}
	if p.Type == nil || *p.Type == "" {
		return nil, errors.New("harbor webhook: type: missing")
	}
	if *p.Type != HarborPushArtifact {
		return nil, nil
	}
	if p.EventData == nil {
		return nil, errors.New("harbor webhook: event_data: missing")
	}
	if p.EventData.Resources == nil {
		return nil, errors.New("harbor webhook: event_data.resources: missing")
	}
	r := p.EventData.Repository
	repo := r.RepoFullName
	if repo == "" && r.Namespace != "" && r.Name != "" {
		repo = r.Namespace + "/" + r.Name
	}
	var pushes []Push
	for i, res := range *p.EventData.Resources {
		field := func(name string) string { return fmt.Sprintf("event_data.resources[%d].%s", i, name) }
		if res.ResourceURL == "" {
			return nil, fmt.Errorf("harbor webhook: %s: missing", field("resource_url"))
		}
		host, urlRepo, urlTag, urlDigest, err := splitResourceURL(res.ResourceURL)
		if err != nil {
			return nil, fmt.Errorf("harbor webhook: %s %q: %w", field("resource_url"), res.ResourceURL, err)
		}
		dgst := res.Digest
		if dgst == "" {
			dgst = urlDigest
		}
		if dgst == "" {
			return nil, fmt.Errorf("harbor webhook: %s: missing", field("digest"))
		}
		d, err := parseDigest(dgst)
		if err != nil {
			return nil, fmt.Errorf("harbor webhook: %s: %w", field("digest"), err)
		}
		push := Push{Registry: host, Repository: repo, Tag: res.Tag, Digest: d}
		if push.Repository == "" {
			push.Repository = urlRepo
		}
		if push.Tag == "" {
			push.Tag = urlTag
		}
		pushes = append(pushes, push)
	}
	return pushes, nil
}

// splitResourceURL splits Harbor's resource_url, HOST/REPO:TAG or
// HOST/REPO@DIGEST (a scheme, should one come, is dropped).
func splitResourceURL(s string) (host, repo, tag, dgst string, err error) {
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	host, rest, ok := strings.Cut(s, "/")
	if !ok || host == "" || rest == "" {
		return "", "", "", "", errors.New("not HOST/REPOSITORY:TAG or HOST/REPOSITORY@DIGEST")
	}
	if err := checkHost(host); err != nil {
		return "", "", "", "", err
	}
	if r, d, ok := strings.Cut(rest, "@"); ok {
		rest, dgst = r, d
	} else if i := strings.LastIndexByte(rest, ':'); i > strings.LastIndexByte(rest, '/') {
		rest, tag = rest[:i], rest[i+1:]
	}
	if rest == "" {
		return "", "", "", "", errors.New("no repository")
	}
	return host, rest, tag, dgst, nil
}

// checkHost refuses a registry host that could not be one: empty, or
// holding a character no host[:port] has (a path, a user, a query).
func checkHost(h string) error {
	if h == "" {
		return errors.New("empty host")
	}
	if strings.ContainsAny(h, "/@?#\\ \t\r\n") {
		return fmt.Errorf("%q is not a host[:port]", h)
	}
	return nil
}

// parseDigest returns s if it is a valid digest of a registered algorithm
// (sha256, sha384, sha512) with an encoded part of the right form.
func parseDigest(s string) (string, error) {
	if s == "" {
		return "", errors.New("missing")
	}
	d, err := digest.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%q: %w", s, err)
	}
	return d.String(), nil
}

// unmarshal decodes a JSON object into v, naming the offset of a syntax or
// type error and refusing data after the object.
func unmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return jsonError(err, int64(len(data)))
	}
	return checkTrailing(data, dec.InputOffset())
}

// checkTrailing refuses anything but white space in data after off.
func checkTrailing(data []byte, off int64) error {
	if rest := bytes.TrimLeft(data[off:], " \t\r\n"); len(rest) > 0 {
		return fmt.Errorf("offset %d: data after the JSON object", int64(len(data)-len(rest)))
	}
	return nil
}

// jsonError wraps a decoding error with the offset it happened at (end,
// the input's length, for an unexpected end).
func jsonError(err error, end int64) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("offset %d: %w", se.Offset, err)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Errorf("offset %d: %s: %w", te.Offset, te.Field, err)
		}
		return fmt.Errorf("offset %d: %w", te.Offset, err)
	case errors.Is(err, io.EOF):
		return errors.New("empty body")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("offset %d: %w", end, err)
	}
	return err
}
