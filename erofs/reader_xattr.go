package erofs

// Extended attribute decoding for the reader (spec §4).

import "io"

// xattrLongPrefix is one entry of the long xattr name prefix table.
type xattrLongPrefix struct {
	full    string // short prefix of base_index followed by the infix
	visible bool   // false if base_index has no short prefix (hidden, as in Linux)
}

// readXattrPrefixes loads the long xattr name prefix table (spec §4.5).
func (f *FS) readXattrPrefixes() error {
	n := int(f.sb.XattrPrefixCount)
	if f.sb.FeatureIncompat&FeatureIncompatXattrPrefixes == 0 || n == 0 {
		return nil
	}
	if n > maxLongPrefixes {
		return corruptf("superblock: %d long xattr prefixes (max %d)", n, maxLongPrefixes)
	}
	// Where the table lives: plain on the primary device, or inside the
	// packed inode's data.
	var r io.ReaderAt = f.r
	limit := f.size
	what := "long xattr prefix table"
	if f.sb.FeatureCompat&FeatureCompatPlainXattrPf == 0 && f.sb.PackedNid != 0 {
		pi, err := f.inode(f.sb.PackedNid)
		if err != nil {
			return err
		}
		if !pi.isReg() {
			return inodeCorruptf(pi.nid, "packed inode is not a regular file")
		}
		d, err := f.data(pi)
		if err != nil {
			return err
		}
		r, limit = d, pi.size
		what = "long xattr prefix table in packed inode"
	}
	pos := int64(f.sb.XattrPrefixStart) * 4
	f.prefixes = make([]xattrLongPrefix, 0, n)
	var hdr [2]byte
	for i := range n {
		pos = roundUp64(pos, 4)
		if err := readFull(r, hdr[:], pos); err != nil {
			return ioErrorf(err, "%s: prefix %d at %d", what, i, pos)
		}
		l := int64(sizedRecordSize(hdr[:]))
		if l == 0 {
			return corruptf("%s: prefix %d has length 0", what, i)
		}
		if limit >= 0 && pos+2+l > limit {
			return corruptf("%s: prefix %d (%d bytes at %d) beyond end", what, i, l, pos)
		}
		b := make([]byte, l)
		if err := readFull(r, b, pos+2); err != nil {
			return ioErrorf(err, "%s: prefix %d at %d", what, i, pos)
		}
		baseIndex, infix := decodeXattrLongPrefix(b)
		base := XattrPrefix(baseIndex)
		f.prefixes = append(f.prefixes, xattrLongPrefix{
			full:    base + string(infix),
			visible: base != "" && baseIndex != XattrIndexLustre,
		})
		pos += 2 + l
	}
	return nil
}

// xattrName builds the full name of an xattr entry. ok is false for entries
// Linux does not expose (index 0, unknown indexes, lustre, hidden long
// prefixes).
func (f *FS) xattrName(nid uint64, index uint8, suffix []byte) (name string, ok bool, err error) {
	if index&xattrLongPrefixFlag != 0 {
		k := int(index &^ xattrLongPrefixFlag)
		if k >= len(f.prefixes) {
			return "", false, inodeCorruptf(nid, "xattr long prefix %d out of range (%d prefixes)", k, len(f.prefixes))
		}
		p := f.prefixes[k]
		return p.full + string(suffix), p.visible, nil
	}
	if index == XattrIndexLustre {
		return "", false, nil
	}
	p := XattrPrefix(index)
	if p == "" {
		return "", false, nil
	}
	return p + string(suffix), true, nil
}

// xattrs returns the extended attributes of an inode, or nil if it has
// none.
func (f *FS) xattrs(i *fsInode) (map[string]string, error) {
	if i.xattrLen == 0 {
		return nil, nil
	}
	body := make([]byte, i.xattrLen)
	if err := readFull(f.r, body, i.pos+i.coreSize); err != nil {
		return nil, ioErrorf(err, "inode %d: reading xattrs", i.nid)
	}
	shared := int(DecodeXattrIbodyHeader(body).SharedCount)
	p := xattrIbodyHeaderSize + 4*shared
	if p > len(body) {
		return nil, inodeCorruptf(i.nid, "%d shared xattrs overflow the %d-byte xattr body", shared, len(body))
	}
	m := make(map[string]string)
	var hdr [xattrEntryHeaderSize]byte
	for k := range shared {
		id := SharedXattrID(body, k)
		pos := f.xattrBase + int64(id)*4
		if err := readFull(f.r, hdr[:], pos); err != nil {
			return nil, ioErrorf(err, "inode %d: shared xattr %d", i.nid, id)
		}
		nl, index, vl := DecodeXattrEntryHeader(hdr[:])
		if f.size >= 0 && pos+int64(xattrEntryHeaderSize+nl+vl) > f.size {
			return nil, inodeCorruptf(i.nid, "shared xattr %d beyond end of image", id)
		}
		e := make([]byte, nl+vl)
		if err := readFull(f.r, e, pos+xattrEntryHeaderSize); err != nil {
			return nil, ioErrorf(err, "inode %d: shared xattr %d", i.nid, id)
		}
		if err := f.addXattr(m, i.nid, index, e[:nl], e[nl:]); err != nil {
			return nil, err
		}
	}
	for p < len(body) {
		e, size, err := DecodeXattrEntry(body[p:])
		if err != nil {
			return nil, inodeCorruptf(i.nid, "xattr entry at %d of the %d-byte xattr body: %v", p, len(body), err)
		}
		if err := f.addXattr(m, i.nid, e.NameIndex, e.Name, e.Value); err != nil {
			return nil, err
		}
		p += size
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

func (f *FS) addXattr(m map[string]string, nid uint64, index uint8, suffix, value []byte) error {
	name, ok, err := f.xattrName(nid, index, suffix)
	if err != nil || !ok {
		return err
	}
	if _, dup := m[name]; !dup {
		m[name] = string(value)
	}
	return nil
}
