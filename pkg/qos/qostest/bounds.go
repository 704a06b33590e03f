package qostest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pushd/pushd/pkg/qos"
)

func testExpiry(t *testing.T, r qos.Repository) {
	// The repositories take no clock: the short messages live 3 s, long
	// enough for a loaded machine to read them before they expire, and
	// that read is judged only when it ended before the expiry.
	now := time.Now()
	short := msg("short", "u1")
	short.ExpiresAt = now.Add(3 * time.Second)
	shortAll := msg("shortAll")
	shortAll.All = true
	shortAll.ExpiresAt = short.ExpiresAt
	long := msg("long", "u1")
	past := msg("past", "u1")
	past.ExpiresAt = now.Add(-time.Second)
	save(t, r, app, short, shortAll, long, past)
	before := pending(t, r, app, user("u1"), "", 0)
	if time.Now().Before(short.ExpiresAt) {
		wantIDs(t, "pending before expiry", before, short.ID, shortAll.ID, long.ID)
	} else {
		t.Logf("pending before expiry not judged: it returned after the messages expired (%v)", ids(before))
	}

	deadline := time.Now().Add(10 * time.Second)
	for {
		got := pending(t, r, app, user("u1"), "", 0)
		if slices.Equal(ids(got), []string{long.ID}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("expired messages still pending after 10s: %v", ids(got))
		}
		time.Sleep(20 * time.Millisecond) // polling for a deadline to pass
	}
	if _, total := list(t, r, app, qos.Filter{}, 0, 0); total != 1 {
		t.Fatalf("List after expiry: total %d, want 1", total)
	}
	wantN(t, "ack expired", ack(t, r, app, user("u1"), short.ID, past.ID), 0)
	if sr, ok := r.(qos.StatsReporter); ok {
		if s := sr.Stats(); s.Expired != 2 || s.Stored != 3 {
			t.Fatalf("stats: got %+v, want Stored 3, Expired 2", s)
		}
	}
}

func testPerRecipientBound(t *testing.T, r qos.Repository) {
	var ms []qos.Message
	for i := range MaxPerRecipient + 3 {
		ms = append(ms, msg(fmt.Sprint("e", i), "u1"))
	}
	other := msg("x", "u2")
	save(t, r, app, other)
	save(t, r, app, ms...)
	wantIDs(t, "pending u1", pending(t, r, app, user("u1"), "", 0), ids(ms[3:])...)
	wantIDs(t, "pending u2", pending(t, r, app, user("u2"), "", 0), other.ID)
	if _, total := list(t, r, app, qos.Filter{UserID: "u1"}, 0, 0); total != MaxPerRecipient {
		t.Fatalf("List u1: total %d, want %d", total, MaxPerRecipient)
	}
	if sr, ok := r.(qos.StatsReporter); ok {
		if s := sr.Stats(); s.Evicted != 3 {
			t.Fatalf("stats: got %+v, want Evicted 3", s)
		}
	}
	// Broadcast inboxes are bounded too.
	var bs []qos.Message
	for i := range MaxPerRecipient + 2 {
		b := msg(fmt.Sprint("b", i))
		b.TenantIDs = []string{"t1"}
		bs = append(bs, b)
	}
	save(t, r, app, bs...)
	wantIDs(t, "pending tenant", pending(t, r, app, qos.Recipient{UserID: "u3", TenantID: "t1"}, "", 0), ids(bs[2:])...)
}
