// Package tartest provides golden tar archives for converter tests: valid
// layers covering every entry type and the corner cases of the tar formats
// and of OCI layer semantics (Cases), and invalid inputs that a converter
// must reject (BadCases).
//
// The archives are built in Go with archive/tar, plus byte-level edits for
// inputs archive/tar refuses to write. They are deterministic: entries have
// fixed modification times (Epoch unless a case is about times) and file
// contents come from Content.
//
// The expected result of converting a case is what
// fstree.FromTar(bytes.NewReader(c.Tar), opt) returns.
//
// The valid cases, by name:
//
//	empty              no entries at all
//	types              every entry type, USTAR: file, dir, symlinks, hard link,
//	                   char/block devices (up to 4095:1048575), fifo
//	hardlinks          links to links, symlinks, devices, fifos, empty files,
//	                   from other (also implicit) directories
//	pax-long-names     names of 150, 300 and 1500 bytes, 255-byte components,
//	                   300- and 4095-byte symlink targets, long hard link targets
//	gnu-long-names     the same with GNU 'L'/'K' records
//	gnu-base256        ids over 2097151 and negative mtimes in GNU base-256
//	pax-mtime-nsec     PAX mtimes with nanoseconds, on all types
//	mtime-edges        mtimes 0, -1, -1.5, int32 min/max, 2038, uint32 max, 2100
//	pax-big-ids        uid/gid 65535, 65536, 2097152, 4000000000 (PAX)
//	xattrs             user., trusted., security.capability (v2), binary POSIX
//	                   ACLs (access and default), empty and binary values,
//	                   255-byte names, 24 xattrs on a file, xattrs on a
//	                   symlink, a device and a fifo
//	xattr-libarchive   LIBARCHIVE.xattr records (URL-encoded names, base64)
//	xattr-shared       the same xattrs on 46 inodes
//	xattr-max-value    a 65535-byte value (too large for ext4)
//	pax-global         xattrs from a global PAX header
//	pax-global-fields  uid, gid, mtime, path and linkpath from global PAX
//	                   headers, as GNU tar applies them
//	whiteouts          .wh. files and .wh..wh..opq markers (also in implicit
//	                   directories and before their directory's entry),
//	                   native 0:0 whiteouts, a native opaque xattr
//	duplicates         replaced files, file to dir, symlink to file and back,
//	                   merged directories, replaced hard link targets
//	dir-to-file        non-empty directories replaced by a file and a symlink
//	implicit-parents   entries whose parents never (or only later) appear
//	sizes              0, 1, 511-513, 4095-4097, 8191-8193, 64 KiB, 1 MiB+1,
//	                   3 MiB, 1 MiB of zeros, a file with a zero tail
//	compression        empty, 1-byte, zero, noise and text files of 4 KiB,
//	                   64 KiB and 1 MiB and a byte either side, mixed content,
//	                   hard links to compressed files
//	big-dir            one directory with 5000 entries of varied name lengths
//	deep               60 nested directories
//	names              non-UTF-8, 255-byte, control-character and punctuation
//	                   names (GNU format, raw bytes)
//	names-pax          non-ASCII and non-UTF-8 names in PAX path records
//	modes              setuid, setgid, sticky, 07777, 0000 and other modes
//	dot-slash          "./"-prefixed names and a "./" root entry
//	no-trailer         a tar without its end-of-archive blocks
//	gzip               a gzip-compressed tar
//
// Readers following io/fs conventions cannot open the non-UTF-8 names of
// "names" and "names-pax" (fs.ValidPath requires UTF-8).
//
// Corpus is the adversarial corpus: over a hundred inputs, valid and not,
// across tar structure, gzip and zstd streams and other compressions,
// names, links, whiteouts, xattrs, PAX and GNU headers and sparse files,
// each with the outcome a converter must give (an error with its place,
// or acceptance).
package tartest

// Case is a named tar archive. Tar may be gzip-compressed (the "gzip" case).
type Case struct {
	Name string
	Tar  []byte
}

// caseFunc builds one case's archive.
type caseFunc struct {
	name  string
	build func() []byte
}

// Cases returns the valid golden archives, freshly built (callers may
// modify them). Names are unique and stable.
func Cases() []Case { return build(goodCases) }

// BadCases returns archives that a converter must reject with an error:
// truncated or corrupt tars, names escaping the root or with over-long
// components, hard links to missing targets or to directories, entries
// below non-directories, and oversized xattrs.
func BadCases() []Case { return build(badCases) }

// Find returns the valid or invalid case with the given name.
func Find(name string) (Case, bool) {
	for _, list := range [][]caseFunc{goodCases, badCases} {
		for _, c := range list {
			if c.name == name {
				return Case{Name: c.name, Tar: c.build()}, true
			}
		}
	}
	return Case{}, false
}

func build(list []caseFunc) []Case {
	cases := make([]Case, len(list))
	for i, c := range list {
		cases[i] = Case{Name: c.name, Tar: c.build()}
	}
	return cases
}
