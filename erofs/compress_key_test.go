package erofs_test

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/rafs-dev/rafs/erofs"
)

// TestCompressionKey sets each exported field of erofs.Compression in
// turn and checks that the key changes, so that a new field cannot be
// left out of it; Workers, which changes no byte of the image, must not
// change it.
func TestCompressionKey(t *testing.T) {
	base := erofs.Compression{Algorithm: "lz4hc", Level: 9}
	// Keys made before the fragment and dedupe options stay as they were.
	if k := base.Key(); k != "lz4hc/9/0/false/false" {
		t.Errorf("base key %q", k)
	}
	if k := (&erofs.Compression{Algorithm: "zstd", Level: 3, PclusterSize: 65536, Ztailpacking: true}).Key(); k != "zstd/3/65536/true/false" {
		t.Errorf("zstd key %q", k)
	}
	keys := map[string]string{base.Key(): "base"}
	typ := reflect.TypeFor[erofs.Compression]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !f.IsExported() {
			continue
		}
		for _, v := range otherValues(t, f) {
			c := base
			reflect.ValueOf(&c).Elem().Field(i).Set(v)
			k := c.Key()
			if f.Name == "Workers" {
				if k != base.Key() {
					t.Errorf("Workers=%v changes the key to %q", v, k)
				}
				continue
			}
			what := fmt.Sprintf("%s=%v", f.Name, v.Interface())
			if prev, ok := keys[k]; ok {
				t.Errorf("%s gives key %q, as %s does", what, k, prev)
			}
			keys[k] = what
		}
	}
}

// otherValues returns values for field f that differ from the base's
// and from each other.
func otherValues(t *testing.T, f reflect.StructField) []reflect.Value {
	var vals []reflect.Value
	switch f.Type.Kind() {
	case reflect.Bool:
		vals = append(vals, reflect.ValueOf(true))
	case reflect.String:
		vals = append(vals, reflect.ValueOf("lzma"))
	case reflect.Int, reflect.Uint8:
		for _, n := range []int64{1, 2, 65536} {
			if f.Type.Kind() == reflect.Uint8 && n > 255 {
				continue
			}
			v := reflect.New(f.Type).Elem()
			if v.CanInt() {
				v.SetInt(n)
			} else {
				v.SetUint(uint64(n))
			}
			vals = append(vals, v)
		}
	default:
		t.Fatalf("field %s of kind %s: teach the test its values", f.Name, f.Type.Kind())
	}
	out := make([]reflect.Value, len(vals))
	for i, v := range vals {
		out[i] = v.Convert(f.Type)
	}
	return out
}
