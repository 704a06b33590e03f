package hub

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestConnectChannels(t *testing.T) {
	h := newTestHub(t, Config{MaxChannels: 3, Writers: -1})
	c := mustConnect(t, h, ConnectRequest{User: User{ID: "u"}, Channels: []string{"b", "a", "b"}})
	if got := c.Channels(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("Channels = %v, want [a b] (sorted, once each)", got)
	}
	if ci := c.Snapshot(); ci.Channel != "a" || !slices.Equal(ci.Channels, []string{"a", "b"}) {
		t.Fatalf("Snapshot channel %q channels %v", ci.Channel, ci.Channels)
	}
	for _, bad := range [][]string{{"a", "b", "c", "d"}, {""}, {"a\nb"}} {
		_, err := h.Connect(context.Background(), ConnectRequest{User: User{ID: "u"}, Channels: bad})
		if !errors.Is(err, ErrTooManyChannels) && !errors.Is(err, ErrInvalidName) {
			t.Errorf("Connect with channels %q: %v, want a refusal", bad, err)
		}
	}
}

func TestChangeChannelsLocal(t *testing.T) {
	ctx := context.Background()
	h := newTestHub(t, Config{MaxChannels: 3, Writers: -1})
	c := mustConnect(t, h, ConnectRequest{User: User{ID: "u", TenantID: "t"}, Channels: []string{"a"}})
	if got, err := h.ChangeChannels(ctx, c.ID(), User{ID: "u", TenantID: "t"}, true, []string{"b", "c"}); err != nil || !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("join b, c = %v, %v", got, err)
	}
	if _, err := h.ChangeChannels(ctx, c.ID(), User{ID: "u", TenantID: "t"}, true, []string{"d"}); !errors.Is(err, ErrTooManyChannels) {
		t.Fatalf("a fourth channel: %v, want ErrTooManyChannels", err)
	}
	for _, other := range []User{{ID: "u", TenantID: "other"}, {ID: "v", TenantID: "t"}} {
		if _, err := h.ChangeChannels(ctx, c.ID(), other, false, []string{"a"}); !errors.Is(err, ErrUnknownConnection) {
			t.Errorf("%+v changing u's channels: %v, want ErrUnknownConnection", other, err)
		}
	}
	if n, err := h.Send(ctx, Target{Channels: []string{"c"}}, Event{Name: "e", Data: "x"}); err != nil || n != 1 {
		t.Fatalf("send to c = %d, %v", n, err)
	}
	if got, err := h.ChangeChannels(ctx, c.ID(), User{ID: "u", TenantID: "t"}, false, []string{"c", "zz"}); err != nil || !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("leave c = %v, %v", got, err)
	}
	if n, _ := h.Send(ctx, Target{Channels: []string{"c"}}, Event{Name: "e", Data: "x"}); n != 0 {
		t.Fatalf("send to c after leaving = %d, want 0", n)
	}
	if n, err := h.Subscribe(ctx, Target{UserIDs: []string{"u"}}, []string{"b"}, false); n != 1 || err != nil {
		t.Fatalf("Subscribe(leave b) = %d, %v; want 1 changed", n, err)
	}
	if n, err := h.Subscribe(ctx, Target{UserIDs: []string{"u"}}, []string{"b"}, false); n != 0 || err != nil {
		t.Fatalf("Subscribe(leave b) again = %d, %v; want 0 changed", n, err)
	}
	if n, err := h.Subscribe(ctx, Target{UserIDs: []string{"u"}}, []string{"x", "y", "z"}, true); n != 0 || err != nil {
		t.Fatalf("Subscribe beyond the cap = %d, %v; want 0 changed", n, err)
	}
	if _, err := h.Subscribe(ctx, Target{}, []string{"x"}, true); !errors.Is(err, ErrNoTarget) {
		t.Fatalf("Subscribe without target: %v", err)
	}
}

// TestChannelsRaceDisconnect: changes racing the end of their connection
// leave no index entry and no interest behind.
func TestChannelsRaceDisconnect(t *testing.T) {
	ctx := context.Background()
	tr := newFakeTransport()
	h := newTestHub(t, Config{Writers: -1, Transport: tr})
	u := User{ID: "u"}
	for i := range 50 {
		c := mustConnect(t, h, ConnectRequest{User: u})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, _ = h.ChangeChannels(ctx, c.ID(), u, true, []string{"ch" + strconv.Itoa(i)})
		}()
		go func() {
			defer wg.Done()
			_, _ = h.Disconnect(ctx, Target{ConnectionIDs: []string{c.ID()}}, ReasonKicked)
		}()
		wg.Wait()
		h.unregister(c) // what the stream's end does; a no-op when done already
	}
	if n := h.byChannel.keys(); n != 0 {
		t.Fatalf("%d channel keys left in the index", n)
	}
	on := map[string]bool{}
	for _, call := range tr.takeInterest() {
		on[call.key] = call.on
	}
	for key, interested := range on {
		if interested && strings.HasPrefix(key, KeyChanPrefix) {
			t.Errorf("interest left in %s", key)
		}
	}
}

func TestChannelsPresenceLocal(t *testing.T) {
	h := newTestHub(t, Config{Writers: -1})
	mustConnect(t, h, ConnectRequest{User: User{ID: "a"}, Channels: []string{"room-1", "lobby"}})
	mustConnect(t, h, ConnectRequest{User: User{ID: "a"}, Channels: []string{"room-1"}})
	mustConnect(t, h, ConnectRequest{User: User{AccessToken: "k"}, Channels: []string{"room-1"}})
	got, err := h.Channels(context.Background(), ChannelsQuery{Prefix: "room-"})
	if want := []ChannelInfo{{Name: "room-1", Connections: 3, Users: 2}}; err != nil || !slices.Equal(got, want) {
		t.Fatalf("Channels(room-) = %+v, %v; want %+v", got, err, want)
	}
}

// Shed closes every connection after a retry: hint, as Drain does, but
// the hub keeps taking new connections.
func TestShedKeepsAccepting(t *testing.T) {
	h := newTestHub(t, Config{Writers: -1})
	c := mustConnect(t, h, connectReq("u"))
	drainQueue(c)
	if err := h.Shed(context.Background(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	out, done := drainQueue(c)
	if !done || !strings.Contains(out, "retry:") {
		t.Fatalf("a shed connection wrote %q (done %v), want a retry: hint and the end", out, done)
	}
	if _, err := h.Connect(context.Background(), connectReq("u")); err != nil {
		t.Fatalf("Connect after Shed: %v", err)
	}
}
