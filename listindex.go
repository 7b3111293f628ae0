package apikey

import (
	"slices"
	"strings"
)

// listIndex holds key IDs in List's order: by CreatedAt, then ID. Keys are
// mostly created in that order, so an insert is mostly an append; an
// imported key lands where its CreatedAt says.
type listIndex struct {
	ids []string
}

// listOrder compares two keys in List's order.
func listOrder(a, b *Key) int {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// after returns the position of the first key that sorts after k. key
// returns the current snapshot of an indexed ID.
func (x *listIndex) after(k *Key, key func(string) *Key) int {
	i, found := slices.BinarySearchFunc(x.ids, k, func(id string, k *Key) int { return listOrder(key(id), k) })
	if found {
		i++
	}
	return i
}

// insert adds k's ID at its place.
func (x *listIndex) insert(k *Key, key func(string) *Key) {
	if n := len(x.ids); n == 0 || listOrder(key(x.ids[n-1]), k) < 0 {
		x.ids = append(x.ids, k.ID)
		return
	}
	i, _ := slices.BinarySearchFunc(x.ids, k, func(id string, k *Key) int { return listOrder(key(id), k) })
	x.ids = slices.Insert(x.ids, i, k.ID)
}

// remove drops k's ID.
func (x *listIndex) remove(k *Key, key func(string) *Key) {
	if i, found := slices.BinarySearchFunc(x.ids, k, func(id string, k *Key) int { return listOrder(key(id), k) }); found {
		x.ids = slices.Delete(x.ids, i, i+1)
	}
}
