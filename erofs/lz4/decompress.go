package lz4

import "fmt"

// decompress decodes the block in src into dst. In partial mode it stops
// without error once dst is full.
func decompress(dst, src []byte, partial bool) (int, error) {
	if partial && len(dst) == 0 {
		return 0, nil
	}
	ip, op := 0, 0
	for {
		if ip >= len(src) {
			return op, fmt.Errorf("%w: missing token at input offset %d", ErrCorrupt, ip)
		}
		tok := src[ip]
		ip++

		// Literals.
		lit := int(tok >> 4)
		if lit == runMask {
			for {
				if ip >= len(src) {
					return op, fmt.Errorf("%w: truncated literal length at input offset %d", ErrCorrupt, ip)
				}
				b := src[ip]
				ip++
				lit += int(b)
				if b != 255 {
					break
				}
			}
		}
		if lit > len(src)-ip {
			return op, fmt.Errorf("%w: %d literals at input offset %d run past the end of the block (%d bytes)", ErrCorrupt, lit, ip, len(src))
		}
		if lit > len(dst)-op {
			if !partial {
				return op, fmt.Errorf("%w: literals at output offset %d exceed %d bytes", ErrShortBuffer, op, len(dst))
			}
			return op + copy(dst[op:], src[ip:ip+lit]), nil
		}
		op += copy(dst[op:], src[ip:ip+lit])
		ip += lit
		if ip == len(src) {
			return op, nil
		}
		if partial && op == len(dst) {
			return op, nil
		}

		// Match.
		if len(src)-ip < 2 {
			return op, fmt.Errorf("%w: truncated match offset at input offset %d", ErrCorrupt, ip)
		}
		off := int(src[ip]) | int(src[ip+1])<<8
		ip += 2
		if off == 0 {
			return op, fmt.Errorf("%w: zero match offset at input offset %d", ErrCorrupt, ip-2)
		}
		if off > op {
			return op, fmt.Errorf("%w: match offset %d at output offset %d reaches before the start of the output", ErrCorrupt, off, op)
		}
		ml := int(tok & runMask)
		if ml == runMask {
			for {
				if ip >= len(src) {
					return op, fmt.Errorf("%w: truncated match length at input offset %d", ErrCorrupt, ip)
				}
				b := src[ip]
				ip++
				ml += int(b)
				if b != 255 {
					break
				}
			}
		}
		ml += minMatch
		if ml > len(dst)-op {
			if !partial {
				return op, fmt.Errorf("%w: match at output offset %d exceeds %d bytes", ErrShortBuffer, op, len(dst))
			}
			ml = len(dst) - op
			copyMatch(dst, op, off, ml)
			return len(dst), nil
		}
		copyMatch(dst, op, off, ml)
		op += ml
	}
}

// copyMatch copies ml bytes from off bytes back to dst[op:], where the two
// ranges may overlap (then the off bytes before op repeat).
func copyMatch(dst []byte, op, off, ml int) {
	if off >= ml {
		copy(dst[op:op+ml], dst[op-off:op-off+ml])
		return
	}
	if off == 1 {
		b := dst[op-1]
		d := dst[op : op+ml]
		for i := range d {
			d[i] = b
		}
		return
	}
	// Overlapping: each copy doubles the repeated period available.
	end := op + ml
	src := op - off
	for op < end {
		op += copy(dst[op:end], dst[src:op])
	}
}
