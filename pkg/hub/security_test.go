package hub

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushd/pushd/pkg/qos"
)

// Regression tests of issue 10 (hardening): each performs the attack over
// the real stream and asserts the refusal.

// meshTransport joins hubs of one process into a cluster: a hub's
// transport reaches the Handle methods of the others.
type meshTransport struct {
	mu    sync.Mutex
	peers []*Hub
}

var _ Transport = (*meshTransport)(nil)

func (m *meshTransport) others() []*Hub {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.peers)
}

func (m *meshTransport) Deliver(ctx context.Context, app string, t Target, ev Event) (int, error) {
	n := 0
	for _, p := range m.others() {
		n += p.HandleDeliver(ctx, app, t, ev)
	}
	return n, nil
}

func (m *meshTransport) Survey(ctx context.Context, app string, req Request) ([]Reply, error) {
	var out []Reply
	for _, p := range m.others() {
		rep, _ := p.HandleSurvey(ctx, app, req)
		out = append(out, rep)
	}
	return out, nil
}

func (m *meshTransport) Run(ctx context.Context, _ Handler) error {
	<-ctx.Done()
	return nil
}

// newMesh starts two hubs configured by cfg, joined by meshTransports,
// each behind its own HTTP server.
func newMesh(t *testing.T, cfg Config) (a, b *fixture) {
	t.Helper()
	ta, tb := &meshTransport{}, &meshTransport{}
	cfg.NodeID, cfg.Transport = "a", ta
	a = newFixture(t, streamPaths[0], cfg)
	cfg.NodeID, cfg.Transport = "b", tb
	b = newFixture(t, streamPaths[0], cfg)
	ta.mu.Lock()
	ta.peers = []*Hub{b.h}
	ta.mu.Unlock()
	tb.mu.Lock()
	tb.peers = []*Hub{a.h}
	tb.mu.Unlock()
	return a, b
}

// awaitClosedWith reads cl to its end and checks that the last frame is
// connect-close with reason.
func awaitClosedWith(t *testing.T, cl *sseClient, reason DisconnectReason) {
	t.Helper()
	rest := cl.waitEnd()
	if len(rest) == 0 {
		t.Fatalf("stream %s ended without connect-close", cl.id)
	}
	checkConnectClose(t, rest[len(rest)-1], cl.id, reason)
}

// checkOpen fails the test for each of cls that h no longer holds open.
func checkOpen(t *testing.T, h *Hub, cls ...*sseClient) {
	t.Helper()
	for _, cl := range cls {
		if c := h.Conn(cl.id); c == nil || c.Closed() {
			t.Errorf("connection %s was closed", cl.id)
		}
	}
}

// Attack (issue 10 #5): one user opens stream after stream, each with
// another client id or none, and holds them all (the per-client cap keyed
// on the client-chosen id never applied). Now the per-user cap closes the
// oldest with connect-close user-limit; other tenants' users of the same
// id, and anonymous connections, are not counted.
func TestAttackUserHoldsManyStreams(t *testing.T) {
	f := newFixture(t, streamPaths[0], Config{Heartbeat: -1})
	var cls []*sseClient
	for i := range 16 {
		q := vals("userId", "u1", "tenantId", "t1")
		if i%2 == 0 {
			q.Set("clientId", "c"+strconv.Itoa(i))
		}
		cls = append(cls, f.connect(q))
	}
	others := []*sseClient{
		f.connect(vals("userId", "u1", "tenantId", "t2")),
		f.connect(vals()),
		f.connect(vals()),
	}
	checkOpen(t, f.h, cls...)
	cls = append(cls, f.connect(vals("userId", "u1", "tenantId", "t1")))
	awaitClosedWith(t, cls[0], ReasonUserLimit)
	awaitGone(t, f.h, cls[0].id)
	checkOpen(t, f.h, cls[1:]...)
	checkOpen(t, f.h, others...)

	// A user without id is grouped by access token.
	g := newFixture(t, streamPaths[0], Config{Heartbeat: -1, MaxConnectionsPerUser: 2})
	k1 := g.connect(vals("token", "k"))
	k2 := g.connect(vals("token", "k"))
	other := g.connect(vals("token", "other"))
	k3 := g.connect(vals("token", "k"))
	awaitClosedWith(t, k1, ReasonUserLimit)
	checkOpen(t, g.h, k2, k3, other)
}

// Attack (issue 10 #5): the user spreads the streams over the nodes of a
// cluster. The per-user cap counts them cluster-wide and closes the
// oldest wherever it is, for users with id and for users known by their
// access token.
func TestAttackUserCapClusterWide(t *testing.T) {
	for _, who := range []string{"userId", "token"} {
		t.Run(who, func(t *testing.T) {
			a, b := newMesh(t, Config{Heartbeat: -1, MaxConnectionsPerUser: 2})
			q := vals(who, "spread")
			// Distinct milliseconds: the cluster orders by creation time in
			// milliseconds, and a survey still running for b1 when a2 opens
			// would otherwise pick its victim by id among equal times.
			a1 := a.connect(q)
			nextMillisecond()
			b1 := b.connect(q)
			nextMillisecond()
			// The cluster orders by creation time in milliseconds, then id.
			sa, sb := a.h.Conn(a1.id).Snapshot(), b.h.Conn(b1.id).Snapshot()
			oldest, survivor, survivorHub := a1, b1, b.h
			if sb.CreateTime < sa.CreateTime || (sb.CreateTime == sa.CreateTime && sb.ID < sa.ID) {
				oldest, survivor, survivorHub = b1, a1, a.h
			}
			a2 := a.connect(q)
			awaitClosedWith(t, oldest, ReasonUserLimit)
			checkOpen(t, survivorHub, survivor)
			checkOpen(t, a.h, a2)
		})
	}
}

// nextMillisecond returns once the wall clock is in a later millisecond.
func nextMillisecond() {
	start := time.Now().UnixMilli()
	for time.Now().UnixMilli() == start {
		time.Sleep(100 * time.Microsecond)
	}
}

// Attack (issue 10 #5): the per-client cap was keyed on the Host the
// client sent, so a browser escaped it by varying Host. The domain is now
// part of the group only with ClientCapByDomain.
func TestAttackClientCapHost(t *testing.T) {
	f := newFixture(t, streamPaths[0], Config{Heartbeat: -1, MaxConnectionsPerClient: 1})
	first := f.connect(vals("userId", "u", "clientId", "dev", "domain", "a.example"))
	second := f.connect(vals("userId", "u", "clientId", "dev", "domain", "b.example"))
	awaitClosedWith(t, first, ReasonClientLimit)
	checkOpen(t, f.h, second)

	g := newFixture(t, streamPaths[0], Config{Heartbeat: -1, MaxConnectionsPerClient: 1, ClientCapByDomain: true})
	a := g.connect(vals("userId", "u", "clientId", "dev", "domain", "a.example"))
	b := g.connect(vals("userId", "u", "clientId", "dev", "domain", "b.example"))
	a2 := g.connect(vals("userId", "u", "clientId", "dev", "domain", "a.example"))
	awaitClosedWith(t, a, ReasonClientLimit)
	checkOpen(t, g.h, b, a2)
}

// TestClientCapIgnoresDomain: without ClientCapByDomain the per-client
// cap groups a profile's connections whatever domain they name, across
// the cluster too.
func TestClientCapIgnoresDomain(t *testing.T) {
	a, b := newMesh(t, Config{Heartbeat: -1, MaxConnectionsPerClient: 1})
	first := a.connect(vals("userId", "u", "clientId", "dev", "domain", "a.example"))
	second := b.connect(vals("userId", "u", "clientId", "dev", "domain", "b.example"))
	awaitClosedWith(t, first, ReasonClientLimit)
	checkOpen(t, b.h, second)
}

// Attack (issue 10 #5): connections are opened until the node runs out of
// memory. Beyond MaxConnections a connect is refused (503 here, as the web
// layer answers ErrTooManyConnections), and accepted again once one ended.
func TestAttackTooManyConnections(t *testing.T) {
	f := newFixture(t, streamPaths[0], Config{Heartbeat: -1, MaxConnections: 2})
	c1 := f.connect(vals("userId", "u1"))
	f.connect(vals("userId", "u2"))
	code, body := f.refused(vals("userId", "u3"))
	if code != http.StatusServiceUnavailable || !strings.Contains(body, ErrTooManyConnections.Error()) {
		t.Errorf("connect beyond MaxConnections: %d %q", code, body)
	}
	if _, err := f.h.Connect(context.Background(), connectReq("u4")); !errors.Is(err, ErrTooManyConnections) {
		t.Errorf("Connect beyond MaxConnections: %v", err)
	}
	if n, err := f.h.Disconnect(context.Background(), Target{ConnectionIDs: []string{c1.id}}, ReasonKicked); n != 1 || err != nil {
		t.Fatalf("Disconnect: %d %v", n, err)
	}
	awaitGone(t, f.h, c1.id)
	f.connect(vals("userId", "u3"))
}

// Attack (issue 10 #5): one connection listens to a million names, or to
// names of megabytes. Connect and ChangeListeners refuse more than
// MaxListeners names (413 here), and names that are empty, longer than
// MaxNameLength or unsafe to frame (400); a refused change changes
// nothing.
func TestAttackListeners(t *testing.T) {
	f := newFixture(t, streamPaths[0], Config{Heartbeat: -1})
	names := make([]string, 65)
	for i := range names {
		names[i] = "n" + strconv.Itoa(i)
	}
	if code, body := f.refused(vals("userId", "u", "listeners", strings.Join(names, ","))); code != http.StatusRequestEntityTooLarge ||
		!strings.Contains(body, ErrTooManyListeners.Error()) {
		t.Errorf("connect with 65 listeners: %d %q", code, body)
	}
	for _, bad := range []string{strings.Repeat("x", 129), "a\nevent:evil", "a\x00", "a,,b"} {
		if code, body := f.refused(vals("userId", "u", "listeners", bad)); code != http.StatusBadRequest ||
			!strings.Contains(body, ErrInvalidName.Error()) {
			t.Errorf("connect with listeners %q: %d %q", bad, code, body)
		}
	}
	if _, err := f.h.Publish(context.Background(), Target{All: true}, Event{Name: strings.Repeat("x", 129)}); !errors.Is(err, ErrInvalidEvent) ||
		!errors.Is(err, ErrInvalidName) {
		t.Errorf("Publish with a 129-byte event name: %v", err)
	}

	cl := f.connect(vals("userId", "u", "listeners", strings.Join(names[:64], ",")))
	ctx, owner := context.Background(), User{ID: "u"}
	for _, add := range [][]string{{"more"}, names, {strings.Repeat("y", 129)}, {""}} {
		if _, err := f.h.ChangeListeners(ctx, cl.id, owner, true, add); !errors.Is(err, ErrTooManyListeners) && !errors.Is(err, ErrInvalidName) {
			t.Errorf("adding %d names to 64: %v", len(add), err)
		}
	}
	if got := f.h.Conn(cl.id).Listeners(); len(got) != 64 {
		t.Errorf("after refused adds the connection listens to %d names", len(got))
	}
	// Names already held cost nothing; removing makes room.
	if list, err := f.h.ChangeListeners(ctx, cl.id, owner, true, names[:3]); err != nil || len(list) != 64 {
		t.Errorf("adding held names: %d %v", len(list), err)
	}
	if _, err := f.h.ChangeListeners(ctx, cl.id, owner, false, names[:1]); err != nil {
		t.Fatal(err)
	}
	if list, err := f.h.ChangeListeners(ctx, cl.id, owner, true, []string{"more"}); err != nil || len(list) != 64 {
		t.Errorf("adding into room: %d %v", len(list), err)
	}
	if _, err := f.h.Publish(ctx, Target{All: true}, Event{Name: strings.Repeat("x", 128)}); err != nil {
		t.Errorf("Publish with a 128-byte event name: %v", err)
	}
}

// TestListenerLimitRemote: a connection on another node refuses more
// listeners than its cap, and the refusal reaches the caller typed.
func TestListenerLimitRemote(t *testing.T) {
	a, b := newMesh(t, Config{Heartbeat: -1, MaxListeners: 2})
	cl := b.connect(vals("userId", "u", "listeners", "x,y"))
	if _, err := a.h.ChangeListeners(context.Background(), cl.id, User{ID: "u"}, true, []string{"z"}); !errors.Is(err, ErrTooManyListeners) {
		t.Errorf("remote add beyond the cap: %v", err)
	}
	if list, err := a.h.ChangeListeners(context.Background(), cl.id, User{ID: "u"}, true, []string{"x"}); err != nil || !slices.Equal(list, []string{"x", "y"}) {
		t.Errorf("remote add of a held name: %v %v", list, err)
	}
}

// nextFrameEvent reads the next frame of cl and checks its event name
// (and, when id is set, its id).
func nextFrameEvent(t *testing.T, cl *sseClient, event, id string) {
	t.Helper()
	it := cl.nextFrame()
	if it.event != event || (id != "" && it.id != id) {
		t.Fatalf("stream %s: got %q, want event %s id %q", cl.id, it.raw, event, id)
	}
}

// Attack (issue 10 #6): a QoS message is written to a client that cannot
// acknowledge and does not listen to its event; writing it counted as
// delivered and emptied the inbox, and the client that listens to it got
// nothing. Now such a client is skipped, live and on replay, and the
// message stays stored for a client that listens.
func TestAttackQoSLostOnNonListener(t *testing.T) {
	forEachPath(t, func(t *testing.T, p streamPath) {
		repo := newMemoryRepo(t)
		f := newFixture(t, p, Config{Repository: repo, Heartbeat: -1})
		runHub(t, f.h)
		ctx := context.Background()
		marker := func(user string, cls ...*sseClient) {
			t.Helper()
			if _, err := f.h.SendByUserID(ctx, user, "marker", "m"); err != nil {
				t.Fatal(err)
			}
			for _, cl := range cls {
				nextFrameEvent(t, cl, "marker", "")
			}
		}

		// Live: the non-listening client is not written the message.
		other := f.connect(vals("userId", "u", "listeners", "other"))
		res, err := f.h.Publish(ctx, Target{UserIDs: []string{"u"}}, Event{Name: "invoice", Data: "1"}, WithQoS(0))
		if err != nil || res.Delivered != 0 {
			t.Fatalf("Publish to a client that does not listen: %+v %v, want delivered 0", res, err)
		}
		marker("u", other)
		if ids := pendingIDs(t, repo, "u"); !slices.Equal(ids, []string{res.ID}) {
			t.Fatalf("pending %v, want the invoice kept", ids)
		}
		// A client that listens gets it and it leaves the inbox.
		inv := f.connect(vals("userId", "u", "listeners", "invoice"))
		nextFrameEvent(t, inv, "invoice", res.ID)
		awaitNoPending(t, repo, "u")
		marker("u", other, inv)

		// A client that removed its only listener is not a catch-all.
		if _, err := f.h.ChangeListeners(ctx, inv.id, User{ID: "u"}, false, []string{"invoice"}); err != nil {
			t.Fatal(err)
		}
		res2, err := f.h.Publish(ctx, Target{UserIDs: []string{"u"}}, Event{Name: "invoice", Data: "2"}, WithQoS(0))
		if err != nil || res2.Delivered != 0 {
			t.Fatalf("Publish after removeListener: %+v %v", res2, err)
		}
		marker("u", other, inv)
		if ids := pendingIDs(t, repo, "u"); !slices.Equal(ids, []string{res2.ID}) {
			t.Fatalf("pending %v, want the second invoice kept", ids)
		}

		// Replay at connect skips what the client does not listen to.
		inv1, err := f.h.Publish(ctx, Target{UserIDs: []string{"v"}}, Event{Name: "invoice", Data: "3"}, WithQoS(0))
		if err != nil {
			t.Fatal(err)
		}
		note, err := f.h.Publish(ctx, Target{UserIDs: []string{"v"}}, Event{Name: "other", Data: "4"}, WithQoS(0))
		if err != nil {
			t.Fatal(err)
		}
		late := f.connect(vals("userId", "v", "listeners", "other"))
		nextFrameEvent(t, late, "other", note.ID)
		checkFor(t, waitTimeout, func() error {
			if ids := pendingIDs(t, repo, "v"); !slices.Equal(ids, []string{inv1.ID}) {
				return fmt.Errorf("pending %v, want only the invoice", ids)
			}
			return nil
		})
		marker("v", late)
		later := f.connect(vals("userId", "v", "listeners", "invoice"))
		nextFrameEvent(t, later, "invoice", inv1.ID)
		awaitNoPending(t, repo, "v")
	})
}

// Attack (issue 10 #8): a stream opened with a token that expires keeps
// receiving long after. Now it is closed at the token's expiry with
// connect-close reason token-expired, and a connect with an expired token
// is refused (401 here, as the web layer answers ErrTokenExpired).
func TestAttackStreamOutlivesToken(t *testing.T) {
	forEachPath(t, func(t *testing.T, p streamPath) {
		f := newFixture(t, p, Config{Heartbeat: -1})
		log := watchHooks(f.h)
		runHub(t, f.h)
		if code, body := f.refused(vals("userId", "u", "expiresIn", "-1s")); code != http.StatusUnauthorized ||
			!strings.Contains(body, ErrTokenExpired.Error()) {
			t.Errorf("connect with an expired token: %d %q", code, body)
		}
		start := time.Now()
		cl := f.connect(vals("userId", "u", "expiresIn", "1s", "keepalive", "1h"))
		if exp := f.h.Conn(cl.id).Snapshot().ExpireTime; exp > start.Add(2*time.Second).UnixMilli() {
			t.Errorf("expireTime %d is not the token's expiry", exp)
		}
		awaitClosedWith(t, cl, ReasonTokenExpired)
		if took := time.Since(start); took < time.Second {
			t.Errorf("closed after %v, before the token expired", took)
		}
		if d := log.awaitDisconnect(t, cl.id); d.reason != ReasonTokenExpired {
			t.Errorf("hook reason %v", d.reason)
		}
	})
}

// Attack (issue 10 #8): with the app's keepalive 0, the client asks for an
// unlimited (or a very long) lifetime. MaxKeepalive bounds it; whichever
// of the lifetime and the token's expiry comes first ends the stream, with
// the reason of that one.
func TestAttackUnlimitedKeepalive(t *testing.T) {
	f := newFixture(t, streamPaths[0], Config{Heartbeat: -1, MaxKeepalive: 50 * time.Millisecond})
	log := watchHooks(f.h)
	runHub(t, f.h)
	for _, keep := range []string{"-1ms", "1000h"} {
		cl := f.connect(vals("userId", "u", "keepalive", keep, "expiresIn", "1h"))
		if rest := cl.waitEnd(); len(rest) != 0 {
			t.Errorf("keepalive %s: expired stream ended with %v", keep, rest)
		}
		if d := log.awaitDisconnect(t, cl.id); d.reason != ReasonExpired {
			t.Errorf("keepalive %s: reason %v, want expired", keep, d.reason)
		}
	}
	g := newFixture(t, streamPaths[0], Config{Heartbeat: -1, MaxKeepalive: -1})
	c := mustConnect(t, g.h, ConnectRequest{User: User{ID: "u"}, Keepalive: -1})
	if exp := c.Snapshot().ExpireTime; exp != 0 {
		t.Errorf("MaxKeepalive -1: unlimited connection expires at %d", exp)
	}
}

// ackCounter is a repository that records the ids of every Ack.
type ackCounter struct {
	qos.Repository
	mu    sync.Mutex
	calls [][]string
}

func (r *ackCounter) Ack(ctx context.Context, app string, rc qos.Recipient, ids ...string) (int, error) {
	r.mu.Lock()
	r.calls = append(r.calls, slices.Clone(ids))
	r.mu.Unlock()
	return r.Repository.Ack(ctx, app, rc, ids...)
}

func (r *ackCounter) taken() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// Attack (issue 10 #1): one ack carries tens of thousands of ids, many of
// them repeated, and stalls the store. Ack refuses more than MaxAckIDs
// before touching the store or the cluster, and gives the store each id
// once.
func TestAttackAckTooManyIDs(t *testing.T) {
	repo := &ackCounter{Repository: newMemoryRepo(t)}
	tr := newFakeTransport()
	f := newFixture(t, streamPaths[0], Config{Repository: repo, Heartbeat: -1, Transport: tr, MaxConnectionsPerUser: -1})
	ctx := context.Background()
	cl := f.connect(vals("userId", "u", "ack", "1"))
	res, err := f.h.Publish(ctx, Target{UserIDs: []string{"u"}}, Event{Name: "e"}, WithQoS(0))
	if err != nil {
		t.Fatal(err)
	}
	<-tr.sink
	nextFrameEvent(t, cl, "e", res.ID)
	ids := make([]string, MaxAckIDs+1)
	for i := range ids {
		ids[i] = res.ID
	}
	ops := len(tr.surveyOps())
	for _, conn := range []string{cl.id, "remote"} {
		if n, err := f.h.Ack(ctx, conn, User{ID: "u"}, ids); !errors.Is(err, ErrTooManyIDs) || n != 0 {
			t.Errorf("Ack of %d ids on %s: %d %v", len(ids), conn, n, err)
		}
	}
	if calls := repo.taken(); len(calls) != 0 || len(tr.surveyOps()) != ops {
		t.Errorf("a refused Ack reached the store (%d calls) or the cluster (%v)", len(calls), tr.surveyOps()[ops:])
	}
	if ids := pendingIDs(t, repo, "u"); len(ids) != 1 {
		t.Errorf("pending after refused acks: %v", ids)
	}
	rep, _ := f.h.HandleSurvey(ctx, "test", Request{Op: OpAck, Target: Target{ConnectionIDs: []string{cl.id}},
		Args: mustJSON(t, AckArgs{IDs: ids, Owner: User{ID: "u"}})})
	if !strings.Contains(rep.Error, ErrTooManyIDs.Error()) || rep.Count != 0 {
		t.Errorf("peer Ack of %d ids: %+v", len(ids), rep)
	}
	n, err := f.h.Ack(ctx, cl.id, User{ID: "u"}, ids[:MaxAckIDs])
	if err != nil || n != 1 {
		t.Fatalf("Ack of %d repeats: %d %v", MaxAckIDs, n, err)
	}
	if calls := repo.taken(); len(calls) != 1 || !slices.Equal(calls[0], []string{res.ID}) {
		t.Errorf("the store got %v; want one call with one id", calls)
	}
}
