package nacos

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/await"
	"github.com/pushd/pushd/pkg/hub"
)

const testSecret = "test-secret-0123456789abcdef"

// countingHandler is a hub.Handler that answers Deliver with a fixed count
// and records what it was asked.
type countingHandler struct {
	count    int
	delivers atomic.Int32
	surveys  atomic.Int32
	hang     chan struct{} // when non-nil, handlers block until it is closed

	mu       sync.Mutex
	lastApp  string
	lastTgt  hub.Target
	lastEv   hub.Event
	lastReq  hub.Request
	surveyFn func(hub.Request) (hub.Reply, error)
}

func (h *countingHandler) HandleDeliver(ctx context.Context, app string, t hub.Target, ev hub.Event) int {
	h.delivers.Add(1)
	h.mu.Lock()
	h.lastApp, h.lastTgt, h.lastEv = app, t, ev
	h.mu.Unlock()
	if h.hang != nil {
		<-h.hang // ignores ctx on purpose: a peer that hangs
	}
	return h.count
}

func (h *countingHandler) HandleSurvey(ctx context.Context, app string, req hub.Request) (hub.Reply, error) {
	h.surveys.Add(1)
	h.mu.Lock()
	h.lastApp, h.lastReq = app, req
	fn := h.surveyFn
	h.mu.Unlock()
	if h.hang != nil {
		<-h.hang
	}
	if fn != nil {
		return fn(req)
	}
	data, _ := json.Marshal([]string{"user-of-" + app})
	return hub.Reply{Count: h.count, Data: data}, nil
}

func (h *countingHandler) total() int { return int(h.delivers.Load() + h.surveys.Load()) }

// node is one running transport in a test cluster.
type node struct {
	tr      *Transport
	handler *countingHandler
	stop    context.CancelFunc
	done    chan error
}

// startNode creates and runs a transport on 127.0.0.1 with h and waits
// until it is ready.
func startNode(t testing.TB, cfg Config, h *countingHandler) *node {
	t.Helper()
	return startNodeWith(t, cfg, h, h)
}

// startNodeWith is startNode serving with handler (h is what the node
// reports as its handler).
func startNodeWith(t testing.TB, cfg Config, h *countingHandler, handler hub.Handler) *node {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.AdvertiseAddr == "" {
		cfg.AdvertiseAddr = "127.0.0.1"
	}
	if cfg.Secret == "" && !cfg.AllowInsecure {
		cfg.Secret = testSecret
	}
	tr, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{tr: tr, handler: h, stop: cancel, done: make(chan error, 1)}
	go func() { n.done <- tr.Run(ctx, handler) }()
	t.Cleanup(func() {
		if h.hang != nil {
			select {
			case <-h.hang:
			default:
				close(h.hang)
			}
		}
		cancel()
		_ = tr.Close()
		<-n.done
	})
	waitFor(t, 5*time.Second, "transport ready", func() bool { return tr.Ready(context.Background()) == nil })
	return n
}

// staticCluster starts len(counts) nodes n1..nN sharing one static peer
// list that names all of them (each node sees itself in it, as in a real
// static config).
func staticCluster(t *testing.T, counts ...int) ([]*node, *Static) {
	t.Helper()
	return staticClusterB(t, counts...)
}

// staticClusterB is staticCluster for tests and benchmarks.
func staticClusterB(t testing.TB, counts ...int) ([]*node, *Static) {
	t.Helper()
	disc, err := NewStatic()
	if err != nil {
		t.Fatal(err)
	}
	var nodes []*node
	var peers []Peer
	for i, c := range counts {
		n := startNode(t, Config{NodeID: "n" + string(rune('1'+i)), Discovery: disc, Apps: []string{"demo"}}, &countingHandler{count: c})
		nodes = append(nodes, n)
		peers = append(peers, n.tr.Self())
	}
	if err := disc.SetPeers(peers...); err != nil {
		t.Fatal(err)
	}
	return nodes, disc
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	await.True(t, timeout, what, cond)
}

// deadAddr returns a 127.0.0.1 address nobody listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func isErr(err, target error) bool { return errors.Is(err, target) }
