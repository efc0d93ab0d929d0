package image

import (
	"fmt"
	"io"
	"reflect"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rafs-dev/rafs/erofs"
)

// erofsKey returns the layer cache key of an EROFS conversion with o.
func erofsKey(o Options) string {
	o.Type = TypeEROFS
	src := &sourceImage{diffIDs: []v1.Hash{{Algorithm: "sha256", Hex: "00"}}}
	return (&Converter{opts: o}).cacheKey(src, 0)
}

// TestCacheKeyCompression: every compression option that changes the
// image changes the layer cache key; the worker count does not.
func TestCacheKeyCompression(t *testing.T) {
	base := erofs.Compression{Algorithm: "lz4hc", Level: 9, PclusterSize: 65536}
	seen := map[string]string{}
	for _, c := range []struct {
		name   string
		change func(*erofs.Compression)
	}{
		{"base", func(*erofs.Compression) {}},
		{"zstd", func(c *erofs.Compression) { c.Algorithm, c.Level = "zstd", 3 }},
		{"level", func(c *erofs.Compression) { c.Level = 12 }},
		{"-C", func(c *erofs.Compression) { c.PclusterSize = 1 << 20 }},
		{"ztailpacking", func(c *erofs.Compression) { c.Ztailpacking = true }},
		{"legacy-compress", func(c *erofs.Compression) { c.FullIndexes = true }},
		{"fragments", func(c *erofs.Compression) { c.Fragments = true }},
		{"all-fragments", func(c *erofs.Compression) { c.Fragments, c.AllFragments = true, true }},
		{"fragments=16384", func(c *erofs.Compression) { c.Fragments, c.PackedPclusterSize = true, 16384 }},
		{"fragments,fragdedupe=inode", func(c *erofs.Compression) { c.Fragments, c.FragDedupe = true, erofs.FragDedupeInode }},
		{"fragments,fragdedupe=off", func(c *erofs.Compression) { c.Fragments, c.FragDedupe = true, erofs.FragDedupeOff }},
		{"dedupe", func(c *erofs.Compression) { c.Dedupe = true }},
		{"fragments,dedupe", func(c *erofs.Compression) { c.Fragments, c.Dedupe = true, true }},
	} {
		z := base
		c.change(&z)
		var o Options
		o.EROFS.Image.Compression = &z
		k := erofsKey(o)
		if prev, ok := seen[k]; ok {
			t.Errorf("%s has the key of %s: %s", c.name, prev, k)
		}
		seen[k] = c.name
		z.Workers = 7
		if k2 := erofsKey(o); k2 != k {
			t.Errorf("%s: Workers changes the key: %s, %s", c.name, k, k2)
		}
	}
	if _, ok := seen[erofsKey(Options{})]; ok {
		t.Error("an uncompressed conversion has a compressed one's key")
	}
}

// TestCacheKeyWriterOptions sets each field of erofs.WriterOptions in
// turn and checks that the layer cache key changes, so that a field added
// to the writer's options cannot be left out of it. The fields the
// converter sets itself, or that change no byte, are named here.
func TestCacheKeyWriterOptions(t *testing.T) {
	notInKey := map[string]string{
		"UUID":            "derived from each layer's diff ID by the converter",
		"WhiteoutOrigin":  "set from EROFSOptions.Whiteouts, which is in the key",
		"TempDir":         "changes no byte",
		"Devices":         "a tar index sets its own (EROFSTarIndex is in the key); NewConverter refuses others",
		"DevicesAppended": "a tar index sets it (EROFSTarIndex is in the key); NewConverter refuses it",
		"BlobDev":         "a layer is one blob: NewConverter refuses it",
	}
	base := erofsKey(Options{})
	typ := reflect.TypeFor[erofs.WriterOptions]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !f.IsExported() {
			continue
		}
		var o Options
		v := reflect.ValueOf(&o.EROFS.Image).Elem().Field(i)
		switch f.Type.Kind() {
		case reflect.Bool:
			v.SetBool(true)
		case reflect.Int, reflect.Int64:
			v.SetInt(1024)
		case reflect.String:
			v.SetString("x")
		case reflect.Pointer:
			v.Set(reflect.New(f.Type.Elem()))
			if c, ok := v.Interface().(*erofs.Compression); ok {
				c.Algorithm = "lz4"
			}
		case reflect.Interface:
			if f.Type != reflect.TypeFor[io.Writer]() {
				t.Fatalf("field %s of type %s: teach the test a value", f.Name, f.Type)
			}
			v.Set(reflect.ValueOf(io.Discard))
		case reflect.Slice:
			if d, ok := v.Addr().Interface().(*[]erofs.SuperblockDevice); ok {
				*d = []erofs.SuperblockDevice{{Tag: "x"}}
				break
			}
			t.Fatalf("field %s of type %s: teach the test a value", f.Name, f.Type)
		default:
			t.Fatalf("field %s of kind %s: teach the test a value", f.Name, f.Type.Kind())
		}
		k := erofsKey(o)
		if why, ok := notInKey[f.Name]; ok {
			if k != base {
				t.Errorf("%s changes the key (%s): %s", f.Name, why, k)
			}
			continue
		}
		if k == base {
			t.Errorf("%s=%v leaves the key as it is: %s", f.Name, fmt.Sprint(v.Interface()), k)
		}
	}
}
