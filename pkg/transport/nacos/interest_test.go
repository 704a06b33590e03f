package nacos

import (
	"context"
	"testing"
	"time"

	"github.com/pushd/pushd/pkg/hub"
)

// knowsAll reports whether n has the whole set of peer.
func knowsAll(n *node, peer string) bool {
	in := n.tr.interest
	in.peersMu.RLock()
	defer in.peersMu.RUnlock()
	p := in.peers[peer]
	return p != nil && p.complete
}

// interestCluster starts nodes a, b and c whose handlers hold the given
// keys (besides "all"), and waits until each knows the others' sets.
func interestCluster(t *testing.T, keys map[string][]string) map[string]*node {
	t.Helper()
	disc, _ := NewStatic()
	nodes := map[string]*node{}
	var peers []Peer
	for _, id := range []string{"a", "b", "c"} {
		n := startNode(t, Config{NodeID: id, Discovery: disc, Apps: []string{"demo"}}, &countingHandler{count: 1})
		n.tr.SetInterest("demo", hub.KeyAll, true)
		for _, k := range keys[id] {
			n.tr.SetInterest("demo", k, true)
		}
		nodes[id] = n
		peers = append(peers, n.tr.Self())
	}
	if err := disc.SetPeers(peers...); err != nil {
		t.Fatal(err)
	}
	for id, n := range nodes {
		for other := range nodes {
			if other != id {
				waitFor(t, 10*time.Second, id+" knows "+other+"'s keys", func() bool { return knowsAll(n, other) })
			}
		}
	}
	return nodes
}

func delivers(nodes map[string]*node) map[string]int32 {
	out := map[string]int32{}
	for id, n := range nodes {
		out[id] = n.handler.delivers.Load()
	}
	return out
}

// TestInterestRoutesToHolders: a send reaches only the nodes that hold one
// of its keys; "all" and targets without ids reach every node.
func TestInterestRoutesToHolders(t *testing.T) {
	nodes := interestCluster(t, map[string][]string{"b": {"u:bob", "c:news"}, "c": {"u:carl", "c:news"}})
	a := nodes["a"]
	cases := []struct {
		tgt  hub.Target
		want map[string]int32 // deliveries added per node
	}{
		{hub.Target{UserIDs: []string{"bob"}}, map[string]int32{"b": 1}},
		{hub.Target{UserIDs: []string{"carl", "nobody"}}, map[string]int32{"c": 1}},
		{hub.Target{Channels: []string{"news"}}, map[string]int32{"b": 1, "c": 1}},
		{hub.Target{UserIDs: []string{"nobody"}}, map[string]int32{}},
		{hub.Target{All: true}, map[string]int32{"b": 1, "c": 1}},
	}
	for _, c := range cases {
		before := delivers(nodes)
		got, err := a.tr.Deliver(context.Background(), "demo", c.tgt, hub.Event{Name: "e"})
		if err != nil || got != len(c.want) {
			t.Fatalf("%+v: Deliver = %d, %v; want %d", c.tgt, got, err, len(c.want))
		}
		after := delivers(nodes)
		for _, id := range []string{"b", "c"} {
			if after[id]-before[id] != c.want[id] {
				t.Fatalf("%+v: %s was asked %d times, want %d", c.tgt, id, after[id]-before[id], c.want[id])
			}
		}
	}
	// A survey without a target asks everybody.
	if reps, err := a.tr.Survey(context.Background(), "demo", hub.Request{Op: hub.OpStats}); err != nil || len(reps) != 2 {
		t.Fatalf("Survey = %d replies, %v", len(reps), err)
	}
	if reps, err := a.tr.Survey(context.Background(), "demo", hub.Request{Op: hub.OpStats, Target: hub.Target{UserIDs: []string{"bob"}}}); err != nil ||
		len(reps) != 1 || reps[0].NodeID != "b" {
		t.Fatalf("Survey of bob = %+v, %v; want b only", reps, err)
	}
}

// TestInterestAwaitedThenRouted: once AwaitInterest returned on the node
// that gained a key, a send from any node reaches it; once it dropped the
// key, sends skip it.
func TestInterestAwaitedThenRouted(t *testing.T) {
	nodes := interestCluster(t, nil)
	a, b := nodes["a"], nodes["b"]
	for round := range 20 {
		before := b.handler.delivers.Load()
		b.tr.SetInterest("demo", "u:dora", true)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := b.tr.AwaitInterest(ctx, "demo", []string{"u:dora"})
		cancel()
		if err != nil {
			t.Fatalf("round %d: AwaitInterest: %v", round, err)
		}
		if got, _ := a.tr.Deliver(context.Background(), "demo", hub.Target{UserIDs: []string{"dora"}}, hub.Event{Name: "e"}); got != 1 ||
			b.handler.delivers.Load() != before+1 {
			t.Fatalf("round %d: a send right after AwaitInterest counted %d", round, got)
		}
		b.tr.SetInterest("demo", "u:dora", false)
		ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
		err = b.tr.AwaitInterest(ctx, "demo", nil)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := a.tr.Deliver(context.Background(), "demo", hub.Target{UserIDs: []string{"dora"}}, hub.Event{Name: "e"}); got != 0 {
			t.Fatalf("round %d: a send after the key was dropped counted %d", round, got)
		}
	}
}

// TestInterestUnknownMeansEverything: a peer whose link to this node broke
// (or that never sent its set) gets every request again, until its new
// link brings its set.
func TestInterestUnknownMeansEverything(t *testing.T) {
	nodes := interestCluster(t, map[string][]string{"b": {"u:bob"}})
	a, b := nodes["a"], nodes["b"]
	if l := openLinkOf(b, "a"); l != nil {
		l.close(errLinkClosed)
	}
	waitFor(t, 5*time.Second, "a forgets b's keys", func() bool { return !knowsAll(a, "b") })
	before := b.handler.delivers.Load()
	if got, _ := a.tr.Deliver(context.Background(), "demo", hub.Target{UserIDs: []string{"carl"}}, hub.Event{Name: "e"}); got != 1 ||
		b.handler.delivers.Load() != before+1 {
		t.Fatalf("a send while b's set is unknown did not reach b: %d", got)
	}
	waitFor(t, 10*time.Second, "a knows b's keys again", func() bool { return knowsAll(a, "b") })
	before = b.handler.delivers.Load()
	if got, _ := a.tr.Deliver(context.Background(), "demo", hub.Target{UserIDs: []string{"carl"}}, hub.Event{Name: "e"}); got != 0 ||
		b.handler.delivers.Load() != before {
		t.Fatalf("b was asked for a user it does not hold: %d", got)
	}
	// A handler that never reports keys (not a hub) is sent everything.
	disc, _ := NewStatic()
	x := startNode(t, Config{NodeID: "x", Discovery: disc}, &countingHandler{count: 1})
	y := startNode(t, Config{NodeID: "y", Discovery: disc, Apps: []string{"demo"}}, &countingHandler{count: 1})
	if err := disc.SetPeers(x.tr.Self(), y.tr.Self()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "y links to x", func() bool { return openLinkOf(y, "x") != nil })
	if got, _ := x.tr.Deliver(context.Background(), "demo", hub.Target{UserIDs: []string{"anyone"}}, hub.Event{Name: "e"}); got != 1 {
		t.Fatalf("a peer without keys was not sent the request: %d", got)
	}
}

// TestInterestOffWithoutLinks: with PerRequestHTTP nothing is kept of the
// keys a hub reports (no pusher would ever take them).
func TestInterestOffWithoutLinks(t *testing.T) {
	disc, _ := NewStatic()
	n := startNode(t, Config{NodeID: "old", Discovery: disc, PerRequestHTTP: true}, &countingHandler{})
	for i := range 1000 {
		n.tr.SetInterest("demo", "u:"+string(rune('a'+i%26)), i%2 == 0)
	}
	in := n.tr.interest
	in.mu.Lock()
	changes, apps := len(in.changes), len(in.keys)
	in.mu.Unlock()
	if changes != 0 || apps != 0 {
		t.Fatalf("kept %d changes and keys of %d apps", changes, apps)
	}
	if err := n.tr.AwaitInterest(context.Background(), "demo", []string{"u:a"}); err != nil {
		t.Fatalf("AwaitInterest: %v", err)
	}
}
