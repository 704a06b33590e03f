package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// deliverCall is one Deliver the hub made.
type deliverCall struct {
	app string
	t   Target
	ev  Event
}

// interestCall is one SetInterest the hub made.
type interestCall struct {
	app, key string
	on       bool
}

// fakeTransport stands for the other nodes of a cluster: Deliver calls go
// to sink and count deliverCount; Survey answers with replies.
type fakeTransport struct {
	sink         chan deliverCall
	deliverCount int
	deliverErr   error

	mu       sync.Mutex
	interest []interestCall
	surveys  []Request
	replies  func(Request) ([]Reply, error)
}

var (
	_ Transport = (*fakeTransport)(nil)
	_ Interest  = (*fakeTransport)(nil)
)

func newFakeTransport() *fakeTransport {
	return &fakeTransport{sink: make(chan deliverCall, 128)}
}

func (f *fakeTransport) Deliver(ctx context.Context, app string, t Target, ev Event) (int, error) {
	select {
	case f.sink <- deliverCall{app: app, t: t, ev: ev}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return f.deliverCount, f.deliverErr
}

func (f *fakeTransport) Survey(_ context.Context, _ string, req Request) ([]Reply, error) {
	f.mu.Lock()
	f.surveys = append(f.surveys, req)
	fn := f.replies
	f.mu.Unlock()
	if fn == nil {
		return nil, nil
	}
	return fn(req)
}

func (f *fakeTransport) Run(ctx context.Context, _ Handler) error {
	<-ctx.Done()
	return nil
}

func (f *fakeTransport) SetInterest(app, key string, on bool) {
	f.mu.Lock()
	f.interest = append(f.interest, interestCall{app: app, key: key, on: on})
	f.mu.Unlock()
}

func (f *fakeTransport) setReplies(fn func(Request) ([]Reply, error)) {
	f.mu.Lock()
	f.replies = fn
	f.mu.Unlock()
}

// interestLog returns the SetInterest calls so far and forgets them.
func (f *fakeTransport) takeInterest() []interestCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.interest
	f.interest = nil
	return out
}

// surveyOps returns the ops surveyed so far.
func (f *fakeTransport) surveyOps() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ops []string
	for _, r := range f.surveys {
		ops = append(ops, r.Op)
	}
	return ops
}

func interestStrings(calls []interestCall) []string {
	var out []string
	for _, c := range calls {
		on := "-"
		if c.on {
			on = "+"
		}
		out = append(out, c.app+" "+on+c.key)
	}
	sort.Strings(out)
	return out
}

func mustJSON(tb testing.TB, v any) json.RawMessage {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestTransportDeliver(t *testing.T) {
	tr := newFakeTransport()
	tr.deliverCount = 5
	h := newTestHub(t, Config{Writers: -1, Transport: tr, MaxConnectionsPerUser: -1}) // no cap survey
	mustConnect(t, h, connectReq("u1"))
	ctx := context.Background()
	n, err := h.SendByUserID(ctx, "u1", "greet", map[string]int{"a": 1})
	if err != nil || n != 6 {
		t.Fatalf("SendByUserID: n=%d err=%v, want 1 local + 5 remote", n, err)
	}
	call := <-tr.sink
	if call.app != "test" || !slices.Equal(call.t.UserIDs, []string{"u1"}) || !reflect.DeepEqual(call.ev, Event{Name: "greet", Data: `{"a":1}`}) {
		t.Errorf("Deliver got %+v", call)
	}
	// A remote failure still counts the local delivery.
	tr.deliverErr = errors.New("pubsub down")
	tr.deliverCount = 0
	if n, err := h.SendAll(ctx, "x", "y"); err != nil || n != 1 {
		t.Errorf("SendAll with failing transport: n=%d err=%v", n, err)
	}
	<-tr.sink
	// Offline everywhere: the transport is still asked.
	tr.deliverErr = nil
	if n, err := h.SendByUserID(ctx, "nobody", "x", "y"); err != nil || n != 0 {
		t.Errorf("send to nobody: n=%d err=%v", n, err)
	}
	if call := <-tr.sink; call.t.UserIDs[0] != "nobody" {
		t.Errorf("Deliver got %+v", call)
	}
	if !h.Clustered() {
		t.Error("Clustered() false with a transport")
	}
}

func TestTransportInterest(t *testing.T) {
	tr := newFakeTransport()
	h := newTestHub(t, Config{App: "app", Writers: -1, Transport: tr, MaxConnectionsPerClient: -1})
	if got := interestStrings(tr.takeInterest()); !slices.Equal(got, []string{"app +all"}) {
		t.Errorf("New: interest %v", got)
	}
	req := ConnectRequest{User: User{ID: "1", TenantID: "t", AccessToken: "k"}, Channels: []string{"c"}, Info: ClientInfo{ClientID: "cl"}}
	c1 := mustConnect(t, h, req)
	want := []string{"app +c:c", "app +k:k", "app +t:t", "app +u:1", "app +x:" + c1.ID()}
	sort.Strings(want)
	if got := interestStrings(tr.takeInterest()); !slices.Equal(got, want) {
		t.Errorf("first connection: interest %v, want %v", got, want)
	}
	c2 := mustConnect(t, h, req)
	if got := interestStrings(tr.takeInterest()); !slices.Equal(got, []string{"app +x:" + c2.ID()}) {
		t.Errorf("second connection of the same keys: interest %v", got)
	}
	ctx := context.Background()
	if n, err := h.Disconnect(ctx, Target{ConnectionIDs: []string{c1.ID()}}, ReasonKicked); err != nil || n != 1 {
		t.Fatalf("Disconnect: %d %v", n, err)
	}
	drainQueue(c1)
	h.finish(c1) // what the writer does at the end of the stream
	if got := interestStrings(tr.takeInterest()); !slices.Equal(got, []string{"app -x:" + c1.ID()}) {
		t.Errorf("first of two leaves: interest %v", got)
	}
	c2.close(ReasonKicked)
	h.finish(c2)
	want = []string{"app -c:c", "app -k:k", "app -t:t", "app -u:1", "app -x:" + c2.ID()}
	sort.Strings(want)
	if got := interestStrings(tr.takeInterest()); !slices.Equal(got, want) {
		t.Errorf("last leaves: interest %v, want %v", got, want)
	}
	h.finish(c2) // twice: nothing more
	if got := tr.takeInterest(); len(got) != 0 {
		t.Errorf("second finish: interest %v", got)
	}
}

func TestTransportSurveyMerges(t *testing.T) {
	tr := newFakeTransport()
	h := newTestHub(t, Config{Writers: -1, Transport: tr, MaxConnectionsPerUser: -1}) // no cap survey
	ctx := context.Background()
	local := mustConnect(t, h, ConnectRequest{User: User{ID: "u1", Name: "Ann", AccessToken: "k1", TenantID: "t1"}})
	mustConnect(t, h, ConnectRequest{User: User{ID: "u2", Name: "Bob"}})
	remoteConn := ConnectionInfo{ID: "remote1", NodeID: "n2", AccessUserID: "u1", AccessUserName: "Ann", CreateTime: 1, AccessUser: User{ID: "u1", Name: "Ann"}}
	tr.setReplies(func(req Request) ([]Reply, error) {
		switch req.Op {
		case OpStats:
			return []Reply{
				{NodeID: "n2", Data: mustJSON(t, Stats{Connections: 2, Users: 2, AccessTokens: 1, Tenants: 1})},
				{NodeID: "n3", Error: "broken"},
			}, nil
		case OpUsers:
			return []Reply{
				{NodeID: "n2", Data: mustJSON(t, []UserInfo{{ID: "u1", Name: "Ann", Connections: 1}, {ID: "u3", Connections: 1}})},
				{NodeID: "n3", Data: json.RawMessage(`not json`)},
			}, nil
		case OpConnections:
			var q ConnectionQuery
			if err := json.Unmarshal(req.Args, &q); err != nil {
				return nil, err
			}
			if q.UserID != "" && q.UserID != "u1" || q.ID != "" && q.ID != "remote1" {
				return nil, nil
			}
			return []Reply{{NodeID: "n2", Count: 1, Data: mustJSON(t, []ConnectionInfo{remoteConn})}}, nil
		}
		return nil, nil
	})
	conns, err := h.Connections(ctx, ConnectionQuery{UserID: "u1"})
	if err != nil || len(conns) != 2 {
		t.Fatalf("Connections: %d %v", len(conns), err)
	}
	if conns[0].ID != "remote1" || conns[1].ID != local.ID() { // same name: oldest first
		t.Errorf("Connections order: %s, %s", conns[0].ID, conns[1].ID)
	}
	users, err := h.Users(ctx, UsersQuery{})
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(users)
	if len(users) != 3 || users[0].ID != "u1" || users[0].Connections != 2 || users[1].ID != "u2" || users[2].ID != "u3" {
		t.Errorf("Users merged: %s", got)
	}
	st, err := h.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st != (Stats{Connections: 4, Users: 3, AccessTokens: 2, Tenants: 2}) {
		t.Errorf("Stats = %+v", st)
	}
	if on, err := h.IsOnline(ctx, "u1"); !on || err != nil {
		t.Errorf("IsOnline(u1) local: %v %v", on, err)
	}
	ops := tr.surveyOps()
	if on, err := h.IsOnline(ctx, "u9"); on || err != nil {
		t.Errorf("IsOnline(u9): %v %v", on, err)
	}
	if len(tr.surveyOps()) != len(ops)+1 {
		t.Error("IsOnline of an unknown user did not ask the cluster")
	}
	owner, err := h.Owner(ctx, "remote1")
	if err != nil || owner.ID != "u1" {
		t.Errorf("Owner(remote1) = %+v %v", owner, err)
	}
	if _, err := h.Owner(ctx, "nobody"); !errors.Is(err, ErrUnknownConnection) {
		t.Errorf("Owner(nobody): %v", err)
	}
	// A failing survey is reported with what is known locally.
	tr.setReplies(func(Request) ([]Reply, error) { return nil, errors.New("timeout") })
	conns, err = h.Connections(ctx, ConnectionQuery{})
	if err == nil || len(conns) != 2 {
		t.Errorf("Connections with failing survey: %d %v", len(conns), err)
	}
}

func TestTransportRemoteCommands(t *testing.T) {
	tr := newFakeTransport()
	h := newTestHub(t, Config{Writers: -1, Transport: tr, MaxConnectionsPerUser: -1}) // no cap survey
	ctx := context.Background()
	var mu sync.Mutex
	var seen []Request
	tr.setReplies(func(req Request) ([]Reply, error) {
		mu.Lock()
		seen = append(seen, req)
		mu.Unlock()
		switch req.Op {
		case OpDisconnect, OpSetDuration:
			return []Reply{{NodeID: "n2", Count: 2}}, nil
		case OpListeners:
			return []Reply{{NodeID: "n2", Count: 1, Data: json.RawMessage(`["a","b"]`)}}, nil
		case OpAck:
			return []Reply{{NodeID: "n2", Count: 1, Data: json.RawMessage(`true`)}}, nil
		}
		return nil, nil
	})
	if n, err := h.Disconnect(ctx, Target{UserIDs: []string{"u"}}, ReasonKicked); err != nil || n != 2 {
		t.Errorf("remote Disconnect: %d %v", n, err)
	}
	if n, err := h.SetDuration(ctx, Target{UserIDs: []string{"u"}}, 60); err != nil || n != 2 {
		t.Errorf("remote SetDuration: %d %v", n, err)
	}
	if len(h.pending) != 0 {
		t.Errorf("duration reached remotely was kept pending: %v", h.pending)
	}
	list, err := h.ChangeListeners(ctx, "remote", User{ID: "u"}, true, []string{"b"})
	if err != nil || !slices.Equal(list, []string{"a", "b"}) {
		t.Errorf("remote ChangeListeners: %v %v", list, err)
	}
	mu.Lock()
	last := seen[len(seen)-1]
	mu.Unlock()
	var la ListenerArgs
	if err := json.Unmarshal(last.Args, &la); err != nil || !la.Add || la.Owner.ID != "u" || !slices.Equal(last.Target.ConnectionIDs, []string{"remote"}) {
		t.Errorf("listeners request %+v args %+v %v", last, la, err)
	}
	mu.Lock()
	var dis DisconnectArgs
	err = json.Unmarshal(seen[0].Args, &dis)
	mu.Unlock()
	if err != nil || dis.Reason != ReasonKicked {
		t.Errorf("disconnect args %+v %v", dis, err)
	}
}

func TestHandleSurvey(t *testing.T) {
	repo := newMemoryRepo(t)
	h := newTestHub(t, Config{App: "a", NodeID: "n1", Writers: -1, Repository: repo})
	ctx := context.Background()
	alice := User{ID: "alice", Name: "Alice", TenantID: "t", AccessToken: "ka"}
	c1 := mustConnect(t, h, ConnectRequest{User: alice, Info: ClientInfo{ClientID: "cl1"}, Listeners: []string{"x"}})
	c2 := mustConnect(t, h, ConnectRequest{User: User{ID: "bob", Name: "Bob", TenantID: "t"}})
	drainQueue(c1)
	drainQueue(c2)
	ask := func(op string, tg Target, args any) Reply {
		t.Helper()
		req := Request{Op: op, Target: tg}
		if args != nil {
			req.Args = mustJSON(t, args)
		}
		rep, err := h.HandleSurvey(ctx, "a", req)
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		if rep.NodeID != "n1" {
			t.Errorf("%s: reply node %q", op, rep.NodeID)
		}
		return rep
	}

	var st Stats
	if err := json.Unmarshal(ask(OpStats, Target{}, nil).Data, &st); err != nil || st != (Stats{Connections: 2, Users: 2, AccessTokens: 1, Tenants: 1}) {
		t.Errorf("stats %+v %v", st, err)
	}
	var users []UserInfo
	if err := json.Unmarshal(ask(OpUsers, Target{}, UsersQuery{Name: "ali"}).Data, &users); err != nil || len(users) != 1 || users[0].ID != "alice" {
		t.Errorf("users %+v %v", users, err)
	}
	rep := ask(OpConnections, Target{}, ConnectionQuery{ClientID: "cl1"})
	var conns []ConnectionInfo
	if err := json.Unmarshal(rep.Data, &conns); err != nil || rep.Count != 1 || len(conns) != 1 || conns[0].ID != c1.ID() || conns[0].NodeID != "n1" {
		t.Errorf("connections %+v count %d %v", conns, rep.Count, err)
	}
	rep = ask(OpListeners, Target{ConnectionIDs: []string{c1.ID()}}, ListenerArgs{Add: true, Names: []string{"y"}, Owner: alice})
	var names []string
	if err := json.Unmarshal(rep.Data, &names); err != nil || rep.Count != 1 || !slices.Equal(names, []string{"x", "y"}) {
		t.Errorf("listeners %v count %d %v", names, rep.Count, err)
	}
	// Another user's connection: an error, nothing changed.
	if rep, err := h.HandleSurvey(ctx, "a", Request{Op: OpListeners, Target: Target{ConnectionIDs: []string{c1.ID()}},
		Args: mustJSON(t, ListenerArgs{Add: true, Names: []string{"z"}, Owner: User{ID: "bob", TenantID: "t"}})}); err == nil || rep.Count != 0 {
		t.Errorf("listeners for another owner: %+v %v", rep, err)
	}
	if got := c1.Listeners(); !slices.Equal(got, []string{"x", "y"}) {
		t.Errorf("listeners after refused change: %v", got)
	}
	// Unknown connection: no count, no error.
	if rep := ask(OpListeners, Target{ConnectionIDs: []string{"nope"}}, ListenerArgs{Owner: alice}); rep.Count != 0 {
		t.Errorf("listeners of an unknown connection: %+v", rep)
	}

	rep = ask(OpSetDuration, Target{UserIDs: []string{"alice"}}, DurationArgs{Seconds: 90})
	if rep.Count != 1 || c1.SessionDuration() != 90 {
		t.Errorf("set-duration count %d session %d", rep.Count, c1.SessionDuration())
	}
	if got, _ := drainQueue(c1); got != "event:sse-set-duration\nid:1\ndata:{\"duration\":\"90\"}\n\n" {
		t.Errorf("set-duration frame %q", got)
	}

	res, err := h.Publish(ctx, Target{UserIDs: []string{"alice"}}, Event{Name: "q", Data: "d"}, WithQoS(0))
	if err != nil {
		t.Fatal(err)
	}
	rep = ask(OpAck, Target{ConnectionIDs: []string{c1.ID()}}, AckArgs{IDs: []string{res.ID}, Owner: User{ID: "bob", TenantID: "t"}})
	if rep.Count != 0 || len(rep.Data) != 0 {
		t.Errorf("ack by another owner: %+v", rep)
	}
	rep = ask(OpAck, Target{ConnectionIDs: []string{c1.ID()}}, AckArgs{IDs: []string{res.ID}, Owner: alice})
	if rep.Count != 1 || string(rep.Data) != "true" {
		t.Errorf("ack: %+v", rep)
	}

	rep = ask(OpDisconnect, Target{TenantIDs: []string{"t"}}, DisconnectArgs{Reason: ReasonKicked})
	if rep.Count != 2 || !c1.Closed() || !c2.Closed() || c2.Reason() != ReasonKicked {
		t.Errorf("disconnect count %d", rep.Count)
	}
	if got, done := drainQueue(c2); !done || !strings.Contains(got, `"reason":"kicked"`) {
		t.Errorf("kicked connection's queue %q done %v", got, done)
	}
	// Zero target disconnects nobody.
	if rep := ask(OpDisconnect, Target{}, DisconnectArgs{Reason: ReasonKicked}); rep.Count != 0 {
		t.Errorf("disconnect with zero target: %+v", rep)
	}

	if _, err := h.HandleSurvey(ctx, "other", Request{Op: OpStats}); err == nil {
		t.Error("survey for another app answered")
	}
	if rep, err := h.HandleSurvey(ctx, "a", Request{Op: "bogus"}); err == nil || rep.Error == "" {
		t.Errorf("unknown op: %+v %v", rep, err)
	}
	if rep, err := h.HandleSurvey(ctx, "a", Request{Op: OpUsers, Args: json.RawMessage(`{`)}); err == nil || rep.Error == "" {
		t.Errorf("bad args: %+v %v", rep, err)
	}
}

func TestHandleDeliverAndMux(t *testing.T) {
	ha := newTestHub(t, Config{App: "a", Writers: -1})
	hb := newTestHub(t, Config{App: "b", Writers: -1, Repository: newMemoryRepo(t)})
	ca := mustConnect(t, ha, connectReq("u"))
	cb := mustConnect(t, hb, ConnectRequest{User: User{ID: "u"}, CanAck: false})
	drainQueue(ca)
	drainQueue(cb)
	var m Mux
	m.Add(ha)
	m.Add(hb)
	ctx := context.Background()
	if n := m.HandleDeliver(ctx, "a", Target{UserIDs: []string{"u"}}, Event{Name: "x", Data: "1"}); n != 1 {
		t.Errorf("deliver to a: %d", n)
	}
	if got, _ := drainQueue(ca); got != "event:x\nid:1\ndata:1\n\n" {
		t.Errorf("a got %q", got)
	}
	if got, _ := drainQueue(cb); got != "" {
		t.Errorf("b got %q", got)
	}
	if n := m.HandleDeliver(ctx, "b", Target{All: true}, Event{Name: "q", ID: "q123", Data: "2"}); n != 1 {
		t.Errorf("deliver to b: %d", n)
	}
	frames, _ := cb.take()
	if len(frames) != 1 || frames[0].qosID != "q123" || render(frames[0], 0) != "event:q\nid:q123\ndata:2\n\n" {
		t.Errorf("b's QoS frame: %+v", frames)
	}
	if n := m.HandleDeliver(ctx, "c", Target{All: true}, Event{Name: "x"}); n != 0 {
		t.Errorf("deliver to unknown app: %d", n)
	}
	if n := ha.HandleDeliver(ctx, "b", Target{All: true}, Event{Name: "x"}); n != 0 {
		t.Errorf("hub a delivered for app b: %d", n)
	}
	if n := ha.HandleDeliver(ctx, "a", Target{All: true}, Event{Name: "x\ny"}); n != 0 {
		t.Errorf("invalid event delivered: %d", n)
	}
	// Without a repository an id is just an id.
	ha.HandleDeliver(ctx, "a", Target{All: true}, Event{Name: "x", ID: "q9"})
	if frames, _ := ca.take(); len(frames) != 1 || frames[0].qosID != "" {
		t.Errorf("a's frame with id: %+v", frames)
	}
	rep, err := m.HandleSurvey(ctx, "b", Request{Op: OpStats})
	var st Stats
	if err != nil || json.Unmarshal(rep.Data, &st) != nil || st.Connections != 1 {
		t.Errorf("mux survey b: %+v %v", rep, err)
	}
	if _, err := m.HandleSurvey(ctx, "c", Request{Op: OpStats}); err == nil {
		t.Error("mux survey of an unknown app answered")
	}
	var empty Mux
	if n := empty.HandleDeliver(ctx, "a", Target{All: true}, Event{Name: "x"}); n != 0 {
		t.Errorf("empty mux delivered %d", n)
	}
}

func TestTransportNodes(t *testing.T) {
	tr := newFakeTransport()
	var observed []string
	h := newTestHub(t, Config{Writers: -1, Transport: tr, MaxConnectionsPerUser: -1, ObserveCluster: func(op string, took time.Duration, err error) {
		observed = append(observed, fmt.Sprintf("%s:%v", op, err != nil))
	}})
	ctx := context.Background()
	mustConnect(t, h, ConnectRequest{User: User{ID: "u1"}})
	if _, err := h.Publish(ctx, Target{UserIDs: []string{"u1"}}, Event{Name: "e", Data: "d"}); err != nil {
		t.Fatal(err)
	}
	tr.setReplies(func(req Request) ([]Reply, error) {
		if req.Op != OpNode {
			return nil, nil
		}
		return []Reply{
			{NodeID: "n3", Data: mustJSON(t, NodeInfo{NodeID: "n3", Stats: Stats{Connections: 3}})},
			{NodeID: "n4", Error: "broken"},
			{NodeID: "n2", Data: mustJSON(t, NodeInfo{NodeID: "n2", Counters: Counters{Sends: 7}})},
		}, nil
	})
	nodes, err := h.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, n := range nodes {
		ids = append(ids, n.NodeID)
	}
	if !slices.Equal(ids, []string{"n1", "n2", "n3"}) {
		t.Fatalf("Nodes = %v, want this node first, then the answering others by id", ids)
	}
	if nodes[0].Stats.Connections != 1 || nodes[0].Stats.Users != 1 || nodes[0].Counters.Sends != 1 {
		t.Errorf("this node: %+v", nodes[0])
	}
	if nodes[1].Counters.Sends != 7 || nodes[2].Stats.Connections != 3 {
		t.Errorf("other nodes: %+v", nodes[1:])
	}

	if !slices.Equal(observed, []string{"deliver:false", "node:false"}) {
		t.Errorf("ObserveCluster saw %v", observed)
	}

	// The answer this node gives another node's survey.
	rep, err := h.HandleSurvey(ctx, "test", Request{Op: OpNode})
	if err != nil {
		t.Fatal(err)
	}
	var self NodeInfo
	if err := json.Unmarshal(rep.Data, &self); err != nil || self.NodeID != "n1" || self.Stats.Connections != 1 {
		t.Errorf("HandleSurvey(node) = %s %v", rep.Data, err)
	}
}

// routingTransport is a fakeTransport whose routes are confirmed only when
// the test releases them.
type routingTransport struct {
	*fakeTransport
	awaited chan []string
	release chan struct{}
}

func (r *routingTransport) AwaitInterest(ctx context.Context, app string, keys []string) error {
	r.awaited <- keys
	select {
	case <-r.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestConnectAwaitsRoutes(t *testing.T) {
	rt := &routingTransport{fakeTransport: newFakeTransport(), awaited: make(chan []string, 1), release: make(chan struct{})}
	h := newTestHub(t, Config{Writers: -1, Transport: rt, RouteTimeout: time.Hour})
	connected := make(chan *Conn, 1)
	go func() {
		connected <- mustConnect(t, h, ConnectRequest{User: User{ID: "u1", AccessToken: "k1", TenantID: "t1"}, Channels: []string{"ch"}})
	}()
	keys := <-rt.awaited
	select {
	case <-connected:
		t.Fatal("Connect returned before the transport confirmed the routes")
	default:
	}
	close(rt.release)
	c := <-connected
	slices.Sort(keys)
	if want := []string{"c:ch", "k:k1", "t:t1", "u:u1", "x:" + c.ID()}; !slices.Equal(keys, want) {
		t.Errorf("awaited keys %v, want %v", keys, want)
	}

	// Routes never confirmed: Connect gives up after RouteTimeout and the
	// connection is served anyway.
	slow := &routingTransport{fakeTransport: newFakeTransport(), awaited: make(chan []string, 1), release: make(chan struct{})}
	h2 := newTestHub(t, Config{Writers: -1, Transport: slow, RouteTimeout: 10 * time.Millisecond})
	c2 := mustConnect(t, h2, ConnectRequest{User: User{ID: "u2"}})
	if n := h2.LocalUserConnections("u2"); n != 1 || c2 == nil {
		t.Errorf("after an unconfirmed route: %d connections", n)
	}
}

func TestQueriesLimit(t *testing.T) {
	tr := newFakeTransport()
	h := newTestHub(t, Config{Writers: -1, Transport: tr, MaxConnectionsPerUser: -1}) // no cap survey
	ctx := context.Background()
	for _, id := range []string{"u3", "u1", "u5", "u2", "u4"} {
		mustConnect(t, h, ConnectRequest{User: User{ID: id, Name: "name-" + id}})
	}
	var asked []json.RawMessage
	tr.setReplies(func(req Request) ([]Reply, error) {
		asked = append(asked, req.Args)
		switch req.Op {
		case OpUsers:
			return []Reply{{NodeID: "n2", Data: mustJSON(t, []UserInfo{{ID: "u0", Connections: 1}, {ID: "u1", Connections: 2}})}}, nil
		case OpConnections:
			return []Reply{{NodeID: "n2", Count: 7, Data: mustJSON(t, []ConnectionInfo{{ID: "r1", AccessUserName: "name-u0"}})}}, nil
		}
		return nil, nil
	})
	users, err := h.Users(ctx, UsersQuery{Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(users); len(users) != 3 || users[0].ID != "u0" || users[1].ID != "u1" || users[1].Connections != 3 || users[2].ID != "u2" {
		t.Errorf("Users(limit 3) = %s", got)
	}
	if local := h.LocalUsers(UsersQuery{Limit: 2}); len(local) != 2 || local[0].ID != "u1" || local[1].ID != "u2" {
		t.Errorf("LocalUsers(limit 2) = %v", local)
	}
	conns, err := h.Connections(ctx, ConnectionQuery{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(conns) != 2 || conns[0].ID != "r1" || conns[1].AccessUserName != "name-u1" {
		t.Errorf("Connections(limit 2) = %+v", conns)
	}
	if list, total, err := h.CountConnections(ctx, ConnectionQuery{Limit: 2}); err != nil || len(list) != 2 || total != 5+7 {
		t.Errorf("CountConnections(limit 2) = %d listed, total %d, %v; want 2 and 12 (5 here, 7 on n2)", len(list), total, err)
	}
	rep, err := h.HandleSurvey(ctx, "test", Request{Op: OpConnections, Args: mustJSON(t, ConnectionQuery{Limit: 1})})
	var listed []ConnectionInfo
	if err != nil || json.Unmarshal(rep.Data, &listed) != nil || len(listed) != 1 || rep.Count != 5 {
		t.Errorf("HandleSurvey(connections, limit 1) = count %d, %s, %v; want 1 listed of 5", rep.Count, rep.Data, err)
	}
	if local := h.LocalConnections(ConnectionQuery{Limit: 3}); len(local) != 3 || local[0].AccessUserName != "name-u1" || local[2].AccessUserName != "name-u3" {
		t.Errorf("LocalConnections(limit 3) = %+v", local)
	}
	for _, a := range asked {
		if !strings.Contains(string(a), `"limit":`) {
			t.Errorf("the other nodes were asked %s, without the limit", a)
		}
	}
}

// HandleDeliverQuick serves small targets like HandleDeliver and leaves
// All and targets over quickLimit connections alone.
func TestHandleDeliverQuick(t *testing.T) {
	h := newTestHub(t, Config{App: "a", Writers: -1})
	one := mustConnect(t, h, connectReq("one"))
	drainQueue(one)
	var many []*Conn
	for range quickLimit + 1 {
		c := mustConnect(t, h, ConnectRequest{User: User{ID: "many", TenantID: "big"}})
		drainQueue(c)
		many = append(many, c)
	}
	var m Mux
	m.Add(h)
	ev := Event{Name: "x", Data: "1"}
	if n, ok := m.HandleDeliverQuick("a", Target{UserIDs: []string{"one"}}, ev); !ok || n != 1 {
		t.Fatalf("one user: %d, %v", n, ok)
	}
	if got, _ := drainQueue(one); got != "event:x\nid:1\ndata:1\n\n" {
		t.Fatalf("one got %q", got)
	}
	if n, ok := h.HandleDeliverQuick("a", Target{ConnectionIDs: []string{one.ID(), "gone"}}, ev); !ok || n != 1 {
		t.Fatalf("connection ids: %d, %v", n, ok)
	}
	drainQueue(one)
	for _, tg := range []Target{{All: true}, {UserIDs: []string{"many"}}, {TenantIDs: []string{"big"}}, {UserIDs: []string{"one", "many"}}} {
		if n, ok := h.HandleDeliverQuick("a", tg, ev); ok || n != 0 {
			t.Fatalf("%+v: %d, %v; want it left to a worker", tg, n, ok)
		}
	}
	for _, c := range append(many, one) {
		if got, _ := drainQueue(c); got != "" {
			t.Fatalf("a delivery left alone was written: %q", got)
		}
	}
	if n, ok := m.HandleDeliverQuick("nope", Target{UserIDs: []string{"one"}}, ev); !ok || n != 0 {
		t.Fatalf("unknown app: %d, %v", n, ok)
	}
}
