package hubtest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/await"
	"github.com/pushd/pushd/pkg/hub"
)

// waitTimeout bounds every wait of the suite; it is far above what any
// wait needs, so that only a real hang trips it.
const waitTimeout = 15 * time.Second

// Node is one node of a Cluster.
type Node struct {
	// Transport reaches the other nodes. The suite gives it to the node's
	// hub, runs it with the node's hub.Mux and stops it, when the node dies
	// or the subtest ends, as the daemon does: it ends Run's context and
	// calls Close when the Transport is an io.Closer. Required.
	Transport hub.Transport
}

// Cluster is what a Factory builds: one Node per requested node id, in
// the same order.
type Cluster struct {
	Nodes []Node
	// Restart, when set, restarts what the transports share (a Redis
	// server), as after a crash, and returns once it serves again; the
	// transports must find their way back by themselves. Nil: the
	// Resubscribe subtest is skipped.
	Restart func()
	// Describe, when set, tells the state of the backend (who is
	// registered where); the suite shows it when the nodes do not come
	// together in time.
	Describe func() string
}

// Factory builds the transports of a cluster of len(nodeIDs) nodes, each
// serving every one of apps (one or two), not yet running; whatever else
// it starts it stops in t.Cleanup (which runs after the suite has stopped
// the nodes). Run calls it once per subtest, from parallel subtests.
type Factory func(t *testing.T, apps []string, nodeIDs []string) Cluster

// The apps of the suite's clusters: every node serves app; in the
// AppsIsolated subtest it also serves otherApp, with a hub of its own on
// the same transport, which must never see app's traffic.
const (
	app      = "hubtest"
	otherApp = "hubtest-other"
)

// node is one running node of a test cluster: a hub on the factory's
// transport, behind an HTTP server.
type node struct {
	id    string
	hub   *hub.Hub // app's
	other *hub.Hub // otherApp's, nil unless the cluster serves it
	tr    hub.Transport
	srv   *httptest.Server
	stop  context.CancelFunc
	done  chan error // Run's result
	dead  bool       // killed: Run's result does not matter
}

// cluster is a running test cluster.
type cluster struct {
	t        *testing.T
	nodes    []*node
	restart  func()
	describe func() string
}

// startCluster builds n nodes serving apps (app first) with f, runs their
// transports and waits until every node's surveys reach all the others.
// The nodes are stopped together when the test ends.
func startCluster(t *testing.T, f Factory, n int, apps []string) *cluster {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("node-%d", i+1)
	}
	built := f(t, apps, ids)
	if len(built.Nodes) != n {
		t.Fatalf("factory built %d nodes, want %d", len(built.Nodes), n)
	}
	c := &cluster{t: t, restart: built.Restart, describe: built.Describe}
	t.Cleanup(c.stopAll)
	for i, bn := range built.Nodes {
		c.nodes = append(c.nodes, startNode(t, ids[i], bn, apps))
	}
	for _, nd := range c.nodes {
		for _, h := range nd.hubs() {
			c.awaitNodes(h, n)
		}
	}
	return c
}

// startNode creates the hub of one node on bn's transport, serves its
// streams over HTTP and runs the transport.
func startNode(t *testing.T, id string, bn Node, apps []string) *node {
	t.Helper()
	if bn.Transport == nil {
		t.Fatalf("factory built node %s without a Transport", id)
	}
	mux := &hub.Mux{}
	routes := http.NewServeMux()
	hubs := make([]*hub.Hub, 2) // app's, otherApp's
	for i, name := range apps {
		h, err := hub.New(hub.Config{App: name, NodeID: id, Transport: bn.Transport, Heartbeat: -1})
		if err != nil {
			t.Fatalf("hub.New(%s, %s): %v", name, id, err)
		}
		mux.Add(h)
		routes.Handle("GET /"+name, connectHandler(h))
		hubs[i] = h
	}
	ctx, cancel := context.WithCancel(context.Background())
	nd := &node{id: id, hub: hubs[0], other: hubs[1], tr: bn.Transport, srv: httptest.NewServer(routes), stop: cancel, done: make(chan error, 1)}
	go func() { nd.done <- bn.Transport.Run(ctx, mux) }()
	return nd
}

// shutdown closes the node's streams and its HTTP server.
func (nd *node) shutdown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for _, h := range nd.hubs() {
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown of %s on %s: %v", h.App(), nd.id, err)
		}
	}
	nd.srv.Close()
}

// hubs returns the node's hubs.
func (nd *node) hubs() []*hub.Hub {
	if nd.other == nil {
		return []*hub.Hub{nd.hub}
	}
	return []*hub.Hub{nd.hub, nd.other}
}

// stopTransport ends Run's context and closes the transport when it can
// be closed, as the daemon does.
func (nd *node) stopTransport(t *testing.T) {
	nd.stop()
	if cl, ok := nd.tr.(io.Closer); ok {
		if err := cl.Close(); err != nil && !nd.dead {
			t.Errorf("Close of %s: %v", nd.id, err)
		}
	}
}

// awaitRun waits for Run to return and checks its result.
func (nd *node) awaitRun(t *testing.T) {
	select {
	case err := <-nd.done:
		if err != nil && !nd.dead {
			t.Errorf("Run of %s: %v", nd.id, err)
		}
	case <-time.After(waitTimeout):
		t.Errorf("Run of %s did not return after it was stopped", nd.id)
	}
}

// stopAll stops the living nodes together: first their streams, then
// their transports (so that none waits for another that is still up).
func (c *cluster) stopAll() {
	var live []*node
	for _, nd := range c.nodes {
		if !nd.dead {
			live = append(live, nd)
		}
	}
	for _, nd := range live {
		nd.shutdown(c.t)
	}
	var wg sync.WaitGroup
	for _, nd := range live {
		wg.Go(func() { nd.stopTransport(c.t) })
	}
	wg.Wait()
	for _, nd := range live {
		nd.awaitRun(c.t)
	}
}

// kill stops node i alone, as its death would: its streams end and its
// transport stops; the others are not told.
func (c *cluster) kill(i int) {
	c.t.Helper()
	nd := c.nodes[i]
	nd.dead = true
	nd.shutdown(c.t)
	nd.stopTransport(c.t)
	nd.awaitRun(c.t)
}

// awaitNodes waits until a survey from h is answered by want nodes (its
// own included): transports may need a moment to subscribe or discover
// their peers after Run starts.
func (c *cluster) awaitNodes(h *hub.Hub, want int) {
	c.t.Helper()
	await.Until(c.t, waitTimeout, func() error {
		got, err := h.Nodes(context.Background())
		if len(got) != want {
			err = fmt.Errorf("%s of %s sees %d nodes (%v), want %d", h.NodeID(), h.App(), len(got), err, want)
			if c.describe != nil {
				err = fmt.Errorf("%w; backend: %s", err, c.describe())
			}
			return err
		}
		return nil
	})
}

// connectHandler connects a stream with the identity and options of the
// query: userId, name, tenantId, token, channel (repeated for several),
// listeners=a,b.
func connectHandler(h *hub.Hub) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		req := hub.ConnectRequest{
			User:     hub.User{ID: q.Get("userId"), Name: q.Get("name"), TenantID: q.Get("tenantId"), AccessToken: q.Get("token")},
			Channels: q["channel"],
		}
		if l := q.Get("listeners"); l != "" {
			req.Listeners = strings.Split(l, ",")
		}
		c, err := h.Connect(r.Context(), req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		h.ServeStream(w, r, c)
	})
}

// frame is one SSE frame read from a stream.
type frame struct {
	event, data string
}

// stream is a browser's stream to one node, read on its own goroutine so
// that the writer never waits for the test.
type stream struct {
	t      *testing.T
	id     string // connection id, from connect-finish
	node   string
	frames chan frame // closed at the end of the stream
}

// connect opens a stream of app to node i with the query kv (key, value
// pairs) and returns it once connect-finish arrived: from then on, sends
// from any node reach it.
func (c *cluster) connect(i int, kv ...string) *stream {
	c.t.Helper()
	return c.connectApp(i, app, kv...)
}

// connectApp is connect for the stream of an app of the suite.
func (c *cluster) connectApp(i int, name string, kv ...string) *stream {
	c.t.Helper()
	nd := c.nodes[i]
	q := url.Values{}
	for j := 0; j+1 < len(kv); j += 2 {
		q.Add(kv[j], kv[j+1])
	}
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, nd.srv.URL+"/"+name+"?"+q.Encode(), nil)
	if err != nil {
		cancel()
		c.t.Fatal(err)
	}
	resp, err := nd.srv.Client().Do(req)
	if err != nil {
		cancel()
		c.t.Fatalf("connect to %s: %v", nd.id, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		c.t.Fatalf("connect to %s: status %d", nd.id, resp.StatusCode)
	}
	s := &stream{t: c.t, node: nd.id, frames: make(chan frame, 1024)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.read(resp)
	}()
	c.t.Cleanup(func() {
		cancel()
		_ = resp.Body.Close()
		<-done
	})
	first := s.next()
	if first.event != "connect-finish" {
		c.t.Fatalf("first frame from %s is %q, not connect-finish", nd.id, first.event)
	}
	var d struct {
		ConnectionID string `json:"connectionId"`
	}
	if err := json.Unmarshal([]byte(first.data), &d); err != nil || d.ConnectionID == "" {
		c.t.Fatalf("connect-finish data %q: %v", first.data, err)
	}
	s.id = d.ConnectionID
	return s
}

// read parses the stream into frames (comment lines are skipped) until it
// ends.
func (s *stream) read(resp *http.Response) {
	defer close(s.frames)
	sc := bufio.NewScanner(resp.Body)
	var cur frame
	var data []string
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			cur.data = strings.Join(data, "\n")
			s.frames <- cur
			cur, data = frame{}, nil
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		switch name {
		case "event":
			cur.event = value
		case "data":
			data = append(data, value)
		}
	}
}

// next returns the next frame, failing the test when none comes or the
// stream ends.
func (s *stream) next() frame {
	s.t.Helper()
	select {
	case f, ok := <-s.frames:
		if !ok {
			s.t.Fatalf("stream %s on %s ended", s.id, s.node)
		}
		return f
	case <-time.After(waitTimeout):
		s.t.Fatalf("stream %s on %s: no frame in %v", s.id, s.node, waitTimeout)
	}
	return frame{}
}

// eventsUntil returns the names of the events the stream receives before
// the one named fence, skipping those named skip.
func (s *stream) eventsUntil(fence string, skip ...string) []string {
	s.t.Helper()
	var out []string
	for {
		f := s.next()
		switch {
		case f.event == fence:
			return out
		case !slices.Contains(skip, f.event):
			out = append(out, f.event)
		}
	}
}

// awaitEnd reads the stream to its end and returns the names of the
// events it received on the way.
func (s *stream) awaitEnd() []string {
	s.t.Helper()
	var out []string
	timeout := time.After(waitTimeout)
	for {
		select {
		case f, ok := <-s.frames:
			if !ok {
				return out
			}
			out = append(out, f.event)
		case <-timeout:
			s.t.Fatalf("stream %s on %s did not end in %v", s.id, s.node, waitTimeout)
		}
	}
}

// wantSend sends an event named name to t through node i's hub of app
// and checks the cluster-wide count.
func (c *cluster) wantSend(i int, t hub.Target, name string, want int) {
	c.t.Helper()
	c.wantSendVia(c.nodes[i].hub, t, name, want)
}

// wantSendVia is wantSend through hub h.
func (c *cluster) wantSendVia(h *hub.Hub, t hub.Target, name string, want int) {
	c.t.Helper()
	n, err := h.Send(context.Background(), t, hub.Event{Name: name, Data: "data of " + name})
	if err != nil {
		c.t.Fatalf("Send %s from %s of %s: %v", name, h.NodeID(), h.App(), err)
	}
	if n != want {
		c.t.Errorf("Send %s to %+v from %s of %s reached %d connections, want %d", name, t, h.NodeID(), h.App(), n, want)
	}
}

// awaitSend sends to t from node i until the count is want, for
// transports that lose messages while they recover.
func (c *cluster) awaitSend(i int, t hub.Target, name string, want int) {
	c.t.Helper()
	await.Until(c.t, waitTimeout, func() error {
		n, err := c.nodes[i].hub.Send(context.Background(), t, hub.Event{Name: name})
		if n != want {
			return fmt.Errorf("send %s to %+v from %s reached %d (%v), want %d", name, t, c.nodes[i].id, n, err, want)
		}
		return nil
	})
}
