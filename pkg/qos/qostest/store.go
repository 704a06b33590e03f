package qostest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pushd/pushd/pkg/qos"
)

func testSavePendingOrder(t *testing.T, r qos.Repository) {
	ms := []qos.Message{msg("e0", "u1"), msg("e1", "u1"), msg("e2", "u1"), msg("e3", "u1")}
	// Saved out of order (as concurrent senders may): Pending orders by id.
	save(t, r, app, ms[2], ms[0], ms[3], ms[1])
	wantIDs(t, "pending u1", pending(t, r, app, user("u1"), "", 0), ids(ms)...)
	wantIDs(t, "pending u2", pending(t, r, app, user("u2"), "", 0))
}

func testPendingLimitAndAfter(t *testing.T, r qos.Repository) {
	var ms []qos.Message
	for i := range 4 {
		ms = append(ms, msg(fmt.Sprint("e", i), "u1"))
	}
	save(t, r, app, ms...)
	all := ids(ms)
	wantIDs(t, "limit 2", pending(t, r, app, user("u1"), "", 2), all[:2]...)
	wantIDs(t, "after #1", pending(t, r, app, user("u1"), all[1], 0), all[2:]...)
	wantIDs(t, "after #0 limit 2", pending(t, r, app, user("u1"), all[0], 2), all[1:3]...)
	wantIDs(t, "after last", pending(t, r, app, user("u1"), all[3], 0))
	// A numeric event id of the seed client skips nothing.
	wantIDs(t, "after seed id", pending(t, r, app, user("u1"), "17", 0), all...)
}

func testMessageRoundTrip(t *testing.T, r qos.Repository) {
	created := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	m := qos.Message{
		ID:           qos.NewID(),
		Event:        "order-shipped",
		Data:         "line one\nline two: {\"x\":1} ünïcode",
		UserIDs:      []string{"u1", "u2"},
		AccessTokens: []string{"tok1"},
		TenantIDs:    []string{"t1"},
		Channels:     []string{"c1"},
		Listening:    true,
		CreatedAt:    created,
		ExpiresAt:    created.Add(2 * time.Hour),
	}
	save(t, r, app, m)
	got := pending(t, r, app, qos.Recipient{UserID: "u1", Listeners: []string{"order-shipped"}}, "", 0)
	if len(got) != 1 {
		t.Fatalf("pending: got %d messages, want 1", len(got))
	}
	g := got[0]
	if g.ID != m.ID || g.Event != m.Event || g.Data != m.Data || !g.Listening || g.All ||
		!slices.Equal(g.UserIDs, m.UserIDs) || !slices.Equal(g.AccessTokens, m.AccessTokens) ||
		!slices.Equal(g.TenantIDs, m.TenantIDs) || !slices.Equal(g.Channels, m.Channels) ||
		!g.CreatedAt.Equal(m.CreatedAt) || !g.ExpiresAt.Equal(m.ExpiresAt) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", g, m)
	}
	// Changing what Pending returned does not change what is stored.
	g.UserIDs[0] = "mallory"
	got = pending(t, r, app, qos.Recipient{UserID: "u1", Listeners: []string{"order-shipped"}}, "", 0)
	if got[0].UserIDs[0] != "u1" {
		t.Fatalf("stored message changed through a returned slice: %v", got[0].UserIDs)
	}
	// A message without times gets them.
	m2 := qos.Message{ID: qos.NewID(), Event: "e", UserIDs: []string{"u9"}}
	save(t, r, app, m2)
	got = pending(t, r, app, user("u9"), "", 0)
	if len(got) != 1 || got[0].CreatedAt.IsZero() || !got[0].ExpiresAt.After(time.Now()) {
		t.Fatalf("message saved without times: got %+v", got)
	}
}

func testInvalidMessages(t *testing.T, r qos.Repository) {
	bad := map[string]qos.Message{
		"no id":       {Event: "e", UserIDs: []string{"u1"}},
		"id with LF":  {ID: "q1\nevent: x", Event: "e", UserIDs: []string{"u1"}},
		"no event":    {ID: qos.NewID(), UserIDs: []string{"u1"}},
		"event CR":    {ID: qos.NewID(), Event: "e\r", UserIDs: []string{"u1"}},
		"nobody":      {ID: qos.NewID(), Event: "e"},
		"empty users": {ID: qos.NewID(), Event: "e", UserIDs: []string{""}},
	}
	for name, m := range bad {
		if err := r.Save(context.Background(), app, m); !errors.Is(err, qos.ErrInvalidMessage) {
			t.Errorf("Save(%s): got %v, want ErrInvalidMessage", name, err)
		}
	}
	if _, total := list(t, r, app, qos.Filter{}, 0, 0); total != 0 {
		t.Fatalf("invalid messages were stored: total %d", total)
	}
}

func testSaveTwice(t *testing.T, r qos.Repository) {
	m := msg("e", "u1")
	save(t, r, app, m, m)
	wantIDs(t, "pending", pending(t, r, app, user("u1"), "", 0), m.ID)
	wantN(t, "ack", ack(t, r, app, user("u1"), m.ID), 1)
	wantIDs(t, "pending after ack", pending(t, r, app, user("u1"), "", 0))
}

func testClose(t *testing.T, r qos.Repository) {
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := r.Save(context.Background(), app, msg("e", "u1")); !errors.Is(err, qos.ErrClosed) {
		t.Fatalf("Save after Close: got %v, want ErrClosed", err)
	}
	if _, err := r.Pending(context.Background(), app, user("u1"), "", 0); !errors.Is(err, qos.ErrClosed) {
		t.Fatalf("Pending after Close: got %v, want ErrClosed", err)
	}
}
