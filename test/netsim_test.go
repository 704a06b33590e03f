package test

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/pushd/pushd/internal/netsim"
	"github.com/pushd/pushd/internal/syncbuf"
	"github.com/pushd/pushd/internal/testredis"
)

// The tests of this file run pushd on simulated hosts (internal/netsim):
// redis-server, pushd nodes a and b and the test's client each on a host
// of its own, 1 ms apart where the kernel has netem. They skip where the
// machine has no network namespaces (not root).

// readyBound is how soon /readyz must go false once a node loses Redis
// silently. /readyz gives its pings a 2 s deadline (cmd/pushd/routes.go),
// but go-redis does not honour context deadlines unless
// ContextTimeoutEnabled is set (pushd does not set it), so a ping on a
// connection that no longer answers waits for go-redis's read timeout,
// 5 s by default; the rest is polling.
const readyBound = 6 * time.Second

// simCluster is the simulated cluster.
type simCluster struct {
	net             *netsim.Network
	redis, client   *netsim.Host
	redisURL        string
	a, b            *simNode
	api, streams    *http.Client // from the client host; api with a deadline
	latencyNote     string
	readyzCheckTime time.Duration // a /readyz may take up to this
}

// simNode is a pushd process on its own host.
type simNode struct {
	name string
	host *netsim.Host
	url  string
}

// simOptions adjust the nodes' configuration.
type simOptions struct {
	shedAfter string // cluster.shed_after
	http      string // the http section's keys, e.g. "tcp_user_timeout: 3s"
	app       string // more keys of the demo app, e.g. "heartbeat: 1s"
}

// startSimCluster starts the hosts, redis-server and nodes a and b.
func startSimCluster(t *testing.T, o simOptions) *simCluster {
	t.Helper()
	n := netsim.New(t)
	c := &simCluster{net: n, redis: n.AddHost("redis"), client: n.AddHost("client"), readyzCheckTime: 10 * time.Second}
	ha, hb := n.AddHost("a"), n.AddHost("b")
	switch err := n.SetLatency(time.Millisecond); {
	case errors.Is(err, netsim.ErrNoNetem):
		c.latencyNote = "without the 1 ms latency (this kernel has no netem)"
		t.Logf("running %s: %v", c.latencyNote, err)
	case err != nil:
		t.Fatal(err)
	default:
		c.latencyNote = "with 1 ms latency out of every host"
	}
	c.api = c.client.HTTPClient()
	c.api.Timeout = 30 * time.Second
	c.streams = c.client.HTTPClient()
	c.redisURL = startSimRedis(t, c.redis, c.client)
	c.a = c.startNode(t, "a", ha, o)
	c.b = c.startNode(t, "b", hb, o)
	return c
}

// startSimRedis runs redis-server on host h, listening on its address,
// and returns its URL once it answers a PING from host from.
func startSimRedis(t *testing.T, h, from *netsim.Host) string {
	t.Helper()
	bin := testredis.Binary(t)
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncbuf.Buffer{}
	cmd := h.Command(ctx, bin, "--bind", h.IP.String(), "--port", "6379", "--protected-mode", "no",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("redis-server output:\n%s", out.String())
		}
	})
	client := goredis.NewClient(&goredis.Options{Addr: h.Addr(6379), Dialer: from.DialContext, MaxRetries: -1})
	defer client.Close()
	waitFor(t, 15*time.Second, func() error {
		pctx, pcancel := context.WithTimeout(context.Background(), time.Second)
		defer pcancel()
		return client.Ping(pctx).Err()
	})
	return "redis://" + h.Addr(6379) + "/0"
}

// startNode runs pushd node name on host h, on the Redis transport and
// QoS store, and waits until it is ready.
func (c *simCluster) startNode(t *testing.T, name string, h *netsim.Host, o simOptions) *simNode {
	t.Helper()
	cfg := fmt.Sprintf(`
node_id: %s
cluster: {transport: redis, redis_url: %q, timeout: 2s, shed_after: %s}
shutdown: {drain_window: 1s}
http: {%s}
`, name, c.redisURL, cmp.Or(o.shedAfter, "-1s"), o.http) + qosConfig(c.redisURL)
	if o.app != "" {
		cfg += "    " + o.app + "\n"
	}
	f := filepath.Join(t.TempDir(), "pushd.yaml")
	if err := os.WriteFile(f, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncbuf.Buffer{}
	cmd := h.Command(ctx, pushdBin, "--config", f)
	cmd.Env = append(os.Environ(), "PUSHD_LISTEN="+h.Addr(8080), "PUSHD_LOG_LEVEL=debug")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("pushd %s output:\n%s", name, out.String())
		}
	})
	n := &simNode{name: name, host: h, url: "http://" + h.Addr(8080)}
	waitFor(t, 20*time.Second, func() error {
		if code, body := c.readyz(n); code != http.StatusOK {
			return fmt.Errorf("pushd %s readyz %d %s", name, code, body)
		}
		return nil
	})
	return n
}

// readyz asks n's /readyz from the client host (0 when unanswered).
func (c *simCluster) readyz(n *simNode) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), c.readyzCheckTime)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.url+"/readyz", nil)
	resp, err := c.api.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// untilReady polls n's /readyz until it answers want and returns how long
// that took from since.
func (c *simCluster) untilReady(t *testing.T, n *simNode, want int, since time.Time, within time.Duration) time.Duration {
	t.Helper()
	waitFor(t, within, func() error {
		if code, body := c.readyz(n); code != want {
			return fmt.Errorf("node %s readyz %d %s, want %d", n.name, code, body, want)
		}
		return nil
	})
	return time.Since(since)
}

// resubscribes is n's count of Redis transport resubscriptions.
func (c *simCluster) resubscribes(t *testing.T, n *simNode) string {
	t.Helper()
	resp, err := c.api.Get(n.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := resubscribesRe.FindStringSubmatch(string(b))
	if m == nil {
		t.Fatalf("node %s's /metrics has no resubscribe counter", n.name)
	}
	return m[1]
}

// sendOutcome is a send's answer as the client saw it.
type sendOutcome struct {
	via       string
	user      string
	code      int // 0: no answer (err)
	err       error
	stored    bool
	delivered int
	id        string
	took      time.Duration
}

// send posts a send to user through n (qos or not).
func (c *simCluster) send(n *simNode, user, data string, qos bool) sendOutcome {
	b, _ := json.Marshal(map[string]any{"to": map[string]any{"userIds": []string{user}}, "event": "msg", "data": data, "qos": qos})
	req, _ := http.NewRequest(http.MethodPost, n.url+"/api/v1/apps/demo/send", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer demo-key")
	start := time.Now()
	o := sendOutcome{via: n.name, user: user}
	resp, err := c.api.Do(req)
	o.took = time.Since(start)
	if err != nil {
		o.err = err
		return o
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	o.code = resp.StatusCode
	var res struct {
		ID        string
		Stored    bool
		Delivered int
	}
	if o.code == http.StatusOK {
		if err := json.Unmarshal(body, &res); err != nil {
			o.err = fmt.Errorf("send answer %s: %w", body, err)
		}
	} else if !strings.Contains(string(body), `"error"`) {
		o.err = fmt.Errorf("send answered %d without an error body: %s", o.code, body)
	}
	o.id, o.stored, o.delivered = res.ID, res.Stored, res.Delivered
	return o
}

// String is the outcome for a log line.
func (o sendOutcome) String() string {
	if o.err != nil {
		return fmt.Sprintf("via %s: %v after %v", o.via, o.err, o.took.Round(time.Millisecond))
	}
	return fmt.Sprintf("via %s: %d stored=%v delivered=%d after %v", o.via, o.code, o.stored, o.delivered, o.took.Round(time.Millisecond))
}

// tally checks that every QoS send was answered 503 or 200 and stored,
// and returns the ids answered stored.
func tally(t *testing.T, what string, outcomes []sendOutcome) map[string]bool {
	t.Helper()
	stored := map[string]bool{}
	var n503 int
	var slowest time.Duration
	for _, o := range outcomes {
		slowest = max(slowest, o.took)
		switch {
		case o.err != nil:
			t.Errorf("%s: a QoS send got no proper answer: %s", what, o)
		case o.code == http.StatusOK && o.stored && o.id != "":
			stored[o.id] = true
		case o.code == http.StatusServiceUnavailable:
			n503++
		default:
			t.Errorf("%s: a QoS send was answered neither 503 nor 200-and-stored: %s", what, o)
		}
	}
	t.Logf("%s: %d QoS sends, %d answered 200 and stored, %d answered 503; slowest answer %v",
		what, len(outcomes), len(stored), n503, slowest.Round(time.Millisecond))
	return stored
}

// feed is an SSE stream from the client host whose frames are collected
// as they come.
type feed struct {
	mu     sync.Mutex
	frames []string
	ended  bool
	stop   context.CancelFunc
}

// follow connects to url from the client host and collects its frames;
// it returns once the first frame (connect-finish) is in.
func (c *simCluster) follow(t *testing.T, url string) *feed {
	t.Helper()
	return followWith(t, c.streams, url)
}

// followWith connects to url with client and collects its frames; it
// returns once the first frame (connect-finish) is in.
func followWith(t *testing.T, client *http.Client, url string) *feed {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &feed{stop: cancel}
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer resp.Body.Close()
		r := bufio.NewReader(resp.Body)
		var b strings.Builder
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				f.mu.Lock()
				f.ended = true
				f.mu.Unlock()
				return
			}
			if line == ":\n" && b.Len() == 0 {
				continue
			}
			b.WriteString(line)
			if line == "\n" {
				f.mu.Lock()
				f.frames = append(f.frames, b.String())
				f.mu.Unlock()
				b.Reset()
			}
		}
	}()
	waitFor(t, 10*time.Second, func() error {
		if f.count("connect-finish") == 0 {
			return errors.New("no connect-finish")
		}
		return nil
	})
	return f
}

// count is how many frames of event came.
func (f *feed) count(event string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, fr := range f.frames {
		if field(fr, "event") == event {
			n++
		}
	}
	return n
}

// has reports whether a frame with data came.
func (f *feed) has(data string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fr := range f.frames {
		if field(fr, "data") == data {
			return true
		}
	}
	return false
}

// missing returns the ids of want that no frame carried.
func (f *feed) missing(want map[string]bool) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	got := map[string]bool{}
	for _, fr := range f.frames {
		got[field(fr, "id")] = true
	}
	var miss []string
	for id := range want {
		if !got[id] {
			miss = append(miss, id)
		}
	}
	return miss
}

// isEnded reports whether the stream has ended, and whether a retry: hint
// came before.
func (f *feed) isEnded() (ended, retryHint bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fr := range f.frames {
		retryHint = retryHint || strings.HasPrefix(fr, "retry:") || strings.Contains(fr, "\nretry:")
	}
	return f.ended, retryHint
}

// untilRouted sends (non-QoS) to user through n until one is delivered
// and arrives, and returns how long that took from since.
func (c *simCluster) untilRouted(t *testing.T, n *simNode, user string, f *feed, since time.Time, within time.Duration) time.Duration {
	t.Helper()
	i := 0
	waitFor(t, within, func() error {
		i++
		data := fmt.Sprintf("probe-%s-%d", n.name, i)
		if o := c.send(n, user, data, false); o.err != nil || o.code != http.StatusOK || o.delivered != 1 {
			return fmt.Errorf("send to %s: %s", user, o)
		}
		deadline := time.Now().Add(2 * time.Second)
		for !f.has(data) {
			if time.Now().After(deadline) {
				return fmt.Errorf("send to %s delivered but not received", user)
			}
			time.Sleep(5 * time.Millisecond) // polling the feed
		}
		return nil
	})
	return time.Since(since)
}

// untilReplayed waits until f has carried every id of want.
func untilReplayed(t *testing.T, f *feed, want map[string]bool, since time.Time, within time.Duration) time.Duration {
	t.Helper()
	waitFor(t, within, func() error {
		if miss := f.missing(want); len(miss) > 0 {
			return fmt.Errorf("%d of %d messages answered 200-and-stored never arrived: %v", len(miss), len(want), miss)
		}
		return nil
	})
	return time.Since(since)
}

// TestNetsimNodeCutFromRedis cuts node a off from the Redis host only:
// its browsers still reach it. Its /readyz goes false within readyBound,
// QoS sends through b are answered 200 only if stored, and after the
// mend routing converges and what was stored reaches the user on a.
func TestNetsimNodeCutFromRedis(t *testing.T) {
	c := startSimCluster(t, simOptions{shedAfter: "2s"})
	user := c.follow(t, c.a.url+"/sse/demo/connect?userId=cut")
	c.untilRouted(t, c.b, "cut", user, time.Now(), 10*time.Second)

	cut := time.Now()
	c.net.Cut(c.a.host, c.redis)
	// A QoS send through a itself, answered whenever a gets to Redis
	// again or gives up.
	viaA := make(chan sendOutcome, 1)
	go func() { viaA <- c.send(c.a, "cut", "during-cut-via-a", true) }()
	notReady := c.untilReady(t, c.a, http.StatusServiceUnavailable, cut, readyBound+c.readyzCheckTime)
	t.Logf("a cut off from Redis (%s): /readyz false after %v (bound %v)", c.latencyNote, notReady.Round(time.Millisecond), readyBound)
	if notReady > readyBound {
		t.Errorf("a's /readyz went false %v after the cut, beyond %v", notReady.Round(time.Millisecond), readyBound)
	}

	var outcomes []sendOutcome
	for i := range 4 {
		outcomes = append(outcomes, c.send(c.b, "cut", fmt.Sprint("during-cut-", i), true))
	}
	for _, o := range outcomes {
		t.Logf("during the cut: %s", o)
	}
	stored := tally(t, "a cut off from Redis, sends through b", outcomes)

	t.Run("a closes its streams with a retry hint", func(t *testing.T) {
		// shed_after 2 s of unready checks (each ping bounded by 2 s), then
		// the streams close over drain_window 1 s.
		deadline := time.Now().Add(15 * time.Second)
		for {
			ended, hint := user.isEnded()
			if ended {
				if !hint {
					t.Errorf("a closed the stream %v after the cut without a retry: hint", time.Since(cut).Round(time.Millisecond))
				}
				t.Logf("a closed its browser's stream with a retry: hint, seen %v after the cut (shed_after 2s)", time.Since(cut).Round(time.Millisecond))
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%v after losing Redis, node a still holds its browsers' streams "+
					"(no close with a retry hint after cluster.shed_after, so they do not move to a node that has Redis)", time.Since(cut).Round(time.Second))
			}
			time.Sleep(10 * time.Millisecond) // polling the feed
		}
	})

	if ended, _ := user.isEnded(); ended {
		// As a browser does after the hint: back on a node that has Redis,
		// where the stored messages are replayed.
		user = c.follow(t, c.b.url+"/sse/demo/connect?userId=cut")
	}
	mend := time.Now()
	c.net.Mend(c.a.host, c.redis)
	ready := c.untilReady(t, c.a, http.StatusOK, mend, 20*time.Second)
	o := <-viaA
	t.Logf("the QoS send through a begun at the cut: %s (%v after the mend)", o, time.Since(mend).Round(time.Millisecond))
	for id := range tally(t, "a cut off from Redis, the send through a", []sendOutcome{o}) {
		stored[id] = true
	}
	replayed := untilReplayed(t, user, stored, mend, 20*time.Second)
	routed := c.untilRouted(t, c.b, "cut", user, mend, 20*time.Second)
	if got := c.resubscribes(t, c.a); got == "0" {
		t.Error("a never resubscribed: the cut did not break its subscription")
	}
	t.Logf("a mended with Redis: /readyz true after %v, the %d stored messages on a's stream after %v, a send through b delivered after %v",
		ready.Round(time.Millisecond), len(stored), replayed.Round(time.Millisecond), routed.Round(time.Millisecond))
}

// TestNetsimRedisUnreachable takes the Redis host off the network for
// 10 s while QoS sends go through both nodes: each is answered 503 or 200
// and stored, and every one answered 200 reaches the user when it
// connects afterwards.
func TestNetsimRedisUnreachable(t *testing.T) {
	c := startSimCluster(t, simOptions{})
	steady := c.follow(t, c.a.url+"/sse/demo/connect?userId=steady")
	c.untilRouted(t, c.b, "steady", steady, time.Now(), 10*time.Second)

	stop := make(chan struct{})
	var mu sync.Mutex
	var outcomes []sendOutcome
	var wg sync.WaitGroup
	for _, n := range []*simNode{c.a, c.b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				o := c.send(n, "later", fmt.Sprintf("via-%s-%d", n.name, i), true)
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
				time.Sleep(100 * time.Millisecond) // pacing the sends, not synchronisation
			}
		}()
	}
	time.Sleep(time.Second) // sends before the outage
	down := time.Now()
	c.redis.Partition()
	time.Sleep(10 * time.Second) // the outage
	c.redis.Heal()
	healed := time.Now()
	time.Sleep(2 * time.Second) // sends after the outage
	close(stop)
	wg.Wait()
	t.Logf("Redis unreachable for %v (%s)", healed.Sub(down).Round(time.Millisecond), c.latencyNote)
	stored := tally(t, "Redis unreachable", outcomes)

	readyA := c.untilReady(t, c.a, http.StatusOK, healed, 20*time.Second)
	readyB := c.untilReady(t, c.b, http.StatusOK, healed, 20*time.Second)
	routed := c.untilRouted(t, c.b, "steady", steady, healed, 20*time.Second)
	later := c.follow(t, c.b.url+"/sse/demo/connect?userId=later")
	untilReplayed(t, later, stored, time.Now(), 20*time.Second)
	t.Logf("after the heal: /readyz true on a after %v, on b after %v; a send through b reached the user on a after %v; "+
		"all %d messages answered 200 replayed to the user (%d frames)",
		readyA.Round(time.Millisecond), readyB.Round(time.Millisecond), routed.Round(time.Millisecond), len(stored), later.count("msg"))
}

// TestNetsimPartitionHeals takes node a off the network (Redis, b and its
// browsers alike) for 8 s, longer than the Redis transport needs to find
// its subscription lost, and measures how soon routing and subscriptions
// converge after the heal.
func TestNetsimPartitionHeals(t *testing.T) {
	c := startSimCluster(t, simOptions{})
	onA := c.follow(t, c.a.url+"/sse/demo/connect?userId=ona")
	onB := c.follow(t, c.b.url+"/sse/demo/connect?userId=onb")
	c.untilRouted(t, c.b, "ona", onA, time.Now(), 10*time.Second)
	c.untilRouted(t, c.a, "onb", onB, time.Now(), 10*time.Second)

	c.a.host.Partition()
	var outcomes []sendOutcome
	partitioned := time.Now()
	for time.Since(partitioned) < 8*time.Second {
		outcomes = append(outcomes, c.send(c.b, "ona", fmt.Sprint("during-partition-", len(outcomes)), true))
	}
	stored := tally(t, "a partitioned", outcomes)
	healed := time.Now()
	c.a.host.Heal()

	ready := c.untilReady(t, c.a, http.StatusOK, healed, 20*time.Second)
	toA := c.untilRouted(t, c.b, "ona", onA, healed, 20*time.Second)
	toB := c.untilRouted(t, c.a, "onb", onB, healed, 20*time.Second)
	replayed := untilReplayed(t, onA, stored, healed, 20*time.Second)
	fresh := c.follow(t, c.a.url+"/sse/demo/connect?userId=fresh")
	newConn := c.untilRouted(t, c.b, "fresh", fresh, time.Now(), 10*time.Second)
	if got := c.resubscribes(t, c.a); got == "0" {
		t.Error("a never resubscribed: the partition did not break its subscription")
	}
	if ended, _ := onA.isEnded(); ended {
		t.Error("the stream to a ended across the partition")
	}
	t.Logf("a partitioned for %v (%s) and healed: /readyz true after %v; b→user on a after %v, a→user on b after %v; "+
		"the %d messages stored during the partition on a's stream after %v; a new connection on a reached from b in %v",
		healed.Sub(partitioned).Round(time.Millisecond), c.latencyNote, ready.Round(time.Millisecond), toA.Round(time.Millisecond),
		toB.Round(time.Millisecond), len(stored), replayed.Round(time.Millisecond), newConn.Round(time.Millisecond))
}

// A host cut off from its clients: the browser's node notices the dead
// peer at its next heartbeat plus http.tcp_user_timeout (no FIN ever
// comes), closes the stream, and the user is offline cluster-wide.
func TestNetsimClientsCutOff(t *testing.T) {
	c := startSimCluster(t, simOptions{http: "tcp_user_timeout: 3s", app: "heartbeat: 1s"})
	c.follow(t, c.a.url+"/sse/demo/connect?userId=gone")
	fromB := c.b.host.HTTPClient()
	online := func() (bool, error) {
		req, _ := http.NewRequest(http.MethodGet, c.b.url+"/api/v1/apps/demo/online?userId=gone", nil)
		req.Header.Set("Authorization", "Bearer demo-key")
		resp, err := fromB.Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		var ans struct{ Online bool }
		if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("online: %d %v", resp.StatusCode, err)
		}
		return ans.Online, nil
	}
	if on, err := online(); !on || err != nil {
		t.Fatalf("before the cut the user is online: %v %v", on, err)
	}
	cut := time.Now()
	c.client.Partition()
	waitFor(t, 30*time.Second, func() error {
		on, err := online()
		if err != nil {
			return err
		}
		if on {
			return errors.New("still online")
		}
		return nil
	})
	took := time.Since(cut)
	t.Logf("the client host cut off: the user offline cluster-wide after %v (heartbeat 1 s + tcp_user_timeout 3 s)", took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("the dead peer was noticed after %v, want within heartbeat + tcp_user_timeout + a sweep (~5 s)", took)
	}
}
