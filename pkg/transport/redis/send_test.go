package redis

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/pushd/pushd/internal/testredis"
	"github.com/pushd/pushd/pkg/hub"
)

// publishCounter is a go-redis hook that records the PUBLISH commands to
// channels starting with prefix a client sends: how many went alone and
// the size of each pipeline that carried some.
type publishCounter struct {
	prefix    string
	mu        sync.Mutex
	single    int
	pipelines []int
}

// counts reports whether cmd is a PUBLISH the hook counts.
func (h *publishCounter) counts(cmd goredis.Cmder) bool {
	args := cmd.Args()
	if cmd.Name() != "publish" || len(args) < 2 {
		return false
	}
	ch, _ := args[1].(string)
	return strings.HasPrefix(ch, h.prefix)
}

func (h *publishCounter) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *publishCounter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if h.counts(cmd) {
			h.mu.Lock()
			h.single++
			h.mu.Unlock()
		}
		return next(ctx, cmd)
	}
}

func (h *publishCounter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		n := 0
		for _, cmd := range cmds {
			if h.counts(cmd) {
				n++
			}
		}
		if n > 0 {
			h.mu.Lock()
			h.pipelines = append(h.pipelines, n)
			h.mu.Unlock()
		}
		return next(ctx, cmds)
	}
}

var _ goredis.Hook = (*publishCounter)(nil)

// TestStandaloneMultiKeySendIsOnePipeline checks that on a standalone
// Redis a send to several routing keys is one pipeline of one PUBLISH per
// key (one round trip), and counts the holder of all of them once.
func TestStandaloneMultiKeySendIsOnePipeline(t *testing.T) {
	srv := testredis.StartAny(t)
	prefix := testPrefix(t)
	holder := startNode(t, srv, prefix, "holder", 1)
	keys := []string{"u:1", "u:2", "u:3"}
	for _, k := range keys {
		holder.SetInterest("app", k, true)
	}
	if err := holder.AwaitInterest(context.Background(), "app", keys); err != nil {
		t.Fatalf("AwaitInterest: %v", err)
	}
	hook := &publishCounter{prefix: prefix + ":app:"}
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	client.AddHook(hook)
	t.Cleanup(func() { _ = client.Close() })
	sender := startNode(t, srv, prefix, "sender", 0, func(c *Config) { c.URL, c.Client = "", client })

	n, err := sender.Deliver(context.Background(), "app", hub.Target{UserIDs: []string{"1", "2", "3"}}, hub.Event{Name: "e"})
	if n != 1 || err != nil {
		t.Fatalf("Deliver to three users of one holder = %d, %v; want 1, nil", n, err)
	}
	hook.mu.Lock()
	defer hook.mu.Unlock()
	if hook.single != 0 || len(hook.pipelines) != 1 || hook.pipelines[0] != len(keys) {
		t.Errorf("the send went as %d single PUBLISH and pipelines of %v PUBLISH; want one pipeline of %d", hook.single, hook.pipelines, len(keys))
	}
}

// TestPublishDoesNotWaitForEarlierAnswers checks that a sender writes a
// PUBLISH while the answer to an earlier one is still on its way (the
// autopipeliner is full-duplex): with a pipeline per round trip, every
// send that arrives meanwhile would wait up to a round trip longer.
// Redis's answers to the sender's commands are held back (its pub/sub
// connections, which carry the replies, are not) until the second send
// has reached the holder.
func TestPublishDoesNotWaitForEarlierAnswers(t *testing.T) {
	srv := testredis.StartAny(t)
	prefix := testPrefix(t)
	holder := startNode(t, srv, prefix, "holder", 1)
	keys := []string{"u:1", "u:2"}
	for _, k := range keys {
		holder.SetInterest("app", k, true)
	}
	if err := holder.AwaitInterest(context.Background(), "app", keys); err != nil {
		t.Fatalf("AwaitInterest: %v", err)
	}
	d := &answerGate{open: make(chan struct{})}
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), Dialer: d.dial})
	t.Cleanup(func() { _ = client.Close() })
	sender := startNode(t, srv, prefix, "sender", 0, func(c *Config) { c.URL, c.Client = "", client })

	var opened sync.Once
	release := func() {
		opened.Do(func() {
			d.hold.Store(false)
			close(d.open)
		})
	}
	t.Cleanup(release) // before the nodes close, if the test fails
	// A send to nobody first: the publishing connection is dialed and
	// greeted (HELLO) before the answers are held.
	if n, err := sender.Deliver(context.Background(), "app", hub.Target{UserIDs: []string{"0"}}, hub.Event{Name: "e"}); n != 0 || err != nil {
		t.Fatalf("Deliver to nobody = %d, %v", n, err)
	}
	d.hold.Store(true)
	results := make(chan int, 2)
	send := func(user string) {
		n, err := sender.Deliver(context.Background(), "app", hub.Target{UserIDs: []string{user}}, hub.Event{Name: "e"})
		if err != nil {
			t.Errorf("Deliver to %s: %v", user, err)
		}
		results <- n
	}
	go send("1")
	waitFor(t, 10*time.Second, "the first send at the holder", func() bool { return holder.h.deliveries.Load() == 1 })
	go send("2")
	waitFor(t, 10*time.Second, "the second send at the holder while the answer to the first is held", func() bool {
		return holder.h.deliveries.Load() == 2
	})
	release()
	for range 2 {
		if n := <-results; n != 1 {
			t.Errorf("a send counted %d connections, want 1", n)
		}
	}
}

// answerGate dials real connections and, while hold is set, keeps what
// Redis sends on those that are not pub/sub connections until open is
// closed.
type answerGate struct {
	hold atomic.Bool
	open chan struct{}
}

func (d *answerGate) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &gatedConn{pubsubConn: pubsubConn{Conn: c}, gate: d}, nil
}

type gatedConn struct {
	pubsubConn
	gate *answerGate
}

func (c *gatedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.pubsub.Load() && c.gate.hold.Load() {
		<-c.gate.open
	}
	return n, err
}
