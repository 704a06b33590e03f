package redis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/pushd/pushd/internal/testredis"
	"github.com/pushd/pushd/pkg/hub"
)

const app = "demo"

func TestNewValidatesConfig(t *testing.T) {
	client := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no node id", Config{URL: "redis://127.0.0.1:1"}},
		{"no client nor url", Config{NodeID: "a"}},
		{"client and url", Config{NodeID: "a", URL: "redis://127.0.0.1:1", Client: client}},
		{"bad url", Config{NodeID: "a", URL: "http://x"}},
		{"negative timeout", Config{NodeID: "a", URL: "redis://127.0.0.1:1", Timeout: -1}},
		{"negative workers", Config{NodeID: "a", URL: "redis://127.0.0.1:1", Workers: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); !errors.Is(err, ErrConfig) {
				t.Fatalf("New: got %v, want ErrConfig", err)
			}
		})
	}
	tr, err := New(Config{NodeID: "a", Client: client})
	if err != nil {
		t.Fatalf("New with client: %v", err)
	}
	if tr.cfg.Prefix != "pushd" || tr.cfg.Timeout != 2*time.Second {
		t.Fatalf("defaults not applied: %+v", tr.cfg)
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := client.Close(); err != nil {
		t.Fatalf("Close closed a client the transport did not create: %v", err)
	}
}

func TestNotReadyBeforeRunAndClosedAfterClose(t *testing.T) {
	srv := testredis.StartAny(t)
	tr, err := New(Config{URL: srv.URL(), NodeID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := tr.Deliver(ctx, app, hub.Target{All: true}, hub.Event{Name: "x"}); !errors.Is(err, ErrNotReady) {
		t.Fatalf("Deliver before Run: got %v, want ErrNotReady", err)
	}
	if err := tr.Ready(ctx); !errors.Is(err, ErrNotReady) {
		t.Fatalf("Ready before Run: got %v, want ErrNotReady", err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- tr.Run(ctx, &fakeHandler{}) }()
	awaitReady(t, tr)
	if err := tr.Run(ctx, &fakeHandler{}); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Run: got %v, want ErrRunning", err)
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-runErr; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := tr.Ready(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ready after Close: got %v, want ErrClosed", err)
	}
	if _, err := tr.Survey(ctx, app, hub.Request{Op: hub.OpStats}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Survey after Close: got %v, want ErrClosed", err)
	}
}

func TestDeliverToUserOnOtherNode(t *testing.T) {
	srv := testredis.StartAny(t)
	rdb := srv.Client()
	prefix := testPrefix(t)
	a := startNode(t, srv, prefix, "a", 100)
	b := startNode(t, srv, prefix, "b", 3)
	startNode(t, srv, prefix, "c", 7) // holds nothing: must not be asked

	// a holds the user too: its own subscription is counted by PUBLISH and
	// answered locally, without its handler.
	a.SetInterest(app, "u:42", true)
	b.SetInterest(app, "u:42", true)
	awaitSubscribers(t, rdb, a.Transport, app, "u:42", 2)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ev := hub.Event{Name: "greeting", Data: "hello\nworld", ID: "q1"}
	n, err := a.Deliver(ctx, app, hub.Target{UserIDs: []string{"42"}}, ev)
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if n != 3 {
		t.Fatalf("Deliver count: got %d, want 3 (b's)", n)
	}
	if ctx.Err() != nil {
		t.Fatal("Deliver waited until the deadline instead of for the expected replies")
	}
	if got := a.h.deliveries.Load(); got != 0 {
		t.Fatalf("origin's handler called %d times, want 0", got)
	}
	b.h.mu.Lock()
	defer b.h.mu.Unlock()
	if len(b.h.events) != 1 || !reflect.DeepEqual(b.h.events[0], ev) {
		t.Fatalf("b received %+v, want exactly %+v", b.h.events, ev)
	}
	if !slices.Equal(b.h.targets[0].UserIDs, []string{"42"}) {
		t.Fatalf("b received target %+v", b.h.targets[0])
	}
}

func TestDeliverMultiKeyTargetServedOncePerNode(t *testing.T) {
	srv := testredis.StartAny(t)
	rdb := srv.Client()
	prefix := testPrefix(t)
	a := startNode(t, srv, prefix, "a", 100)
	b := startNode(t, srv, prefix, "b", 3)
	c := startNode(t, srv, prefix, "c", 5)

	// b has user 1, who is in tenant acme, and a connection on channel news;
	// c has another user of tenant acme.
	b.SetInterest(app, "u:1", true)
	b.SetInterest(app, "t:acme", true)
	b.SetInterest(app, "c:news", true)
	c.SetInterest(app, "t:acme", true)
	awaitSubscribers(t, rdb, a.Transport, app, "u:1", 1)
	awaitSubscribers(t, rdb, a.Transport, app, "t:acme", 2)
	awaitSubscribers(t, rdb, a.Transport, app, "c:news", 1)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	target := hub.Target{UserIDs: []string{"1"}, TenantIDs: []string{"acme"}, Channels: []string{"news"}}
	for i := 1; i <= 3; i++ {
		n, err := a.Deliver(ctx, app, target, hub.Event{Name: "e", Data: fmt.Sprint(i)})
		if err != nil {
			t.Fatalf("Deliver: %v", err)
		}
		if n != 3+5 {
			t.Fatalf("Deliver %d: got %d, want 8 (b once + c once)", i, n)
		}
		if got := b.h.deliveries.Load(); got != int64(i) {
			t.Fatalf("after %d sends b served %d, want %d", i, got, i)
		}
		if got := c.h.deliveries.Load(); got != int64(i) {
			t.Fatalf("after %d sends c served %d, want %d", i, got, i)
		}
	}
	if ctx.Err() != nil {
		t.Fatal("Deliver waited until the deadline")
	}
}

func TestDeliverAllReachesEveryNode(t *testing.T) {
	srv := testredis.StartAny(t)
	prefix := testPrefix(t)
	nodes := []*node{
		startNode(t, srv, prefix, "a", 1),
		startNode(t, srv, prefix, "b", 2),
		startNode(t, srv, prefix, "c", 4),
		startNode(t, srv, prefix, "d", 8),
	}
	for _, n := range nodes {
		n.SetInterest(app, hub.KeyAll, true)
	}
	awaitSubscribers(t, srv.Client(), nodes[0].Transport, app, hub.KeyAll, 4)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := nodes[0].Deliver(ctx, app, hub.Target{All: true, UserIDs: []string{"ignored"}}, hub.Event{Name: "e"})
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if n != 2+4+8 {
		t.Fatalf("Deliver all: got %d, want 14", n)
	}
	for i, want := range []int64{0, 1, 1, 1} {
		if got := nodes[i].h.deliveries.Load(); got != want {
			t.Fatalf("node %s served %d times, want %d", nodes[i].cfg.NodeID, got, want)
		}
	}
	// Another app's "all" is a different channel.
	n, err = nodes[0].Deliver(ctx, "other", hub.Target{All: true}, hub.Event{Name: "e"})
	if err != nil || n != 0 {
		t.Fatalf("Deliver to app nobody holds: got %d, %v; want 0, nil", n, err)
	}
	if ctx.Err() != nil {
		t.Fatal("Deliver waited until the deadline")
	}
}

func TestReleasedKeysStopRouting(t *testing.T) {
	srv := testredis.StartAny(t)
	rdb := srv.Client()
	prefix := testPrefix(t)
	a := startNode(t, srv, prefix, "a", 0)
	b := startNode(t, srv, prefix, "b", 3)

	b.SetInterest(app, "u:7", true)
	b.SetInterest(app, "x:conn1", true)
	awaitSubscribers(t, rdb, a.Transport, app, "u:7", 1)
	awaitSubscribers(t, rdb, a.Transport, app, "x:conn1", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if n, err := a.Deliver(ctx, app, hub.Target{UserIDs: []string{"7"}}, hub.Event{Name: "e"}); err != nil || n != 3 {
		t.Fatalf("Deliver while held: got %d, %v; want 3", n, err)
	}

	b.SetInterest(app, "u:7", false)
	awaitSubscribers(t, rdb, a.Transport, app, "u:7", 0)
	n, err := a.Deliver(ctx, app, hub.Target{UserIDs: []string{"7"}}, hub.Event{Name: "e"})
	if err != nil || n != 0 {
		t.Fatalf("Deliver after release: got %d, %v; want 0, nil", n, err)
	}
	if got := b.h.deliveries.Load(); got != 1 {
		t.Fatalf("b served %d requests, want 1 (none after the release)", got)
	}
	if ctx.Err() != nil {
		t.Fatal("Deliver after release waited for a reply nobody owed")
	}
	// The key still held keeps routing.
	if n, err := a.Deliver(ctx, app, hub.Target{ConnectionIDs: []string{"conn1"}}, hub.Event{Name: "e"}); err != nil || n != 3 {
		t.Fatalf("Deliver to the kept key: got %d, %v; want 3", n, err)
	}
	if got := b.Stats().Subscribed; got != 1 {
		t.Fatalf("b subscribed to %d key channels, want 1", got)
	}
}

func TestSurveyMergesReplies(t *testing.T) {
	srv := testredis.StartAny(t)
	rdb := srv.Client()
	prefix := testPrefix(t)
	a := startNode(t, srv, prefix, "a", 1)
	b := startNode(t, srv, prefix, "b", 2)
	c := startNode(t, srv, prefix, "c", 4)
	for _, n := range []*node{a, b, c} {
		n.SetInterest(app, hub.KeyAll, true)
	}
	c.SetInterest(app, "u:9", true)
	c.SetInterest(app, "t:acme", true)
	awaitSubscribers(t, rdb, a.Transport, app, hub.KeyAll, 3)
	awaitSubscribers(t, rdb, a.Transport, app, "t:acme", 1)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	replies, err := a.Survey(ctx, app, hub.Request{Op: hub.OpStats})
	if err != nil {
		t.Fatalf("Survey: %v", err)
	}
	slices.SortFunc(replies, func(x, y hub.Reply) int { return strings.Compare(x.NodeID, y.NodeID) })
	if len(replies) != 2 || replies[0].NodeID != "b" || replies[1].NodeID != "c" {
		t.Fatalf("Survey replies: got %+v, want one from b and one from c", replies)
	}
	for _, r := range replies {
		var data map[string]any
		if err := json.Unmarshal(r.Data, &data); err != nil || data["node"] != r.NodeID || data["op"] != hub.OpStats {
			t.Fatalf("reply %+v: data %s (%v)", r, r.Data, err)
		}
	}
	if replies[0].Count != 2 || replies[1].Count != 4 {
		t.Fatalf("reply counts: %+v", replies)
	}
	if got := a.h.surveys.Load(); got != 0 {
		t.Fatalf("origin's handler surveyed %d times, want 0", got)
	}

	// A targeted survey reaches only the nodes holding the keys, once each.
	replies, err = a.Survey(ctx, app, hub.Request{Op: hub.OpDisconnect,
		Target: hub.Target{UserIDs: []string{"9"}, TenantIDs: []string{"acme"}}})
	if err != nil {
		t.Fatalf("targeted Survey: %v", err)
	}
	if len(replies) != 1 || replies[0].NodeID != "c" || replies[0].Count != 4 {
		t.Fatalf("targeted Survey replies: got %+v, want one from c", replies)
	}
	if got := b.h.surveys.Load(); got != 1 {
		t.Fatalf("b surveyed %d times, want 1", got)
	}

	// Handler errors travel in the reply.
	replies, err = a.Survey(ctx, app, hub.Request{Op: "fail", Target: hub.Target{UserIDs: []string{"9"}}})
	if err != nil || len(replies) != 1 || replies[0].Error != "fake failure" || replies[0].NodeID != "c" {
		t.Fatalf("failing Survey: got %+v, %v", replies, err)
	}
	if ctx.Err() != nil {
		t.Fatal("Survey waited until the deadline")
	}
}

func TestHangingHandlerDoesNotOutlastDeadline(t *testing.T) {
	srv := testredis.StartAny(t)
	rdb := srv.Client()
	prefix := testPrefix(t)
	// The deadlines are what the hanging node costs; they are 2 s so that
	// c answers within them on a loaded machine too.
	a := startNode(t, srv, prefix, "a", 0, func(c *Config) { c.Timeout = 2 * time.Second })
	b := startNode(t, srv, prefix, "b", 3)
	c := startNode(t, srv, prefix, "c", 5)
	hang := make(chan struct{})
	b.h.hang = hang
	t.Cleanup(func() { close(hang) }) // runs before the nodes are closed
	b.SetInterest(app, "u:1", true)
	c.SetInterest(app, "u:1", true)
	awaitSubscribers(t, rdb, a.Transport, app, "u:1", 2)

	// With a ctx deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	n, err := a.Deliver(ctx, app, hub.Target{UserIDs: []string{"1"}}, hub.Event{Name: "e"})
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if n != 5 {
		t.Fatalf("Deliver: got %d, want 5 (c's answer only)", n)
	}
	if ctx.Err() == nil {
		t.Fatal("Deliver returned before the deadline although b never answered")
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Fatalf("Deliver returned %v after a 2s deadline", elapsed)
	}

	// Without one: Config.Timeout bounds it.
	start = time.Now()
	n, err = a.Deliver(context.Background(), app, hub.Target{UserIDs: []string{"1"}}, hub.Event{Name: "e"})
	if err != nil || n != 5 {
		t.Fatalf("Deliver without deadline: got %d, %v; want 5", n, err)
	}
	if elapsed := time.Since(start); elapsed < 2*time.Second || elapsed > 20*time.Second {
		t.Fatalf("Deliver without deadline took %v, want about Config.Timeout (2s)", elapsed)
	}
}

func TestClosedNodeIsNotAwaited(t *testing.T) {
	srv := testredis.StartAny(t)
	rdb := srv.Client()
	prefix := testPrefix(t)
	a := startNode(t, srv, prefix, "a", 0)
	b := startNode(t, srv, prefix, "b", 3)
	c := startNode(t, srv, prefix, "c", 5)
	for _, n := range []*node{a, b, c} {
		n.SetInterest(app, hub.KeyAll, true)
		n.SetInterest(app, "u:1", true)
	}
	awaitSubscribers(t, rdb, a.Transport, app, "u:1", 3)
	awaitSubscribers(t, rdb, a.Transport, app, hub.KeyAll, 3)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if n, err := a.Deliver(ctx, app, hub.Target{UserIDs: []string{"1"}}, hub.Event{Name: "e"}); err != nil || n != 8 {
		t.Fatalf("Deliver with all nodes: got %d, %v; want 8", n, err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close b: %v", err)
	}
	// No waiting for Redis to notice: Close returns once b is unsubscribed.
	n, err := a.Deliver(ctx, app, hub.Target{UserIDs: []string{"1"}}, hub.Event{Name: "e"})
	if err != nil || n != 5 {
		t.Fatalf("Deliver after b closed: got %d, %v; want 5 (c only)", n, err)
	}
	replies, err := a.Survey(ctx, app, hub.Request{Op: hub.OpStats})
	if err != nil || len(replies) != 1 || replies[0].NodeID != "c" {
		t.Fatalf("Survey after b closed: got %+v, %v; want c's reply", replies, err)
	}
	if ctx.Err() != nil {
		t.Fatal("sends waited for the closed node until the deadline")
	}
	if _, err := b.Deliver(ctx, app, hub.Target{All: true}, hub.Event{Name: "e"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Deliver on the closed node: got %v, want ErrClosed", err)
	}
}

func TestResubscribesAfterRedisRestart(t *testing.T) {
	srv := startRedis(t, "it is killed and started again")
	prefix := testPrefix(t)
	var resubscribedA, resubscribedB atomic.Int64
	fast := func(counter *atomic.Int64) func(*Config) {
		return func(c *Config) {
			c.ProbeInterval = 100 * time.Millisecond
			c.ProbeTimeout = 300 * time.Millisecond
			c.OnResubscribe = func() { counter.Add(1) }
		}
	}
	a := startNode(t, srv, prefix, "a", 0, fast(&resubscribedA))
	b := startNode(t, srv, prefix, "b", 3, fast(&resubscribedB))
	b.SetInterest(app, "u:1", true)
	b.SetInterest(app, hub.KeyAll, true)
	rdb := srv.Client()
	awaitSubscribers(t, rdb, a.Transport, app, "u:1", 1)

	deliver := func() (int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return a.Deliver(ctx, app, hub.Target{UserIDs: []string{"1"}}, hub.Event{Name: "e"})
	}
	if n, err := deliver(); err != nil || n != 3 {
		t.Fatalf("Deliver before restart: got %d, %v; want 3", n, err)
	}

	srv.Kill()
	// While Redis is down the transports notice and report not ready.
	waitFor(t, 10*time.Second, "a notices Redis is gone", func() bool {
		_, err := deliver()
		return err != nil
	})
	// Keys change while Redis is down: applied on resubscribe.
	b.SetInterest(app, "u:2", true)
	b.SetInterest(app, hub.KeyAll, false)
	srv.Start()

	waitFor(t, 20*time.Second, "delivery works after the restart", func() bool {
		n, err := deliver()
		return err == nil && n == 3
	})
	waitFor(t, 10*time.Second, "OnResubscribe called on both nodes", func() bool {
		return resubscribedA.Load() >= 1 && resubscribedB.Load() >= 1
	})
	awaitReady(t, b.Transport)
	ctx := context.Background()
	if n, err := a.Deliver(ctx, app, hub.Target{UserIDs: []string{"2"}}, hub.Event{Name: "e"}); err != nil || n != 3 {
		t.Fatalf("Deliver to a key taken while Redis was down: got %d, %v; want 3", n, err)
	}
	if n, err := a.Deliver(ctx, app, hub.Target{All: true}, hub.Event{Name: "e"}); err != nil || n != 0 {
		t.Fatalf("Deliver to a key released while Redis was down: got %d, %v; want 0", n, err)
	}
	if a.Stats().Resubscribes == 0 || b.Stats().Resubscribes == 0 {
		t.Fatalf("Stats do not count the resubscription: a %+v b %+v", a.Stats(), b.Stats())
	}
}

func TestDetectsReconnectAfterConnectionKill(t *testing.T) {
	srv := startRedis(t, "CLIENT LIST and CLIENT KILL")
	prefix := testPrefix(t)
	var resubscribed atomic.Int64
	a := startNode(t, srv, prefix, "a", 0)
	b := startNode(t, srv, prefix, "b", 3, func(c *Config) {
		c.ProbeInterval = 50 * time.Millisecond
		c.ProbeTimeout = 200 * time.Millisecond
		c.OnResubscribe = func() { resubscribed.Add(1) }
	})
	b.SetInterest(app, "u:1", true)
	rdb := srv.Client()
	awaitSubscribers(t, rdb, a.Transport, app, "u:1", 1)

	// Kill b's pub/sub connection: go-redis reconnects and resubscribes by
	// itself; the transport must notice and report it.
	clients, err := rdb.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, id := range pubsubClientIDs(clients) {
		if err := rdb.ClientKillByFilter(context.Background(), "ID", id, "SKIPME", "yes").Err(); err == nil {
			killed++
		}
	}
	if killed == 0 {
		t.Fatal("found no pub/sub connection to kill")
	}
	waitFor(t, 20*time.Second, "b resubscribed", func() bool { return resubscribed.Load() >= 1 })
	waitFor(t, 20*time.Second, "delivery to b works again", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, err := a.Deliver(ctx, app, hub.Target{UserIDs: []string{"1"}}, hub.Event{Name: "e"})
		return err == nil && n == 3
	})
}

func TestInterestChurnIsBatched(t *testing.T) {
	srv := startRedis(t, "INFO commandstats counts the SUBSCRIBE commands")
	rdb := srv.Client()
	prefix := testPrefix(t)
	// A probe may take 20 s, longer than this test runs, so a loaded
	// machine cannot fail one and restart the subscription (which would
	// subscribe everything again): any restart here is a fault.
	tr, err := New(Config{URL: srv.URL(), Prefix: prefix, NodeID: "a", BatchSize: 500,
		ProbeTimeout: 20 * time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	countKeys := func() int {
		chans, err := rdb.PubSubChannels(context.Background(), prefix+":"+app+":*").Result()
		if err != nil {
			t.Fatalf("PUBSUB CHANNELS: %v", err)
		}
		return len(chans)
	}

	// Before Run: 2000 on, 1000 of them off again, 500 more on and off.
	for i := range 2000 {
		tr.SetInterest(app, fmt.Sprintf("u:%d", i), true)
	}
	for i := range 1000 {
		tr.SetInterest(app, fmt.Sprintf("u:%d", i), false)
	}
	for i := range 500 {
		tr.SetInterest(app, fmt.Sprintf("k:%d", i), true)
		tr.SetInterest(app, fmt.Sprintf("k:%d", i), false)
	}
	before := commandCalls(t, rdb, "subscribe")
	runErr := make(chan error, 1)
	go func() { runErr <- tr.Run(context.Background(), &fakeHandler{}) }()
	t.Cleanup(func() {
		_ = tr.Close()
		if err := <-runErr; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	awaitReady(t, tr)
	if got := countKeys(); got != 1000 {
		t.Fatalf("subscribed key channels after start: %d, want 1000", got)
	}
	st := tr.Stats()
	if st.Resubscribes+st.ProbeFailures > 0 {
		t.Fatalf("the subscription was restarted during the test without a probe: %+v", st)
	}
	if got := commandCalls(t, rdb, "subscribe") - before; got > 3 {
		t.Fatalf("start used %d SUBSCRIBE commands, want at most 3 (2 batches of keys + reply/probe); stats %+v", got, tr.Stats())
	}

	// While running: 8 goroutines take 5000 keys, then release them.
	churn := func(on bool) {
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := g; i < 5000; i += 8 {
					tr.SetInterest(app, fmt.Sprintf("c:%d", i), on)
				}
			})
		}
		wg.Wait()
	}
	before = commandCalls(t, rdb, "subscribe")
	churn(true)
	waitFor(t, 10*time.Second, "6000 key channels", func() bool { return countKeys() == 6000 })
	subs := commandCalls(t, rdb, "subscribe") - before
	if subs > 100 {
		t.Fatalf("5000 keys took %d SUBSCRIBE commands, want batches (at most 100)", subs)
	}

	beforeUnsub := commandCalls(t, rdb, "unsubscribe")
	churn(false)
	waitFor(t, 10*time.Second, "back to 1000 key channels", func() bool { return countKeys() == 1000 })
	unsubs := commandCalls(t, rdb, "unsubscribe") - beforeUnsub
	if unsubs > 100 {
		t.Fatalf("releasing 5000 keys took %d UNSUBSCRIBE commands, want batches (at most 100)", unsubs)
	}
	st = tr.Stats()
	if st.Subscribed != 1000 {
		t.Fatalf("Stats.Subscribed = %d, want 1000", st.Subscribed)
	}
	t.Logf("5000 keys: %d SUBSCRIBE, %d UNSUBSCRIBE commands; stats %+v", subs, unsubs, st)
}

// pubsubClientIDs returns the ids of the connections in a CLIENT LIST that
// are subscribed to something.
func pubsubClientIDs(list string) []string {
	var ids []string
	for line := range strings.SplitSeq(list, "\n") {
		var id string
		subscribed := false
		for _, field := range strings.Fields(line) {
			k, v, _ := strings.Cut(field, "=")
			switch k {
			case "id":
				id = v
			case "sub":
				subscribed = v != "0"
			}
		}
		if subscribed && id != "" {
			ids = append(ids, id)
		}
	}
	return ids
}

func TestProbeDetectsSilentSubscriptionLoss(t *testing.T) {
	srv := testredis.StartAny(t)
	prefix := testPrefix(t)
	var resubscribed atomic.Int64
	a := startNode(t, srv, prefix, "a", 0)
	d := &blackholeDialer{}
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), Dialer: d.dial})
	t.Cleanup(func() { _ = client.Close() })
	b := startNode(t, srv, prefix, "b", 3, func(c *Config) {
		c.URL, c.Client = "", client
		c.ProbeInterval = 50 * time.Millisecond
		c.ProbeTimeout = 200 * time.Millisecond
		c.OnResubscribe = func() { resubscribed.Add(1) }
	})
	b.SetInterest(app, "u:1", true)
	awaitSubscribers(t, srv.Client(), a.Transport, app, "u:1", 1)

	// b's pub/sub connection goes silent: Redis still counts it as a
	// subscriber, but nothing it sends reaches b any more.
	if n := d.silencePubSub(); n == 0 {
		t.Fatal("no pub/sub connection to silence")
	}
	waitFor(t, 20*time.Second, "b resubscribed", func() bool { return resubscribed.Load() >= 1 })
	waitFor(t, 20*time.Second, "delivery to b works again", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, err := a.Deliver(ctx, app, hub.Target{UserIDs: []string{"1"}}, hub.Event{Name: "e"})
		return err == nil && n == 3
	})
	if b.Stats().ProbeFailures == 0 {
		t.Fatalf("the loss was not found by the probe: %+v", b.Stats())
	}
}

// blackholeDialer dials real connections and can make the pub/sub ones
// silent: everything Redis sends on them is discarded.
type blackholeDialer struct {
	mu    sync.Mutex
	conns []*silenceableConn
}

func (d *blackholeDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	sc := &silenceableConn{pubsubConn: pubsubConn{Conn: c}}
	d.mu.Lock()
	d.conns = append(d.conns, sc)
	d.mu.Unlock()
	return sc, nil
}

// silencePubSub silences the connections that sent SUBSCRIBE so far and
// returns how many.
func (d *blackholeDialer) silencePubSub() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, c := range d.conns {
		if c.pubsub.Load() {
			c.silent.Store(true)
			n++
		}
	}
	return n
}

// pubsubConn is a connection that notes whether a SUBSCRIBE went out on
// it (it is a pub/sub connection).
type pubsubConn struct {
	net.Conn
	pubsub atomic.Bool
}

func (c *pubsubConn) Write(b []byte) (int, error) {
	if bytes.Contains(bytes.ToLower(b), []byte("subscribe")) {
		c.pubsub.Store(true)
	}
	return c.Conn.Write(b)
}

type silenceableConn struct {
	pubsubConn
	silent atomic.Bool
}

func (c *silenceableConn) Read(b []byte) (int, error) {
	for {
		n, err := c.Conn.Read(b)
		if err != nil || !c.silent.Load() {
			return n, err
		}
	}
}

func TestManyKeysGoToAllChannel(t *testing.T) {
	srv := testredis.StartAny(t)
	rdb := srv.Client()
	prefix := testPrefix(t)
	a := startNode(t, srv, prefix, "a", 0, func(c *Config) { c.MaxRoutedKeys = 2 })
	b := startNode(t, srv, prefix, "b", 3)
	c := startNode(t, srv, prefix, "c", 5)
	for _, n := range []*node{a, b, c} {
		n.SetInterest(app, hub.KeyAll, true)
	}
	b.SetInterest(app, "u:1", true)
	awaitSubscribers(t, rdb, a.Transport, app, hub.KeyAll, 3)
	awaitSubscribers(t, rdb, a.Transport, app, "u:1", 1)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Two keys: routed, only b is asked.
	if n, err := a.Deliver(ctx, app, hub.Target{UserIDs: []string{"1", "2"}}, hub.Event{Name: "e"}); err != nil || n != 3 {
		t.Fatalf("Deliver to 2 keys: got %d, %v; want 3", n, err)
	}
	if got := c.h.deliveries.Load(); got != 0 {
		t.Fatalf("c served %d routed requests, want 0", got)
	}
	// Three keys: one message on the KeyAll channel, every node asked once
	// with the whole target.
	target := hub.Target{UserIDs: []string{"1", "2", "3"}}
	if n, err := a.Deliver(ctx, app, target, hub.Event{Name: "e"}); err != nil || n != 8 {
		t.Fatalf("Deliver to 3 keys: got %d, %v; want 8", n, err)
	}
	if b.h.deliveries.Load() != 2 || c.h.deliveries.Load() != 1 {
		t.Fatalf("served: b %d (want 2), c %d (want 1)", b.h.deliveries.Load(), c.h.deliveries.Load())
	}
	c.h.mu.Lock()
	got := c.h.targets[0]
	c.h.mu.Unlock()
	if got.All || !slices.Equal(got.UserIDs, target.UserIDs) {
		t.Fatalf("c received target %+v, want %+v", got, target)
	}
}

func TestDeliveriesOnOneKeyServedInOrder(t *testing.T) {
	srv := testredis.StartAny(t)
	rdb := srv.Client()
	prefix := testPrefix(t)
	b := startNode(t, srv, prefix, "b", 1)
	b.SetInterest(app, "u:1", true)
	b.SetInterest(app, "u:2", true)
	awaitSubscribers(t, rdb, b.Transport, app, "u:2", 1)

	// Publish requests straight to the channels in a known order, as other
	// nodes' Deliver calls would.
	const perKey = 300
	ctx := context.Background()
	pipe := rdb.Pipeline()
	for i := range perKey {
		for _, user := range []string{"1", "2"} {
			ev := hub.Event{Name: "e", Data: fmt.Sprint(i)}
			env := envelope{ID: fmt.Sprintf("other.%s.%d", user, i), Origin: "x", ReplyTo: prefix + ":reply:x",
				App: app, Kind: kindDeliver, TimeoutMS: 30000, Target: hub.Target{UserIDs: []string{user}}, Event: &ev}
			payload, err := json.Marshal(&env)
			if err != nil {
				t.Fatal(err)
			}
			pipe.Publish(ctx, b.channel(app, "u:"+user), payload)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "b served every request", func() bool { return b.h.deliveries.Load() == 2*perKey })
	b.h.mu.Lock()
	defer b.h.mu.Unlock()
	next := map[string]int{}
	for i, ev := range b.h.events {
		user := b.h.targets[i].UserIDs[0]
		if ev.Data != fmt.Sprint(next[user]) {
			t.Fatalf("user %s: event %q served when %d was next", user, ev.Data, next[user])
		}
		next[user]++
	}
}

// quickHandler serves deliveries of even data quickly, on the reading
// goroutine, and leaves the others to the workers.
type quickHandler struct {
	*fakeHandler
	quick atomic.Int64
}

func (h *quickHandler) HandleDeliverQuick(app string, t hub.Target, ev hub.Event) (int, bool) {
	if n, _ := strconv.Atoi(ev.Data); n%2 != 0 {
		return 0, false
	}
	h.quick.Add(1)
	return h.HandleDeliver(context.Background(), app, t, ev), true
}

// Deliveries served quickly and by workers, mixed on one key, keep their
// order.
func TestQuickDeliveriesKeepOrder(t *testing.T) {
	srv := testredis.StartAny(t)
	rdb := srv.Client()
	prefix := testPrefix(t)
	tr, err := New(Config{URL: srv.URL(), Prefix: prefix, NodeID: "b", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	h := &quickHandler{fakeHandler: &fakeHandler{name: "b", connections: 2}}
	runErr := make(chan error, 1)
	go func() { runErr <- tr.Run(context.Background(), h) }()
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Error(err)
		}
		if err := <-runErr; err != nil {
			t.Error(err)
		}
	})
	awaitReady(t, tr)
	tr.SetInterest(app, "u:1", true)
	awaitSubscribers(t, rdb, tr, app, "u:1", 1)

	// Requests published straight to the channel in one pipeline, as a
	// busy sender's would arrive: the quick ones must not overtake those
	// queued to the worker before them.
	const sends = 400
	ctx := context.Background()
	pipe := rdb.Pipeline()
	for i := range sends {
		env := envelope{ID: fmt.Sprintf("other.%d", i), Origin: "x", ReplyTo: prefix + ":reply:x", App: app, Kind: kindDeliver,
			TimeoutMS: 30000, Target: hub.Target{UserIDs: []string{"1"}}, Event: &hub.Event{Name: "e", Data: strconv.Itoa(i)}}
		payload, err := env.encode(false)
		if err != nil {
			t.Fatal(err)
		}
		pipe.Publish(ctx, tr.channel(app, "u:1"), payload)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "every request served", func() bool { return h.deliveries.Load() == sends })
	if quick := h.quick.Load(); quick == 0 {
		t.Fatalf("%d of %d deliveries served quickly; want some", quick, sends)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, ev := range h.events {
		if ev.Data != strconv.Itoa(i) {
			t.Fatalf("delivery %q served when %d was next", ev.Data, i)
		}
	}
	t.Logf("%d of %d served on the reading goroutine", h.quick.Load(), sends)
}

func TestFullQueueDropsRequests(t *testing.T) {
	srv := testredis.StartAny(t)
	rdb := srv.Client()
	prefix := testPrefix(t)
	a := startNode(t, srv, prefix, "a", 0)
	b := startNode(t, srv, prefix, "b", 3, func(c *Config) { c.Workers, c.QueueSize = 1, 1 })
	hang := make(chan struct{})
	b.h.hang = hang
	t.Cleanup(func() { close(hang) })
	b.SetInterest(app, "u:1", true)
	awaitSubscribers(t, rdb, a.Transport, app, "u:1", 1)

	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			if n, err := a.Deliver(ctx, app, hub.Target{UserIDs: []string{"1"}}, hub.Event{Name: "e"}); err != nil || n != 0 {
				t.Errorf("Deliver to a stuck node: got %d, %v; want 0, nil at the deadline", n, err)
			}
		})
	}
	wg.Wait()
	if got := b.Stats().DroppedRequests; got != 2 {
		t.Fatalf("DroppedRequests = %d, want 2 (one request in service, queue of 1 full)", got)
	}
}

func TestCloseAnswersRequestsInService(t *testing.T) {
	srv := testredis.StartAny(t)
	rdb := srv.Client()
	prefix := testPrefix(t)
	a := startNode(t, srv, prefix, "a", 0)
	b := startNode(t, srv, prefix, "b", 3)
	b.h.blockOnCtx = true
	b.SetInterest(app, "u:1", true)
	awaitSubscribers(t, rdb, a.Transport, app, "u:1", 1)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := a.Deliver(ctx, app, hub.Target{UserIDs: []string{"1"}}, hub.Event{Name: "e"})
		done <- result{n, err}
	}()
	waitFor(t, 10*time.Second, "b serving the request", func() bool { return b.h.deliveries.Load() == 1 })
	if err := b.Close(); err != nil {
		t.Fatalf("Close b: %v", err)
	}
	r := <-done
	if r.err != nil || r.n != 3 {
		t.Fatalf("Deliver: got %d, %v; want b's 3", r.n, r.err)
	}
	if ctx.Err() != nil {
		t.Fatal("the closing node did not answer: Deliver waited until the deadline")
	}
}

func TestAwaitInterestMeansReachable(t *testing.T) {
	srv := startRedis(t, "it is killed and started again")
	prefix := testPrefix(t)
	fast := func(c *Config) {
		c.ProbeInterval = 100 * time.Millisecond
		c.ProbeTimeout = 300 * time.Millisecond
	}
	a := startNode(t, srv, prefix, "a", 0, fast)
	b := startNode(t, srv, prefix, "b", 3, fast)
	awaitReady(t, a.Transport)
	awaitReady(t, b.Transport)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Right after AwaitInterest, a send from another node reaches the key:
	// no retry, every time.
	for i := range 50 {
		key := "u:" + strconv.Itoa(i)
		b.SetInterest(app, key, true)
		if err := b.AwaitInterest(ctx, app, []string{key, "c:" + strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
		if n, err := a.Deliver(ctx, app, hub.Target{UserIDs: []string{strconv.Itoa(i)}}, hub.Event{Name: "e"}); err != nil || n != 3 {
			t.Fatalf("key %d: Deliver right after AwaitInterest = %d, %v; want 3", i, n, err)
		}
	}

	// A key switched off while awaited releases the waiter.
	b.SetInterest(app, "u:gone", true)
	done := make(chan error, 1)
	go func() { done <- b.AwaitInterest(ctx, app, []string{"u:gone"}) }()
	b.SetInterest(app, "u:gone", false)
	if err := <-done; err != nil {
		t.Fatalf("AwaitInterest of a released key: %v", err)
	}

	// While Redis is down nothing can be confirmed and nothing waits. After
	// the restart keys taken meanwhile are confirmed.
	srv.Kill()
	waitFor(t, 10*time.Second, "b notices Redis is gone", func() bool { return b.Ready(ctx) != nil })
	b.SetInterest(app, "u:late", true)
	if err := b.AwaitInterest(ctx, app, []string{"u:late"}); !errors.Is(err, ErrNotReady) {
		t.Fatalf("AwaitInterest with Redis down = %v, want ErrNotReady", err)
	}
	srv.Start()
	awaitReady(t, b.Transport)
	if err := b.AwaitInterest(ctx, app, []string{"u:late", "u:1"}); err != nil {
		t.Fatalf("AwaitInterest after the restart: %v", err)
	}
	awaitReady(t, a.Transport)
	if n, err := a.Deliver(ctx, app, hub.Target{UserIDs: []string{"late"}}, hub.Event{Name: "e"}); err != nil || n != 3 {
		t.Fatalf("Deliver to a key confirmed after the restart = %d, %v; want 3", n, err)
	}
}

// TestRepliesSurviveKilledConnections: the replier publishes on a
// connection it holds between flushes; when Redis closed it meanwhile
// (CLIENT KILL of every normal connection, the pub/sub ones stay), the
// next reply goes out on a new connection, so the first send after it
// still counts the other node.
func TestRepliesSurviveKilledConnections(t *testing.T) {
	srv := startRedis(t, "it kills the nodes' connections with CLIENT KILL")
	rdb := srv.Client()
	prefix := testPrefix(t)
	a := startNode(t, srv, prefix, "a", 0)
	b := startNode(t, srv, prefix, "b", 2)
	b.SetInterest(app, "u:7", true)
	awaitSubscribers(t, rdb, a.Transport, app, "u:7", 1)
	deliver := func() (int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return a.Deliver(ctx, app, hub.Target{UserIDs: []string{"7"}}, hub.Event{Name: "e"})
	}
	for round := range 3 {
		if n, err := deliver(); err != nil || n != 2 {
			t.Fatalf("round %d: Deliver: got %d, %v; want 2", round, n, err)
		}
		killed, err := rdb.ClientKillByFilter(context.Background(), "TYPE", "normal").Result()
		if err != nil {
			t.Fatalf("CLIENT KILL: %v", err)
		}
		if killed == 0 {
			t.Fatalf("round %d: CLIENT KILL closed no connection", round)
		}
	}
	if n, err := deliver(); err != nil || n != 2 {
		t.Fatalf("after the last kill: Deliver: got %d, %v; want 2", n, err)
	}
}
