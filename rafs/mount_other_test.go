//go:build !linux

package rafs

import "testing"

// checkMergedMount needs Linux; elsewhere the merged bootstrap is only
// checked by Read.
func checkMergedMount(t *testing.T, m *Bootstrap, img []byte, data map[string][]byte) {}
