package serve

// TEMPORARY: the payload types and parsers of the issue 16 contract
// (s3 owns them in event.go). This file only lets the server build and
// be tested before s3's work is on main; it is deleted when it is.

import (
	"encoding/json"
	"errors"
	"strings"
)

// Push is one image manifest or index pushed to a registry.
type Push struct {
	Registry   string `json:"registry"`
	Repository string `json:"repository"`
	Tag        string `json:"tag,omitempty"`
	Digest     string `json:"digest"`
	MediaType  string `json:"mediaType,omitempty"`
}

// Ref returns REGISTRY/REPO@DIGEST.
func (p Push) Ref() string { return p.Registry + "/" + p.Repository + "@" + p.Digest }

// ParseNotifications decodes a distribution notification envelope.
func ParseNotifications(body []byte) ([]Push, error) {
	var env struct {
		Events []struct {
			Action string `json:"action"`
			Target struct {
				MediaType  string `json:"mediaType"`
				Digest     string `json:"digest"`
				Repository string `json:"repository"`
				Tag        string `json:"tag"`
			} `json:"target"`
			Request struct {
				Host string `json:"host"`
			} `json:"request"`
		} `json:"events"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, err
	}
	if env.Events == nil {
		return nil, errors.New("no events")
	}
	var out []Push
	for _, e := range env.Events {
		if e.Action != "push" || !strings.Contains(e.Target.MediaType, "manifest") && !strings.Contains(e.Target.MediaType, "index") {
			continue
		}
		out = append(out, Push{Registry: e.Request.Host, Repository: e.Target.Repository, Tag: e.Target.Tag, Digest: e.Target.Digest, MediaType: e.Target.MediaType})
	}
	return out, nil
}

// ParseHarborWebhook decodes Harbor's webhook payload.
func ParseHarborWebhook(body []byte) ([]Push, error) {
	var p struct {
		Type      string `json:"type"`
		EventData struct {
			Resources []struct {
				Digest      string `json:"digest"`
				Tag         string `json:"tag"`
				ResourceURL string `json:"resource_url"`
			} `json:"resources"`
			Repository struct {
				RepoFullName string `json:"repo_full_name"`
			} `json:"repository"`
		} `json:"event_data"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, err
	}
	if p.Type != "PUSH_ARTIFACT" {
		return nil, nil
	}
	var out []Push
	for _, r := range p.EventData.Resources {
		host, _, _ := strings.Cut(r.ResourceURL, "/")
		out = append(out, Push{Registry: host, Repository: p.EventData.Repository.RepoFullName, Tag: r.Tag, Digest: r.Digest})
	}
	return out, nil
}
