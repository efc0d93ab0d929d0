module github.com/rafs-dev/rafs/erofs/verity/internal/dmveritytest

go 1.26.0

replace github.com/rafs-dev/rafs => ../../../..

require (
	github.com/containerd/go-dmverity v0.1.0
	github.com/rafs-dev/rafs v0.0.0-00010101000000-000000000000
)

require (
	github.com/google/uuid v1.6.0 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/klauspost/cpuid/v2 v2.4.0 // indirect
	github.com/zeebo/blake3 v0.2.4 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
