package hubtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/pushd/pushd/pkg/hub"
)

// Run runs the suite on clusters built by f.
func Run(t *testing.T, f Factory) {
	tests := []struct {
		name  string
		nodes int
		apps  []string
		fn    func(t *testing.T, c *cluster)
	}{
		{"Targets", 3, []string{app}, testTargets},
		{"Listening", 3, []string{app}, testListening},
		{"Surveys", 3, []string{app}, testSurveys},
		{"Disconnect", 3, []string{app}, testDisconnect},
		{"AppsIsolated", 3, []string{app, otherApp}, testAppsIsolated},
		{"NodeDeath", 3, []string{app}, testNodeDeath},
		{"Channels", 3, []string{app}, testChannels},
		{"Resubscribe", 2, []string{app}, testResubscribe},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, startCluster(t, f, tc.nodes, tc.apps))
		})
	}
}

// all addresses every connection.
var all = hub.Target{All: true}

// testTargets sends to every kind of target from every node: the count is
// the cluster's matching connections, each once, and every stream gets
// exactly the events that match it, in order.
func testTargets(t *testing.T, c *cluster) {
	s1 := c.connect(0, "userId", "alice", "tenantId", "acme", "channel", "news")
	s2 := c.connect(1, "userId", "alice", "tenantId", "acme")
	s3 := c.connect(1, "userId", "bob", "tenantId", "acme")
	s4 := c.connect(2, "token", "tok-1", "channel", "news")
	s5 := c.connect(2, "userId", "carol", "tenantId", "other")
	cases := []struct {
		t    hub.Target
		want []*stream
	}{
		{hub.Target{UserIDs: []string{"alice"}}, []*stream{s1, s2}},
		{hub.Target{AccessTokens: []string{"tok-1"}}, []*stream{s4}},
		{hub.Target{TenantIDs: []string{"acme"}}, []*stream{s1, s2, s3}},
		{hub.Target{Channels: []string{"news"}}, []*stream{s1, s4}},
		{hub.Target{ConnectionIDs: []string{s3.id, s5.id}}, []*stream{s3, s5}},
		{hub.Target{ConnectionIDs: []string{s1.id}}, []*stream{s1}},
		{all, []*stream{s1, s2, s3, s4, s5}},
		// The sets unite; a connection in several gets the event once.
		{hub.Target{UserIDs: []string{"alice", "bob"}, Channels: []string{"news"}, TenantIDs: []string{"acme"}}, []*stream{s1, s2, s3, s4}},
		{hub.Target{UserIDs: []string{"nobody"}}, nil},
		{hub.Target{ConnectionIDs: []string{"no-such-connection"}}, nil},
	}
	want := map[*stream][]string{}
	for i, tc := range cases {
		for from := range c.nodes {
			name := fmt.Sprintf("e%d-from-%d", i, from)
			c.wantSend(from, tc.t, name, len(tc.want))
			for _, s := range tc.want {
				want[s] = append(want[s], name)
			}
		}
	}
	c.wantSend(0, all, "fence", 5)
	for _, s := range []*stream{s1, s2, s3, s4, s5} {
		if got := s.eventsUntil("fence"); !slices.Equal(got, want[s]) {
			t.Errorf("stream %s on %s got %v, want %v", s.id, s.node, got, want[s])
		}
	}
}

// testListening checks that a Listening send reaches, on every node, only
// the connections that named its event among their listeners (one that
// named none takes every event, but only without Listening).
func testListening(t *testing.T, c *cluster) {
	onlyA := c.connect(0, "userId", "u1", "listeners", "a")
	onlyB := c.connect(1, "userId", "u1", "listeners", "b")
	unnamed := c.connect(2, "userId", "u1")
	both := c.connect(2, "userId", "u2", "listeners", "a,b")
	for from := range c.nodes {
		c.wantSend(from, hub.Target{All: true, Listening: true}, "a", 2)
		c.wantSend(from, hub.Target{UserIDs: []string{"u1"}, Listening: true}, "b", 1)
		c.wantSend(from, hub.Target{UserIDs: []string{"u1", "u2"}, Listening: true}, "b", 2)
		c.wantSend(from, hub.Target{UserIDs: []string{"u1"}}, "c", 3)
	}
	c.wantSend(0, all, "fence", 4)
	perNode := func(names ...string) []string {
		var out []string
		for range c.nodes {
			out = append(out, names...)
		}
		return out
	}
	for s, want := range map[*stream][]string{
		onlyA:   perNode("a", "c"),
		onlyB:   perNode("b", "b", "c"),
		unnamed: perNode("c"),
		both:    perNode("a", "b"),
	} {
		if got := s.eventsUntil("fence"); !slices.Equal(got, want) {
			t.Errorf("stream %s on %s got %v, want %v", s.id, s.node, got, want)
		}
	}
}

// testSurveys checks that queries asked on any node merge the answers of
// all nodes.
func testSurveys(t *testing.T, c *cluster) {
	s1 := c.connect(0, "userId", "alice", "name", "Alice", "tenantId", "acme")
	c.connect(1, "userId", "alice", "name", "Alice", "tenantId", "acme")
	c.connect(1, "userId", "bob", "name", "Bob", "tenantId", "acme")
	s4 := c.connect(2, "token", "tok-1")
	c.connect(2, "userId", "carol", "tenantId", "other")
	ctx := context.Background()
	for _, nd := range c.nodes {
		users, err := nd.hub.Users(ctx, hub.UsersQuery{})
		if err != nil {
			t.Fatalf("Users on %s: %v", nd.id, err)
		}
		got := map[string]int{}
		for _, u := range users {
			got[u.ID] += u.Connections
		}
		if want := map[string]int{"alice": 2, "bob": 1, "carol": 1}; len(users) != 3 || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Users on %s = %+v, want each of %v once", nd.id, users, want)
		}
		named, err := nd.hub.Users(ctx, hub.UsersQuery{Name: "ali"})
		if err != nil || len(named) != 1 || named[0].ID != "alice" || named[0].Connections != 2 {
			t.Errorf("Users(name ali) on %s = %+v, %v; want alice with 2 connections", nd.id, named, err)
		}

		st, err := nd.hub.Stats(ctx)
		if err != nil {
			t.Fatalf("Stats on %s: %v", nd.id, err)
		}
		if st.Connections != 5 || st.Users != 3 || st.AccessTokens != 1 {
			t.Errorf("Stats on %s = %+v, want 5 connections, 3 users, 1 access token", nd.id, st)
		}

		list, total, err := nd.hub.CountConnections(ctx, hub.ConnectionQuery{UserID: "alice"})
		if err != nil || total != 2 || len(list) != 2 {
			t.Errorf("CountConnections(alice) on %s = %d listed, %d, %v; want 2", nd.id, len(list), total, err)
		}
		list, total, err = nd.hub.CountConnections(ctx, hub.ConnectionQuery{})
		if err != nil || total != 5 || len(list) != 5 {
			t.Errorf("CountConnections() on %s = %d listed, %d, %v; want 5", nd.id, len(list), total, err)
		}
		_, total, err = nd.hub.CountConnections(ctx, hub.ConnectionQuery{Limit: 2})
		if err != nil || total != 5 {
			t.Errorf("CountConnections(limit 2) on %s counted %d, %v; want 5", nd.id, total, err)
		}
		byID, err := nd.hub.Connections(ctx, hub.ConnectionQuery{ID: s4.id})
		if err != nil || len(byID) != 1 || byID[0].NodeID != s4.node || byID[0].AccessToken != "tok-1" {
			t.Errorf("Connections(id of %s) on %s = %+v, %v; want the one on %s", s4.id, nd.id, byID, err, s4.node)
		}
		owner, err := nd.hub.Owner(ctx, s1.id)
		if err != nil || owner.ID != "alice" {
			t.Errorf("Owner(%s) on %s = %+v, %v; want alice", s1.id, nd.id, owner, err)
		}
		for user, want := range map[string]bool{"bob": true, "carol": true, "dave": false} {
			if on, err := nd.hub.IsOnline(ctx, user); err != nil || on != want {
				t.Errorf("IsOnline(%s) on %s = %v, %v; want %v", user, nd.id, on, err, want)
			}
		}

		nodes, err := nd.hub.Nodes(ctx)
		if err != nil {
			t.Fatalf("Nodes on %s: %v", nd.id, err)
		}
		perNode := map[string]int{}
		for _, n := range nodes {
			perNode[n.NodeID] = n.Stats.Connections
		}
		if want := map[string]int{"node-1": 1, "node-2": 2, "node-3": 2}; len(nodes) != 3 || nodes[0].NodeID != nd.id || fmt.Sprint(perNode) != fmt.Sprint(want) {
			t.Errorf("Nodes on %s = %+v, want itself first and connections %v", nd.id, nodes, want)
		}
	}
}

// testDisconnect closes connections on other nodes: the count is theirs,
// their streams get connect-close and end, and the others stay.
func testDisconnect(t *testing.T, c *cluster) {
	a1 := c.connect(0, "userId", "alice")
	a2 := c.connect(1, "userId", "alice")
	a3 := c.connect(2, "userId", "alice")
	bob := c.connect(1, "userId", "bob")
	n, err := c.nodes[2].hub.Disconnect(context.Background(), hub.Target{UserIDs: []string{"alice"}, ConnectionIDs: []string{"no-such-connection"}}, hub.ReasonKicked)
	if err != nil || n != 3 {
		t.Fatalf("Disconnect(alice) from node-3 = %d, %v; want 3", n, err)
	}
	for _, s := range []*stream{a1, a2, a3} {
		if got := s.awaitEnd(); !slices.Equal(got, []string{"connect-close"}) {
			t.Errorf("stream %s on %s got %v before its end, want [connect-close]", s.id, s.node, got)
		}
	}
	n, err = c.nodes[0].hub.Disconnect(context.Background(), hub.Target{UserIDs: []string{"alice"}}, hub.ReasonKicked)
	if err != nil || n != 0 {
		t.Errorf("second Disconnect(alice) = %d, %v; want 0", n, err)
	}
	for from := range c.nodes {
		c.wantSend(from, hub.Target{UserIDs: []string{"alice"}}, "gone", 0)
		c.wantSend(from, all, "left", 1)
	}
	c.wantSend(0, all, "fence", 1)
	if got := bob.eventsUntil("fence"); !slices.Equal(got, []string{"left", "left", "left"}) {
		t.Errorf("bob got %v, want the three sends to all", got)
	}
}

// testAppsIsolated checks that the apps sharing a transport see only
// their own connections: same user ids, same nodes, other app.
func testAppsIsolated(t *testing.T, c *cluster) {
	mine := c.connect(0, "userId", "alice", "channel", "news")
	theirs := []*stream{
		c.connectApp(0, otherApp, "userId", "alice", "channel", "news"),
		c.connectApp(1, otherApp, "userId", "alice", "channel", "news"),
	}
	for _, nd := range c.nodes {
		c.wantSendVia(nd.hub, hub.Target{UserIDs: []string{"alice"}}, "mine", 1)
		c.wantSendVia(nd.hub, hub.Target{Channels: []string{"news"}}, "mine", 1)
		c.wantSendVia(nd.other, hub.Target{UserIDs: []string{"alice"}}, "theirs", 2)
		c.wantSendVia(nd.other, all, "theirs", 2)
		if users, err := nd.hub.Users(context.Background(), hub.UsersQuery{}); err != nil || len(users) != 1 || users[0].Connections != 1 {
			t.Errorf("Users of %s on %s = %+v, %v; want alice with 1 connection", app, nd.id, users, err)
		}
		if st, err := nd.other.Stats(context.Background()); err != nil || st.Connections != 2 {
			t.Errorf("Stats of %s on %s = %+v, %v; want 2 connections", otherApp, nd.id, st, err)
		}
	}
	c.wantSendVia(c.nodes[0].hub, all, "fence", 1)
	c.wantSendVia(c.nodes[0].other, all, "fence", 2)
	perNode := func(name string) []string {
		var out []string
		for range c.nodes {
			out = append(out, name, name)
		}
		return out
	}
	if got, want := mine.eventsUntil("fence"), perNode("mine"); !slices.Equal(got, want) {
		t.Errorf("%s stream got %v, want %v", app, got, want)
	}
	for _, s := range theirs {
		if got, want := s.eventsUntil("fence"), perNode("theirs"); !slices.Equal(got, want) {
			t.Errorf("%s stream on %s got %v, want %v", otherApp, s.node, got, want)
		}
	}
}

// testNodeDeath kills a node: the living nodes' sends and surveys count
// only the living, at once and without failing.
func testNodeDeath(t *testing.T, c *cluster) {
	live := []*stream{c.connect(0, "userId", "alice"), c.connect(1, "userId", "alice")}
	dead := c.connect(2, "userId", "alice")
	c.connect(2, "userId", "bob")
	c.wantSend(0, hub.Target{UserIDs: []string{"alice"}}, "before", 3)
	c.kill(2)
	if got := dead.awaitEnd(); !slices.Contains(got, "before") {
		t.Errorf("the dead node's stream got %v, want it to have had [before]", got)
	}
	ctx := context.Background()
	for from := range 2 {
		c.wantSend(from, hub.Target{UserIDs: []string{"alice"}}, "after", 2)
		c.wantSend(from, hub.Target{UserIDs: []string{"bob"}}, "to-dead", 0)
		c.wantSend(from, all, "all", 2)
		nd := c.nodes[from]
		if st, err := nd.hub.Stats(ctx); st.Connections != 2 || st.Users != 1 {
			t.Errorf("Stats on %s after the death of node-3 = %+v, %v; want 2 connections of 1 user", nd.id, st, err)
		}
		if users, err := nd.hub.Users(ctx, hub.UsersQuery{}); len(users) != 1 || users[0].ID != "alice" || users[0].Connections != 2 {
			t.Errorf("Users on %s after the death of node-3 = %+v, %v; want alice with 2", nd.id, users, err)
		}
		if nodes, err := nd.hub.Nodes(ctx); len(nodes) != 2 {
			t.Errorf("Nodes on %s after the death of node-3 = %+v, %v; want 2", nd.id, nodes, err)
		}
		if on, err := nd.hub.IsOnline(ctx, "bob"); on {
			t.Errorf("IsOnline(bob) on %s after the death of his node = true (%v)", nd.id, err)
		}
	}
	c.wantSend(0, all, "fence", 2)
	for _, s := range live {
		if got, want := s.eventsUntil("fence", "before"), []string{"after", "all", "after", "all"}; !slices.Equal(got, want) {
			t.Errorf("stream %s on %s got %v, want %v", s.id, s.node, got, want)
		}
	}
}

// testResubscribe restarts the backend under connected streams: once the
// transports are back, sends from either node reach the streams that were
// connected before, with exact counts, and surveys see both nodes.
func testResubscribe(t *testing.T, c *cluster) {
	if c.restart == nil {
		t.Skip("the factory cannot restart the backend (Cluster.Restart is nil)")
	}
	alice := c.connect(1, "userId", "alice", "channel", "news")
	bob := c.connect(0, "userId", "bob")
	c.restart()
	// Sends are at-most-once while the routes come back: probe until the
	// remote user is reached again, for each direction.
	probe := func(from int, user string) {
		c.awaitSend(from, hub.Target{UserIDs: []string{user}}, "probe", 1)
	}
	probe(0, "alice")
	probe(1, "bob")
	for _, nd := range c.nodes {
		c.awaitNodes(nd.hub, 2)
	}
	for from := range c.nodes {
		c.wantSend(from, hub.Target{UserIDs: []string{"alice"}}, "to-alice", 1)
		c.wantSend(from, hub.Target{Channels: []string{"news"}}, "news", 1)
		c.wantSend(from, hub.Target{UserIDs: []string{"bob"}}, "to-bob", 1)
		c.wantSend(from, all, "all", 2)
	}
	c.wantSend(1, all, "fence", 2)
	if got, want := alice.eventsUntil("fence", "probe"), []string{"to-alice", "news", "all", "to-alice", "news", "all"}; !slices.Equal(got, want) {
		t.Errorf("alice got %v, want %v", got, want)
	}
	if got, want := bob.eventsUntil("fence", "probe"), []string{"to-bob", "all", "to-bob", "all"}; !slices.Equal(got, want) {
		t.Errorf("bob got %v, want %v", got, want)
	}
	if st, err := c.nodes[0].hub.Stats(context.Background()); err != nil || st.Connections != 2 {
		t.Errorf("Stats after the restart = %+v, %v; want 2 connections", st, err)
	}
}

// testChannels: a server-side subscribe or unsubscribe through any node
// changes the matching connections on every node, counted once each; a
// browser's own change reaches its connection from any node, for its owner
// only; the channel list counts connections and users cluster-wide.
func testChannels(t *testing.T, c *cluster) {
	ctx := context.Background()
	a0 := c.connect(0, "userId", "alice", "channel", "news", "channel", "sport")
	a1 := c.connect(1, "userId", "alice")
	b2 := c.connect(2, "userId", "bob", "channel", "news")
	alice := hub.Target{UserIDs: []string{"alice"}}
	ch := func(name string) hub.Target { return hub.Target{Channels: []string{name}} }

	if n, err := c.nodes[2].hub.Subscribe(ctx, alice, []string{"team"}, true); err != nil || n != 2 {
		t.Fatalf("Subscribe(alice, team) via node-3 = %d, %v; want 2", n, err)
	}
	if n, err := c.nodes[1].hub.Subscribe(ctx, alice, []string{"team"}, true); err != nil || n != 0 {
		t.Errorf("Subscribe(alice, team) again = %d, %v; want 0 (nothing changed)", n, err)
	}
	c.wantSend(1, ch("team"), "team-1", 2)
	c.wantSend(0, ch("news"), "news-1", 2)
	c.wantSend(2, ch("sport"), "sport-1", 1)

	want := []hub.ChannelInfo{{Name: "news", Connections: 2, Users: 2}, {Name: "sport", Connections: 1, Users: 1}, {Name: "team", Connections: 2, Users: 1}}
	if got, err := c.nodes[1].hub.Channels(ctx, hub.ChannelsQuery{}); err != nil || !slices.Equal(got, want) {
		t.Errorf("Channels via node-2 = %+v, %v; want %+v", got, err, want)
	}

	if _, err := c.nodes[2].hub.ChangeChannels(ctx, a0.id, hub.User{ID: "bob"}, false, []string{"news"}); !errors.Is(err, hub.ErrUnknownConnection) {
		t.Errorf("bob changing alice's channels: %v, want ErrUnknownConnection", err)
	}
	if got, err := c.nodes[2].hub.ChangeChannels(ctx, a0.id, hub.User{ID: "alice"}, false, []string{"news", "sport"}); err != nil || !slices.Equal(got, []string{"team"}) {
		t.Errorf("alice leaving news and sport via node-3 = %v, %v; want [team]", got, err)
	}
	if n, err := c.nodes[0].hub.Subscribe(ctx, ch("news"), []string{"news"}, false); err != nil || n != 1 {
		t.Errorf("Unsubscribe(news) via node-1 = %d, %v; want 1 (bob's)", n, err)
	}
	c.wantSend(0, ch("news"), "news-2", 0)
	c.wantSend(0, ch("team"), "team-2", 2)
	c.wantSend(0, all, "fence", 3)
	for _, tc := range []struct {
		s    *stream
		want []string
	}{
		{a0, []string{"team-1", "news-1", "sport-1", "team-2"}},
		{a1, []string{"team-1", "team-2"}},
		{b2, []string{"news-1"}},
	} {
		if got := tc.s.eventsUntil("fence"); !slices.Equal(got, tc.want) {
			t.Errorf("stream %s on %s got %v, want %v", tc.s.id, tc.s.node, got, tc.want)
		}
	}
}
