package hub

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"
)

func TestClientCap(t *testing.T) {
	forEachPath(t, func(t *testing.T, p streamPath) {
		f := newFixture(t, p, Config{})
		log := watchHooks(f.h)
		profile := vals("userId", "u1", "tenantId", "t1", "clientId", "browser", "domain", "a.example")
		var cls []*sseClient
		for range 4 {
			cls = append(cls, f.connect(profile))
		}
		// The oldest of four is closed with connect-close, then its stream ends.
		rest := cls[0].waitEnd()
		if len(rest) != 1 {
			t.Fatalf("oldest stream ended with %d frames, want connect-close only", len(rest))
		}
		checkConnectClose(t, rest[0], cls[0].id, ReasonClientLimit)
		if rest[0].id != "1" {
			t.Errorf("connect-close id %q, want 1", rest[0].id)
		}
		if d := log.awaitDisconnect(t, cls[0].id); d.reason != ReasonClientLimit {
			t.Errorf("hook reason %v", d.reason)
		}
		awaitGone(t, f.h, cls[0].id)
		for _, cl := range cls[1:] {
			if c := f.h.Conn(cl.id); c == nil || c.Closed() {
				t.Errorf("newer connection %s closed", cl.id)
			}
		}
		// Another tenant, another client id, and no client id at all are
		// separate groups: nothing more is closed. (The domain is not part
		// of the group unless ClientCapByDomain is set: see
		// TestClientCapIgnoresDomain.)
		others := []map[string]string{
			{"tenantId": "t2"}, {"clientId": "other"}, {"clientId": ""}, {"userId": "u2"},
		}
		var extra []*sseClient
		for _, o := range others {
			q := vals("userId", "u1", "tenantId", "t1", "clientId", "browser", "domain", "a.example")
			for k, v := range o {
				q.Set(k, v)
			}
			extra = append(extra, f.connect(q))
		}
		for _, cl := range append(cls[1:], extra...) {
			if c := f.h.Conn(cl.id); c == nil || c.Closed() {
				t.Errorf("connection %s closed", cl.id)
			}
		}
		if n := f.h.LocalStats().Connections; n != 3+len(others) {
			t.Errorf("%d connections, want %d", n, 3+len(others))
		}
	})
}

func TestClientCapSettings(t *testing.T) {
	for _, tt := range []struct {
		limit, open, closed int
	}{{-1, 6, 0}, {1, 3, 2}, {0, 5, 2}} {
		h := newTestHub(t, Config{Writers: -1, MaxConnectionsPerClient: tt.limit})
		var conns []*Conn
		for range tt.open {
			conns = append(conns, mustConnect(t, h, ConnectRequest{User: User{ID: "u"}, Info: ClientInfo{ClientID: "c"}}))
		}
		closed := 0
		for i, c := range conns {
			if c.Closed() {
				closed++
				if c.Reason() != ReasonClientLimit {
					t.Errorf("limit %d: reason %v", tt.limit, c.Reason())
				}
				if i >= tt.closed {
					t.Errorf("limit %d: connection %d closed, but it is not among the oldest", tt.limit, i)
				}
			}
		}
		if closed != tt.closed {
			t.Errorf("limit %d, %d connections: %d closed, want %d", tt.limit, tt.open, closed, tt.closed)
		}
	}
}

func TestHooks(t *testing.T) {
	forEachPath(t, func(t *testing.T, p streamPath) {
		f := newFixture(t, p, Config{})
		log := watchHooks(f.h)
		ctx := context.Background()
		cl := f.connect(vals("userId", "u1", "tenantId", "t", "session", "100", "listeners", "a"))
		log.mu.Lock()
		connects := slices.Clone(log.connects)
		log.mu.Unlock()
		if len(connects) != 1 || connects[0].ID() != cl.id || connects[0].SessionDuration() != 100 {
			t.Fatalf("OnConnect calls: %v", connects)
		}
		owner := User{ID: "u1", TenantID: "t"}
		after, err := f.h.ChangeListeners(ctx, cl.id, owner, true, []string{"b", "c", "b"})
		if err != nil || !slices.Equal(after, []string{"a", "b", "c"}) {
			t.Fatalf("add listeners: %v %v", after, err)
		}
		after, err = f.h.ChangeListeners(ctx, cl.id, owner, false, []string{"a", "zzz"})
		if err != nil || !slices.Equal(after, []string{"b", "c"}) {
			t.Fatalf("remove listeners: %v %v", after, err)
		}
		log.mu.Lock()
		changes := slices.Clone(log.changes)
		log.mu.Unlock()
		if len(changes) != 2 ||
			!changes[0].Added || !slices.Equal(changes[0].Before, []string{"a"}) || !slices.Equal(changes[0].After, []string{"a", "b", "c"}) ||
			changes[1].Added || !slices.Equal(changes[1].Before, []string{"a", "b", "c"}) || !slices.Equal(changes[1].After, []string{"b", "c"}) ||
			changes[0].Conn.ID() != cl.id {
			t.Errorf("listener changes: %+v", changes)
		}
		// Another user's (or tenant's) connection is unknown to them.
		for _, other := range []User{{ID: "u2", TenantID: "t"}, {ID: "u1", TenantID: "x"}, {}} {
			if _, err := f.h.ChangeListeners(ctx, cl.id, other, true, []string{"evil"}); !errors.Is(err, ErrUnknownConnection) {
				t.Errorf("ChangeListeners by %+v: %v", other, err)
			}
		}
		if _, err := f.h.ChangeListeners(ctx, "nope", owner, true, []string{"x"}); !errors.Is(err, ErrUnknownConnection) {
			t.Errorf("ChangeListeners of unknown connection: %v", err)
		}
		if got := f.h.Conn(cl.id).Listeners(); !slices.Equal(got, []string{"b", "c"}) {
			t.Errorf("listeners after refused changes: %v", got)
		}
		// disconnect.do: the final session duration is the sum, in place
		// when the disconnect hook runs.
		dur, sess := int64(30), int64(12)
		if n, err := f.h.DisconnectClient(ctx, cl.id, &dur, &sess); err != nil || n != 1 {
			t.Fatalf("DisconnectClient: %d %v", n, err)
		}
		rest := cl.waitEnd()
		if len(rest) != 1 {
			t.Fatalf("stream ended with %d frames", len(rest))
		}
		checkConnectClose(t, rest[0], cl.id, ReasonClientClose)
		d := log.awaitDisconnect(t, cl.id)
		if d.reason != ReasonClientClose || d.session != 42 {
			t.Errorf("OnDisconnect reason %v session %d, want client-close 42", d.reason, d.session)
		}
		if n, err := f.h.DisconnectClient(ctx, cl.id, nil, nil); err != nil || n != 0 {
			t.Errorf("second DisconnectClient: %d %v", n, err)
		}
	})
}

func TestQueries(t *testing.T) {
	h := newTestHub(t, Config{Writers: -1, MaxConnectionsPerClient: -1})
	ctx := context.Background()
	ann := mustConnect(t, h, ConnectRequest{User: User{ID: "1", Name: "Ann Lee", TenantID: "t1", AccessToken: "ka",
		Claims: map[string]any{"role": "admin"}}, Info: ClientInfo{ClientID: "c1", UserAgent: "UA"}, Channels: []string{"ch"}, Listeners: []string{"z", "a"}, CanAck: true})
	ann2 := mustConnect(t, h, ConnectRequest{User: User{ID: "1", Name: "Ann Lee", TenantID: "t1", AccessToken: "ka"}, Info: ClientInfo{ClientID: "c2"}})
	bob := mustConnect(t, h, ConnectRequest{User: User{ID: "2", Name: "Bob", TenantID: "t2"}, Info: ClientInfo{ClientID: "c1"}})
	anon := mustConnect(t, h, ConnectRequest{User: User{AccessToken: "kx"}})

	ids := func(list []ConnectionInfo) []string {
		var out []string
		for _, ci := range list {
			out = append(out, ci.ID)
		}
		slices.Sort(out)
		return out
	}
	sorted := func(cs ...*Conn) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.ID())
		}
		slices.Sort(out)
		return out
	}
	for _, tt := range []struct {
		name string
		q    ConnectionQuery
		want []string
	}{
		{"all", ConnectionQuery{}, sorted(ann, ann2, bob, anon)},
		{"id", ConnectionQuery{ID: bob.ID()}, sorted(bob)},
		{"id and wrong user", ConnectionQuery{ID: bob.ID(), UserID: "1"}, nil},
		{"unknown id", ConnectionQuery{ID: "nope"}, nil},
		{"user", ConnectionQuery{UserID: "1"}, sorted(ann, ann2)},
		{"client", ConnectionQuery{ClientID: "c1"}, sorted(ann, bob)},
		{"client and user", ConnectionQuery{ClientID: "c1", UserID: "2"}, sorted(bob)},
		{"name folded", ConnectionQuery{Name: "ann"}, sorted(ann, ann2)},
		{"name part", ConnectionQuery{Name: "O"}, sorted(bob)},
		{"id wins over client", ConnectionQuery{ID: ann2.ID(), ClientID: "c1"}, sorted(ann2)},
	} {
		if got := ids(h.LocalConnections(tt.q)); !slices.Equal(got, tt.want) {
			t.Errorf("LocalConnections %s: %v, want %v", tt.name, got, tt.want)
		}
	}
	ci := h.LocalConnections(ConnectionQuery{ID: ann.ID()})[0]
	if ci.AccessUserID != "1" || ci.AccessUserName != "Ann Lee" || ci.AccessTenantID != "t1" || ci.AccessToken != "ka" ||
		ci.Channel != "ch" || !slices.Equal(ci.Listeners, []string{"a", "z"}) || !ci.CanAck || ci.ClientID != "c1" ||
		ci.UserAgent != "UA" || ci.NodeID != "n1" || ci.CreateTime != ann.CreatedAt().UnixMilli() || ci.MessageCount != 0 ||
		ci.AccessUser.Claims["role"] != "admin" {
		t.Errorf("snapshot: %+v", ci)
	}
	ann.CountRequest(false)
	ann.CountRequest(true)
	ann.CountRequest(false)
	if ci := ann.Snapshot(); ci.RequestMessageCount != 2 || ci.RequestUploadCount != 1 || ci.LastRequestTime == 0 {
		t.Errorf("request counters: %+v", ci)
	}

	users := h.LocalUsers(UsersQuery{})
	slices.SortFunc(users, func(a, b UserInfo) int { return cmpString(a.ID, b.ID) })
	if len(users) != 2 || users[0].ID != "1" || users[0].Connections != 2 || users[0].Name != "Ann Lee" || users[0].TenantID != "t1" ||
		users[1].ID != "2" || users[1].Connections != 1 {
		t.Errorf("LocalUsers: %+v", users)
	}
	if users := h.LocalUsers(UsersQuery{Name: "BOB"}); len(users) != 1 || users[0].ID != "2" {
		t.Errorf("LocalUsers(BOB): %+v", users)
	}
	if st := h.LocalStats(); st != (Stats{Connections: 4, Users: 2, AccessTokens: 2, Tenants: 2, Channels: 1}) {
		t.Errorf("LocalStats: %+v", st)
	}
	if n := h.LocalUserConnections("1"); n != 2 {
		t.Errorf("LocalUserConnections: %d", n)
	}
	for user, want := range map[string]bool{"1": true, "2": true, "3": false} {
		if on, err := h.IsOnline(ctx, user); on != want || err != nil {
			t.Errorf("IsOnline(%q) = %v %v", user, on, err)
		}
	}
	if u, err := h.Owner(ctx, anon.ID()); err != nil || u.AccessToken != "kx" {
		t.Errorf("Owner: %+v %v", u, err)
	}
	if _, err := h.Owner(ctx, "nope"); !errors.Is(err, ErrUnknownConnection) {
		t.Errorf("Owner(nope): %v", err)
	}
	// Cluster-wide variants on a single node equal the local ones.
	if list, err := h.Connections(ctx, ConnectionQuery{}); err != nil || len(list) != 4 || list[0].AccessUserName != "" || list[3].AccessUserName != "Bob" {
		t.Errorf("Connections (sorted by name): %d %v", len(list), err)
	}
	if st, err := h.Stats(ctx); err != nil || st.Connections != 4 || st.Users != 2 {
		t.Errorf("Stats: %+v %v", st, err)
	}
	if users, err := h.Users(ctx, UsersQuery{}); err != nil || len(users) != 2 || users[0].ID != "1" {
		t.Errorf("Users: %+v %v", users, err)
	}
	if h.Conn(bob.ID()) != bob || h.Conn("nope") != nil {
		t.Error("Conn lookup")
	}
	if bob.User().ID != "2" || bob.Info().ClientID != "c1" || !slices.Equal(ann.Channels(), []string{"ch"}) || !ann.CanAck() || bob.CanAck() {
		t.Error("Conn accessors")
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestDisconnect(t *testing.T) {
	forEachPath(t, func(t *testing.T, p streamPath) {
		f := newFixture(t, p, Config{})
		log := watchHooks(f.h)
		ctx := context.Background()
		u1a := f.connect(vals("userId", "u1"))
		u1b := f.connect(vals("userId", "u1"))
		tok := f.connect(vals("token", "secret"))
		byID := f.connect(vals("userId", "u3"))
		keep := f.connect(vals("userId", "u4"))
		for _, tt := range []struct {
			name string
			t    Target
			cls  []*sseClient
		}{
			{"user", Target{UserIDs: []string{"u1"}}, []*sseClient{u1a, u1b}},
			{"token", Target{AccessTokens: []string{"secret"}}, []*sseClient{tok}},
			{"connection", Target{ConnectionIDs: []string{byID.id}}, []*sseClient{byID}},
		} {
			n, err := f.h.Disconnect(ctx, tt.t, ReasonKicked)
			if err != nil || n != len(tt.cls) {
				t.Errorf("%s: Disconnect = %d %v, want %d", tt.name, n, err, len(tt.cls))
			}
			for _, cl := range tt.cls {
				rest := cl.waitEnd()
				if len(rest) != 1 {
					t.Fatalf("%s: stream ended after %d frames", tt.name, len(rest))
				}
				checkConnectClose(t, rest[0], cl.id, ReasonKicked)
				if d := log.awaitDisconnect(t, cl.id); d.reason != ReasonKicked {
					t.Errorf("%s: hook reason %v", tt.name, d.reason)
				}
				awaitGone(t, f.h, cl.id)
			}
		}
		if n, err := f.h.Disconnect(ctx, Target{UserIDs: []string{"u1"}}, ReasonKicked); err != nil || n != 0 {
			t.Errorf("Disconnect of nobody: %d %v", n, err)
		}
		if _, err := f.h.Disconnect(ctx, Target{}, ReasonKicked); !errors.Is(err, ErrNoTarget) {
			t.Errorf("Disconnect zero target: %v", err)
		}
		if n, err := f.h.SendAll(ctx, "still", "here"); err != nil || n != 1 {
			t.Fatalf("SendAll after disconnects: %d %v", n, err)
		}
		if it := keep.nextFrame(); it.event != "still" {
			t.Errorf("remaining client got %q", it.raw)
		}
		if st := f.h.LocalStats(); st.Connections != 1 || st.Users != 1 || st.AccessTokens != 0 {
			t.Errorf("stats after disconnects: %+v", st)
		}
	})
}

func TestSetDuration(t *testing.T) {
	forEachPath(t, func(t *testing.T, p streamPath) {
		f := newFixture(t, p, Config{})
		ctx := context.Background()
		online := f.connect(vals("userId", "on", "session", "5"))
		n, err := f.h.SetDuration(ctx, Target{UserIDs: []string{"on"}}, 3600)
		if err != nil || n != 1 {
			t.Fatalf("SetDuration online: %d %v", n, err)
		}
		it := online.nextFrame()
		if it.raw != "event:sse-set-duration\nid:1\ndata:{\"duration\":\"3600\"}\n\n" {
			t.Errorf("set-duration frame %q", it.raw)
		}
		if s := f.h.Conn(online.id).SessionDuration(); s != 3600 {
			t.Errorf("session %d", s)
		}
		if n, err := f.h.ClearDuration(ctx, Target{ConnectionIDs: []string{online.id}}); err != nil || n != 1 {
			t.Errorf("ClearDuration: %d %v", n, err)
		}
		if it := online.nextFrame(); it.event != "sse-set-duration" || it.id != "2" || it.data != `{"duration":"0"}` {
			t.Errorf("clear frame %q", it.raw)
		}

		// Offline: kept for the user's (and the token's) next connection.
		for _, tg := range []Target{{UserIDs: []string{"off"}}, {AccessTokens: []string{"tk"}}} {
			if n, err := f.h.SetDuration(ctx, tg, 77); err != nil || n != 0 {
				t.Fatalf("SetDuration offline: %d %v", n, err)
			}
		}
		for _, q := range [][]string{{"userId", "off"}, {"token", "tk"}} {
			cl := f.connect(vals(q...))
			it := cl.nextFrame()
			if it.event != "sse-set-duration" || it.data != `{"duration":"77"}` || it.id != "1" {
				t.Errorf("%v: first frame after connect-finish %q", q, it.raw)
			}
			if s := f.h.Conn(cl.id).SessionDuration(); s != 77 {
				t.Errorf("%v: session %d", q, s)
			}
			// Delivered once: the next connection gets none.
			again := f.connect(vals(q...))
			if _, err := f.h.SendByConnectionID(ctx, again.id, "marker", "x"); err != nil {
				t.Fatal(err)
			}
			if it := again.nextFrame(); it.event != "marker" {
				t.Errorf("%v: second connection got %q before the marker", q, it.raw)
			}
		}
		if _, err := f.h.SetDuration(ctx, Target{}, 1); !errors.Is(err, ErrNoTarget) {
			t.Errorf("SetDuration zero target: %v", err)
		}
	})
}

func TestKeepaliveExpiry(t *testing.T) {
	forEachPath(t, func(t *testing.T, p streamPath) {
		f := newFixture(t, p, Config{Keepalive: 50 * time.Millisecond, Heartbeat: -1})
		log := watchHooks(f.h)
		runHub(t, f.h)
		cl := f.connect(vals("userId", "u1"))
		rest := cl.waitEnd()
		for _, it := range rest {
			if it.event == "connect-close" {
				t.Errorf("expiry sent connect-close: %q", it.raw)
			}
		}
		if len(rest) != 0 {
			t.Errorf("expired stream ended with frames %v", rest)
		}
		if d := log.awaitDisconnect(t, cl.id); d.reason != ReasonExpired {
			t.Errorf("reason %v, want expired", d.reason)
		}
		awaitGone(t, f.h, cl.id)
	})
}

func TestClientKeepalive(t *testing.T) {
	f := newFixture(t, streamPaths[0], Config{Heartbeat: -1})
	log := watchHooks(f.h)
	runHub(t, f.h)
	short := f.connect(vals("userId", "u1", "keepalive", "10ms"))
	long := f.connect(vals("userId", "u2", "keepalive", "1h"))
	if rest := short.waitEnd(); len(rest) != 0 {
		t.Errorf("expired stream ended with %v", rest)
	}
	if d := log.awaitDisconnect(t, short.id); d.reason != ReasonExpired {
		t.Errorf("reason %v", d.reason)
	}
	if c := f.h.Conn(long.id); c == nil || c.Closed() {
		t.Error("connection with a long keepalive expired")
	}
}

func TestHeartbeat(t *testing.T) {
	forEachPath(t, func(t *testing.T, p streamPath) {
		f := newFixture(t, p, Config{Heartbeat: time.Millisecond})
		runHub(t, f.h)
		cl := f.connect(vals("userId", "u1"))
		it := cl.next()
		if !it.comment || it.raw != ":\n" {
			t.Fatalf("expected a heartbeat comment, got %q", it.raw)
		}
		// Heartbeats do not advance the id counter.
		if _, err := f.h.SendByUserID(context.Background(), "u1", "e", "x"); err != nil {
			t.Fatal(err)
		}
		if it := cl.nextFrame(); it.id != "1" {
			t.Errorf("first event after heartbeats has id %q", it.id)
		}
	})
}

func TestClientGoesAway(t *testing.T) {
	forEachPath(t, func(t *testing.T, p streamPath) {
		f := newFixture(t, p, Config{Heartbeat: -1})
		log := watchHooks(f.h)
		runHub(t, f.h)
		gone := f.connect(vals("userId", "u1"))
		stay := f.connect(vals("userId", "u2"))
		gone.close()
		d := log.awaitDisconnect(t, gone.id)
		if d.reason != ReasonClientGone && d.reason != ReasonWriteError {
			t.Errorf("reason %v, want client-gone", d.reason)
		}
		if d.reason != ReasonClientGone {
			t.Logf("noticed as %v", d.reason)
		}
		awaitGone(t, f.h, gone.id)
		if st := f.h.LocalStats(); st.Connections != 1 || st.Users != 1 {
			t.Errorf("stats %+v", st)
		}
		if n, err := f.h.SendAll(context.Background(), "e", "x"); err != nil || n != 1 {
			t.Errorf("SendAll: %d %v", n, err)
		}
		if it := stay.nextFrame(); it.event != "e" {
			t.Errorf("remaining client got %q", it.raw)
		}
	})
}

func TestShutdown(t *testing.T) {
	forEachPath(t, func(t *testing.T, p streamPath) {
		f := newFixture(t, p, Config{})
		log := watchHooks(f.h)
		cls := []*sseClient{f.connect(vals("userId", "u1")), f.connect(vals("userId", "u2")), f.connect(vals())}
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := f.h.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		for _, cl := range cls {
			if rest := cl.waitEnd(); len(rest) != 0 {
				t.Errorf("shutdown stream ended with frames %v (no connect-close expected)", rest)
			}
			if d, ok := log.disconnectOf(cl.id); !ok || d.reason != ReasonShutdown {
				t.Errorf("disconnect hook %+v %v after Shutdown returned", d, ok)
			}
		}
		if st := f.h.LocalStats(); st.Connections != 0 {
			t.Errorf("%d connections after Shutdown", st.Connections)
		}
		if err := f.h.Shutdown(ctx); err != nil {
			t.Errorf("second Shutdown: %v", err)
		}
		if _, err := f.h.Connect(ctx, connectReq("u")); !errors.Is(err, ErrClosed) {
			t.Errorf("Connect after Shutdown: %v", err)
		}
		if _, err := f.h.SendAll(ctx, "e", "x"); !errors.Is(err, ErrClosed) {
			t.Errorf("SendAll after Shutdown: %v", err)
		}
		resp, err := f.srv.Client().Get(f.srv.URL + "/connect?userId=late")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("connect after Shutdown: status %d", resp.StatusCode)
		}
		if err := f.h.Run(ctx); err != nil {
			t.Errorf("Run after Shutdown: %v", err)
		}
	})
}

func TestShutdownContext(t *testing.T) {
	h := newTestHub(t, Config{Writers: -1})
	h.streams.Add(1) // a stream that never ends
	defer h.streams.Done()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := h.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown with a stuck stream: %v", err)
	}
}

func TestDrain(t *testing.T) {
	forEachPath(t, func(t *testing.T, p streamPath) {
		f := newFixture(t, p, Config{ReconnectTime: 2 * time.Second})
		log := watchHooks(f.h)
		var cls []*sseClient
		for i := range 4 {
			cls = append(cls, f.connect(vals("userId", "u"+strconv.Itoa(i))))
		}
		window := 300 * time.Millisecond
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := f.h.Drain(ctx, window); err != nil {
			t.Fatalf("Drain: %v", err)
		}
		// Timers never fire early: the last close comes at least 3 steps
		// after the first.
		if took := time.Since(start); took < 3*window/4 {
			t.Errorf("Drain of 4 connections over %v took %v: closes not spread", window, took)
		}
		for _, cl := range cls {
			rest := cl.waitEnd()
			if len(rest) != 1 || rest[0].retry == "" || rest[0].raw != "retry:"+rest[0].retry+"\n\n" {
				t.Fatalf("drained stream ended with %v, want one retry: frame", rest)
			}
			ms, err := strconv.Atoi(rest[0].retry)
			if err != nil || ms < 1000 || ms >= 3000 {
				t.Errorf("retry %q not in [1000, 3000)", rest[0].retry)
			}
			if d := log.awaitDisconnect(t, cl.id); d.reason != ReasonShutdown {
				t.Errorf("reason %v", d.reason)
			}
		}
		if _, err := f.h.Connect(ctx, connectReq("late")); !errors.Is(err, ErrClosed) {
			t.Errorf("Connect while draining: %v", err)
		}
		if err := f.h.Drain(ctx, window); err != nil {
			t.Errorf("second Drain: %v", err)
		}
	})
}

func TestDrainContext(t *testing.T) {
	h := newTestHub(t, Config{Writers: -1})
	for range 3 {
		mustConnect(t, h, ConnectRequest{})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := h.Drain(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Drain cut short: %v", err)
	}
	closed := 0
	h.conns.each(func(c *Conn) {
		if c.Closed() {
			closed++
		}
	})
	if closed != 1 {
		t.Errorf("%d connections closed before the context ended, want 1", closed)
	}
}

func TestJitter(t *testing.T) {
	if jitter(0) != 0 || jitter(-time.Second) != 0 {
		t.Error("jitter of non-positive durations")
	}
	for range 1000 {
		if j := jitter(time.Second); j < 500*time.Millisecond || j >= 1500*time.Millisecond {
			t.Fatalf("jitter(1s) = %v", j)
		}
	}
}

func TestConnectIDsUnique(t *testing.T) {
	h := newTestHub(t, Config{Writers: -1})
	seen := map[string]bool{}
	for range 1000 {
		c := mustConnect(t, h, ConnectRequest{})
		if seen[c.ID()] || len(c.ID()) != 22 {
			t.Fatalf("id %q repeated or not 128 bits", c.ID())
		}
		seen[c.ID()] = true
	}
	if n := h.LocalStats().Connections; n != 1000 {
		t.Errorf("%d connections", n)
	}
}

// TestConcurrentSendsAndChurn exercises sends, connects and disconnects at
// once (for -race); every delivered count must stay within bounds.
func TestConcurrentSendsAndChurn(t *testing.T) {
	h := newTestHub(t, Config{Writers: 2, QueueSize: 1 << 16, MaxConnectionsPerClient: -1})
	ctx := context.Background()
	stop := make(chan struct{})
	errs := make(chan error, 8)
	for w := range 3 {
		go func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				c, err := h.Connect(ctx, ConnectRequest{User: User{ID: fmt.Sprint("u", w)}, Channels: []string{"ch"}, Listeners: []string{"e"}})
				if err != nil {
					errs <- err
					return
				}
				if i%2 == 0 {
					c.close(ReasonKicked)
				}
				_, _ = h.ChangeListeners(ctx, c.ID(), User{ID: fmt.Sprint("u", w)}, i%3 == 0, []string{"e"})
				drainQueue(c)
				h.finish(c)
			}
		}()
	}
	go func() {
		for i := range 2000 {
			n, err := h.Send(ctx, Target{UserIDs: []string{"u0", "u1"}, Channels: []string{"ch"}, Listening: i%2 == 0}, Event{Name: "e", Data: "x"})
			// Each churning goroutine holds one connection at a time, but a
			// send walking several indices may meet its old connection
			// under one key and its next one under another.
			if err != nil || n < 0 || n > 6 {
				errs <- fmt.Errorf("send: %d %v", n, err)
				return
			}
			_ = h.LocalStats()
			_ = h.LocalUsers(UsersQuery{})
		}
		errs <- nil
	}()
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	close(stop)
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if st := h.LocalStats(); st.Connections != 0 || st.Users != 0 {
		t.Errorf("after churn: %+v", st)
	}
}
