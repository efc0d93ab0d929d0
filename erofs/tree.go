package erofs

// The namespace both the Writer and Tree (the Nydus builder's tree) keep,
// compact so that its memory grows with the number of entries and the
// bytes of their names only. Inodes, directory entries
// and names live in arenas of fixed-size chunks: an element never moves
// once added, so pointers to it stay valid while the arena grows, and the
// chunks hold no pointers for the garbage collector to scan. Objects refer
// to each other by index. One hash index over (directory, name) finds a
// directory's entries for the whole tree; Close sorts the entries by
// directory and name instead of keeping a sorted structure per directory.

import (
	"errors"
	"hash/maphash"
)

// noID marks the absence of an inode (a removed directory entry) and of
// a data block.
const noID = ^uint32(0)

// arenaChunk is the number of elements in each chunk of an arena.
const arenaChunk = 512

// errTooManyEntries is returned when a tree outgrows its 32-bit indexes.
var errTooManyEntries = errors.New("more than 4294967294 entries")

// arena is a growable array of T stored in chunks of arenaChunk elements.
type arena[T any] struct {
	chunks [][]T
	n      int
}

// add appends a zero element and returns its index and address.
func (a *arena[T]) add() (uint32, *T, error) {
	if uint64(a.n) >= uint64(noID) {
		return 0, nil, errTooManyEntries
	}
	i := a.n % arenaChunk
	if i == 0 {
		a.chunks = append(a.chunks, make([]T, arenaChunk))
	}
	id := uint32(a.n)
	a.n++
	return id, &a.chunks[len(a.chunks)-1][i], nil
}

// at returns the address of element id.
func (a *arena[T]) at(id uint32) *T {
	return &a.chunks[id/arenaChunk][id%arenaChunk]
}

// dentry is one name in a directory.
type dentry struct {
	dir  uint32  // the directory's inode
	ino  uint32  // the inode the name refers to; noID once removed
	name nameRef // the name, in the tree's name store
}

// nameRef locates a name in a nameStore: chunk<<24 | offset<<8 | length.
type nameRef uint64

// nameChunkSize is the most bytes of names in one chunk of a nameStore.
const nameChunkSize = 1 << 16

// nameStore keeps names (at most 255 bytes each) back to back in chunks
// of up to nameChunkSize bytes; a name never spans two chunks.
type nameStore struct {
	chunks [][]byte
}

func (s *nameStore) add(name string) nameRef {
	k := len(s.chunks) - 1
	if k < 0 || len(s.chunks[k])+len(name) > nameChunkSize {
		// The first chunk grows as needed, so a small tree stays small;
		// later ones are allocated whole, so that none holds more
		// capacity than it can use.
		var c []byte
		if k >= 0 {
			c = make([]byte, 0, nameChunkSize)
		}
		s.chunks = append(s.chunks, c)
		k++
	}
	off := len(s.chunks[k])
	s.chunks[k] = append(s.chunks[k], name...)
	return nameRef(uint64(k)<<24 | uint64(off)<<8 | uint64(len(name)))
}

// get returns the bytes of a name. They must not be modified.
func (s *nameStore) get(r nameRef) []byte {
	off := int(r>>8) & (nameChunkSize - 1)
	return s.chunks[r>>24][off : off+int(r&0xFF)]
}

// dirIndex maps (directory, name) to a dentry: an open-addressing hash
// table with linear probing. A slot holds a 32-bit tag from the hash and
// the dentry's index plus one, 0 marking an empty slot. The slot a key
// starts probing at is the top bits of its tag, so growing the table needs
// no name. The hash is seeded per tree, so crafted names cannot make
// entries collide. Entries are never deleted: a removed name keeps its
// dentry, with no inode.
type dirIndex struct {
	seed  maphash.Seed
	slots []uint64
	used  int
	shift uint // 32 - log2(len(slots))
}

// tag hashes a key.
func (x *dirIndex) tag(dir uint32, name string) uint32 {
	h := maphash.String(x.seed, name)
	h = (h ^ uint64(dir)*0x9E3779B97F4A7C15) * 0xBF58476D1CE4E5B9
	return uint32(h >> 32)
}

// find returns the dentry for name in dir, or noID, and the key's tag.
func (w *namespace) find(dir uint32, name string) (uint32, uint32) {
	x := &w.index
	t := x.tag(dir, name)
	if len(x.slots) == 0 {
		return noID, t
	}
	mask := len(x.slots) - 1
	for i := int(t >> x.shift); ; i = (i + 1) & mask {
		s := x.slots[i]
		if s == 0 {
			return noID, t
		}
		if uint32(s>>32) != t {
			continue
		}
		id := uint32(s) - 1
		d := w.dents.at(id)
		if d.dir == dir && string(w.names.get(d.name)) == name {
			return id, t
		}
	}
}

// insert adds a dentry for a name that find did not find, with find's tag.
func (w *namespace) insert(dir uint32, name string, t uint32, ino uint32) error {
	id, d, err := w.dents.add()
	if err != nil {
		return err
	}
	*d = dentry{dir: dir, ino: ino, name: w.names.add(name)}
	x := &w.index
	if (x.used+1)*4 > len(x.slots)*3 {
		x.grow()
	}
	x.place(uint64(t)<<32 | uint64(id+1))
	x.used++
	return nil
}

// place puts a slot value at the first free slot from its tag's start.
func (x *dirIndex) place(s uint64) {
	mask := len(x.slots) - 1
	i := int(uint32(s>>32) >> x.shift)
	for x.slots[i] != 0 {
		i = (i + 1) & mask
	}
	x.slots[i] = s
}

// grow doubles the table (making it 16 slots at first).
func (x *dirIndex) grow() {
	old := x.slots
	if len(old) == 0 {
		x.slots, x.shift = make([]uint64, 16), 28
		return
	}
	x.slots = make([]uint64, 2*len(old))
	x.shift--
	for _, s := range old {
		if s != 0 {
			x.place(s)
		}
	}
}
