package qostest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pushd/pushd/pkg/qos"
)

// MaxPerRecipient is the inbox bound the repositories given to Run must be
// configured with.
const MaxPerRecipient = 5

// Option changes how Run runs the suite.
type Option func(skips map[string]string)

// Skip skips the case named name (a subtest name of Run, e.g. "Expiry"),
// reporting why: for a stand-in server that lacks what the case needs.
func Skip(name, why string) Option {
	return func(skips map[string]string) { skips[name] = why }
}

// Run runs the suite. newRepo returns a new, empty repository, bounded to
// MaxPerRecipient messages per inbox, and closes it in t.Cleanup; Run calls
// it once per subtest.
func Run(t *testing.T, newRepo func(t *testing.T) qos.Repository, opts ...Option) {
	skips := map[string]string{}
	for _, o := range opts {
		o(skips)
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, r qos.Repository)
	}{
		{"SavePendingOrder", testSavePendingOrder},
		{"PendingLimitAndAfter", testPendingLimitAndAfter},
		{"MessageRoundTrip", testMessageRoundTrip},
		{"InvalidMessages", testInvalidMessages},
		{"SaveTwice", testSaveTwice},
		{"AckPerUser", testAckPerUser},
		{"AckByOtherIgnored", testAckByOtherIgnored},
		{"AckUnknownIDs", testAckUnknownIDs},
		{"AckBound", testAckBound},
		{"AccessTokenInbox", testAccessTokenInbox},
		{"TenantBroadcast", testTenantBroadcast},
		{"ChannelBroadcast", testChannelBroadcast},
		{"AllBroadcast", testAllBroadcast},
		{"DirectAndBroadcast", testDirectAndBroadcast},
		{"TenantsIsolated", testTenantsIsolated},
		{"TenantAckKeysDistinct", testTenantAckKeysDistinct},
		{"Listening", testListening},
		{"Expiry", testExpiry},
		{"PerRecipientBound", testPerRecipientBound},
		{"ListFiltersAndPaging", testListFiltersAndPaging},
		{"AppsIsolated", testAppsIsolated},
		{"Concurrent", testConcurrent},
		{"ConcurrentAckOnce", testConcurrentAckOnce},
		{"Close", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if why, ok := skips[tc.name]; ok {
				t.Skip(why)
			}
			t.Parallel()
			tc.fn(t, newRepo(t))
		})
	}
}

const app = "app1"

// msg returns a message to users with a fresh id, expiring in an hour.
func msg(event string, users ...string) qos.Message {
	now := time.Now()
	return qos.Message{
		ID:        qos.NewID(),
		Event:     event,
		Data:      "data of " + event,
		UserIDs:   users,
		CreatedAt: now,
		ExpiresAt: now.Add(time.Hour),
	}
}

func save(t *testing.T, r qos.Repository, app string, ms ...qos.Message) {
	t.Helper()
	for _, m := range ms {
		if err := r.Save(context.Background(), app, m); err != nil {
			t.Fatalf("Save(%s, %s): %v", app, m.ID, err)
		}
	}
}

func pending(t *testing.T, r qos.Repository, app string, rc qos.Recipient, after string, limit int) []qos.Message {
	t.Helper()
	ms, err := r.Pending(context.Background(), app, rc, after, limit)
	if err != nil {
		t.Fatalf("Pending(%s, %+v): %v", app, rc, err)
	}
	return ms
}

func ack(t *testing.T, r qos.Repository, app string, rc qos.Recipient, ids ...string) int {
	t.Helper()
	n, err := r.Ack(context.Background(), app, rc, ids...)
	if err != nil {
		t.Fatalf("Ack(%s, %+v, %v): %v", app, rc, ids, err)
	}
	return n
}

func list(t *testing.T, r qos.Repository, app string, f qos.Filter, offset, limit int) ([]qos.Message, int) {
	t.Helper()
	ms, total, err := r.List(context.Background(), app, f, offset, limit)
	if err != nil {
		t.Fatalf("List(%s, %+v, %d, %d): %v", app, f, offset, limit, err)
	}
	return ms, total
}

func ids(ms []qos.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func wantIDs(t *testing.T, what string, got []qos.Message, want ...string) {
	t.Helper()
	if g := ids(got); !slices.Equal(g, want) && (len(g) != 0 || len(want) != 0) {
		t.Fatalf("%s: got ids %v, want %v", what, g, want)
	}
}

func wantN(t *testing.T, what string, got, want int) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got %d, want %d", what, got, want)
	}
}

func user(id string) qos.Recipient { return qos.Recipient{UserID: id} }

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

func testAccessTokenInbox(t *testing.T, r qos.Repository) {
	m := msg("e")
	m.AccessTokens = []string{"tok1"}
	save(t, r, app, m)
	wantIDs(t, "pending by token", pending(t, r, app, qos.Recipient{AccessToken: "tok1"}, "", 0), m.ID)
	wantIDs(t, "pending by user+token", pending(t, r, app, qos.Recipient{UserID: "u1", AccessToken: "tok1"}, "", 0), m.ID)
	wantIDs(t, "pending by user only", pending(t, r, app, user("u1"), "", 0))
	wantIDs(t, "pending other token", pending(t, r, app, qos.Recipient{AccessToken: "tok2"}, "", 0))
	wantN(t, "ack other token", ack(t, r, app, qos.Recipient{AccessToken: "tok2"}, m.ID), 0)
	wantN(t, "ack", ack(t, r, app, qos.Recipient{UserID: "u1", AccessToken: "tok1"}, m.ID), 1)
	wantIDs(t, "pending after ack", pending(t, r, app, qos.Recipient{AccessToken: "tok1"}, "", 0))
	if _, total := list(t, r, app, qos.Filter{}, 0, 0); total != 0 {
		t.Fatalf("acked token message still stored: total %d", total)
	}
}

func testTenantBroadcast(t *testing.T, r qos.Repository) {
	m := msg("e")
	m.TenantIDs = []string{"t1", "t2"}
	save(t, r, app, m)
	a := qos.Recipient{UserID: "a", AccessToken: "ta", TenantID: "t1"}
	a2 := qos.Recipient{UserID: "a", AccessToken: "ta2", TenantID: "t1"} // a's second tab
	b := qos.Recipient{UserID: "b", TenantID: "t2"}
	c := qos.Recipient{UserID: "c", TenantID: "t3"}
	tokenOnly := qos.Recipient{AccessToken: "tx", TenantID: "t1"}
	anonymous := qos.Recipient{TenantID: "t1"}
	for _, rc := range []qos.Recipient{a, a2, b, tokenOnly} {
		wantIDs(t, fmt.Sprintf("pending %+v", rc), pending(t, r, app, rc, "", 0), m.ID)
	}
	wantIDs(t, "pending other tenant", pending(t, r, app, c, "", 0))
	wantIDs(t, "pending anonymous", pending(t, r, app, anonymous, "", 0))
	wantN(t, "ack other tenant", ack(t, r, app, c, m.ID), 0)
	wantN(t, "ack anonymous", ack(t, r, app, anonymous, m.ID), 0)

	wantN(t, "ack a", ack(t, r, app, a, m.ID), 1)
	wantIDs(t, "pending a", pending(t, r, app, a, "", 0))
	wantIDs(t, "pending a's second tab", pending(t, r, app, a2, "", 0))
	wantN(t, "ack a's second tab", ack(t, r, app, a2, m.ID), 0)
	wantIDs(t, "pending b", pending(t, r, app, b, "", 0), m.ID)
	wantN(t, "ack token-only", ack(t, r, app, tokenOnly, m.ID), 1)
	wantIDs(t, "pending token-only", pending(t, r, app, tokenOnly, "", 0))
	wantN(t, "ack b", ack(t, r, app, b, m.ID), 1)
	// A broadcast message stays until it expires: somebody may still come.
	wantIDs(t, "pending newcomer", pending(t, r, app, qos.Recipient{UserID: "d", TenantID: "t2"}, "", 0), m.ID)
	if _, total := list(t, r, app, qos.Filter{}, 0, 0); total != 1 {
		t.Fatalf("broadcast message gone before expiry: total %d", total)
	}
}

func testChannelBroadcast(t *testing.T, r qos.Repository) {
	m := msg("e")
	m.Channels = []string{"news"}
	save(t, r, app, m)
	a := qos.Recipient{UserID: "a", Channels: []string{"news"}}
	b := qos.Recipient{UserID: "b", Channels: []string{"news"}, TenantID: "t1"}
	wantIDs(t, "pending a", pending(t, r, app, a, "", 0), m.ID)
	wantIDs(t, "pending b", pending(t, r, app, b, "", 0), m.ID)
	wantIDs(t, "pending other channel", pending(t, r, app, qos.Recipient{UserID: "c", Channels: []string{"sport"}}, "", 0))
	wantIDs(t, "pending no channel", pending(t, r, app, user("a"), "", 0))
	wantN(t, "ack a", ack(t, r, app, a, m.ID), 1)
	wantIDs(t, "pending a after ack", pending(t, r, app, a, "", 0))
	wantIDs(t, "pending b after a's ack", pending(t, r, app, b, "", 0), m.ID)

	// A recipient in several channels reads each one's messages, a
	// message sent to two of them once.
	both := msg("e")
	both.Channels = []string{"news", "sport"}
	sport := msg("e")
	sport.Channels = []string{"sport"}
	save(t, r, app, both, sport)
	d := qos.Recipient{UserID: "d", Channels: []string{"news", "sport"}}
	wantIDs(t, "pending d in two channels", pending(t, r, app, d, "", 0), m.ID, both.ID, sport.ID)
}

func testAllBroadcast(t *testing.T, r qos.Repository) {
	m := msg("e")
	m.All = true
	save(t, r, app, m)
	rcs := []qos.Recipient{user("a"), {UserID: "b", TenantID: "t1", Channels: []string{"c"}}, {AccessToken: "tok"}}
	for _, rc := range rcs {
		wantIDs(t, fmt.Sprintf("pending %+v", rc), pending(t, r, app, rc, "", 0), m.ID)
		wantN(t, fmt.Sprintf("ack %+v", rc), ack(t, r, app, rc, m.ID), 1)
		wantIDs(t, fmt.Sprintf("pending %+v after ack", rc), pending(t, r, app, rc, "", 0))
	}
	wantIDs(t, "pending anonymous", pending(t, r, app, qos.Recipient{}, "", 0))
	wantIDs(t, "pending newcomer", pending(t, r, app, user("z"), "", 0), m.ID)
}

func testDirectAndBroadcast(t *testing.T, r qos.Repository) {
	// The sets of a target are united: u1 directly, and tenant t1.
	m := msg("e", "u1")
	m.TenantIDs = []string{"t1"}
	save(t, r, app, m)
	u1 := qos.Recipient{UserID: "u1", TenantID: "t1"}
	u2 := qos.Recipient{UserID: "u2", TenantID: "t1"}
	wantIDs(t, "pending u1", pending(t, r, app, u1, "", 0), m.ID)
	wantIDs(t, "pending u1 outside the tenant", pending(t, r, app, user("u1"), "", 0), m.ID)
	wantN(t, "ack u1", ack(t, r, app, u1, m.ID), 1)
	wantIDs(t, "pending u1 after ack", pending(t, r, app, u1, "", 0))
	wantIDs(t, "pending u2", pending(t, r, app, u2, "", 0), m.ID)
}

// Attack (issue 10 #10): dup3@tenantA acknowledged an "all" QoS message
// and dup3@tenantB never received it. The same user id in two tenants is
// two users: a message to everybody, to both tenants, to a channel or to the
// user id is pending for each of them, and one's acknowledgement leaves it
// pending for the other (and for a user of that id without tenant). A
// token-only recipient is told apart by tenant too in shared inboxes.
func testTenantsIsolated(t *testing.T, r qos.Repository) {
	all := msg("all")
	all.All = true
	tenants := msg("tenants")
	tenants.TenantIDs = []string{"tA", "tB"}
	channel := msg("channel")
	channel.Channels = []string{"c"}
	direct := msg("direct", "dup3")
	save(t, r, app, all, tenants, channel, direct)
	every := []string{all.ID, tenants.ID, channel.ID, direct.ID}
	inA := qos.Recipient{UserID: "dup3", TenantID: "tA", Channels: []string{"c"}}
	inB := qos.Recipient{UserID: "dup3", TenantID: "tB", Channels: []string{"c"}}
	noTenant := qos.Recipient{UserID: "dup3", Channels: []string{"c"}}
	wantIDs(t, "pending dup3@tA", pending(t, r, app, inA, "", 0), every...)
	wantIDs(t, "pending dup3@tB", pending(t, r, app, inB, "", 0), every...)
	wantIDs(t, "pending dup3", pending(t, r, app, noTenant, "", 0), all.ID, channel.ID, direct.ID)

	wantN(t, "ack dup3@tA", ack(t, r, app, inA, every...), 4)
	wantIDs(t, "pending dup3@tA after its ack", pending(t, r, app, inA, "", 0))
	wantN(t, "ack dup3@tA again", ack(t, r, app, inA, every...), 0)
	wantIDs(t, "pending dup3@tB after dup3@tA's ack", pending(t, r, app, inB, "", 0), every...)
	wantIDs(t, "pending dup3 after dup3@tA's ack", pending(t, r, app, noTenant, "", 0), all.ID, channel.ID, direct.ID)
	wantN(t, "ack dup3@tB", ack(t, r, app, inB, every...), 4)
	wantIDs(t, "pending dup3@tB after its ack", pending(t, r, app, inB, "", 0))
	wantIDs(t, "pending dup3 after both tenants' acks", pending(t, r, app, noTenant, "", 0), all.ID, channel.ID, direct.ID)
	// The user message waits for the users of that id in other tenants.
	if got, total := list(t, r, app, qos.Filter{UserID: "dup3"}, 0, 0); total != 1 {
		t.Fatalf("List dup3 after the tenants' acks: %v, want the message to dup3 kept", ids(got))
	}
	wantIDs(t, "pending dup3@tC", pending(t, r, app, qos.Recipient{UserID: "dup3", TenantID: "tC"}, "", 0), all.ID, direct.ID)

	tokA := qos.Recipient{AccessToken: "tok", TenantID: "tA"}
	tokB := qos.Recipient{AccessToken: "tok", TenantID: "tB"}
	wantIDs(t, "pending tok@tA", pending(t, r, app, tokA, "", 0), all.ID, tenants.ID)
	wantN(t, "ack tok@tA", ack(t, r, app, tokA, all.ID, tenants.ID), 2)
	wantIDs(t, "pending tok@tB after tok@tA's ack", pending(t, r, app, tokB, "", 0), all.ID, tenants.ID)
	wantIDs(t, "pending tok without tenant", pending(t, r, app, qos.Recipient{AccessToken: "tok"}, "", 0), all.ID)
}

// testTenantAckKeysDistinct: tenants and ids that would read the same when
// joined stay apart.
func testTenantAckKeysDistinct(t *testing.T, r qos.Repository) {
	m := msg("e")
	m.All = true
	save(t, r, app, m)
	pairs := []qos.Recipient{
		{UserID: "b:c", TenantID: "a"},
		{UserID: "c", TenantID: "a:b"},
		{UserID: "1:a:c"},
		{UserID: "c", TenantID: "1:a"},
		{AccessToken: "b:c", TenantID: "a"},
		{AccessToken: "c", TenantID: "a:b"},
		{UserID: "tu:1:a:b:c"},
		{AccessToken: "tk:1:a:b:c"},
	}
	for i, rc := range pairs {
		wantN(t, fmt.Sprintf("ack %+v", rc), ack(t, r, app, rc, m.ID), 1)
		for _, later := range pairs[i+1:] {
			wantIDs(t, fmt.Sprintf("pending %+v after the ack of %+v", later, rc), pending(t, r, app, later, "", 0), m.ID)
		}
	}
}

func testListening(t *testing.T, r qos.Repository) {
	direct := msg("price", "u1")
	direct.Listening = true
	// The seed lost channel+listening messages (its bug B2); this one must arrive.
	channel := msg("price")
	channel.Channels = []string{"c1"}
	channel.Listening = true
	plain := msg("other", "u1")
	save(t, r, app, direct, channel, plain)

	deaf := qos.Recipient{UserID: "u1", Channels: []string{"c1"}, Listeners: []string{"other"}}
	wantIDs(t, "pending not listening", pending(t, r, app, deaf, "", 0), plain.ID)
	listening := qos.Recipient{UserID: "u1", Channels: []string{"c1"}, Listeners: []string{"price", "other"}}
	wantIDs(t, "pending listening", pending(t, r, app, listening, "", 0), direct.ID, channel.ID, plain.ID)
	// Ack does not depend on listeners (they may change after delivery).
	wantN(t, "ack after removeListener", ack(t, r, app, deaf, direct.ID, channel.ID), 2)
	wantIDs(t, "pending after ack", pending(t, r, app, listening, "", 0), plain.ID)
}

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

func testListFiltersAndPaging(t *testing.T, r qos.Repository) {
	a := msg("ev1", "u1")
	b := msg("ev2", "u1", "u2")
	c := msg("ev1")
	c.TenantIDs = []string{"t1"}
	d := msg("ev1")
	d.Channels = []string{"c1"}
	e := msg("ev2")
	e.AccessTokens = []string{"tok"}
	f := msg("ev3")
	f.All = true
	save(t, r, app, a, b, c, d, e, f)
	cases := []struct {
		f    qos.Filter
		want []qos.Message
	}{
		{qos.Filter{}, []qos.Message{a, b, c, d, e, f}},
		{qos.Filter{UserID: "u1"}, []qos.Message{a, b}},
		{qos.Filter{UserID: "u2"}, []qos.Message{b}},
		{qos.Filter{Event: "ev1"}, []qos.Message{a, c, d}},
		{qos.Filter{TenantID: "t1"}, []qos.Message{c}},
		{qos.Filter{Channel: "c1"}, []qos.Message{d}},
		{qos.Filter{AccessToken: "tok"}, []qos.Message{e}},
		{qos.Filter{UserID: "u1", Event: "ev2"}, []qos.Message{b}},
		{qos.Filter{UserID: "nobody"}, nil},
	}
	for _, tc := range cases {
		got, total := list(t, r, app, tc.f, 0, 0)
		wantIDs(t, fmt.Sprintf("List %+v", tc.f), got, ids(tc.want)...)
		wantN(t, fmt.Sprintf("List %+v total", tc.f), total, len(tc.want))
	}
	all := ids([]qos.Message{a, b, c, d, e, f})
	for _, p := range []struct{ offset, limit int }{{0, 2}, {2, 2}, {4, 2}, {5, 10}, {6, 2}, {100, 1}} {
		got, total := list(t, r, app, qos.Filter{}, p.offset, p.limit)
		want := all[min(p.offset, len(all)):min(p.offset+p.limit, len(all))]
		wantIDs(t, fmt.Sprintf("List page %+v", p), got, want...)
		wantN(t, fmt.Sprintf("List page %+v total", p), total, len(all))
	}
	got, total := list(t, r, app, qos.Filter{Event: "ev1"}, 1, 1)
	wantIDs(t, "List ev1 page 2", got, c.ID)
	wantN(t, "List ev1 page 2 total", total, 3)
}

func testAppsIsolated(t *testing.T, r qos.Repository) {
	m := msg("e", "u1")
	m.All = true
	save(t, r, "a", m)
	wantIDs(t, "pending in b", pending(t, r, "b", user("u1"), "", 0))
	wantN(t, "ack in b", ack(t, r, "b", user("u1"), m.ID), 0)
	if _, total := list(t, r, "b", qos.Filter{}, 0, 0); total != 0 {
		t.Fatalf("List b: total %d, want 0", total)
	}
	// The same id may exist in two apps independently.
	save(t, r, "b", m)
	wantN(t, "ack in a", ack(t, r, "a", user("u1"), m.ID), 1)
	wantIDs(t, "pending in a", pending(t, r, "a", user("u1"), "", 0))
	wantIDs(t, "pending in b", pending(t, r, "b", user("u1"), "", 0), m.ID)
}

func testConcurrent(t *testing.T, r qos.Repository) {
	const workers, perWorker = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			rc := qos.Recipient{UserID: fmt.Sprint("user", w), TenantID: "t1"}
			for i := range perWorker {
				m := msg(fmt.Sprint("e", i), rc.UserID)
				if i%4 == 0 {
					m.UserIDs = nil
					m.TenantIDs = []string{"t1"} // also seen by the others
				}
				if err := r.Save(ctx, app, m); err != nil {
					errs <- err
					return
				}
				// Drain everything this user has (bounded inbox: keep up).
				got, err := r.Pending(ctx, app, rc, "", 0)
				if err != nil {
					errs <- err
					return
				}
				if _, err := r.Ack(ctx, app, rc, ids(got)...); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for w := range workers {
		rc := qos.Recipient{UserID: fmt.Sprint("user", w), TenantID: "t1"}
		got := pending(t, r, app, rc, "", 0)
		if _, err := r.Ack(context.Background(), app, rc, ids(got)...); err != nil {
			t.Fatal(err)
		}
		wantIDs(t, "pending after draining "+rc.UserID, pending(t, r, app, rc, "", 0))
	}
}

func testConcurrentAckOnce(t *testing.T, r qos.Repository) {
	m := msg("e", "u1")
	m.Channels = []string{"c1"}
	save(t, r, app, m)
	rc := qos.Recipient{UserID: "u1", Channels: []string{"c1"}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := r.Ack(context.Background(), app, rc, m.ID)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	wantN(t, "acks counted over 8 concurrent Acks", total, 1)
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
