package main

// OCI archives (oci-archive:FILE[:TAG]): a tar of an OCI image layout.
// convert unpacks a source archive into its temporary directory and reads
// the layout there; a destination is built as a layout in the temporary
// directory (starting from the existing archive's, so that its other
// images stay) and then written as a new tar that replaces FILE
// atomically.

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"
)

// unpackOCIArchive extracts the OCI archive file into the new directory
// dir. Only directories and regular files are taken; names must be clean
// relative paths, and nothing is written outside dir (os.Root).
func unpackOCIArchive(file, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		name := path.Clean(h.Name)
		if name == "." {
			continue
		}
		if path.IsAbs(name) || name == ".." || len(name) > 2 && name[:3] == "../" {
			return fmt.Errorf("%s: entry %q leaves the archive", file, h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return fmt.Errorf("%s: %s: %w", file, h.Name, err)
			}
		case tar.TypeReg:
			if d := path.Dir(name); d != "." {
				if err := root.MkdirAll(d, 0o755); err != nil {
					return fmt.Errorf("%s: %s: %w", file, h.Name, err)
				}
			}
			out, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return fmt.Errorf("%s: %s: %w", file, h.Name, err)
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("%s: %s: %w", file, h.Name, err)
			}
		default:
			return fmt.Errorf("%s: entry %q of type %q: an OCI archive holds directories and files", file, h.Name, h.Typeflag)
		}
	}
}

// writeOCIArchive writes the layout directory dir to w as a tar:
// oci-layout, index.json, then the blobs, in name order, with fixed
// owners, modes and times so that the same layout gives the same bytes.
func writeOCIArchive(w io.Writer, dir string) error {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a file or a directory", p)
		}
		names = append(names, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return err
	}
	rank := func(n string) int {
		switch n {
		case "oci-layout":
			return 0
		case "index.json":
			return 1
		}
		return 2
	}
	slices.SortStableFunc(names, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		switch {
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	})
	tw := tar.NewWriter(w)
	for _, n := range names {
		p := filepath.Join(dir, filepath.FromSlash(n))
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		h := &tar.Header{Name: n, Mode: 0o644, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if fi.IsDir() {
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, n+"/", 0o755
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			continue
		}
		h.Typeflag, h.Size = tar.TypeReg, fi.Size()
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

// prepareArchives sets up the archive locations of a convert in its
// temporary directory tmp: a source oci-archive is unpacked into a layout
// there; a destination oci-archive becomes a layout there, holding the
// existing archive's layout if FILE exists.
func prepareArchives(tmp string, src, dst *location) error {
	if src.archive == ociArchivePrefix {
		src.dir = filepath.Join(tmp, "src-layout")
		if err := unpackOCIArchive(src.file, src.dir); err != nil {
			return fmt.Errorf("source: %w", err)
		}
	}
	if dst.archive == ociArchivePrefix {
		dst.dir = filepath.Join(tmp, "dst-layout")
		if _, err := os.Stat(dst.file); err == nil {
			if err := unpackOCIArchive(dst.file, dst.dir); err != nil {
				return fmt.Errorf("destination: %w", err)
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// writeArchiveFile writes dst's archive file with write, atomically
// (cmd/rafs/output.go): FILE is replaced only once it is complete.
func writeArchiveFile(g *guard, dst *location, write func(io.Writer) error) error {
	outs := newOutputs(g)
	defer outs.abort()
	fh, err := outs.add(dst.file, true)
	if err != nil {
		return fmt.Errorf("%s: %w", dst, err)
	}
	bw := bufio.NewWriterSize(fh, 1<<20)
	if err := write(bw); err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	if err := outs.commit(); err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	return nil
}
