package tartest

import (
	"archive/tar"
	"fmt"
	"strings"
)

var badCases = []caseFunc{
	{"truncated-header", badTruncatedHeader},
	{"truncated-data", badTruncatedData},
	{"truncated-pax", badTruncatedPAX},
	{"bad-checksum", badChecksum},
	{"bad-checksum-second", badChecksumSecond},
	{"dotdot-escape", badName("../escape")},
	{"dotdot-escape-nested", badName("a/../../escape")},
	{"absolute", badName("/etc/x")},
	{"hardlink-missing", badHardlinkMissing},
	{"hardlink-escape", badHardlinkEscape},
	{"hardlink-to-dir", badHardlinkToDir},
	{"name-too-long", badName("d/" + strings.Repeat("n", 256))},
	{"parent-not-dir", badParentNotDir},
	{"root-not-dir", badRootNotDir},
	{"xattr-value-too-big", badXattrValue},
	{"xattr-name-too-long", badXattrName},
	{"gzip-truncated", badGzipTruncated},
}

// twoFiles returns a USTAR archive with a 1000-byte file "a" (header at 0,
// data at 512) and a file "b" (header at 1536).
func twoFiles() []byte {
	a := newArchive(tar.FormatUSTAR)
	a.add(tar.Header{Typeflag: tar.TypeReg, Name: "a", Mode: 0o644}, Content("a", 1000))
	a.file("b", "b")
	return a.bytes()
}

func badTruncatedHeader() []byte { return twoFiles()[:1536+200] }

func badTruncatedData() []byte { return twoFiles()[:512+500] }

func badTruncatedPAX() []byte {
	a := newArchive(tar.FormatPAX)
	a.file(strings.Repeat("p", 300), "long name")
	return a.bytes()[:512+100] // inside the PAX record block
}

// setChecksum overwrites the checksum field of the header at off.
func setChecksum(b []byte, off int, sum int) {
	copy(b[off+148:off+156], fmt.Sprintf("%06o\x00 ", sum))
}

// checksum returns the unsigned checksum of the header at off.
func checksum(b []byte, off int) int {
	sum := 0
	for i, c := range b[off : off+512] {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += int(c)
	}
	return sum
}

func badChecksum() []byte {
	b := twoFiles()
	setChecksum(b, 0, checksum(b, 0)+1)
	return b
}

func badChecksumSecond() []byte {
	b := twoFiles()
	b[1536+1] = 'x' // the name becomes "bx"; the stored checksum no longer matches
	return b
}

func badName(name string) func() []byte {
	return func() []byte {
		a := newArchive(tar.FormatPAX)
		a.file("ok", "ok")
		a.file(name, "bad")
		return a.bytes()
	}
}

func badHardlinkMissing() []byte {
	a := newArchive(tar.FormatUSTAR)
	a.file("present", "p")
	a.hardlink("link", "absent")
	return a.bytes()
}

func badHardlinkEscape() []byte {
	a := newArchive(tar.FormatUSTAR)
	a.file("present", "p")
	a.hardlink("link", "../present")
	return a.bytes()
}

func badHardlinkToDir() []byte {
	a := newArchive(tar.FormatUSTAR)
	a.dir("d/", 0o755)
	a.hardlink("link", "d")
	return a.bytes()
}

func badParentNotDir() []byte {
	a := newArchive(tar.FormatUSTAR)
	a.file("f", "a regular file")
	a.file("f/child", "below a regular file")
	return a.bytes()
}

func badRootNotDir() []byte {
	a := newArchive(tar.FormatUSTAR)
	a.file(".", "the root as a regular file")
	return a.bytes()
}

func badXattrValue() []byte {
	a := newArchive(tar.FormatPAX)
	a.add(tar.Header{Typeflag: tar.TypeReg, Name: "big", Mode: 0o644, PAXRecords: xattrRecords(
		"user.big", string(Content("big", 65536)),
	)}, []byte("big"))
	return a.bytes()
}

func badXattrName() []byte {
	a := newArchive(tar.FormatPAX)
	a.add(tar.Header{Typeflag: tar.TypeReg, Name: "long", Mode: 0o644, PAXRecords: xattrRecords(
		"user."+strings.Repeat("n", 251), "name of 256 bytes",
	)}, []byte("long"))
	return a.bytes()
}

func badGzipTruncated() []byte {
	b := caseGzip()
	return b[:len(b)/2]
}
