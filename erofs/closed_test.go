package erofs

import (
	"errors"
	"testing"
)

// TestErrClosed checks that every method of a closed Writer that can
// fail says so with ErrClosed, whether Close succeeded or not.
func TestErrClosed(t *testing.T) {
	for _, failed := range []bool{false, true} {
		w, err := NewWriter(nopWriterAt{}, &WriterOptions{Devices: []SuperblockDevice{{Blocks: 8}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Add(&Entry{Path: "f", Mode: ModeRegular | 0o644}, nil); err != nil {
			t.Fatal(err)
		}
		if failed {
			w.err = errors.New("boom")
		}
		w.Close()
		calls := map[string]error{
			"Add":             w.Add(&Entry{Path: "g", Mode: ModeRegular | 0o644}, nil),
			"AddChunks":       w.AddChunks(&Entry{Path: "g", Mode: ModeRegular | 0o644}, ChunkedFile{}),
			"Link":            w.Link("h", "f"),
			"Remove":          w.Remove("f"),
			"MkdirAll":        w.MkdirAll("d"),
			"SetXattr":        w.SetXattr("d", "user.x", "y"),
			"SetDeviceBlocks": w.SetDeviceBlocks(1, 9),
		}
		for name, err := range calls {
			if !errors.Is(err, ErrClosed) {
				t.Errorf("failed=%t: %s after Close: %v, want ErrClosed", failed, name, err)
			}
		}
	}
}
