package hub

import (
	"context"
	"slices"
	"testing"
)

// A live event that the replay of a reconnect already gave, arriving
// after it from the node that stored it (stored, then published over the
// transport), is not shown again; newer live events are.
func TestResumeDropsLateLiveDuplicates(t *testing.T) {
	h := newHistoryHub(t, 100)
	ctx := context.Background()
	user := User{ID: "dee"}
	news := Target{Channels: []string{"h-news"}}
	c := mustConnect(t, h, ConnectRequest{User: user, Channels: []string{"h-news"}})
	drainFrames(t, c)
	publish(t, h, news, "n1")
	seen := lastID(drainFrames(t, c))
	h.Disconnect(ctx, Target{ConnectionIDs: []string{c.ID()}}, ReasonKicked)
	// n2 stored as another node stores it; its delivery is still on its way.
	late := Event{Name: "n2", Data: "n2"}
	if err := h.appendHistory(ctx, news, &late); err != nil {
		t.Fatal(err)
	}
	again := mustConnect(t, h, ConnectRequest{User: user, Channels: []string{"h-news"}, LastEventID: seen})
	if got := events(drainFrames(t, again)); !slices.Equal(got, []string{"n2"}) {
		t.Fatalf("replayed %v, want [n2]", got)
	}
	if n := h.HandleDeliver(ctx, h.cfg.App, news, late); n != 1 {
		t.Fatalf("the late delivery counted %d connections, want 1 (the connection has it)", n)
	}
	publish(t, h, news, "n3")
	if got := events(drainFrames(t, again)); !slices.Equal(got, []string{"n3"}) {
		t.Fatalf("after the replay got %v, want only the new [n3]", got)
	}
}
