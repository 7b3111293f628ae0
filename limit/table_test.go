package limit

import (
	"math/rand/v2"
	"testing"
)

// The table agrees with a Go map through random sets, deletes and
// sweeps, with keys crowded into few first words so that walks are long.
func TestTableAgreesWithAMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var tab table
	ref := map[stateKey]packed{}
	key := func() stateKey { return stateKey{uint64(r.IntN(64)), uint64(r.IntN(8))} }
	for step := range 200_000 {
		k := key()
		switch op := r.IntN(10); {
		case op < 6:
			v := packed(2 + r.Uint64N(1000))
			tab.set(k, v)
			ref[k] = v
		case op < 9:
			tab.set(k, empty)
			delete(ref, k)
		default:
			// Values below 500 are rate untils in the past at t = 500.
			tab.sweep(500)
			for k, v := range ref {
				if v <= 500 {
					delete(ref, k)
				}
			}
		}
		if tab.live != len(ref) {
			t.Fatalf("step %d: %d live, want %d", step, tab.live, len(ref))
		}
		if got := tab.get(k); got != ref[k] {
			t.Fatalf("step %d: get(%v) = %d, want %d", step, k, got, ref[k])
		}
		if 4*tab.used > 3*len(tab.slots) && len(tab.slots) > 0 {
			t.Fatalf("step %d: %d of %d slots used", step, tab.used, len(tab.slots))
		}
	}
	for k, v := range ref {
		if got := tab.get(k); got != v {
			t.Fatalf("get(%v) = %d, want %d", k, got, v)
		}
	}
}
