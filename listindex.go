package apikey

import (
	"slices"
	"strings"
)

// listIndex holds key numbers in List's order: by CreatedAt, then ID.
// Keys are mostly created in that order, so an insert is mostly an append;
// an imported key lands where its CreatedAt says. It holds no pointer: the
// order is read from the records (MemoryStore.listCmp).
type listIndex struct {
	ids []uint32
}

// listOrder compares two keys in List's order.
func listOrder(a, b *Key) int {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// after returns the position of the first key that sorts after key number
// no. cmp compares two key numbers in List's order.
func (x *listIndex) after(no uint32, cmp func(a, b uint32) int) int {
	i, found := slices.BinarySearchFunc(x.ids, no, cmp)
	if found {
		i++
	}
	return i
}

// insert adds key number no at its place.
func (x *listIndex) insert(no uint32, cmp func(a, b uint32) int) {
	if n := len(x.ids); n == 0 || cmp(x.ids[n-1], no) < 0 {
		x.ids = append(x.ids, no)
		return
	}
	i, _ := slices.BinarySearchFunc(x.ids, no, cmp)
	x.ids = slices.Insert(x.ids, i, no)
}

// remove drops key number no.
func (x *listIndex) remove(no uint32, cmp func(a, b uint32) int) {
	if i, found := slices.BinarySearchFunc(x.ids, no, cmp); found {
		x.ids = slices.Delete(x.ids, i, i+1)
	}
}
