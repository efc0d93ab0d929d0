package erofs

import "syscall"

// devInoKey is the hard-link identity of a file on a local file system.
type devInoKey struct{ dev, ino uint64 }

// sysMeta reads the metadata of an os.DirFS FileInfo's *syscall.Stat_t.
func sysMeta(sys any) (fsMeta, bool) {
	st, ok := sys.(*syscall.Stat_t)
	if !ok {
		return fsMeta{}, false
	}
	m := fsMeta{uid: st.Uid, gid: st.Gid}
	if t := st.Mode & syscall.S_IFMT; t == syscall.S_IFCHR || t == syscall.S_IFBLK {
		// glibc's gnu_dev_major and gnu_dev_minor.
		r := uint64(st.Rdev)
		m.devmajor = uint32((r>>8)&0xfff | (r>>32)&^0xfff)
		m.devminor = uint32(r&0xff | (r>>12)&^0xff)
	}
	if st.Nlink > 1 && st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		m.key = devInoKey{uint64(st.Dev), st.Ino}
	}
	return m, true
}
