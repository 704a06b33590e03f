package hubtest

import (
	"context"
	"sync"

	"github.com/pushd/pushd/pkg/hub"
)

// Loopback is an in-memory network of hub.Transports in one process: a
// node's Deliver and Survey call the Handlers of the other nodes whose Run
// is in progress, directly and concurrently. It routes nothing by key (it
// asks every node) and loses nothing. The zero value is an empty network
// ready for use.
type Loopback struct {
	mu      sync.Mutex
	running map[*loopNode]hub.Handler
}

// Transport returns the transport of a new node on the network. The node
// is reachable while its Run is in progress.
func (l *Loopback) Transport() hub.Transport { return &loopNode{net: l} }

// loopNode is one node's Transport on a Loopback.
type loopNode struct{ net *Loopback }

var _ hub.Transport = (*loopNode)(nil)

// others returns the handlers of the running nodes but n.
func (n *loopNode) others() []hub.Handler {
	n.net.mu.Lock()
	defer n.net.mu.Unlock()
	out := make([]hub.Handler, 0, len(n.net.running))
	for node, h := range n.net.running {
		if node != n {
			out = append(out, h)
		}
	}
	return out
}

// fanOut calls ask for each other running node concurrently and returns
// the answers that came before ctx ended.
func fanOut[T any](ctx context.Context, n *loopNode, ask func(hub.Handler) T) []T {
	peers := n.others()
	answers := make(chan T, len(peers))
	for _, h := range peers {
		go func() { answers <- ask(h) }()
	}
	out := make([]T, 0, len(peers))
	for range peers {
		select {
		case a := <-answers:
			out = append(out, a)
		case <-ctx.Done():
			return out
		}
	}
	return out
}

// Deliver implements hub.Transport.
func (n *loopNode) Deliver(ctx context.Context, app string, t hub.Target, ev hub.Event) (int, error) {
	total := 0
	for _, c := range fanOut(ctx, n, func(h hub.Handler) int { return h.HandleDeliver(ctx, app, t, ev) }) {
		total += c
	}
	return total, nil
}

// Survey implements hub.Transport.
func (n *loopNode) Survey(ctx context.Context, app string, req hub.Request) ([]hub.Reply, error) {
	return fanOut(ctx, n, func(h hub.Handler) hub.Reply {
		rep, err := h.HandleSurvey(ctx, app, req)
		if err != nil && rep.Error == "" {
			rep.Error = err.Error()
		}
		return rep
	}), nil
}

// Run implements hub.Transport: the node is reachable until ctx ends.
func (n *loopNode) Run(ctx context.Context, h hub.Handler) error {
	n.net.mu.Lock()
	if n.net.running == nil {
		n.net.running = make(map[*loopNode]hub.Handler)
	}
	n.net.running[n] = h
	n.net.mu.Unlock()
	<-ctx.Done()
	n.net.mu.Lock()
	delete(n.net.running, n)
	n.net.mu.Unlock()
	return nil
}
