package blob

import (
	"errors"
	"io"
	"testing"
)

// TestErrClosed checks that Add, Flush and Finish say ErrClosed after
// Close and after Finish.
func TestErrClosed(t *testing.T) {
	for _, end := range []string{"Close", "Finish"} {
		w, err := NewWriter(io.Discard, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Add([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if end == "Close" {
			w.Close()
		} else if _, err := w.Finish(nil); err != nil {
			t.Fatal(err)
		}
		_, addErr := w.Add([]byte("y"))
		_, finishErr := w.Finish(nil)
		for name, err := range map[string]error{"Add": addErr, "Flush": w.Flush(), "Finish": finishErr} {
			if !errors.Is(err, ErrClosed) {
				t.Errorf("%s after %s: %v, want ErrClosed", name, end, err)
			}
		}
	}
}
