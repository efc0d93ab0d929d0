package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Outputs. Every file a command writes (build's image or blob and
// bootstrap, merge's bootstrap, unpack's tar and cache files, a layout's
// index.json) goes through an outputSet, which checks each target before
// any work and commits all of a command's outputs, or none:
//
//   - A directory or a socket is refused (a usage error).
//   - A symlink is followed: the file it points to is written, the link
//     stays. A dangling symlink creates the file it points to, as cp and a
//     shell redirection do.
//   - A character device or a FIFO is opened and written in place where
//     the output is written front to back (unpack's tar, a Nydus blob, a
//     bootstrap); an EROFS image, written out of order, refuses them. A
//     block device is written in place.
//   - A regular file, or nothing, is replaced atomically: the output goes
//     to a temporary file ".NAME.tmp-N" in the same directory, renamed over
//     NAME at the commit. The new file keeps the permission bits of the
//     file it replaces (and its owner, when running as root), as an
//     editor's atomic save does; a new file gets 0644 less the umask.
//   - Two outputs naming the same file are refused (a usage error).
//
// Commit puts the temporary files in place in turn. Each but the last that
// replaces a file is exchanged with it (renameat2 RENAME_EXCHANGE), so the
// old file stays at the temporary name until every output is in place:
// if a later one fails, the earlier ones are exchanged back. Outputs
// written in place cannot be taken back.

// usageError is an error in how the command was called: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usageError.
func usagef(format string, a ...any) error {
	return usageError{fmt.Errorf(format, a...)}
}

// exitStatus returns the exit status for a command's error: 2 for a usage
// error, else 1.
func exitStatus(err error) int {
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

// commitHook, when set (by tests), runs in commit after every output is
// complete and before the first is put in place.
var commitHook func()

// outputSet is the set of outputs of one command.
type outputSet struct {
	g    *guard
	outs []*output
	dirs []string // made by mkdirAll, parents first
	done bool     // committed or aborted

	unregister func() // of the guard cleanup removing dirs
}

// output is one output file.
type output struct {
	name    string      // as given
	path    string      // the file replaced or created: name, symlinks resolved
	fi      os.FileInfo // of the existing target, nil if there is none
	inPlace bool        // a device or FIFO written directly
	f       *os.File    // the temporary file, or the device or FIFO
	tmp     string      // the temporary file's name

	// Commit state.
	exchanged bool   // the old file is now at tmp
	created   bool   // path did not exist before the commit
	backup    string // a hard link to the old file, when it could not be exchanged
	keepTmp   bool   // tmp holds the old file: never remove it
}

// newOutputs returns an empty output set whose temporary files g removes
// on a signal.
func newOutputs(g *guard) *outputSet {
	return &outputSet{g: g}
}

// add checks the target name and returns the file to write the output to:
// a temporary file next to it, or the device or FIFO itself when
// streamable (the output is written front to back, never seeking). A
// target that cannot be written is a usageError.
func (s *outputSet) add(name string, streamable bool) (*os.File, error) {
	if name == "" {
		return nil, usagef("empty output path")
	}
	o := &output{name: name}
	fi, err := os.Stat(name)
	switch {
	case err == nil:
		o.fi = fi
		switch m := fi.Mode(); {
		case m.IsDir():
			return nil, usagef("%s is a directory", name)
		case m&fs.ModeSocket != 0:
			return nil, usagef("%s is a socket, which cannot be opened for writing", name)
		case m.IsRegular():
			if o.path, err = filepath.EvalSymlinks(name); err == nil {
				o.path, err = filepath.Abs(o.path)
			}
			if err != nil {
				return nil, fmt.Errorf("resolving %s: %w", name, err)
			}
			if rfi, err := os.Stat(o.path); err != nil || !os.SameFile(fi, rfi) {
				return nil, fmt.Errorf("%s: cannot find the file it names (resolved to %s)", name, o.path)
			}
		case m&fs.ModeDevice != 0 && m&fs.ModeCharDevice == 0:
			o.inPlace = true // a block device: seekable
		case m&(fs.ModeCharDevice|fs.ModeNamedPipe) != 0:
			if !streamable {
				return nil, usagef("%s is a %s, and an EROFS image needs a regular file or a block device (it is not written front to back)", name, kindOf(m))
			}
			o.inPlace = true
		default:
			return nil, usagef("%s is a %s, not a file that can be written", name, kindOf(m))
		}
	case errors.Is(err, fs.ErrNotExist):
		if o.path, err = resolveNew(name); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	for _, p := range s.outs {
		if p.sameFile(o) {
			return nil, usagef("%s and %s are the same file: give each output its own", p.name, name)
		}
	}
	if o.inPlace {
		// O_WRONLY without O_TRUNC: a FIFO blocks here until it has a
		// reader, as a shell redirection does.
		if o.f, err = os.OpenFile(name, os.O_WRONLY, 0); err != nil {
			return nil, err
		}
	} else {
		dir, base := filepath.Split(o.path)
		if o.f, err = s.g.createTemp(dir, "."+base+".tmp-*"); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		o.tmp = o.f.Name()
	}
	s.outs = append(s.outs, o)
	return o.f, nil
}

// sameFile reports whether o and q name the same file.
func (o *output) sameFile(q *output) bool {
	if o.fi != nil && q.fi != nil {
		return os.SameFile(o.fi, q.fi)
	}
	return o.fi == nil && q.fi == nil && o.path == q.path
}

// kindOf names a file type for messages.
func kindOf(m fs.FileMode) string {
	switch {
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m.IsDir():
		return "directory"
	}
	return "special file"
}

// maxSymlinks is how many symbolic links resolveNew follows, as Linux's
// MAXSYMLINKS (path_resolution(7)).
const maxSymlinks = 40

// resolveNew returns the absolute path, with every symlink resolved, of
// the file to create for name, which does not exist: name itself, or the
// end of the chain of dangling symlinks name starts.
func resolveNew(name string) (string, error) {
	if strings.HasSuffix(name, "/") {
		return "", usagef("%s names a directory", name)
	}
	p := name
	for range maxSymlinks + 1 {
		base := filepath.Base(p)
		if base == "." || base == ".." {
			return "", usagef("%s names a directory", name)
		}
		dir, err := filepath.EvalSymlinks(filepath.Dir(p))
		if err != nil {
			return "", fmt.Errorf("%s: its directory: %w", name, err)
		}
		if dir, err = filepath.Abs(dir); err != nil {
			return "", err
		}
		p = filepath.Join(dir, base)
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return p, nil
		}
		if err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return "", fmt.Errorf("%s: %s appeared while it was being checked", name, p)
		}
		t, err := os.Readlink(p)
		if err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		if !filepath.IsAbs(t) {
			t = filepath.Join(dir, t)
		}
		p = t
	}
	return "", fmt.Errorf("%s: %w", name, syscall.ELOOP)
}

// mkdirAll creates dir and its missing parents, which abort (or a signal)
// removes again if they are still empty.
func (s *outputSet) mkdirAll(dir string) error {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); !errors.Is(err, fs.ErrNotExist) {
			break
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if len(missing) > 0 {
		slices.Reverse(missing)
		s.dirs = append(s.dirs, missing...)
		if s.unregister == nil {
			s.unregister = s.g.onSignal(s.removeDirs)
		}
	}
	return nil
}

// removeDirs removes the directories mkdirAll made, the deepest first,
// while they are empty.
func (s *outputSet) removeDirs() {
	for _, d := range slices.Backward(s.dirs) {
		os.Remove(d)
	}
}

// finish sets the temporary file's permissions and closes it (or closes
// the device or FIFO).
func (o *output) finish() error {
	if o.inPlace {
		return o.f.Close()
	}
	mode := newFileMode()
	if o.fi != nil {
		if st, ok := o.fi.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
			// Before the mode: chown clears the set-id bits.
			if err := o.f.Chown(int(st.Uid), int(st.Gid)); err != nil {
				o.f.Close()
				return err
			}
		}
		mode = o.fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	}
	err := o.f.Chmod(mode)
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// commit puts every output in place, or none (see the comment at the top
// of the file). A signal arriving once it has begun no longer interrupts
// the command.
func (s *outputSet) commit() error {
	if err := s.g.beginCommit(); err != nil {
		return err
	}
	var errs []error
	for _, o := range s.outs {
		if err := o.finish(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", o.name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if commitHook != nil {
		commitHook()
	}
	var regular []*output
	for _, o := range s.outs {
		if !o.inPlace {
			regular = append(regular, o)
		}
	}
	for i, o := range regular {
		if err := o.put(i == len(regular)-1); err != nil {
			errs := []error{fmt.Errorf("%s: %w", o.name, err)}
			for _, p := range slices.Backward(regular[:i]) {
				if err := p.undo(); err != nil {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		}
	}
	for _, o := range regular {
		// The old files, now at the temporary names.
		if o.exchanged {
			os.Remove(o.tmp)
		}
		if o.backup != "" {
			os.Remove(o.backup)
		}
		s.g.forget(o.tmp)
	}
	s.done = true
	if s.unregister != nil {
		s.unregister()
	}
	return nil
}

// put renames the temporary file over the target. Unless last (nothing
// after it can fail), it keeps the old file for undo.
func (o *output) put(last bool) error {
	if last {
		return os.Rename(o.tmp, o.path)
	}
	err := unix.Renameat2(unix.AT_FDCWD, o.tmp, unix.AT_FDCWD, o.path, unix.RENAME_EXCHANGE)
	switch {
	case err == nil:
		o.exchanged = true
		return nil
	case errors.Is(err, unix.ENOENT):
		// No file to exchange with (or the temporary file is gone, which
		// the rename reports too).
		err = unix.Renameat2(unix.AT_FDCWD, o.tmp, unix.AT_FDCWD, o.path, unix.RENAME_NOREPLACE)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
			err = os.Rename(o.tmp, o.path)
		}
		if err != nil {
			return &os.LinkError{Op: "rename", Old: o.tmp, New: o.path, Err: err}
		}
		o.created = true
		return nil
	case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP):
		// The file system cannot exchange: keep a hard link to the old
		// file instead.
		o.backup = o.tmp + ".old"
		if err := os.Link(o.path, o.backup); err != nil {
			o.backup = ""
			return fmt.Errorf("keeping the old file while the other outputs are put in place: %w", err)
		}
		return os.Rename(o.tmp, o.path)
	}
	return &os.LinkError{Op: "exchange", Old: o.tmp, New: o.path, Err: err}
}

// undo takes back a put: the old file returns to the path.
func (o *output) undo() error {
	switch {
	case o.exchanged:
		if err := unix.Renameat2(unix.AT_FDCWD, o.tmp, unix.AT_FDCWD, o.path, unix.RENAME_EXCHANGE); err != nil {
			o.keepTmp = true
			return fmt.Errorf("%s could not be restored; the old file is %s: %w", o.name, o.tmp, err)
		}
		o.exchanged = false
	case o.created:
		if err := os.Remove(o.path); err != nil {
			return fmt.Errorf("%s could not be removed again: %w", o.name, err)
		}
		o.created = false
	case o.backup != "":
		if err := os.Rename(o.backup, o.path); err != nil {
			return fmt.Errorf("%s could not be restored; the old file is %s: %w", o.name, o.backup, err)
		}
		o.backup = ""
	}
	return nil
}

// abort removes what the set made, unless it was committed: the
// temporary files and the directories mkdirAll made. Outputs written in
// place are closed.
func (s *outputSet) abort() {
	if s.done {
		return
	}
	s.done = true
	for _, o := range s.outs {
		o.f.Close()
		if o.tmp != "" && !o.keepTmp {
			os.Remove(o.tmp)
			s.g.forget(o.tmp)
		}
	}
	s.removeDirs()
	if s.unregister != nil {
		s.unregister()
	}
}

// newFileMode is the mode of a new output file: 0644 less the umask.
func newFileMode() fs.FileMode {
	return 0o644 &^ readUmask()
}

// readUmask reads the process's umask from /proc/self/status (Linux 4.7
// and later, proc(5)); failing that it sets and restores it, which is
// racy only with files created at the same moment.
func readUmask() fs.FileMode {
	if f, err := os.Open("/proc/self/status"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "Umask:"); ok {
				if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					return fs.FileMode(m) & fs.ModePerm
				}
			}
		}
	}
	old := unix.Umask(0)
	unix.Umask(old)
	return fs.FileMode(old) & fs.ModePerm
}
