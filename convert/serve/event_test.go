package serve

import (
	"strings"
	"testing"
)

const (
	dgstA = "sha256:2cbf9fc6d2a5ad2b6ac3d9a2f9e96e1b6cfa3f3f0c2b6a2c31a0d3d1a8a9d2b1"
	dgstB = "sha256:9b1f1c7e84ac4fd4bb5e6e6c1b4c3e5d04bd0a3a8e2b2bbdc0e7b5e4c3a2f1d0"
)

// envelope28 is an envelope as distribution 2.8 sends it when an image
// is pushed by tag: the layer and config blob pushes, then the manifest;
// with a pull, a delete and a schema 1 push among them.
const envelope28 = `{
  "events": [
    {
      "id": "3c1e3f07-1b2e-4d8e-9a4a-0b7f0f8c2f11",
      "timestamp": "2026-12-04T03:00:00.123456789Z",
      "action": "push",
      "target": {
        "mediaType": "application/octet-stream",
        "size": 31357624,
        "digest": "` + dgstB + `",
        "length": 31357624,
        "repository": "library/debian",
        "url": "http://localhost:5000/v2/library/debian/blobs/` + dgstB + `"
      },
      "request": {"id": "a1", "addr": "127.0.0.1:40000", "host": "localhost:5000", "method": "PUT", "useragent": "skopeo/1.9.3"},
      "actor": {},
      "source": {"addr": "host:5000", "instanceID": "d5a5f4b0"}
    },
    {
      "id": "4d2f",
      "timestamp": "2026-12-04T03:00:01Z",
      "action": "push",
      "target": {
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "size": 529,
        "digest": "` + dgstA + `",
        "length": 529,
        "repository": "library/debian",
        "url": "http://localhost:5000/v2/library/debian/manifests/` + dgstA + `",
        "tag": "bookworm"
      },
      "request": {"id": "a2", "addr": "127.0.0.1:40000", "host": "localhost:5000", "method": "PUT", "useragent": "skopeo/1.9.3"},
      "actor": {"name": "ci"},
      "source": {"addr": "host:5000", "instanceID": "d5a5f4b0"}
    },
    {
      "id": "5e30",
      "action": "pull",
      "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "` + dgstA + `", "repository": "library/debian", "tag": "bookworm"},
      "request": {"host": "localhost:5000", "method": "GET"}
    },
    {
      "id": "6f41",
      "action": "delete",
      "target": {"digest": "` + dgstA + `", "repository": "library/debian"},
      "request": {"host": "localhost:5000", "method": "DELETE"}
    },
    {
      "id": "7052",
      "action": "push",
      "target": {"mediaType": "application/vnd.docker.distribution.manifest.v1+prettyjws", "digest": "` + dgstA + `", "repository": "old/thing", "tag": "v0"},
      "request": {"host": "localhost:5000", "method": "PUT"}
    },
    {
      "id": "8163",
      "action": "push",
      "target": {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "` + dgstB + `", "repository": "team/app/web", "tag": "v1",
                 "url": "https://registry.example.com:8443/v2/team/app/web/manifests/v1"},
      "request": {"method": "PUT"},
      "unknown": {"fields": [1, 2, 3]}
    },
    {
      "id": "9274",
      "action": "push",
      "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json; charset=utf-8", "digest": "` + dgstA + `", "repository": "team/app/web"},
      "request": {"host": "registry.example.com:8443", "method": "PUT"}
    }
  ]
}`

func TestParseNotifications(t *testing.T) {
	pushes, err := ParseNotifications([]byte(envelope28))
	mustNoErr(t, err)
	wantEqual(t, pushes, []Push{
		{Registry: "localhost:5000", Repository: "library/debian", Tag: "bookworm", Digest: dgstA, MediaType: "application/vnd.docker.distribution.manifest.v2+json"},
		{Registry: "registry.example.com:8443", Repository: "team/app/web", Tag: "v1", Digest: dgstB, MediaType: "application/vnd.oci.image.index.v1+json"},
		{Registry: "registry.example.com:8443", Repository: "team/app/web", Digest: dgstA, MediaType: "application/vnd.oci.image.manifest.v1+json"},
	})
	wantEqual(t, pushes[0].Ref(), "localhost:5000/library/debian@"+dgstA)

	pushes, err = ParseNotifications([]byte(`{"events":[]}`))
	mustNoErr(t, err)
	wantEqual(t, len(pushes), 0)
}

func TestParseNotificationsMediaTypes(t *testing.T) {
	for mt, want := range map[string]bool{
		"application/vnd.docker.distribution.manifest.v2+json":       true,
		"application/vnd.docker.distribution.manifest.list.v2+json":  true,
		"application/vnd.oci.image.manifest.v1+json":                 true,
		"application/vnd.oci.image.index.v1+json":                    true,
		"Application/VND.OCI.Image.Index.v1+json ; x=y":              true,
		"application/vnd.docker.distribution.manifest.v1+json":       false,
		"application/vnd.docker.distribution.manifest.v1+prettyjws":  false,
		"application/vnd.docker.container.image.v1+json":             false,
		"application/vnd.docker.image.rootfs.diff.tar.gzip":          false,
		"application/vnd.oci.image.layer.v1.tar+gzip":                false,
		"application/vnd.oci.image.config.v1+json":                   false,
		"application/octet-stream":                                   false,
		"application/vnd.docker.distribution.manifest.v2+jsonx":      false,
		"application/vnd.docker.distribution.manifest.list.v2+json/": false,
	} {
		body := `{"events":[{"action":"push","target":{"mediaType":"` + mt + `","digest":"` + dgstA + `","repository":"r","tag":"t"},"request":{"host":"h"}}]}`
		pushes, err := ParseNotifications([]byte(body))
		mustNoErr(t, err, mt)
		wantEqual(t, len(pushes) == 1, want, mt)
	}
}

func TestParseNotificationsErrors(t *testing.T) {
	ev := func(s string) string { return `{"events":[{"action":"pull"},` + s + `]}` }
	for body, want := range map[string]string{
		``:                      "empty body",
		`{"events":`:            "offset 10: unexpected EOF",
		`{"events":[}`:          "offset 12: invalid character '}'",
		`[]`:                    "offset 1: json: cannot unmarshal array",
		`{"events":{}}`:         "events: json: cannot unmarshal object",
		`{}`:                    "events: missing",
		`null`:                  "events: missing",
		`{"events":[]} {}`:      "data after the JSON object",
		`{"events":[]}]`:        "data after the JSON object",
		`{"events":[{}]}`:       "events[0].action: missing",
		`{"events":[1]}`:        "cannot unmarshal number",
		ev(`{"action":"push"}`): "events[1].target.mediaType: missing",
		ev(`{"action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + dgstA + `"},"request":{"host":"h"}}`):                    "events[1].target.repository: missing",
		ev(`{"action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"r"},"request":{"host":"h"}}`):                            "events[1].target.digest: missing",
		ev(`{"action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"r","digest":"sha256:abc"},"request":{"host":"h"}}`):      "events[1].target.digest: \"sha256:abc\": invalid checksum digest length",
		ev(`{"action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"r","digest":"md5:abc"},"request":{"host":"h"}}`):         "events[1].target.digest: \"md5:abc\": unsupported digest algorithm",
		ev(`{"action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"r","digest":"` + dgstA + `"}}`):                          "events[1].request.host: missing",
		ev(`{"action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"r","digest":"` + dgstA + `"},"request":{"host":"a/b"}}`): "events[1].request.host: \"a/b\" is not a host",
		ev(`{"action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"r","digest":"` + dgstA + `","url":"%"}}`):                "events[1].target.url: parse",
		ev(`{"action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"r","digest":"` + dgstA + `"},"request":{"host":5}}`):     "offset",
	} {
		_, err := ParseNotifications([]byte(body))
		if wantErrContains(t, err, want, body) && !strings.HasPrefix(err.Error(), "notification envelope: ") {
			t.Errorf("%s: error %q does not say what it is about", body, err)
		}
	}
}

// harborPush is Harbor 2's PUSH_ARTIFACT payload for an image pushed by
// tag.
const harborPush = `{
  "type": "PUSH_ARTIFACT",
  "occur_at": 1764817200,
  "operator": "admin",
  "event_data": {
    "resources": [
      {"digest": "` + dgstA + `", "tag": "v1", "resource_url": "harbor.example.com/library/nginx:v1"},
      {"digest": "` + dgstB + `", "tag": "", "resource_url": "harbor.example.com/library/nginx@` + dgstB + `"}
    ],
    "repository": {"date_created": 1764817100, "name": "nginx", "namespace": "library", "repo_full_name": "library/nginx", "repo_type": "private"},
    "custom_attributes": {"k": "v"}
  }
}`

func TestParseHarborWebhook(t *testing.T) {
	pushes, err := ParseHarborWebhook([]byte(harborPush))
	mustNoErr(t, err)
	wantEqual(t, pushes, []Push{
		{Registry: "harbor.example.com", Repository: "library/nginx", Tag: "v1", Digest: dgstA},
		{Registry: "harbor.example.com", Repository: "library/nginx", Digest: dgstB},
	})

	// Without the repository record and digests, resource_url says it all.
	pushes, err = ParseHarborWebhook([]byte(`{"type":"PUSH_ARTIFACT","event_data":{"resources":[
		{"resource_url":"localhost:8080/proj/sub/app@` + dgstA + `"},
		{"resource_url":"https://localhost:8080/proj/app:v2","digest":"` + dgstB + `"}]}}`))
	mustNoErr(t, err)
	wantEqual(t, pushes, []Push{
		{Registry: "localhost:8080", Repository: "proj/sub/app", Digest: dgstA},
		{Registry: "localhost:8080", Repository: "proj/app", Tag: "v2", Digest: dgstB},
	})

	// namespace/name when repo_full_name is absent.
	pushes, err = ParseHarborWebhook([]byte(`{"type":"PUSH_ARTIFACT","event_data":{"resources":[
		{"resource_url":"h:1/x/y:t","digest":"` + dgstA + `","tag":"t"}],"repository":{"name":"y","namespace":"x"}}}`))
	mustNoErr(t, err)
	wantEqual(t, pushes, []Push{{Registry: "h:1", Repository: "x/y", Tag: "t", Digest: dgstA}})

	for _, typ := range []string{"PULL_ARTIFACT", "DELETE_ARTIFACT", "SCANNING_COMPLETED", "QUOTA_EXCEED"} {
		pushes, err := ParseHarborWebhook([]byte(`{"type":"` + typ + `","event_data":{"resources":[{"resource_url":"x"}]}}`))
		mustNoErr(t, err, typ)
		wantEqual(t, len(pushes), 0, typ)
	}
}

func TestParseHarborWebhookErrors(t *testing.T) {
	res := func(s string) string {
		return `{"type":"PUSH_ARTIFACT","event_data":{"resources":[{"resource_url":"h/r:t","digest":"` + dgstA + `"},` + s + `]}}`
	}
	for body, want := range map[string]string{
		``:                         "empty body",
		`{"type":`:                 "offset 8: unexpected EOF",
		`{}`:                       "type: missing",
		`{"type":""}`:              "type: missing",
		`{"type":1}`:               "offset 9: type: json: cannot unmarshal number",
		`{"type":"PUSH_ARTIFACT"}`: "event_data: missing",
		`{"type":"PUSH_ARTIFACT","event_data":{}}`: "event_data.resources: missing",
		`{"type":"PUSH_ARTIFACT","event_data":[]}`: "cannot unmarshal array",
		res(`{}`):                       "event_data.resources[1].resource_url: missing",
		res(`{"resource_url":"h/r:t"}`): "event_data.resources[1].digest: missing",
		res(`{"resource_url":"h/r:t","digest":"x"}`):               `event_data.resources[1].digest: "x": invalid checksum digest format`,
		res(`{"resource_url":"h/r@sha256:12"}`):                    `event_data.resources[1].digest: "sha256:12": invalid checksum digest length`,
		res(`{"resource_url":"nohost","digest":"` + dgstA + `"}`):  `event_data.resources[1].resource_url "nohost": not HOST/REPOSITORY`,
		res(`{"resource_url":"h/","digest":"` + dgstA + `"}`):      `event_data.resources[1].resource_url "h/": not HOST/REPOSITORY`,
		res(`{"resource_url":"h/:t","digest":"` + dgstA + `"}`):    `event_data.resources[1].resource_url "h/:t": no repository`,
		res(`{"resource_url":"u@h/r:t","digest":"` + dgstA + `"}`): `is not a host`,
	} {
		_, err := ParseHarborWebhook([]byte(body))
		if wantErrContains(t, err, want, body) && !strings.HasPrefix(err.Error(), "harbor webhook: ") {
			t.Errorf("%s: error %q does not say what it is about", body, err)
		}
	}
}
