package rebuild

import (
	"errors"
	"io"
)

// pageCache reads a layer image through a cache of aligned pages: the
// reader reads inodes, directory blocks and chunk indexes a few bytes at a
// time, most of them close together, and a read system call for each
// would dominate the merge. It holds at most maxPages pages and forgets
// them all when full; Merge drops them once it has read the layer, so
// that only one layer's pages are held at a time. It is not safe for
// concurrent use.
type pageCache struct {
	r     io.ReaderAt
	pages map[int64][]byte // by page number; a short page ends the image
}

const (
	pageShift = 15 // 32 KiB pages
	pageSize  = 1 << pageShift
	maxPages  = 256 // 8 MiB
)

func newPageCache(r io.ReaderAt) *pageCache {
	return &pageCache{r: r, pages: map[int64][]byte{}}
}

// drop forgets the cached pages.
func (c *pageCache) drop() { clear(c.pages) }

// page returns page n, reading it on a miss.
func (c *pageCache) page(n int64) ([]byte, error) {
	if p, ok := c.pages[n]; ok {
		return p, nil
	}
	if len(c.pages) >= maxPages {
		clear(c.pages)
	}
	p := make([]byte, pageSize)
	k, err := c.r.ReadAt(p, n<<pageShift)
	if err != nil && !(errors.Is(err, io.EOF) && k < pageSize) {
		return nil, err
	}
	p = p[:k]
	c.pages[n] = p
	return p, nil
}

// ReadAt implements io.ReaderAt.
func (c *pageCache) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("rebuild: negative offset")
	}
	done := 0
	for done < len(b) {
		pos := off + int64(done)
		p, err := c.page(pos >> pageShift)
		if err != nil {
			return done, err
		}
		in := int(pos & (pageSize - 1))
		if in >= len(p) {
			return done, io.EOF
		}
		done += copy(b[done:], p[in:])
	}
	return done, nil
}
