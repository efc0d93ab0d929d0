package erofs_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/rafs-dev/rafs/erofs"
)

// TestTimePolicy checks each WriterOptions.Times policy against the
// mtimes the reader gives back, and that fixed times make every inode
// compact (a smaller image than keeping the entries' times).
func TestTimePolicy(t *testing.T) {
	const bt = 1000
	items := []item{
		{e: erofs.Entry{Path: "dir", Mode: erofs.ModeDir | 0o755, ModTime: time.Unix(2000, 5)}},
		{e: erofs.Entry{Path: "dir/early", Mode: erofs.ModeRegular | 0o644, ModTime: time.Unix(500, 7)}, data: "early"},
		{e: erofs.Entry{Path: "dir/same", Mode: erofs.ModeRegular | 0o644, ModTime: time.Unix(bt, 9)}, data: "same"},
		{e: erofs.Entry{Path: "late", Mode: erofs.ModeSymlink | 0o777, ModTime: time.Unix(3000, 0), Linkname: "dir"}},
		{e: erofs.Entry{Path: "implied/file", Mode: erofs.ModeRegular | 0o600, ModTime: time.Unix(1500, 0)}, data: "x"},
	}
	type mt struct {
		sec  int64
		nsec uint32
	}
	for _, tc := range []struct {
		policy erofs.TimePolicy
		want   map[string]mt
	}{
		{erofs.TimesKeep, map[string]mt{"dir": {2000, 5}, "dir/early": {500, 7}, "dir/same": {bt, 9}, "late": {3000, 0}, "implied": {bt, 0}, "implied/file": {1500, 0}}},
		{erofs.TimesFixed, map[string]mt{"dir": {bt, 0}, "dir/early": {bt, 0}, "dir/same": {bt, 0}, "late": {bt, 0}, "implied": {bt, 0}, "implied/file": {bt, 0}}},
		{erofs.TimesClamp, map[string]mt{"dir": {bt, 0}, "dir/early": {500, 7}, "dir/same": {bt, 0}, "late": {bt, 0}, "implied": {bt, 0}, "implied/file": {bt, 0}}},
	} {
		img := build(t, &erofs.WriterOptions{BuildTime: bt, Times: tc.policy}, items)
		fsys, err := erofs.Open(bytes.NewReader(img))
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range tc.want {
			fi, err := fsys.Lstat(name)
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*erofs.Stat)
			if got := (mt{st.Mtime, st.MtimeNsec}); got != want {
				t.Errorf("policy %d: %s: mtime %v, want %v", tc.policy, name, got, want)
			}
		}
	}
	keep := build(t, &erofs.WriterOptions{BuildTime: bt}, items)
	fixed := build(t, &erofs.WriterOptions{BuildTime: bt, Times: erofs.TimesFixed}, items)
	if bytes.Equal(keep, fixed) {
		t.Error("fixed times gave the same image as kept ones")
	}
	if _, err := erofs.NewWriter(&memImage{}, &erofs.WriterOptions{Times: 7}); err == nil {
		t.Error("an unknown time policy was accepted")
	}
}
