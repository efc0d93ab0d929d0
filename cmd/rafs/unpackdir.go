package main

// Unpacking into a directory (rafs unpack --dir): the tar an unpacker
// writes is extracted as it streams (convert.ExtractTar), into a new
// directory beside the target that is renamed into place at the end.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// dirTarget is the directory output of an unpack: a temporary directory
// ".NAME.tmp-PID" beside NAME, filled and then put in place.
type dirTarget struct {
	dir     string // as given
	tmp     string
	replace bool // NAME exists (empty, or non-empty with --force)
	g       *guard
	unreg   func()
}

// newDirTarget checks the target directory and creates the temporary one.
// An existing non-empty directory is refused unless force is set; a
// target that is not a directory is refused.
func newDirTarget(g *guard, dir string, force bool) (*dirTarget, error) {
	dir = filepath.Clean(dir)
	t := &dirTarget{dir: dir, g: g}
	fi, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	case !fi.IsDir():
		return nil, usagef("--dir %s exists and is not a directory", dir)
	default:
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		if len(ents) > 0 && !force {
			return nil, usagef("--dir %s is not empty (--force replaces it)", dir)
		}
		t.replace = true
	}
	parent := filepath.Dir(dir)
	t.tmp = filepath.Join(parent, fmt.Sprintf(".%s.tmp-%d", filepath.Base(dir), os.Getpid()))
	if err := os.Mkdir(t.tmp, 0o700); err != nil {
		return nil, err
	}
	t.unreg = g.onSignal(func() { os.RemoveAll(t.tmp) })
	return t, nil
}

// abort removes the temporary directory.
func (t *dirTarget) abort() {
	if t.tmp != "" {
		os.RemoveAll(t.tmp)
		t.tmp = ""
		t.unreg()
	}
}

// commit puts the directory in place: renamed to NAME, or exchanged with
// an existing NAME, which is then removed.
func (t *dirTarget) commit() error {
	if !t.replace {
		if err := os.Rename(t.tmp, t.dir); err != nil {
			return err
		}
		t.tmp = ""
		t.unreg()
		return nil
	}
	if err := unix.Renameat2(unix.AT_FDCWD, t.tmp, unix.AT_FDCWD, t.dir, unix.RENAME_EXCHANGE); err != nil {
		return fmt.Errorf("replacing %s: %w", t.dir, err)
	}
	// t.tmp now holds the old directory.
	err := os.RemoveAll(t.tmp)
	t.tmp = ""
	t.unreg()
	if err != nil {
		return fmt.Errorf("removing the old %s: %w", t.dir, err)
	}
	return nil
}
