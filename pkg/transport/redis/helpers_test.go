package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/pushd/pushd/internal/await"
	"github.com/pushd/pushd/internal/testredis"
	"github.com/pushd/pushd/pkg/hub"
)

// startRedis starts a private redis-server for a test that needs the real
// one, stopped at the end of the test; why says what for, in the message
// of the skip where redis-server is not installed.
func startRedis(tb testing.TB, why string) *testredis.Server {
	tb.Helper()
	testredis.Require(tb, why)
	return testredis.Start(tb)
}

// commandCalls returns how often the server ran cmd (INFO commandstats).
func commandCalls(tb testing.TB, c *goredis.Client, cmd string) int {
	tb.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		tb.Fatalf("INFO commandstats: %v", err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":calls=")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
		if err != nil {
			tb.Fatalf("parse %q: %v", line, err)
		}
		return n
	}
	return 0
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	await.True(tb, timeout, what, cond)
}

// fakeHandler is a hub.Handler that answers with fixed numbers and counts
// its calls.
type fakeHandler struct {
	name        string
	connections int // HandleDeliver's answer
	hang        chan struct{}
	blockOnCtx  bool // HandleDeliver returns only when its ctx ends

	deliveries atomic.Int64
	surveys    atomic.Int64

	mu      sync.Mutex
	targets []hub.Target
	events  []hub.Event
}

func (h *fakeHandler) HandleDeliver(ctx context.Context, app string, t hub.Target, ev hub.Event) int {
	h.deliveries.Add(1)
	h.mu.Lock()
	h.targets = append(h.targets, t)
	h.events = append(h.events, ev)
	h.mu.Unlock()
	if h.hang != nil {
		<-h.hang // ignores ctx on purpose
	}
	if h.blockOnCtx {
		<-ctx.Done()
	}
	return h.connections
}

func (h *fakeHandler) HandleSurvey(ctx context.Context, app string, req hub.Request) (hub.Reply, error) {
	h.surveys.Add(1)
	if req.Op == "fail" {
		return hub.Reply{}, errors.New("fake failure")
	}
	data, _ := json.Marshal(map[string]any{"node": h.name, "app": app, "op": req.Op})
	return hub.Reply{Count: h.connections, Data: data}, nil
}

// node is a running Transport with its fake handler.
type node struct {
	*Transport
	h *fakeHandler
}

// testPrefix returns a channel prefix unique to the test.
func testPrefix(tb testing.TB) string {
	return fmt.Sprintf("test%d.%d", time.Now().UnixNano(), prefixSeq.Add(1))
}

var prefixSeq atomic.Int64

// startNode creates a Transport on srv with the given prefix, runs it with
// a fakeHandler answering connections, and waits until it is ready. It is
// closed at the end of the test (and Run's result checked).
func startNode(tb testing.TB, srv testredis.Redis, prefix, id string, connections int, mod ...func(*Config)) *node {
	tb.Helper()
	return startNodeURL(tb, srv.URL(), prefix, id, connections, mod...)
}

// startNodeURL is startNode on the Redis (or Redis Cluster) of url.
func startNodeURL(tb testing.TB, url, prefix, id string, connections int, mod ...func(*Config)) *node {
	tb.Helper()
	cfg := Config{URL: url, Prefix: prefix, NodeID: id, Logger: testLogger(tb)}
	for _, m := range mod {
		m(&cfg)
	}
	tr, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	h := &fakeHandler{name: id, connections: connections}
	runErr := make(chan error, 1)
	go func() { runErr <- tr.Run(context.Background(), h) }()
	tb.Cleanup(func() {
		if err := tr.Close(); err != nil {
			tb.Errorf("Close %s: %v", id, err)
		}
		if err := <-runErr; err != nil {
			tb.Errorf("Run %s: %v", id, err)
		}
	})
	awaitReady(tb, tr)
	return &node{Transport: tr, h: h}
}

// awaitReady waits until tr's subscription is established.
func awaitReady(tb testing.TB, tr *Transport) {
	tb.Helper()
	waitFor(tb, 15*time.Second, "transport "+tr.cfg.NodeID+" ready", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return tr.Ready(ctx) == nil
	})
}

// awaitSubscribers waits until Redis counts n subscribers of app's key.
func awaitSubscribers(tb testing.TB, c *goredis.Client, tr *Transport, app, key string, n int64) {
	tb.Helper()
	ch := tr.channel(app, key)
	waitFor(tb, 10*time.Second, fmt.Sprintf("%d subscribers of %s", n, ch), func() bool {
		got, err := c.PubSubNumSub(context.Background(), ch).Result()
		return err == nil && got[ch] == n
	})
}

// testLogger logs warnings and errors to the test's log (shown on failure).
func testLogger(tb testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(tb)).Level(zerolog.WarnLevel)
}
