// Package extended parses the extended options (-E) that rafs build, rafs
// convert and rafs-bench accept, spelled as mkfs.erofs spells them (see
// its man page): a comma-separated list in which each option may be
// negated with a leading '^' and later options override earlier ones.
package extended

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/rafs-dev/rafs/erofs"
)

// Names lists the options for help texts.
const Names = "ztailpacking, fragments[=SIZE], all-fragments[=SIZE], fragdedupe[=full|inode|off], dedupe, legacy-compress, noinline_data; ^OPT turns OPT off"

// The largest physical cluster erofs.Compression accepts: 1 MiB, and at
// most 2047 blocks.
const (
	maxPcluster       = 1 << 20
	maxPclusterBlocks = 2047
)

// Options are the parsed extended options: the state after the last one.
type Options struct {
	// NoInlineData is set by noinline_data and ^inline_data (true) or
	// inline_data and ^noinline_data (false); nil when none is given.
	NoInlineData *bool

	// Ztailpacking is ztailpacking: compressed tails inline.
	Ztailpacking bool

	// FullIndexes is legacy-compress: full lcluster indexes.
	FullIndexes bool

	// Fragments is fragments, also set by all-fragments.
	Fragments bool

	// AllFragments is all-fragments. As in mkfs.erofs, ^fragments turns
	// it off with Fragments, and ^all-fragments turns both off.
	AllFragments bool

	// PackedPclusterSize is the SIZE of the last fragments=SIZE or
	// all-fragments=SIZE: the packed inode's largest physical cluster in
	// bytes; 0 when none is given (or SIZE is 0), for the default.
	PackedPclusterSize int

	// FragDedupe is the last fragdedupe option's mode: fragdedupe and
	// fragdedupe=full give erofs.FragDedupeFull (also the default),
	// fragdedupe=inode erofs.FragDedupeInode, fragdedupe=off and
	// ^fragdedupe erofs.FragDedupeOff.
	FragDedupe erofs.FragDedupe

	// Dedupe is dedupe: compressed data dedupe.
	Dedupe bool

	// fragDedupe is the last fragdedupe option as given, "" for none.
	fragDedupe string
	// packedSize is the last option that gave a packed cluster size.
	packedSize string
	// allFragments is all-fragments as last given. mkfs.erofs keeps it
	// apart from fragments and packs whole files only when both are on
	// at the end, so all-fragments,^fragments,fragments packs whole files.
	allFragments bool
}

// Parse parses a comma-separated list of extended options. Empty items
// are skipped. An unknown option, a value where the option takes none or
// an ill-formed value is an error naming the option; so is a fragdedupe
// option when neither fragments nor all-fragments is on at the end, as it
// would have no effect.
func Parse(s string) (*Options, error) {
	o := &Options{}
	for _, item := range strings.Split(s, ",") {
		if item == "" {
			continue
		}
		if err := o.set(item); err != nil {
			return nil, fmt.Errorf("-E %s: %w", item, err)
		}
	}
	o.AllFragments = o.allFragments && o.Fragments
	if o.fragDedupe != "" && !o.Fragments {
		return nil, fmt.Errorf("-E %s: has no effect without fragments or all-fragments", o.fragDedupe)
	}
	return o, nil
}

// set applies one option.
func (o *Options) set(item string) error {
	key, val, hasVal := strings.Cut(item, "=")
	name, off := strings.CutPrefix(key, "^")
	switch name {
	case "ztailpacking", "legacy-compress", "noinline_data", "inline_data", "dedupe":
		if hasVal {
			return fmt.Errorf("%s takes no value", key)
		}
	case "fragments", "all-fragments", "fragdedupe":
		if hasVal && off {
			return fmt.Errorf("%s takes no value", key)
		}
		if hasVal && val == "" {
			return errors.New("empty value")
		}
	default:
		return fmt.Errorf("unknown extended option (want %s)", Names)
	}
	switch name {
	case "ztailpacking":
		o.Ztailpacking = !off
	case "legacy-compress":
		o.FullIndexes = !off
	case "noinline_data", "inline_data":
		no := off != (name == "noinline_data")
		o.NoInlineData = &no
	case "dedupe":
		o.Dedupe = !off
	case "fragments", "all-fragments":
		o.Fragments = !off
		if name == "all-fragments" {
			o.allFragments = !off
		}
		if hasVal {
			n, err := parseSize(val)
			if err != nil {
				return err
			}
			o.PackedPclusterSize, o.packedSize = n, item
			if n == 0 {
				o.packedSize = "" // as in mkfs.erofs: the default
			}
		}
	case "fragdedupe":
		switch {
		case off, val == "off":
			o.FragDedupe = erofs.FragDedupeOff
		case !hasVal, val == "full":
			o.FragDedupe = erofs.FragDedupeFull
		case val == "inode":
			o.FragDedupe = erofs.FragDedupeInode
		default:
			return fmt.Errorf("unknown mode %q (want full, inode or off)", val)
		}
		o.fragDedupe = item
	}
	return nil
}

// parseSize parses a size in bytes as mkfs.erofs does: decimal, 0x hex or
// 0 octal, optionally followed by k, m or g (KiB, MiB, GiB). 0 means the
// default.
func parseSize(s string) (int, error) {
	shift := 0
	switch s[len(s)-1] {
	case 'k', 'K':
		shift = 10
	case 'm', 'M':
		shift = 20
	case 'g', 'G':
		shift = 30
	}
	num := s
	if shift != 0 {
		num = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(num, 0, 32)
	if err != nil || n < 0 || n > maxPcluster>>shift {
		return 0, fmt.Errorf("size %q: want a number of bytes up to %d (k and m suffixes allowed)", s, maxPcluster)
	}
	return int(n) << shift, nil
}

// NeedCompression returns the options that are on and need a compressed
// image, in their mkfs.erofs spelling: none for an uncompressed one.
func (o *Options) NeedCompression() []string {
	var on []string
	add := func(b bool, name string) {
		if b {
			on = append(on, name)
		}
	}
	add(o.Ztailpacking, "ztailpacking")
	add(o.FullIndexes, "legacy-compress")
	add(o.Fragments && !o.AllFragments, "fragments")
	add(o.AllFragments, "all-fragments")
	add(o.fragDedupe != "", "fragdedupe")
	add(o.Dedupe, "dedupe")
	return on
}

// Apply checks the packed inode's cluster size against the block size
// and c's largest physical cluster (one block when c.PclusterSize is 0),
// which it may not exceed, as in mkfs.erofs, and sets c's fields.
func (o *Options) Apply(c *erofs.Compression, blockSize int) error {
	if p := o.PackedPclusterSize; o.packedSize != "" {
		limit := max(c.PclusterSize, blockSize)
		if p%blockSize != 0 || p/blockSize > maxPclusterBlocks || p > limit {
			return fmt.Errorf("-E %s: want a multiple of the block size %d, at most the largest physical cluster %d (-C)", o.packedSize, blockSize, limit)
		}
	}
	c.Ztailpacking = o.Ztailpacking
	c.FullIndexes = o.FullIndexes
	c.Fragments = o.Fragments
	c.AllFragments = o.AllFragments
	c.PackedPclusterSize = 0
	if o.Fragments {
		c.PackedPclusterSize = o.PackedPclusterSize
	}
	c.FragDedupe = o.FragDedupe
	c.Dedupe = o.Dedupe
	return nil
}
