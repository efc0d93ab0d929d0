package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rafs-dev/rafs/erofs"
	"github.com/rafs-dev/rafs/rafs"
)

// e2eEnv is the environment variable that turns the skips of tests that
// need root into failures when it is "require" (as in
// convert/internal/mounttest).
const e2eEnv = "RAFS_E2E"

// requireRoot skips t unless it runs as root, failing it instead under
// RAFS_E2E=require.
func requireRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv(e2eEnv) == "require" {
		t.Fatalf("not running as root, which %s needs (and %s=require)", why, e2eEnv)
	}
	t.Skipf("not running as root, which %s needs", why)
}

// shortTempDir is a temporary directory with a short path, for unix
// sockets (whose paths are limited to 107 bytes, unix(7)).
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// outputRefs are the outputs of every command for the sample layer,
// written to regular files: what the other targets must receive.
type outputRefs struct {
	dir                            string
	erofs, blob, boot, mboot, tarb []byte
	cache                          []byte
	blobPath, id                   string
}

func makeOutputRefs(t *testing.T) *outputRefs {
	t.Helper()
	r := &outputRefs{dir: t.TempDir()}
	p := func(n string) string { return filepath.Join(r.dir, n) }
	for _, args := range [][]string{
		{"build", "-q", "-o", p("ref.erofs"), sample},
		{"build", "--type", "nydus", "-q", "-o", p("ref.blob"), "--bootstrap", p("ref.boot"), sample},
		{"merge", "-q", "-o", p("ref.mboot"), p("ref.blob")},
		{"unpack", "-q", "-o", p("ref.tar"), "--cache-dir", p("cache"), p("ref.blob")},
	} {
		if code, _, stderr := rafsCmd(t, args...); code != 0 {
			t.Fatalf("rafs %s: exit code %d: %s", strings.Join(args, " "), code, stderr)
		}
	}
	read := func(n string) []byte {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	r.erofs, r.blob, r.boot, r.mboot, r.tarb = read(p("ref.erofs")), read(p("ref.blob")), read(p("ref.boot")), read(p("ref.mboot")), read(p("ref.tar"))
	r.blobPath, r.id = p("ref.blob"), fileSHA256(t, p("ref.blob"))
	r.cache = read(filepath.Join(p("cache"), r.id+".blob.data"))
	return r
}

// outputKind is one output of one command.
type outputKind struct {
	name       string
	streamable bool
	// args returns the command writing the output to target, in dir.
	args func(r *outputRefs, dir, target string) []string
	// target returns the output's path in dir ("" for the test's own).
	target func(r *outputRefs, dir string) string
	want   func(r *outputRefs) []byte
}

var outputKinds = []outputKind{
	{
		name: "build",
		args: func(r *outputRefs, dir, target string) []string {
			return []string{"build", "-q", "-o", target, sample}
		},
		want: func(r *outputRefs) []byte { return r.erofs },
	},
	{
		name: "nydus-blob", streamable: true,
		args: func(r *outputRefs, dir, target string) []string {
			return []string{"build", "--type", "nydus", "-q", "-o", target, sample}
		},
		want: func(r *outputRefs) []byte { return r.blob },
	},
	{
		name: "nydus-bootstrap", streamable: true,
		args: func(r *outputRefs, dir, target string) []string {
			return []string{"build", "--type", "nydus", "-q", "-o", filepath.Join(dir, "b.blob"), "--bootstrap", target, sample}
		},
		want: func(r *outputRefs) []byte { return r.boot },
	},
	{
		name: "merge", streamable: true,
		args: func(r *outputRefs, dir, target string) []string {
			return []string{"merge", "-q", "-o", target, r.blobPath}
		},
		want: func(r *outputRefs) []byte { return r.mboot },
	},
	{
		name: "unpack", streamable: true,
		args: func(r *outputRefs, dir, target string) []string {
			return []string{"unpack", "-q", "-o", target, r.blobPath}
		},
		want: func(r *outputRefs) []byte { return r.tarb },
	},
	{
		name: "unpack-cache", streamable: true,
		args: func(r *outputRefs, dir, target string) []string {
			return []string{"unpack", "-q", "--cache-dir", dir, r.blobPath}
		},
		target: func(r *outputRefs, dir string) string { return filepath.Join(dir, r.id+".blob.data") },
		want:   func(r *outputRefs) []byte { return r.cache },
	},
}

// TestOutputTargets writes every output of every command to every kind
// of target: a directory and a socket are refused, a device or FIFO is
// written in place by the outputs that stream (and refused by an EROFS
// image), a symlink is followed.
func TestOutputTargets(t *testing.T) {
	refs := makeOutputRefs(t)
	base := shortTempDir(t)
	for ki, k := range outputKinds {
		for ti, target := range []string{"dir", "devnull", "fifo", "socket", "symlink", "procfd", "dangling"} {
			t.Run(k.name+"/"+target, func(t *testing.T) {
				dir := filepath.Join(base, fmt.Sprintf("%d%d", ki, ti))
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				out := filepath.Join(dir, "out")
				if k.target != nil {
					out = k.target(refs, dir)
				}
				wantCode := 0
				var received func() []byte // what a stream target got
				var check func()
				switch target {
				case "dir":
					wantCode = 2
					os.Mkdir(out, 0o755)
					check = func() {
						if ents, err := os.ReadDir(out); err != nil || len(ents) != 0 {
							t.Errorf("the directory: %v, %v", ents, err)
						}
					}
				case "devnull":
					if !k.streamable {
						wantCode = 2
					}
					if os.Geteuid() == 0 {
						// A regression would replace the system's
						// /dev/null: try a device of our own first.
						canary := filepath.Join(dir, "null")
						if err := unix.Mknod(canary, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
							t.Fatal(err)
						}
						target := canary
						if k.target != nil {
							target = k.target(refs, dir)
							os.Symlink(canary, target)
						}
						rafsCmd(t, k.args(refs, dir, target)...)
						if fi, err := os.Stat(canary); err != nil || fi.Mode()&fs.ModeCharDevice == 0 {
							t.Fatalf("a character device was replaced (%v %v): not trying %s", fi, err, os.DevNull)
						}
						os.Remove(canary)
						os.Remove(target)
					}
					if k.target == nil {
						out = os.DevNull
					} else if err := os.Symlink(os.DevNull, out); err != nil {
						t.Fatal(err)
					}
					check = func() {
						if fi, err := os.Stat(os.DevNull); err != nil || fi.Mode()&fs.ModeCharDevice == 0 {
							t.Fatalf("%s is no longer a character device: %v %v", os.DevNull, fi, err)
						}
					}
				case "fifo":
					if !k.streamable {
						wantCode = 2
					}
					if err := unix.Mkfifo(out, 0o644); err != nil {
						t.Fatal(err)
					}
					received = readFIFO(t, out)
				case "socket":
					wantCode = 2
					l, err := net.Listen("unix", out)
					if err != nil {
						t.Fatal(err)
					}
					defer l.Close()
					check = func() {
						if fi, err := os.Lstat(out); err != nil || fi.Mode()&fs.ModeSocket == 0 {
							t.Errorf("the socket was replaced: %v %v", fi, err)
						}
					}
				case "symlink":
					real := filepath.Join(dir, "real")
					if err := os.WriteFile(real, []byte("old"), 0o600); err != nil {
						t.Fatal(err)
					}
					if err := os.Symlink("real", out); err != nil {
						t.Fatal(err)
					}
					check = func() {
						checkLink(t, out, "real")
						fi, err := os.Stat(real)
						if err != nil || fi.Mode() != 0o600 {
							t.Errorf("the link's target: %v %v, want mode 0600 kept", fi, err)
						}
						if b, _ := os.ReadFile(real); !bytes.Equal(b, k.want(refs)) {
							t.Errorf("the link's target holds %d bytes, not the output", len(b))
						}
					}
				case "procfd":
					if !k.streamable {
						wantCode = 2
					}
					pr, pw, err := os.Pipe()
					if err != nil {
						t.Fatal(err)
					}
					defer pr.Close()
					link := fmt.Sprintf("/proc/self/fd/%d", pw.Fd())
					if err := os.Symlink(link, out); err != nil {
						t.Fatal(err)
					}
					done := make(chan []byte)
					go func() {
						b, _ := io.ReadAll(pr)
						done <- b
					}()
					received = func() []byte {
						pw.Close()
						return <-done
					}
					check = func() { checkLink(t, out, link) }
				case "dangling":
					os.Mkdir(filepath.Join(dir, "sub"), 0o755)
					if err := os.Symlink("sub/new", out); err != nil {
						t.Fatal(err)
					}
					check = func() {
						checkLink(t, out, "sub/new")
						if b, err := os.ReadFile(filepath.Join(dir, "sub/new")); err != nil || !bytes.Equal(b, k.want(refs)) {
							t.Errorf("the link's target: %d bytes, %v; want the output", len(b), err)
						}
					}
				}
				args := k.args(refs, dir, out)
				code, _, stderr := rafsCmd(t, args...)
				if code != wantCode {
					t.Errorf("rafs %s: exit code %d, want %d: %s", strings.Join(args, " "), code, wantCode, stderr)
				}
				if received != nil {
					got := received()
					if wantCode == 0 && !bytes.Equal(got, k.want(refs)) {
						t.Errorf("the target received %d bytes, want the %d of the output", len(got), len(k.want(refs)))
					}
					if wantCode != 0 && len(got) != 0 {
						t.Errorf("a refused target received %d bytes", len(got))
					}
				}
				if check != nil {
					check()
				}
				checkNoTemp(t, dir)
			})
		}
	}
}

// readFIFO reads everything written to the FIFO at path until the
// function it returns is called, and then returns it. The test holds the
// FIFO open for writing meanwhile (so that neither the reader nor a writer
// waits for the other to open it), and closes it in that function: the
// reader then ends when the writers it had are gone, even if none came or
// the FIFO was replaced.
func readFIFO(t *testing.T, path string) func() []byte {
	t.Helper()
	anchor, err := os.OpenFile(path, os.O_RDWR, 0) // does not block (fifo(7))
	if err != nil {
		t.Fatal(err)
	}
	r, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan []byte, 1)
	go func() {
		defer r.Close()
		b, _ := io.ReadAll(r)
		done <- b
	}()
	return func() []byte {
		anchor.Close()
		return <-done
	}
}

// checkLink checks that path is still a symlink to target.
func checkLink(t *testing.T, path, target string) {
	t.Helper()
	if got, err := os.Readlink(path); err != nil || got != target {
		t.Errorf("%s: link %q, %v; want it kept, pointing at %s", path, got, err, target)
	}
}

// checkNoTemp fails t if a temporary output file is left in dir.
func checkNoTemp(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", filepath.Join(dir, e.Name()))
		}
	}
}

// TestOutputsSameFile gives two outputs of a command the same file:
// by name, through a symlink, through a hard link. Nothing is written.
func TestOutputsSameFile(t *testing.T) {
	for _, how := range []string{"name", "symlink", "dangling", "hardlink"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			blob, boot := filepath.Join(dir, "x"), filepath.Join(dir, "x")
			switch how {
			case "symlink", "hardlink":
				os.WriteFile(blob, []byte("old"), 0o644)
				boot = filepath.Join(dir, "y")
				link := os.Symlink
				if how == "hardlink" {
					link = os.Link
				}
				if err := link(blob, boot); err != nil {
					t.Fatal(err)
				}
			case "dangling":
				boot = filepath.Join(dir, "y")
				os.Symlink("x", boot)
			}
			before := dirState(t, dir)
			code, _, stderr := rafsCmd(t, "build", "--type", "nydus", "-q", "-o", blob, "--bootstrap", boot, sample)
			if code != 2 || !strings.Contains(stderr, "same file") {
				t.Errorf("exit code %d, want 2 (%s)", code, stderr)
			}
			if after := dirState(t, dir); after != before {
				t.Errorf("the directory changed:\n%s\nwant\n%s", after, before)
			}
		})
	}
	// unpack: the tar and a cache file.
	dir := t.TempDir()
	blob := filepath.Join(dir, "l.blob")
	if code, _, stderr := rafsCmd(t, "build", "--type", "nydus", "-q", "-o", blob, sample); code != 0 {
		t.Fatal(stderr)
	}
	// The cache directory unpack makes is removed again.
	cache := filepath.Join(dir, "cache", "sub")
	tarPath := filepath.Join(cache, fileSHA256(t, blob)+".blob.data")
	if code, _, stderr := rafsCmd(t, "unpack", "-q", "-o", tarPath, "--cache-dir", cache, blob); code != 2 {
		t.Errorf("unpack -o onto a cache file: exit code %d, want 2 (%s)", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "cache")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused unpack left its cache directory: %v", err)
	}
	// -o may name a file in it.
	tarPath = filepath.Join(cache, "l.tar")
	if code, _, stderr := rafsCmd(t, "unpack", "-q", "-o", tarPath, "--cache-dir", cache, blob); code != 0 {
		t.Errorf("unpack -o into the cache directory: exit code %d (%s)", code, stderr)
	}
}

// dirState describes the files of dir: names, types, contents.
func dirState(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(&b, "%s %v", rel, fi.Mode())
		switch {
		case fi.Mode().IsRegular():
			data, _ := os.ReadFile(p)
			if len(data) <= 32 {
				fmt.Fprintf(&b, " %q", data)
			} else {
				fmt.Fprintf(&b, " %d bytes, sha256 %x", len(data), sha256.Sum256(data))
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %s", l)
		}
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestOutputModes checks the mode of outputs: a new file gets 0644 less
// the umask, a replaced file keeps its permission bits and, as root, its
// owner.
func TestOutputModes(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "new.erofs")
	old := syscall.Umask(0o027)
	code, _, stderr := rafsCmd(t, "build", "-q", "-o", out, sample)
	syscall.Umask(old)
	if code != 0 {
		t.Fatal(stderr)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode() != 0o640 {
		t.Errorf("new output: %v %v, want mode 0640 (0644 less umask 027)", fi, err)
	}
	if err := os.Chmod(out, 0o600|fs.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	root := os.Geteuid() == 0
	if root {
		if err := os.Chown(out, 1234, 5678); err != nil {
			t.Fatal(err)
		}
	}
	if code, _, stderr := rafsCmd(t, "build", "-q", "-o", out, sample); code != 0 {
		t.Fatal(stderr)
	}
	fi, err := os.Stat(out)
	if err != nil || fi.Mode() != 0o600|fs.ModeSetgid {
		t.Errorf("replaced output: %v %v, want mode 0600 and setgid kept", fi, err)
	}
	if st := fi.Sys().(*syscall.Stat_t); root && (st.Uid != 1234 || st.Gid != 5678) {
		t.Errorf("replaced output: owner %d:%d, want 1234:5678 kept", st.Uid, st.Gid)
	}
}

// TestNegativeFlags: negative counts and sizes are usage errors.
func TestNegativeFlags(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	for _, args := range [][]string{
		{"build", "-workers", "-1", "-o", out, sample},
		{"build", "-workers", "-1", "-z", "lz4", "-o", out, sample},
		{"build", "-C", "-4096", "-z", "lz4", "-o", out, sample},
		{"build", "-C", "6144", "-z", "lz4", "-o", out, sample},
		{"build", "-b", "512", "-C", "1048576", "-z", "lz4", "-o", out, sample},
		{"build", "-T", "-5", "-o", out, sample},
		{"build", "-b", "-4096", "-o", out, sample},
		{"build", "--type", "nydus", "-workers", "-5", "-o", out, sample},
		{"build", "--type", "nydus", "--chunk-size", "-4096", "-o", out, sample},
		{"convert", "--jobs", "-1", sampleSrc, "oci:" + out},
		{"convert", "--workers", "-1", sampleSrc, "oci:" + out},
		{"convert", "--retries", "-1", sampleSrc, "oci:" + out},
		{"convert", "--type", "erofs", "-z", "lz4", "-C", "-4096", sampleSrc, "oci:" + out},
		{"convert", "--chunk-size", "-1", sampleSrc, "oci:" + out},
		{"push", "--retries", "-1", sampleImageDir, "127.0.0.1:1/x"},
	} {
		if code, _, stderr := rafsCmd(t, args...); code != 2 {
			t.Errorf("%s: exit code %d, want 2 (%s)", strings.Join(args, " "), code, stderr)
		}
	}
	t.Setenv("SOURCE_DATE_EPOCH", "-1")
	if code, _, _ := rafsCmd(t, "build", "-o", out, sample); code != 2 {
		t.Errorf("SOURCE_DATE_EPOCH=-1: exit code %d, want 2", code)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("usage errors left %v", ents)
	}
}

// TestEmptyInput builds both output types from inputs without entries:
// valid, empty outputs and a warning.
func TestEmptyInput(t *testing.T) {
	dir := t.TempDir()
	zero := filepath.Join(dir, "zero.tar")
	eoa := filepath.Join(dir, "eoa.tar")
	os.WriteFile(zero, nil, 0o644)
	os.WriteFile(eoa, make([]byte, 1024), 0o644)
	for _, src := range []string{zero, eoa} {
		for _, typ := range []string{"erofs", "nydus"} {
			out := filepath.Join(dir, "out-"+typ)
			args := []string{"build", "--type", typ, "-o", out, src}
			if typ == "nydus" {
				args = append(args, "--bootstrap", out+".boot")
			}
			code, _, stderr := rafsCmd(t, args...)
			if code != 0 {
				t.Errorf("%s %s: exit code %d: %s", typ, filepath.Base(src), code, stderr)
				continue
			}
			if !strings.Contains(stderr, "warning: "+src+" has no entries") {
				t.Errorf("%s %s: stderr %q, want a warning", typ, filepath.Base(src), stderr)
			}
			if typ == "erofs" {
				img, _ := os.ReadFile(out)
				fsys, err := erofs.Open(bytes.NewReader(img))
				if err != nil {
					t.Errorf("%s: %v", filepath.Base(src), err)
				} else if ents, err := fs.ReadDir(fsys, "."); err != nil || len(ents) != 0 {
					t.Errorf("%s: root %v %v, want empty", filepath.Base(src), ents, err)
				}
			} else {
				n := 0
				readBoot(t, out+".boot").Walk(func(string, *rafs.Node) error { n++; return nil })
				if n != 1 {
					t.Errorf("%s: the bootstrap has %d entries, want the root only", filepath.Base(src), n)
				}
			}
			if code, _, stderr := rafsCmd(t, append(args, "-q")...); code != 0 || stderr != "" {
				t.Errorf("-q: exit code %d, stderr %q", code, stderr)
			}
		}
	}
	// The warning is for empty sources only.
	if _, stderr := mustRunBuild(t, "build", "-o", filepath.Join(dir, "s"), sample); strings.Contains(stderr, "no entries") {
		t.Errorf("the sample layer got a warning: %s", stderr)
	}
}

// mustRunBuild runs a build and fails t unless it exits 0.
func mustRunBuild(t *testing.T, args ...string) (string, string) {
	t.Helper()
	code, stdout, stderr := rafsCmd(t, args...)
	if code != 0 {
		t.Fatalf("rafs %s: exit code %d: %s", strings.Join(args, " "), code, stderr)
	}
	return stdout, stderr
}
