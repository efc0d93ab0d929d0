package redisqueue

import (
	"testing"

	"github.com/rafs-dev/rafs/convert/serve/queue"
)

// FuzzDecode feeds decodeMap arbitrary hash contents: it returns a task
// or an error, never panics, and a task it returns has a valid status.
func FuzzDecode(f *testing.F) {
	f.Add(`{"source":"r/x@sha256:0","targets":["r/x:v1-nydus"],"types":["nydus"]}`, "RUNNING", "2", "10", "20", "1764820000000000000", "", "w")
	f.Add(`{`, "PENDING", "0", "0", "0", "", "", "")
	f.Add(`null`, "DONE", "x", "-1", "99999999999999999999", "1e3", "-5", "")
	f.Fuzz(func(t *testing.T, spec, status, attempts, bytesIn, bytesOut, created, lease, owner string) {
		h := map[string]string{
			"spec": spec, "status": status, "attempts": attempts, "bytesIn": bytesIn, "bytesOut": bytesOut,
			"created": created, "leaseUntil": lease, "owner": owner,
		}
		tk, err := decodeMap("id", h)
		if err != nil {
			return
		}
		if !tk.Status.Valid() || tk.ID != "id" || tk.Status != queue.Status(status) {
			t.Fatalf("decoded %+v from %v", tk, h)
		}
	})
}
