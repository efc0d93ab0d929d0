//go:build !unix

package main

import "os"

// maxRSS returns 0: the peak resident set size is not available here.
func maxRSS(ps *os.ProcessState) int64 { return 0 }
