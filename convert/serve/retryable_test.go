package serve

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

func TestRetryableManifestBlobRace(t *testing.T) {
	req := func(method, path string) *http.Request {
		return &http.Request{Method: method, URL: &url.URL{Path: path}}
	}
	diag := func(c transport.ErrorCode) []transport.Diagnostic { return []transport.Diagnostic{{Code: c}} }
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"manifest PUT, blob unknown", &transport.Error{StatusCode: 400, Request: req("PUT", "/v2/r/manifests/v1"), Errors: diag(transport.ManifestBlobUnknownErrorCode)}, true},
		{"manifest PUT, digest invalid", fmt.Errorf("pushing: %w", &transport.Error{StatusCode: 400, Request: req("PUT", "/v2/r/manifests/v1"), Errors: diag(transport.DigestInvalidErrorCode)}), true},
		{"manifest PUT, manifest invalid", &transport.Error{StatusCode: 400, Request: req("PUT", "/v2/r/manifests/v1"), Errors: diag(transport.ManifestInvalidErrorCode)}, false},
		{"blob upload, digest invalid", &transport.Error{StatusCode: 400, Request: req("PUT", "/v2/r/blobs/uploads/x"), Errors: diag(transport.DigestInvalidErrorCode)}, false},
		{"manifest GET, blob unknown", &transport.Error{StatusCode: 400, Request: req("GET", "/v2/r/manifests/v1"), Errors: diag(transport.ManifestBlobUnknownErrorCode)}, false},
		{"503", &transport.Error{StatusCode: 503}, true},
		{"401", &transport.Error{StatusCode: 401}, false},
		{"other", errors.New("bad layer"), false},
	} {
		if got := Retryable(tc.err); got != tc.want {
			t.Errorf("%s: Retryable = %v, want %v", tc.name, got, tc.want)
		}
	}
}
