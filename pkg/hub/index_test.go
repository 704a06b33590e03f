package hub

import (
	"slices"
	"testing"
)

func TestIndexOneAndMany(t *testing.T) {
	var ix index
	ix.init()
	a, b, c := &Conn{id: "a"}, &Conn{id: "b"}, &Conn{id: "c"}
	ids := func(key string) []string {
		var out []string
		ix.each(key, func(c *Conn) { out = append(out, c.id) })
		slices.Sort(out)
		return out
	}
	if !ix.add("k", a) || ix.add("k", a) || ix.size("k") != 1 {
		t.Fatal("first add not first, or a repeated add counted")
	}
	if ix.add("k", b) || ix.add("k", c) || ix.size("k") != 3 || !slices.Equal(ids("k"), []string{"a", "b", "c"}) {
		t.Fatalf("three connections: size %d, %v", ix.size("k"), ids("k"))
	}
	if ix.remove("k", a) || ix.remove("k", b) || ix.remove("other", c) {
		t.Fatal("a key with connections left was reported gone")
	}
	if ix.size("k") != 1 || !slices.Equal(ids("k"), []string{"c"}) || ix.remove("k", a) {
		t.Fatalf("back to one: size %d, %v", ix.size("k"), ids("k"))
	}
	ix.add("j", a)
	n := 0
	ix.eachKey(func(key string, conns []*Conn) { n += len(conns) })
	if n != 2 || ix.keys() != 2 {
		t.Fatalf("eachKey saw %d connections in %d keys, want 2 in 2", n, ix.keys())
	}
	if !ix.remove("k", c) || !ix.remove("j", a) || ix.size("k") != 0 || ix.keys() != 0 || ids("k") != nil {
		t.Fatal("removing the last connections left keys behind")
	}
}
