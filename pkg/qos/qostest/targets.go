package qostest

import (
	"fmt"
	"testing"

	"github.com/pushd/pushd/pkg/qos"
)

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

// testTenantlessUserScoped: in an app with tenants, a user without tenant
// is the user of its id in tenant "" — its acknowledgement of a message to
// its user id is its own and leaves the message to the users of that id in
// the tenants (issue 10 #10: before, it emptied the shared user inbox). An
// app counts as having tenants from the first call that shows one (a
// recipient with a tenant, a message to a tenant); in an app that never
// had any, the acknowledgement deletes the message as before.
func testTenantlessUserScoped(t *testing.T, r qos.Repository) {
	noTenant := user("dup3")
	inA := qos.Recipient{UserID: "dup3", TenantID: "tA"}
	inB := qos.Recipient{UserID: "dup3", TenantID: "tB"}

	plain := msg("plain", "dup3")
	save(t, r, "plain", plain)
	wantN(t, "ack dup3 in an app without tenants", ack(t, r, "plain", noTenant, plain.ID), 1)
	if _, total := list(t, r, "plain", qos.Filter{}, 0, 0); total != 0 {
		t.Fatalf("app without tenants: the acknowledged message is still stored (total %d)", total)
	}

	direct := msg("direct", "dup3")
	all := msg("all")
	all.All = true
	save(t, r, app, direct, all)
	wantIDs(t, "pending dup3@tA", pending(t, r, app, inA, "", 0), direct.ID, all.ID)
	wantIDs(t, "pending dup3", pending(t, r, app, noTenant, "", 0), direct.ID, all.ID)
	wantN(t, "ack dup3", ack(t, r, app, noTenant, direct.ID, all.ID), 2)
	wantIDs(t, "pending dup3 after its ack", pending(t, r, app, noTenant, "", 0))
	wantN(t, "ack dup3 again", ack(t, r, app, noTenant, direct.ID, all.ID), 0)
	wantIDs(t, "pending dup3@tA after dup3's ack", pending(t, r, app, inA, "", 0), direct.ID, all.ID)
	wantN(t, "ack dup3@tA", ack(t, r, app, inA, direct.ID, all.ID), 2)
	wantIDs(t, "pending dup3@tB after both acks", pending(t, r, app, inB, "", 0), direct.ID, all.ID)
	wantIDs(t, "pending dup3 after dup3@tA's ack", pending(t, r, app, noTenant, "", 0))

	// An app shown to have tenants by a message to a tenant alone: the
	// tenant-less user acknowledges before any user of a tenant came.
	const other = "app2"
	tenants := msg("tenants")
	tenants.TenantIDs = []string{"tA"}
	direct2 := msg("direct", "dup3")
	save(t, r, other, tenants, direct2)
	wantN(t, "ack dup3 in app2", ack(t, r, other, noTenant, direct2.ID), 1)
	wantIDs(t, "pending dup3@tA in app2 after dup3's ack", pending(t, r, other, inA, "", 0), tenants.ID, direct2.ID)
}
