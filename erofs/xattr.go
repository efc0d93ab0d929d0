package erofs

import (
	"fmt"
	"sort"
	"strings"
)

// xattr is one extended attribute of an inode being written.
type xattr struct {
	name  string // full name, e.g. "trusted.overlay.opaque"
	value string
}

// key is the byte string mkfs.erofs orders xattrs by: name, NUL, value.
func (x xattr) key() string { return x.name + "\x00" + x.value }

// SplitXattrName finds the short name index for a full xattr name and returns
// it with the suffix stored after it. ok is false if no index Linux knows
// fits (see StorableXattr).
func SplitXattrName(name string) (index uint8, suffix string, ok bool) {
	for _, p := range xattrPrefixes {
		if p.index == XattrIndexPosixACLAccess || p.index == XattrIndexPosixACLDefault {
			if name == p.prefix {
				return p.index, "", true
			}
			continue
		}
		if strings.HasPrefix(name, p.prefix) && len(name) > len(p.prefix) {
			return p.index, name[len(p.prefix):], true
		}
	}
	return 0, "", false
}

// StorableXattr reports whether an xattr name has a prefix an EROFS image
// can store and Linux can show: user., trusted., security., or one of the
// POSIX ACL names system.posix_acl_access and system.posix_acl_default.
func StorableXattr(name string) bool {
	_, _, ok := SplitXattrName(name)
	return ok
}

// CheckXattr reports why an xattr with this name and a value of valueLen
// bytes cannot be stored in an EROFS image (or a RAFS v6 bootstrap, whose
// inodes are EROFS inodes), if it cannot: its name needs a prefix
// StorableXattr accepts and at most 255 bytes (an entry's name length is
// one byte), its value at most 65535 bytes (the value length is two).
// erofs.Writer, erofs.Tree and rafs apply this one rule.
func CheckXattr(name string, valueLen int) error {
	if _, _, ok := SplitXattrName(name); !ok {
		return fmt.Errorf("xattr %q: name has no prefix EROFS can store (user., trusted., security., system.posix_acl_*)", name)
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("xattr %.40q...: name of %d bytes exceeds %d", name, len(name), maxNameLen)
	}
	if valueLen > xattrMaxValueSize {
		return fmt.Errorf("xattr %q: value of %d bytes exceeds %d", name, valueLen, xattrMaxValueSize)
	}
	return nil
}

// longPrefix is a long xattr name prefix: a short prefix plus an infix.
type longPrefix struct {
	base  uint8
	infix string
	full  string
}

// recordSize is the size of the prefix's record in the prefix table.
func (p longPrefix) recordSize() int { return roundUp(2+1+len(p.infix), 4) }

// xattrEncoder turns xattrs into on-disk entries using the chosen long
// prefixes.
type xattrEncoder struct {
	prefixes []longPrefix // in table order
}

// encoding returns the name index and stored name for x.
func (e *xattrEncoder) encoding(name string) (index uint8, stored string) {
	best := -1
	for i, p := range e.prefixes {
		if strings.HasPrefix(name, p.full) && (best < 0 || len(p.full) > len(e.prefixes[best].full)) {
			best = i
		}
	}
	if best >= 0 {
		return xattrLongPrefixFlag | uint8(best), name[len(e.prefixes[best].full):]
	}
	index, suffix, _ := SplitXattrName(name)
	return index, suffix
}

// entrySize is the on-disk size of x's entry.
func (e *xattrEncoder) entrySize(x xattr) int {
	_, stored := e.encoding(x.name)
	return XattrEntrySize(len(stored), len(x.value))
}

// appendEntry appends x's on-disk entry to b.
func (e *xattrEncoder) appendEntry(b []byte, x xattr) []byte {
	index, stored := e.encoding(x.name)
	return AppendXattrEntry(b, index, stored, x.value)
}

// appendPrefixTable appends the long prefix table records to b, each
// 4-byte aligned relative to the table start.
func (e *xattrEncoder) appendPrefixTable(b []byte) []byte {
	for _, p := range e.prefixes {
		b = appendXattrLongPrefix(b, p.base, p.infix)
	}
	return b
}

// chooseLongPrefixes picks long xattr name prefixes that make the image
// smaller. uses maps each distinct xattr name to the number of entries
// stored with that name. Candidates are every name's dotted prefixes and the
// whole name; a candidate is kept while it saves more bytes in entries than
// its table record costs, greedily by saving.
func chooseLongPrefixes(uses map[string]int, valueLens map[string][]int) []longPrefix {
	type cand struct {
		p     longPrefix
		names []string
	}
	cands := map[string]*cand{}
	for name := range uses {
		base, suffix, ok := SplitXattrName(name)
		if !ok || suffix == "" {
			continue
		}
		short := name[:len(name)-len(suffix)]
		for i := 1; i <= len(suffix); i++ {
			if i < len(suffix) && suffix[i-1] != '.' {
				continue
			}
			infix := suffix[:i]
			full := short + infix
			c := cands[full]
			if c == nil {
				c = &cand{p: longPrefix{base: base, infix: infix, full: full}}
				cands[full] = c
			}
			c.names = append(c.names, name)
		}
	}
	// stored[name] is the stored length of a name under the current choice.
	stored := map[string]int{}
	for name := range uses {
		_, suffix, _ := SplitXattrName(name)
		stored[name] = len(suffix)
	}
	saving := func(c *cand) int {
		s := -c.p.recordSize()
		for _, name := range c.names {
			cur := stored[name]
			next := len(name) - len(c.p.full)
			if next >= cur {
				continue
			}
			for _, vl := range valueLens[name] {
				s += XattrEntrySize(cur, vl) - XattrEntrySize(next, vl)
			}
		}
		return s
	}
	keys := make([]string, 0, len(cands))
	for k := range cands {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var chosen []longPrefix
	for len(chosen) < maxLongPrefixes {
		bestKey, bestSave := "", 0
		for _, k := range keys {
			if s := saving(cands[k]); s > bestSave {
				bestKey, bestSave = k, s
			}
		}
		if bestKey == "" {
			break
		}
		c := cands[bestKey]
		delete(cands, bestKey)
		for i, k := range keys {
			if k == bestKey {
				keys = append(keys[:i], keys[i+1:]...)
				break
			}
		}
		chosen = append(chosen, c.p)
		for _, name := range c.names {
			if n := len(name) - len(c.p.full); n < stored[name] {
				stored[name] = n
			}
		}
	}
	// Keep a stable table order: by full prefix.
	sort.Slice(chosen, func(i, j int) bool { return chosen[i].full < chosen[j].full })
	return chosen
}

// xattrFilter computes an inode's xattr name bloom filter.
func xattrFilter(xs []xattr) uint32 {
	var set uint32
	for _, x := range xs {
		base, suffix, _ := SplitXattrName(x.name)
		set |= 1 << (xxh32([]byte(suffix), xattrFilterSeed+uint32(base)) & 31)
	}
	return ^set
}
