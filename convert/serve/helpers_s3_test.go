package serve

import (
	"reflect"
	"strings"
	"testing"
)

// mustNoErr fails the test now when err is not nil.
func mustNoErr(t *testing.T, err error, ctx ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%v: %v", ctx, err)
	}
}

// wantEqual reports got != want.
func wantEqual(t *testing.T, got, want any, ctx ...any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%v:\n got %#v\nwant %#v", ctx, got, want)
	}
}

// wantErrContains reports an err that is nil or does not contain sub.
func wantErrContains(t *testing.T, err error, sub string, ctx ...any) bool {
	t.Helper()
	if err == nil {
		t.Errorf("%v: no error, want one containing %q", ctx, sub)
		return false
	}
	if !strings.Contains(err.Error(), sub) {
		t.Errorf("%v: error %q, want one containing %q", ctx, err, sub)
		return false
	}
	return true
}
