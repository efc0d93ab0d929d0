package lzma

import (
	"math/rand"
	"testing"
)

// TestRandomRoundTrips round-trips random slices of mixed data with random
// budgets and options through reused encoders.
func TestRandomRoundTrips(t *testing.T) {
	r := rand.New(rand.NewSource(9))
	mixed := testInputs(t)["mixed1m"]
	encs := map[int]*Encoder{}
	for i := 0; i < 1000; i++ {
		sel := r.Intn(16)
		e := encs[sel]
		if e == nil {
			o := Options{DictSize: MinDictSize << (sel & 3)}
			switch sel >> 2 {
			case 1:
				o.LC, o.LP, o.PB = 0, 2, 0
			case 2:
				o.LC, o.LP, o.PB = 4, 0, 4
			case 3:
				o.Level = 1
			}
			e, _ = NewEncoder(o)
			encs[sel] = e
		}
		off := r.Intn(len(mixed))
		n := min(r.Intn(20000), len(mixed)-off)
		src := mixed[off : off+n]
		if r.Intn(4) == 0 {
			src = make([]byte, r.Intn(100))
			r.Read(src)
		}
		roundTrip(t, e, src, r.Intn(70000), MinDictSize<<(sel&3))
	}
}
