package hub

import (
	"slices"
	"testing"
)

func TestConnListenersSortedSet(t *testing.T) {
	var c Conn
	if got := c.listenersLocked(); got == nil || len(got) != 0 {
		t.Fatalf("no listeners: %#v, want an empty non-nil slice (JSON [])", got)
	}
	if added := c.addListenersLocked([]string{"b", "a", "b", "c"}); !slices.Equal(added, []string{"b", "a", "c"}) {
		t.Fatalf("added %v, want [b a c] (given order, once each)", added)
	}
	if added := c.addListenersLocked([]string{"c", "d", "a"}); !slices.Equal(added, []string{"d"}) {
		t.Fatalf("added %v, want [d]", added)
	}
	if got := c.listenersLocked(); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Fatalf("listeners %v, want [a b c d]", got)
	}
	c.removeListenersLocked([]string{"b", "x", "d"})
	if got := c.listenersLocked(); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("after removing b, x, d: %v, want [a c]", got)
	}
	if !c.listensLocked("a") || !c.listensLocked("c") || c.listensLocked("b") || c.listensLocked("") {
		t.Fatal("listensLocked disagrees with the listeners")
	}
	got := c.listenersLocked()
	got[0] = "changed"
	if c.listensLocked("changed") {
		t.Fatal("listenersLocked returned the connection's own slice")
	}
}
