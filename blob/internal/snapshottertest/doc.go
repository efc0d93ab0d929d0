// Package snapshottertest holds interoperability tests only: it reads Nydus
// blobs written by package blob (with inline bootstraps from package rafs)
// with nydus-snapshotter's own Go code (pkg/converter's UnpackEntry and
// TOCEntry, pkg/layout) and checks that every section comes back as written.
//
// It is a separate Go module so that nydus-snapshotter and its large
// dependency graph (containerd, Kubernetes client libraries, ...) stay out
// of the rafs module's go.mod and import graph. The root module's
// `go test ./...` does not descend into it; run it with
//
//	cd blob/internal/snapshottertest && go test ./...
package snapshottertest
