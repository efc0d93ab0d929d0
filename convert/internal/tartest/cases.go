package tartest

import (
	"archive/tar"
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

var goodCases = []caseFunc{
	{"empty", caseEmpty},
	{"types", caseTypes},
	{"hardlinks", caseHardlinks},
	{"pax-long-names", casePAXLongNames},
	{"gnu-long-names", caseGNULongNames},
	{"gnu-base256", caseGNUBase256},
	{"pax-mtime-nsec", casePAXMtimeNsec},
	{"mtime-edges", caseMtimeEdges},
	{"pax-big-ids", casePAXBigIDs},
	{"xattrs", caseXattrs},
	{"xattr-libarchive", caseXattrLibarchive},
	{"xattr-shared", caseXattrShared},
	{"xattr-max-value", caseXattrMaxValue},
	{"pax-global", casePAXGlobal},
	{"pax-global-fields", casePAXGlobalFields},
	{"whiteouts", caseWhiteouts},
	{"duplicates", caseDuplicates},
	{"dir-to-file", caseDirToFile},
	{"implicit-parents", caseImplicitParents},
	{"sizes", caseSizes},
	{"compression", caseCompression},
	{"big-dir", caseBigDir},
	{"deep", caseDeep},
	{"names", caseNames},
	{"names-pax", caseNamesPAX},
	{"modes", caseModes},
	{"dot-slash", caseDotSlash},
	{"no-trailer", caseNoTrailer},
	{"gzip", caseGzip},
}

// at returns Epoch plus d seconds.
func at(d int64) time.Time { return Epoch.Add(time.Duration(d) * time.Second) }

// caseEmpty is an archive with no entries: just the end-of-archive blocks.
func caseEmpty() []byte { return newArchive(tar.FormatUSTAR).bytes() }

// caseTypes has one entry of every type a tar can hold, in plain USTAR.
func caseTypes() []byte {
	a := newArchive(tar.FormatUSTAR)
	a.dir("dir/", 0o755)
	a.file("dir/file", "hello, world\n")
	a.file("dir/empty", "")
	a.symlink("dir/symlink", "file")
	a.symlink("dir/dangling", "../nowhere/at/all")
	a.symlink("dir/absolute", "/etc/passwd")
	a.hardlink("dir/hardlink", "dir/file")
	a.dir("dev/", 0o755)
	a.device(tar.TypeChar, "dev/null", 1, 3)
	a.device(tar.TypeBlock, "dev/sda1", 8, 1)
	a.device(tar.TypeBlock, "dev/nvme0n1p9", 259, 1048575) // largest minor
	a.device(tar.TypeChar, "dev/maxdev", 4095, 1048575)    // largest major and minor
	a.device(tar.TypeChar, "dev/minor256", 10, 256)        // minor needing the high bits
	a.fifo("fifo")
	return a.bytes()
}

// caseHardlinks has hard links to every non-directory type, chains of
// links, and links in other directories than their targets.
func caseHardlinks() []byte {
	a := newArchive(tar.FormatPAX)
	a.dir("a/", 0o755)
	a.add(tar.Header{Typeflag: tar.TypeReg, Name: "a/file", Mode: 0o640, Uid: 1000, Gid: 1000,
		PAXRecords: xattrRecords("user.linked", "shared by all links")}, []byte("shared content\n"))
	a.hardlink("a/l1", "a/file")
	a.hardlink("a/l2", "a/l1") // a link to a link
	a.symlink("a/sym", "file")
	a.hardlink("a/lsym", "a/sym")
	a.device(tar.TypeChar, "a/chr", 5, 1)
	a.hardlink("a/lchr", "a/chr")
	a.device(tar.TypeBlock, "a/blk", 8, 2)
	a.hardlink("a/lblk", "a/blk")
	a.fifo("a/fifo")
	a.hardlink("a/lfifo", "a/fifo")
	a.file("a/empty", "")
	a.hardlink("a/lempty", "a/empty")
	a.dir("b/", 0o755)
	a.hardlink("b/other", "a/file")  // another directory
	a.hardlink("b/c/deeper", "a/l2") // a directory that only exists implicitly
	a.hardlink("top", "b/other")     // the root directory
	return a.bytes()
}

// longName returns a path of about n bytes made of components of at most
// 250 bytes, starting with prefix.
func longName(prefix string, n int) string {
	var b strings.Builder
	b.WriteString(prefix)
	for i := 0; b.Len() < n; i++ {
		c := min(250, n-b.Len()-1)
		if c < 1 {
			break
		}
		fmt.Fprintf(&b, "/%c%s", 'a'+i%26, strings.Repeat("x", c-1))
	}
	return b.String()
}

// casePAXLongNames has names and link targets longer than the 100 and 255
// bytes USTAR can hold, as PAX path and linkpath records.
func casePAXLongNames() []byte {
	a := newArchive(tar.FormatPAX)
	a.dir("long/", 0o755)
	n150 := longName("long", 150)
	n300 := longName("long", 300)
	n1500 := longName("long", 1500)
	a.file(n150, "150")
	a.dir(parent(n300)+"/", 0o755)
	a.file(n300, "300")
	a.file(n1500, "1500") // parents implicit
	a.file("long/"+strings.Repeat("n", 255), "name of 255 bytes")
	a.dir("long/"+strings.Repeat("d", 255)+"/", 0o700)
	a.file("long/"+strings.Repeat("d", 255)+"/"+strings.Repeat("f", 255), "two 255-byte components")
	a.symlink("long/sym300", strings.Repeat("t/", 150))
	a.symlink("long/sym4095", strings.Repeat("z", 4095)) // PATH_MAX - 1
	a.hardlink("long/hard-to-long", n1500)
	a.hardlink(n300+"-link", n150)
	return a.bytes()
}

func parent(p string) string { return p[:strings.LastIndexByte(p, '/')] }

// caseGNULongNames has long names and link targets as GNU 'L' and 'K'
// records.
func caseGNULongNames() []byte {
	a := newArchive(tar.FormatGNU)
	long := longName("gnu", 300)
	a.dir("gnu/", 0o755)
	a.dir(parent(long)+"/", 0o755)
	a.file(long, "gnu long name")
	a.file("gnu/"+strings.Repeat("n", 255), "255")
	a.symlink("gnu/longlink", strings.Repeat("../", 60)+"target") // 'K'
	a.hardlink("gnu/hard", long)                                  // 'K' for a hard link
	a.hardlink(long+"-2", "gnu/"+strings.Repeat("n", 255))
	return a.bytes()
}

// caseGNUBase256 has numeric fields that only GNU base-256 encoding can
// hold: ids over 2097151 and negative mtimes.
func caseGNUBase256() []byte {
	a := newArchive(tar.FormatGNU)
	a.add(tar.Header{Typeflag: tar.TypeDir, Name: "b256/", Mode: 0o755, Uid: 3000000, Gid: 2147483648}, nil)
	a.add(tar.Header{Typeflag: tar.TypeReg, Name: "b256/bigids", Mode: 0o644, Uid: 4000000000, Gid: 2097152}, []byte("x"))
	a.add(tar.Header{Typeflag: tar.TypeReg, Name: "b256/negative-mtime", Mode: 0o644, ModTime: time.Unix(-1000000, 0)}, []byte("y"))
	a.add(tar.Header{Typeflag: tar.TypeSymlink, Name: "b256/sym", Linkname: "bigids", Mode: 0o777, Uid: 2097152, Gid: 2097152,
		ModTime: time.Unix(-1, 0)}, nil)
	return a.bytes()
}

// casePAXMtimeNsec has PAX mtimes with fractional seconds on all types.
func casePAXMtimeNsec() []byte {
	a := newArchive(tar.FormatPAX)
	a.add(tar.Header{Typeflag: tar.TypeDir, Name: "t/", Mode: 0o755, ModTime: time.Unix(1600000000, 500000000)}, nil)
	a.add(tar.Header{Typeflag: tar.TypeReg, Name: "t/nsec", Mode: 0o644, ModTime: time.Unix(1700000000, 123456789)}, []byte("a"))
	a.add(tar.Header{Typeflag: tar.TypeReg, Name: "t/one-ns", Mode: 0o644, ModTime: time.Unix(1700000000, 1)}, []byte("b"))
	a.add(tar.Header{Typeflag: tar.TypeReg, Name: "t/max-ns", Mode: 0o644, ModTime: time.Unix(1700000000, 999999999)}, []byte("c"))
	a.add(tar.Header{Typeflag: tar.TypeReg, Name: "t/whole", Mode: 0o644, ModTime: time.Unix(1700000000, 0)}, []byte("d"))
	a.add(tar.Header{Typeflag: tar.TypeSymlink, Name: "t/sym", Linkname: "nsec", Mode: 0o777, ModTime: time.Unix(1700000001, 250000000)}, nil)
	a.add(tar.Header{Typeflag: tar.TypeFifo, Name: "t/fifo", Mode: 0o600, ModTime: time.Unix(1700000002, 750000000)}, nil)
	a.add(tar.Header{Typeflag: tar.TypeChar, Name: "t/chr", Mode: 0o600, Devmajor: 1, Devminor: 5, ModTime: time.Unix(1700000003, 3)}, nil)
	return a.bytes()
}

// caseMtimeEdges has mtimes at and before the Unix epoch and beyond 2038.
// All are within ext4's range (1901-12-13 to 2446) so that an extracted
// copy keeps them.
func caseMtimeEdges() []byte {
	a := newArchive(tar.FormatPAX)
	a.dir("m/", 0o755)
	for _, c := range []struct {
		name string
		t    time.Time
	}{
		{"zero", time.Unix(0, 0)},
		{"minus-one", time.Unix(-1, 0)},
		{"minus-one-and-a-half", time.Unix(-2, 500000000)},
		{"int32-min", time.Unix(-2147483648, 0)},
		{"int32-max", time.Unix(2147483647, 0)},
		{"y2038", time.Unix(2147483648, 0)},
		{"uint32-max", time.Unix(4294967295, 0)},
		{"y2100", time.Unix(4102444800, 0)},
	} {
		a.add(tar.Header{Typeflag: tar.TypeReg, Name: "m/" + c.name, Mode: 0o644, ModTime: c.t}, []byte(c.name))
	}
	a.add(tar.Header{Typeflag: tar.TypeDir, Name: "m/old-dir/", Mode: 0o755, ModTime: time.Unix(-86400, 0)}, nil)
	a.add(tar.Header{Typeflag: tar.TypeDir, Name: "m/", Mode: 0o755, ModTime: time.Unix(0, 0)}, nil)
	return a.bytes()
}

// casePAXBigIDs has ids that only PAX records hold, and ids around the
// 16-bit limit of compact EROFS inodes.
func casePAXBigIDs() []byte {
	a := newArchive(tar.FormatPAX)
	a.add(tar.Header{Typeflag: tar.TypeDir, Name: "ids/", Mode: 0o755, Uid: 2097152, Gid: 2097153}, nil)
	for _, c := range []struct {
		name     string
		uid, gid int
	}{
		{"u65535", 65535, 65535},
		{"u65536", 65536, 0},
		{"g65536", 0, 65536},
		{"u2097151", 2097151, 2097151},
		{"u2097152", 2097152, 3000000},
		{"u4000000000", 4000000000, 4294967294},
	} {
		a.add(tar.Header{Typeflag: tar.TypeReg, Name: "ids/" + c.name, Mode: 0o644, Uid: c.uid, Gid: c.gid}, []byte(c.name))
	}
	a.add(tar.Header{Typeflag: tar.TypeSymlink, Name: "ids/sym", Linkname: "u65536", Mode: 0o777, Uid: 70000, Gid: 70001}, nil)
	return a.bytes()
}

// ACL and capability values used by the xattr cases.
var (
	// fileACL is an access ACL consistent with mode 0o640 (mask r--).
	fileACL = posixACL(
		aclEntry{aclUserObj, 6, aclNoID},
		aclEntry{aclUser, 4, 1000},
		aclEntry{aclGroupObj, 4, aclNoID},
		aclEntry{aclGroup, 4, 2000},
		aclEntry{aclMask, 4, aclNoID},
		aclEntry{aclOther, 0, aclNoID},
	)
	// dirACL is an access ACL consistent with mode 0o750 (mask r-x).
	dirACL = posixACL(
		aclEntry{aclUserObj, 7, aclNoID},
		aclEntry{aclUser, 5, 1000},
		aclEntry{aclGroupObj, 5, aclNoID},
		aclEntry{aclMask, 5, aclNoID},
		aclEntry{aclOther, 0, aclNoID},
	)
	dirDefaultACL = posixACL(
		aclEntry{aclUserObj, 7, aclNoID},
		aclEntry{aclUser, 7, 1000},
		aclEntry{aclGroupObj, 5, aclNoID},
		aclEntry{aclGroup, 5, 2000},
		aclEntry{aclMask, 7, aclNoID},
		aclEntry{aclOther, 5, aclNoID},
	)
	// netBindCap is CAP_NET_BIND_SERVICE (10) and CAP_NET_RAW (13),
	// permitted and effective.
	netBindCap = capabilityV2(1<<10 | 1<<13)
)

// caseXattrs has xattrs in every namespace EROFS can name, including binary
// ACLs and a file capability, as SCHILY.xattr records. Each inode's xattrs
// fit in one 4 KiB block so that ext4 can hold an extracted copy.
func caseXattrs() []byte {
	a := newArchive(tar.FormatPAX)
	a.add(tar.Header{Typeflag: tar.TypeDir, Name: "x/", Mode: 0o750, PAXRecords: xattrRecords(
		"user.dir", "directory value",
		"system.posix_acl_access", dirACL,
		"system.posix_acl_default", dirDefaultACL,
	)}, nil)
	a.add(tar.Header{Typeflag: tar.TypeReg, Name: "x/user", Mode: 0o644, PAXRecords: xattrRecords(
		"user.mime_type", "text/plain",
		"user.empty", "",
		"user.binary", "\x00\x01\xfe\xff\x00",
		"user."+strings.Repeat("n", 250), "name of 255 bytes",
	)}, []byte("user xattrs\n"))
	a.add(tar.Header{Typeflag: tar.TypeReg, Name: "x/trusted", Mode: 0o644, PAXRecords: xattrRecords(
		"trusted.foo", "bar",
		"trusted.overlay.redirect", "/elsewhere", // a long-prefix candidate
	)}, []byte("trusted\n"))
	a.add(tar.Header{Typeflag: tar.TypeReg, Name: "x/cap", Mode: 0o755, PAXRecords: xattrRecords(
		"security.capability", netBindCap,
	)}, []byte("#!/bin/true\n"))
	a.add(tar.Header{Typeflag: tar.TypeReg, Name: "x/acl", Mode: 0o640, PAXRecords: xattrRecords(
		"system.posix_acl_access", fileACL,
	)}, []byte("acl\n"))
	var many []string
	for i := range 24 {
		many = append(many, fmt.Sprintf("user.k%02d", i), strings.Repeat(fmt.Sprint(i%10), i*3))
	}
	a.add(tar.Header{Typeflag: tar.TypeReg, Name: "x/many", Mode: 0o644, PAXRecords: xattrRecords(many...)}, nil)
	a.add(tar.Header{Typeflag: tar.TypeReg, Name: "x/medium", Mode: 0o644, PAXRecords: xattrRecords(
		"user.medium", string(Content("medium", 2000)),
	)}, []byte("m"))
	// user.* xattrs are not allowed on symlinks and devices; trusted.* are.
	a.add(tar.Header{Typeflag: tar.TypeSymlink, Name: "x/sym", Linkname: "user", Mode: 0o777, PAXRecords: xattrRecords(
		"trusted.sym", "on a symlink",
	)}, nil)
	a.add(tar.Header{Typeflag: tar.TypeChar, Name: "x/chr", Devmajor: 1, Devminor: 7, Mode: 0o600, PAXRecords: xattrRecords(
		"trusted.dev", "on a device",
	)}, nil)
	a.add(tar.Header{Typeflag: tar.TypeFifo, Name: "x/fifo", Mode: 0o600, PAXRecords: xattrRecords(
		"trusted.fifo", "on a fifo",
	)}, nil)
	return a.bytes()
}

// caseXattrLibarchive has xattrs as libarchive writes them:
// LIBARCHIVE.xattr.URL-ENCODED-NAME=BASE64 (unpadded), alone and next to
// the SCHILY.xattr record bsdtar also writes.
func caseXattrLibarchive() []byte {
	a := newArchive(tar.FormatPAX)
	b64 := base64.RawStdEncoding.EncodeToString
	a.add(tar.Header{Typeflag: tar.TypeReg, Name: "la", Mode: 0o644, PAXRecords: map[string]string{
		"LIBARCHIVE.xattr.user.lib%20archive%3D%25": b64([]byte("value with \x00 NUL")),
		"LIBARCHIVE.xattr.user.plain":               b64([]byte("hi")),
		"LIBARCHIVE.xattr.user.pad":                 base64.StdEncoding.EncodeToString([]byte("padded")),
	}}, []byte("libarchive\n"))
	a.add(tar.Header{Typeflag: tar.TypeReg, Name: "both", Mode: 0o644, PAXRecords: map[string]string{
		"LIBARCHIVE.xattr.user.both": b64([]byte("same")),
		"SCHILY.xattr.user.both":     "same",
	}}, []byte("both\n"))
	return a.bytes()
}

// caseXattrShared has the same xattrs on many files, so that writers that
// share xattr entries between inodes do so.
func caseXattrShared() []byte {
	a := newArchive(tar.FormatPAX)
	a.add(tar.Header{Typeflag: tar.TypeDir, Name: "s/", Mode: 0o755, PAXRecords: xattrRecords(
		"user.shared", "the same value everywhere", "trusted.common", "1")}, nil)
	for i := range 40 {
		rec := xattrRecords("user.shared", "the same value everywhere", "trusted.common", "1")
		if i%4 == 0 {
			rec["SCHILY.xattr.user.quarter"] = "every fourth file"
		}
		if i%10 == 0 {
			rec["SCHILY.xattr.user.unique"] = fmt.Sprintf("file %d", i)
		}
		if i == 7 {
			rec["SCHILY.xattr.user.shared"] = "a different value" // same name, different value
		}
		a.add(tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("s/f%02d", i), Mode: 0o644, PAXRecords: rec},
			[]byte(fmt.Sprintf("file %d\n", i)))
	}
	for i := range 5 {
		a.add(tar.Header{Typeflag: tar.TypeDir, Name: fmt.Sprintf("s/d%d/", i), Mode: 0o755, PAXRecords: xattrRecords(
			"user.shared", "the same value everywhere", "trusted.common", "1")}, nil)
	}
	return a.bytes()
}

// caseXattrMaxValue has an xattr value of 65535 bytes, the largest an EROFS
// xattr entry holds, and one file with several large values. Ext4 without
// the ea_inode feature cannot hold these.
func caseXattrMaxValue() []byte {
	a := newArchive(tar.FormatPAX)
	a.add(tar.Header{Typeflag: tar.TypeReg, Name: "max", Mode: 0o644, PAXRecords: xattrRecords(
		"user.max", string(Content("max", 65535)),
	)}, []byte("max\n"))
	a.add(tar.Header{Typeflag: tar.TypeReg, Name: "several", Mode: 0o644, PAXRecords: xattrRecords(
		"user.a", string(Content("a", 5000)),
		"user.b", string(Content("b", 9000)),
		"trusted.c", string(Content("c", 20000)),
	)}, []byte("several\n"))
	return a.bytes()
}

// casePAXGlobal has a global PAX header whose xattr applies to every later
// entry unless the entry overrides it.
func casePAXGlobal() []byte {
	a := newArchive(tar.FormatPAX)
	a.entries = append(a.entries, entry{hdr: tar.Header{
		Typeflag:   tar.TypeXGlobalHeader,
		Name:       "pax_global_header",
		Format:     tar.FormatPAX,
		PAXRecords: xattrRecords("user.global", "from the global header"),
	}})
	a.dir("g/", 0o755)
	a.file("g/inherits", "inherits")
	a.add(tar.Header{Typeflag: tar.TypeReg, Name: "g/overrides", Mode: 0o644,
		PAXRecords: xattrRecords("user.global", "own value", "user.own", "1")}, []byte("overrides"))
	return a.bytes()
}

// global appends a global PAX header with the given records.
func (a *archive) global(recs map[string]string) {
	a.entries = append(a.entries, entry{hdr: tar.Header{
		Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", Format: tar.FormatPAX, PAXRecords: recs,
	}})
}

// casePAXGlobalFields has global PAX headers setting uid, gid, mtime,
// path and linkpath, which GNU tar applies to every later entry that has
// no record of its own for the keyword; each global header replaces the
// records of the one before, and one without records unsets them all.
func casePAXGlobalFields() []byte {
	a := newArchive(tar.FormatPAX)
	ustar := func(name string, uid int) {
		a.add(tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Uid: uid, Gid: 2, ModTime: at(1)}, []byte(name))
	}
	ustar("before", 1)
	a.global(map[string]string{"uid": "100", "gid": "200", "mtime": "1600000000.25", "comment": "ignored"})
	ustar("inherits", 1)
	// Own records: a PAX uid (too big for USTAR) and a PAX mtime.
	ustar("own-uid", 3000000)
	a.add(tar.Header{Typeflag: tar.TypeDir, Name: "dir/", Mode: 0o750, ModTime: time.Unix(1700000000, 5)}, nil)
	a.add(tar.Header{Typeflag: tar.TypeSymlink, Name: "dir/sym", Linkname: "../inherits", Mode: 0o777}, nil)
	a.global(map[string]string{"gid": "300"}) // uid and mtime no longer set
	ustar("gid-only", 1)
	a.entries = append(a.entries, entry{hdr: tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "empty", Format: tar.FormatPAX}})
	ustar("after-empty", 1) // gid 2 again
	a.global(map[string]string{"linkpath": "gid-only"})
	a.add(tar.Header{Typeflag: tar.TypeSymlink, Name: "sym-global", Linkname: "ustar-target", Mode: 0o777}, nil)
	a.add(tar.Header{Typeflag: tar.TypeLink, Name: "hard-global", Linkname: "before"}, nil)
	a.add(tar.Header{Typeflag: tar.TypeSymlink, Name: "sym-own", Linkname: strings.Repeat("own/", 30), Mode: 0o777}, nil) // own linkpath record
	a.global(map[string]string{"path": "renamed"})
	ustar("first", 1)
	ustar("second", 1) // replaces "first" under the global name
	a.add(tar.Header{Typeflag: tar.TypeReg, Name: strings.Repeat("p", 120), Mode: 0o600}, []byte("own path record"))
	return a.bytes()
}

// caseWhiteouts has OCI whiteouts and opaque markers in explicit and
// implicit directories, overlayfs-native whiteouts (character devices 0:0)
// and a native opaque xattr.
func caseWhiteouts() []byte {
	a := newArchive(tar.FormatPAX)
	a.dir("dir/", 0o755)
	a.file("dir/keep", "keep")
	a.add(tar.Header{Typeflag: tar.TypeReg, Name: "dir/.wh.gone", Mode: 0o600, Uid: 1000, Gid: 1001, ModTime: at(100)}, nil)
	a.dir("opq/", 0o755)
	a.file("opq/.wh..wh..opq", "")
	a.file("opq/new", "new")
	a.file("implicit/sub/.wh.deleted", "") // parent directories only implicit
	a.file(".wh.rootgone", "")             // in the root
	a.file("optimp/.wh..wh..opq", "")      // opaque marker in an implicit directory
	a.file("late/.wh..wh..opq", "")        // marker before its directory's entry
	a.add(tar.Header{Typeflag: tar.TypeDir, Name: "late/", Mode: 0o700, Uid: 5, Gid: 5, ModTime: at(5)}, nil)
	a.dir("both/", 0o755)
	a.file("both/.wh..wh..opq", "")
	a.file("both/.wh.x", "")
	a.file("both/y", "y")
	a.dir("native/", 0o755)
	a.add(tar.Header{Typeflag: tar.TypeChar, Name: "native/wh", Mode: 0, Devmajor: 0, Devminor: 0}, nil)
	a.add(tar.Header{Typeflag: tar.TypeDir, Name: "srcopq/", Mode: 0o755,
		PAXRecords: xattrRecords("trusted.overlay.opaque", "y")}, nil)
	a.file("srcopq/f", "f")
	a.file("dir/.wh.subdir-gone", "") // a whiteout for what was a directory below
	return a.bytes()
}

// caseDuplicates has paths that appear more than once: later entries replace
// earlier ones, and directories merge (see also caseDirToFile).
func caseDuplicates() []byte {
	a := newArchive(tar.FormatPAX)
	a.file("f", "version 1\n")
	a.add(tar.Header{Typeflag: tar.TypeReg, Name: "f", Mode: 0o600, Uid: 7, Gid: 8, ModTime: at(1)}, []byte("version 2, longer\n"))
	a.file("f2d", "was a file")
	a.dir("f2d/", 0o750)
	a.file("f2d/child", "child")
	a.add(tar.Header{Typeflag: tar.TypeDir, Name: "dd/", Mode: 0o755, Uid: 1, Gid: 1,
		PAXRecords: xattrRecords("user.a", "1", "user.both", "old")}, nil)
	a.file("dd/a", "a")
	a.dir("dd/sub/", 0o755)
	a.add(tar.Header{Typeflag: tar.TypeDir, Name: "dd/", Mode: 0o700, Uid: 2, Gid: 3, ModTime: at(2),
		PAXRecords: xattrRecords("user.b", "2", "user.both", "new")}, nil)
	a.file("dd/b", "b")
	a.file("victim", "victim v1")
	a.hardlink("keep", "victim") // keeps v1
	a.file("victim", "victim v2")
	a.file("x", "x")
	a.hardlink("x", "f") // a path replaced by a hard link
	a.symlink("s2f", "target")
	a.file("s2f", "now a file")
	a.file("f2s", "file")
	a.symlink("f2s", "target")
	a.file("same", "same")
	a.file("same", "same")
	a.fifo("fifo2dev")
	a.device(tar.TypeChar, "fifo2dev", 1, 9)
	return a.bytes()
}

// caseDirToFile has non-empty directories replaced by later non-directory
// entries, which drops their subtrees.
func caseDirToFile() []byte {
	a := newArchive(tar.FormatPAX)
	a.dir("d2f/", 0o755)
	a.file("d2f/child", "gone")
	a.dir("d2f/sub/", 0o755)
	a.file("d2f/sub/x", "gone")
	a.file("d2f", "now a file")
	a.dir("d2s/", 0o755)
	a.file("d2s/child", "gone")
	a.symlink("d2s", "d2f")
	a.file("kept", "kept")
	return a.bytes()
}

// caseImplicitParents has entries whose parent directories never appear,
// or appear only after their children.
func caseImplicitParents() []byte {
	a := newArchive(tar.FormatPAX)
	a.file("a/b/c/file", "deep and implicit")
	a.dir("x/y/", 0o700) // x implicit
	a.file("late/child", "child")
	a.add(tar.Header{Typeflag: tar.TypeDir, Name: "late/", Mode: 0o750, Uid: 5, Gid: 6, ModTime: at(5)}, nil)
	a.hardlink("q/r/link", "a/b/c/file")
	a.symlink("s/t/sym", "../../a")
	a.fifo("p/fifo")
	return a.bytes()
}

// caseSizes has regular files around block and page boundaries.
func caseSizes() []byte {
	a := newArchive(tar.FormatPAX)
	a.dir("sz/", 0o755)
	for _, n := range []int{0, 1, 511, 512, 513, 4095, 4096, 4097, 8191, 8192, 8193, 65536, 1<<20 + 1, 3 << 20} {
		a.add(tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("sz/%d", n), Mode: 0o644},
			Content(fmt.Sprint("size ", n), n))
	}
	a.add(tar.Header{Typeflag: tar.TypeReg, Name: "sz/zeros-1M", Mode: 0o644}, make([]byte, 1<<20))
	zeroTail := append(Content("tail", 4096), make([]byte, 3*4096)...)
	a.add(tar.Header{Typeflag: tar.TypeReg, Name: "sz/zero-tail", Mode: 0o644}, zeroTail)
	return a.bytes()
}

// caseCompression has the files that stress compressed layouts: empty,
// 1-byte, all-zero, incompressible and text files of one block, 64 KiB and
// 1 MiB (common physical cluster sizes) and a byte either side, a file of
// mixed text, zeros and noise, and hard links to compressed files.
func caseCompression() []byte {
	a := newArchive(tar.FormatPAX)
	a.dir("z/", 0o755)
	reg := func(name string, data []byte) {
		a.add(tar.Header{Typeflag: tar.TypeReg, Name: "z/" + name, Mode: 0o644}, data)
	}
	reg("empty", nil)
	reg("one", []byte("x"))
	reg("zero-one", []byte{0})
	for _, n := range []int{4096, 65536, 1 << 20} {
		for _, m := range []int{n - 1, n, n + 1} {
			reg(fmt.Sprintf("text-%d", m), Text(fmt.Sprint("text ", m), m))
			reg(fmt.Sprintf("noise-%d", m), Content(fmt.Sprint("noise ", m), m))
			reg(fmt.Sprintf("zeros-%d", m), make([]byte, m))
		}
	}
	var mixed []byte
	for i := range 24 {
		switch i % 3 {
		case 0:
			mixed = append(mixed, Text(fmt.Sprint("mixed ", i), 70000+i*997)...)
		case 1:
			mixed = append(mixed, make([]byte, 50000+i*131)...)
		case 2:
			mixed = append(mixed, Content(fmt.Sprint("mixed ", i), 30000+i*61)...)
		}
	}
	reg("mixed", mixed)
	reg("text-tail", append(Content("head", 20000), Text("tail", 3000)...))
	a.hardlink("z/mixed-link", "z/mixed")
	a.hardlink("z/text-link", "z/text-65536")
	return a.bytes()
}

// caseBigDir has a directory with 5000 entries of varied name lengths and
// types.
func caseBigDir() []byte {
	a := newArchive(tar.FormatPAX)
	a.dir("big/", 0o755)
	for i := range 5000 {
		name := fmt.Sprintf("big/%04d-%s", i, strings.Repeat("n", i%64))
		switch {
		case i%10 == 3:
			a.dir(name+"/", 0o755)
		case i%7 == 5:
			a.symlink(name, fmt.Sprintf("%04d", i-1))
		case i%13 == 0:
			a.file(name, fmt.Sprint(i))
		default:
			a.file(name, "")
		}
	}
	return a.bytes()
}

// caseDeep has a path 60 directories deep.
func caseDeep() []byte {
	a := newArchive(tar.FormatPAX)
	p := ""
	for i := range 60 {
		p += fmt.Sprintf("d%02d/", i)
		a.dir(p, 0o755)
	}
	a.file(p+"file", "at the bottom")
	a.symlink(p+"up", strings.Repeat("../", 60))
	return a.bytes()
}

// caseNames has unusual names: not UTF-8, 255 bytes long, and with spaces,
// control characters and punctuation. It uses GNU format, which stores
// names as raw bytes.
func caseNames() []byte {
	a := newArchive(tar.FormatGNU)
	a.dir("n/", 0o755)
	for _, name := range []string{
		"a",
		"bin\xff\xfe",
		"\xfe\xff",
		"unicode-héllo-世界",
		"with space",
		"tab\there",
		"new\nline",
		"-dash",
		"back\\slash",
		"per%cent",
		"colon:semi;",
		"quote\"'",
		".hidden",
		"..dots",
		"...",
		strings.Repeat("n", 255),
		strings.Repeat("\xff", 255),
	} {
		a.file("n/"+name, name)
	}
	a.dir("n/\xfe\xff-dir/", 0o755)
	a.file("n/\xfe\xff-dir/\xff", "inside a non-UTF-8 directory")
	a.dir("n/"+strings.Repeat("d", 255)+"/", 0o755)
	a.file("n/"+strings.Repeat("d", 255)+"/f", "inside a 255-byte directory")
	a.symlink("n/sym-to-binary", "bin\xff\xfe")
	a.hardlink("n/hard-to-binary", "n/bin\xff\xfe")
	return a.bytes()
}

// caseNamesPAX has non-ASCII names in PAX path records, as Go's
// archive/tar (and so most OCI tooling) writes them, including bytes that
// are not UTF-8.
func caseNamesPAX() []byte {
	a := newArchive(tar.FormatPAX)
	a.dir("p/", 0o755)
	a.file("p/unicode-héllo-世界", "utf-8")
	a.file("p/bin\xff\xfe", "not utf-8")
	a.symlink("p/sym-héllo", "unicode-héllo-世界")
	return a.bytes()
}

// caseModes has setuid, setgid and sticky bits and unusual permissions.
func caseModes() []byte {
	a := newArchive(tar.FormatUSTAR)
	reg := func(name string, mode int64, uid, gid int) {
		a.add(tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Uid: uid, Gid: gid}, []byte(name))
	}
	reg("setuid", 0o4755, 0, 0)
	reg("setgid", 0o2755, 0, 50)
	reg("setuid-user", 0o4750, 1000, 1000)
	reg("all-bits", 0o7777, 0, 0)
	reg("none", 0o000, 0, 0)
	reg("read-only", 0o400, 0, 0)
	reg("group-write", 0o664, 0, 0)
	a.dir("sticky/", 0o1777)
	a.add(tar.Header{Typeflag: tar.TypeDir, Name: "setgid-dir/", Mode: 0o2775, Gid: 100}, nil)
	reg("setgid-dir/file", 0o644, 0, 100)
	a.dir("closed/", 0o000)
	reg("closed/file", 0o644, 0, 0)
	a.dir("write-only/", 0o333)
	a.add(tar.Header{Typeflag: tar.TypeFifo, Name: "fifo-0600", Mode: 0o600}, nil)
	a.add(tar.Header{Typeflag: tar.TypeChar, Name: "chr-0000", Mode: 0o000, Devmajor: 1, Devminor: 3}, nil)
	return a.bytes()
}

// caseDotSlash has "./"-prefixed names as "tar -C dir ." writes them,
// including the "./" entry that describes the root directory.
func caseDotSlash() []byte {
	a := newArchive(tar.FormatGNU)
	a.add(tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o750, Uid: 1000, Gid: 1000, ModTime: at(10)}, nil)
	a.dir("./a/", 0o755)
	a.file("./a/f", "f")
	a.file("./b", "b")
	a.hardlink("./a/link", "./a/f")
	a.symlink("./s", "./a/f") // symlink targets are kept verbatim
	a.dir("./c/./d/", 0o755)  // cleaned to c/d
	a.file("./c//e", "e")     // cleaned to c/e
	return a.bytes()
}

// caseNoTrailer is a valid archive without the two zero blocks that end a
// tar: readers tolerate that.
func caseNoTrailer() []byte {
	a := newArchive(tar.FormatUSTAR)
	a.dir("nt/", 0o755)
	a.file("nt/a", "a")
	a.file("nt/b", strings.Repeat("b", 1000))
	b := a.bytes()
	return b[:len(b)-1024]
}

// caseGzip is a gzip-compressed tar of a few entries.
func caseGzip() []byte {
	a := newArchive(tar.FormatPAX)
	a.dir("gz/", 0o755)
	a.file("gz/text", strings.Repeat("compressible text\n", 1000))
	a.add(tar.Header{Typeflag: tar.TypeReg, Name: "gz/random", Mode: 0o644}, Content("gzip", 100000))
	a.symlink("gz/sym", "text")
	a.hardlink("gz/hard", "gz/text")
	return Gzip(a.bytes())
}
