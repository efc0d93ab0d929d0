package erofs

import "time"

// Entry describes one file system object to add to a Writer. It plays the
// role archive/tar's Header plays for a tar.Writer.
type Entry struct {
	// Path is the slash-separated path of the object relative to the root
	// of the image. "" and "." name the root directory itself. Paths are
	// cleaned; absolute paths and ".." components are rejected.
	Path string

	// Mode holds the file type (one of ModeRegular, ModeDir, ...) ORed with
	// the permission bits, including setuid, setgid and sticky (07777).
	Mode uint32

	// UID and GID are the numeric owner and group.
	UID, GID uint32

	// ModTime is the modification time; sub-second precision is kept.
	ModTime time.Time

	// Size is the length of a regular file's data. Add reads exactly Size
	// bytes from its data reader. It is ignored for other types.
	Size int64

	// Linkname is the target of a symbolic link.
	Linkname string

	// Devmajor and Devminor are the device number of a character or block
	// device. A character device 0:0 is an overlayfs whiteout.
	Devmajor, Devminor uint32

	// Xattrs are the extended attributes, by full name (for example
	// "user.comment" or "security.capability") to raw value.
	Xattrs map[string]string
}

// IsWhiteout reports whether e is an overlayfs whiteout: a character device
// with device number 0:0.
func (e *Entry) IsWhiteout() bool {
	return e.Mode&ModeTypeMask == ModeCharDevice && e.Devmajor == 0 && e.Devminor == 0
}
