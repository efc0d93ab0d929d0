package convert

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// POSIX ACL xattr encoding (the kernel's posix_acl_xattr form).
const (
	aclXattrVersion = 2
	aclUserObj      = 0x01
	aclUser         = 0x02
	aclGroupObj     = 0x04
	aclGroup        = 0x08
	aclMask         = 0x10
	aclOther        = 0x20
	aclUndefinedID  = 0xFFFFFFFF
)

// parseACL converts a textual ACL as GNU tar and star store it in
// SCHILY.acl.access / SCHILY.acl.default ("user::rwx,user:bob:r--:1000,
// group::r-x,mask::r-x,other::r--", entries separated by commas or
// newlines) into the binary xattr value. Named entries need a numeric id,
// either as the qualifier or as star's trailing field.
func parseACL(text string) (string, error) {
	type entry struct {
		tag  uint16
		perm uint16
		id   uint32
	}
	var entries []entry
	for _, f := range strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == '\n' }) {
		f = strings.TrimSpace(f)
		if f == "" || strings.HasPrefix(f, "#") {
			continue
		}
		parts := strings.Split(f, ":")
		if len(parts) < 3 || len(parts) > 4 {
			return "", fmt.Errorf("ACL entry %q: want tag:qualifier:perms", f)
		}
		var e entry
		named := parts[1] != ""
		switch parts[0] {
		case "user", "u":
			e.tag = aclUserObj
			if named {
				e.tag = aclUser
			}
		case "group", "g":
			e.tag = aclGroupObj
			if named {
				e.tag = aclGroup
			}
		case "mask", "m":
			e.tag = aclMask
		case "other", "o":
			e.tag = aclOther
		default:
			return "", fmt.Errorf("ACL entry %q: unknown tag", f)
		}
		for _, c := range parts[2] {
			switch c {
			case 'r':
				e.perm |= 4
			case 'w':
				e.perm |= 2
			case 'x':
				e.perm |= 1
			case '-':
			default:
				return "", fmt.Errorf("ACL entry %q: bad permissions", f)
			}
		}
		e.id = aclUndefinedID
		if e.tag == aclUser || e.tag == aclGroup {
			idText := parts[1]
			if len(parts) == 4 {
				idText = parts[3]
			}
			id, err := strconv.ParseUint(idText, 10, 32)
			if err != nil {
				return "", fmt.Errorf("ACL entry %q: no numeric id for %q", f, parts[1])
			}
			e.id = uint32(id)
		}
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		return "", nil
	}
	sort.SliceStable(entries, func(i, j int) bool {
		if entries[i].tag != entries[j].tag {
			return entries[i].tag < entries[j].tag
		}
		return entries[i].id < entries[j].id
	})
	b := binary.LittleEndian.AppendUint32(nil, aclXattrVersion)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return string(b), nil
}
