package qostest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/pushd/pushd/pkg/qos"
)

func testAckPerUser(t *testing.T, r qos.Repository) {
	m := msg("e", "u1", "u2")
	save(t, r, app, m)
	wantN(t, "ack u1", ack(t, r, app, user("u1"), m.ID), 1)
	wantIDs(t, "pending u1", pending(t, r, app, user("u1"), "", 0))
	wantIDs(t, "pending u2", pending(t, r, app, user("u2"), "", 0), m.ID)
	wantN(t, "ack u1 again", ack(t, r, app, user("u1"), m.ID), 0)
	if _, total := list(t, r, app, qos.Filter{}, 0, 0); total != 1 {
		t.Fatalf("message acked by one of two users: total %d, want 1", total)
	}
	wantN(t, "ack u2", ack(t, r, app, user("u2"), m.ID), 1)
	if _, total := list(t, r, app, qos.Filter{}, 0, 0); total != 0 {
		t.Fatalf("message acked by every user is still stored: total %d", total)
	}
	if sr, ok := r.(qos.StatsReporter); ok {
		if s := sr.Stats(); s.Stored != 1 || s.Acked != 2 {
			t.Fatalf("stats: got %+v, want Stored 1, Acked 2", s)
		}
	}
}

func testAckByOtherIgnored(t *testing.T, r qos.Repository) {
	m := msg("e", "u1")
	m.TenantIDs = nil
	save(t, r, app, m)
	others := []qos.Recipient{
		user("u2"),
		{AccessToken: "u1"},
		{UserID: "u2", TenantID: "t1", Channels: []string{"c1"}},
		{},
	}
	for _, o := range others {
		wantN(t, fmt.Sprintf("ack by %+v", o), ack(t, r, app, o, m.ID), 0)
	}
	wantIDs(t, "pending u1", pending(t, r, app, user("u1"), "", 0), m.ID)
}

func testAckUnknownIDs(t *testing.T, r qos.Repository) {
	m := msg("e", "u1")
	save(t, r, app, m)
	wantN(t, "ack unknown", ack(t, r, app, user("u1"), "nope", "", qos.NewID()), 0)
	wantN(t, "ack none", ack(t, r, app, user("u1")), 0)
	wantN(t, "ack known among unknown, repeated", ack(t, r, app, user("u1"), "x", m.ID, m.ID), 1)
	wantIDs(t, "pending", pending(t, r, app, user("u1"), "", 0))
}

// Attack (issue 10 #1): one Ack of 60 000 ids kept the store busy for
// seconds. An Ack of more than qos.MaxAckIDs ids is refused and
// acknowledges nothing; one of exactly qos.MaxAckIDs ids, repeated and
// unknown ones among them, counts every pending message once.
func testAckBound(t *testing.T, r qos.Repository) {
	var ms []qos.Message
	for i := range MaxPerRecipient {
		ms = append(ms, msg(fmt.Sprint("e", i), "u1"))
	}
	save(t, r, app, ms...)
	tooMany := make([]string, 0, qos.MaxAckIDs+1)
	for len(tooMany) <= qos.MaxAckIDs {
		tooMany = append(tooMany, ids(ms)...)
	}
	tooMany = tooMany[:qos.MaxAckIDs+1]
	n, err := r.Ack(context.Background(), app, user("u1"), tooMany...)
	if !errors.Is(err, qos.ErrTooManyIDs) || n != 0 {
		t.Fatalf("Ack of %d ids: %d, %v; want 0, ErrTooManyIDs", len(tooMany), n, err)
	}
	wantIDs(t, "pending after the refused Ack", pending(t, r, app, user("u1"), "", 0), ids(ms)...)

	// Unknown and empty ids first, so that the pending ones come late in
	// the call; then the pending ones, repeated.
	batch := make([]string, 0, qos.MaxAckIDs)
	for len(batch) < qos.MaxAckIDs-2*len(ms) {
		batch = append(batch, qos.NewID(), "")
	}
	batch = append(batch, ids(ms)...)
	batch = append(batch, ids(ms)...)
	wantN(t, fmt.Sprintf("Ack of %d ids", len(batch)), ack(t, r, app, user("u1"), batch...), len(ms))
	wantIDs(t, "pending after the Ack", pending(t, r, app, user("u1"), "", 0))
}
