package tarhdr

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// IsHeader reports whether b begins with a 512-byte block whose checksum
// field matches its contents, as a tar header's does (POSIX ustar: the sum
// of the block's bytes with the checksum field taken as spaces; old
// writers summed signed bytes).
func IsHeader(b []byte) bool {
	if len(b) < 512 {
		return false
	}
	var unsigned, signed int64
	for i, c := range b[:512] {
		if i >= 148 && i < 156 {
			c = ' '
		}
		unsigned += int64(c)
		signed += int64(int8(c))
	}
	field := strings.Trim(string(b[148:156]), " \x00")
	stored, err := strconv.ParseInt(field, 8, 64)
	return err == nil && field != "" && (stored == unsigned || stored == signed)
}

// EndsAfterSpecial returns the name of the PAX or GNU long name header
// raw (Reader.Raw after io.EOF) starts with, when it does: archive/tar
// takes a stream that ends after one for the end of the archive.
func EndsAfterSpecial(raw []byte) string {
	if len(raw) < blockSize || !IsHeader(raw) {
		return ""
	}
	return SpecialName(raw[hdrTypeflag])
}

// A tar entry's header blocks, as Reader.Raw keeps them, walked again
// only to say what is wrong with a header the reader refuses (archive/tar,
// whose errors it returns, says only "invalid tar header") and to check
// global PAX headers whole (archive/tar drops a global header's records
// when one of its values does not parse).

// Chain is what the raw header blocks of one entry describe.
type Chain struct {
	Final   int64    // offset of the entry's own header block
	DataEnd int64    // offset where the entry's data ends, before padding
	Global  bool     // the entry is a global PAX header
	Records []Record // records of the last PAX header, in order
}

// tar header block fields (POSIX ustar; GNU).
const (
	hdrMode     = 100
	hdrUID      = 108
	hdrGID      = 116
	hdrSize     = 124
	hdrMtime    = 136
	hdrChksum   = 148
	hdrTypeflag = 156
	hdrMagic    = 257
	hdrDevmajor = 329
	hdrDevminor = 337
	gnuExtended = 482 // old GNU sparse: more sparse headers follow
	extExtended = 504 // the same flag in a sparse extension block
)

// Walk reads the header blocks of one entry from buf, which holds
// the archive from offset base on: PAX extended ('x') headers and GNU long
// names and links ('L', 'K') with their data, then the entry's own header
// (and an old GNU sparse file's extension blocks), or a global PAX header
// ('g'), which archive/tar returns as an entry. It returns what they
// describe, or problem, a description of the first thing wrong with them,
// or complete=false when buf ends first. Every block is checked, and the
// records of PAX headers are read and their values checked.
func Walk(buf []byte, base int64) (c Chain, problem string, complete bool) {
	localSize := int64(-1) // a PAX "size" record of the entry
	pos := 0
	block := func(at int) []byte {
		if at < 0 || at+512 > len(buf) {
			return nil
		}
		return buf[at : at+512]
	}
	for {
		b := block(pos)
		if b == nil {
			return c, "", false
		}
		off := base + int64(pos)
		if bytes.Equal(b, zeroBlock[:]) {
			if next := block(pos + 512); next != nil && !bytes.Equal(next, zeroBlock[:]) {
				return c, fmt.Sprintf("a single zero block at offset %d is followed by more data (an archive ends with two)", off), true
			}
			return c, "", false
		}
		if p := checkHeaderBlock(b); p != "" {
			return c, fmt.Sprintf("header block at offset %d: %s", off, p), true
		}
		size, _ := parseNumericField(b[hdrSize : hdrSize+12])
		typ := b[hdrTypeflag]
		switch typ {
		case 'x', 'g', 'L', 'K':
			if size > MaxSpecial {
				return c, fmt.Sprintf("%s of %d bytes at offset %d, over the 1 MiB archive/tar reads", SpecialName(typ), size, off), true
			}
			if size < 0 {
				return c, fmt.Sprintf("%s at offset %d has a negative size %d", SpecialName(typ), off, size), true
			}
			data := buf[min(pos+512, len(buf)):min(pos+512+int(size), len(buf))]
			if int64(len(data)) < size {
				return c, "", false
			}
			if typ == 'g' {
				c.Final, c.Global = off, true
			}
			if typ == 'g' || typ == 'x' {
				recs, p := parsePAXRecords(data, off+512, typ == 'g')
				if p != "" {
					return c, p, true
				}
				c.Records = recs
				if typ == 'g' {
					c.Final, c.Global = off, true
					c.DataEnd = off + 512 + size
					return c, "", true
				}
				localSize = -1
				for _, r := range recs {
					if r.Key == "size" && r.Value != "" {
						localSize, _ = strconv.ParseInt(r.Value, 10, 64)
					}
				}
			}
			pos += 512 + int(size+511)&^511
			continue
		}
		c.Final = off
		if localSize >= 0 {
			size = localSize
		}
		if size < 0 && !headerOnly(typ) {
			return c, fmt.Sprintf("header block at offset %d: negative size %d", off, size), true
		}
		end := pos + 512
		if typ == 'S' && b[gnuExtended] != 0 {
			for {
				ext := block(end)
				if ext == nil {
					return c, "", false
				}
				end += 512
				if ext[extExtended] == 0 {
					break
				}
			}
		}
		if headerOnly(typ) {
			size = 0
		}
		c.DataEnd = base + int64(end) + size
		return c, "", true
	}
}

// SpecialName names a header of type typ ('x', 'g', 'L' or 'K').
func SpecialName(typ byte) string {
	switch typ {
	case 'x':
		return "PAX extended header"
	case 'g':
		return "PAX global header"
	case 'L':
		return "GNU long name"
	}
	return "GNU long link name"
}

// checkHeaderBlock returns what archive/tar refuses in a header block, or "".
func checkHeaderBlock(b []byte) string {
	field := strings.Trim(string(b[hdrChksum:hdrChksum+8]), " \x00")
	stored, err := strconv.ParseInt(field, 8, 64)
	if err != nil {
		return fmt.Sprintf("checksum field %q is not an octal number", field)
	}
	if !IsHeader(b) {
		var sum int64
		for i, c := range b {
			if i >= hdrChksum && i < hdrChksum+8 {
				c = ' '
			}
			sum += int64(c)
		}
		return fmt.Sprintf("checksum %d does not match the block's %d (not a tar header, or a corrupt one)", stored, sum)
	}
	fields := []struct {
		name     string
		off, len int
	}{{"size", hdrSize, 12}, {"mode", hdrMode, 8}, {"uid", hdrUID, 8}, {"gid", hdrGID, 8}, {"mtime", hdrMtime, 12}}
	if string(b[hdrMagic:hdrMagic+5]) == "ustar" {
		fields = append(fields, struct {
			name     string
			off, len int
		}{"devmajor", hdrDevmajor, 8}, struct {
			name     string
			off, len int
		}{"devminor", hdrDevminor, 8})
	}
	for _, f := range fields {
		if _, err := parseNumericField(b[f.off : f.off+f.len]); err != nil {
			v, _, _ := strings.Cut(string(b[f.off:f.off+f.len]), "\x00")
			return fmt.Sprintf("%s field %q: %v", f.name, v, err)
		}
	}
	return ""
}

// parseNumericField is parseNumeric, saying what is wrong with a field
// that does not parse.
func parseNumericField(b []byte) (int64, error) {
	x, ok := parseNumeric(b)
	switch {
	case ok:
		return x, nil
	case len(b) > 0 && b[0]&0x80 != 0:
		return 0, errors.New("base-256 number overflows 64 bits")
	default:
		return 0, errors.New("not an octal number")
	}
}

// parsePAXRecords parses the data of a PAX header at offset off with the
// rules of archive/tar (and POSIX pax, "pax Extended Header File Format"):
// each record is "LENGTH KEYWORD=VALUE\n", LENGTH counting the whole
// record in decimal. It also checks the values of the keywords archive/tar
// parses. It returns the records in order, or a description of the first
// malformed one.
func parsePAXRecords(data []byte, off int64, global bool) ([]Record, string) {
	var recs []Record
	var sparse []string
	s := string(data)
	for at := 0; at < len(s); {
		rest := s[at:]
		bad := func(why string, n int) ([]Record, string) {
			raw := rest
			if n > 0 && n <= len(raw) {
				raw = raw[:n]
			} else if i := strings.IndexByte(raw, '\n'); i >= 0 {
				raw = raw[:i+1]
			}
			if len(raw) > 64 {
				raw = raw[:64] + "..."
			}
			return nil, fmt.Sprintf("malformed PAX record %q at offset %d: %s", raw, off+int64(at), why)
		}
		nStr, body, ok := strings.Cut(rest, " ")
		if !ok {
			return bad("no space after the length", 0)
		}
		n, err := strconv.ParseInt(nStr, 10, 0)
		if err != nil {
			return bad(fmt.Sprintf("length %q is not a decimal number", nStr), 0)
		}
		if n < 5 || n <= int64(len(nStr)+1) {
			return bad(fmt.Sprintf("length %d is too short for a record", n), 0)
		}
		if n > int64(len(rest)) {
			return bad(fmt.Sprintf("length %d runs past the end of the header's %d bytes of records", n, len(s)), 0)
		}
		rec := body[:int(n)-len(nStr)-1]
		if !strings.HasSuffix(rec, "\n") {
			return bad(fmt.Sprintf("length %d does not end the record at a newline", n), int(n))
		}
		k, v, ok := strings.Cut(rec[:len(rec)-1], "=")
		if !ok {
			return bad("no '=' between keyword and value", int(n))
		}
		switch {
		case k == "":
			return bad("empty keyword", int(n))
		case (k == "path" || k == "linkpath" || k == "uname" || k == "gname") && strings.IndexByte(v, 0) >= 0:
			return bad("NUL byte in the value", int(n))
		case strings.IndexByte(k, 0) >= 0:
			return bad("NUL byte in the keyword", int(n))
		}
		if v != "" {
			var verr error
			switch k {
			case "uid", "gid", "size":
				var x int64
				x, verr = strconv.ParseInt(v, 10, 64)
				if verr == nil && k == "size" && x < 0 {
					verr = errors.New("negative")
				}
			case "mtime", "atime", "ctime":
				_, verr = ParsePAXTime(v)
			}
			if verr != nil {
				return bad(fmt.Sprintf("%s value %q is invalid", k, v), int(n))
			}
		}
		if !global && (k == "GNU.sparse.offset" || k == "GNU.sparse.numbytes") {
			if (len(sparse)%2 == 0) != (k == "GNU.sparse.offset") || strings.Contains(v, ",") {
				return bad("GNU.sparse.offset and GNU.sparse.numbytes records out of order", int(n))
			}
			sparse = append(sparse, v)
		}
		recs = append(recs, Record{k, v})
		at += int(n)
	}
	return recs, ""
}

// Explain describes what is wrong with the header blocks in buf
// (the archive from offset base on) that Reader.Next refused with err,
// or returns "" when it cannot tell.
func Explain(buf []byte, base int64, err error) string {
	if !errors.Is(err, tar.ErrHeader) && !errors.Is(err, tar.ErrFieldTooLong) {
		return ""
	}
	c, problem, complete := Walk(buf, base)
	if problem != "" || !complete {
		return problem
	}
	for _, r := range c.Records {
		if strings.HasPrefix(r.Key, "GNU.sparse.") {
			return fmt.Sprintf("the GNU sparse map of the entry at offset %d is invalid", c.Final)
		}
	}
	if c.Final-base+512 <= int64(len(buf)) && buf[c.Final-base+hdrTypeflag] == 'S' {
		return fmt.Sprintf("the old GNU sparse map of the entry at offset %d is invalid", c.Final)
	}
	return ""
}
