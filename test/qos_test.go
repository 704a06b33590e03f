package test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/testredis"
)

func qosConfig(redisURL string) string {
	return fmt.Sprintf(`
qos: {repository: redis, redis_url: %q, redeliver_after: 2s}
apps:
  - name: demo
    auth: {mode: demo}
    api_keys: [demo-key]
`, redisURL)
}

// backlog returns the QoS messages stored for user.
func backlog(t testing.TB, n *node, user string) int {
	t.Helper()
	code, body := apiCall(t, n.url, http.MethodGet, "messages?userId="+user, nil)
	var page struct{ Total int }
	if code != 200 || json.Unmarshal([]byte(body), &page) != nil {
		t.Fatalf("messages: %d %s", code, body)
	}
	return page.Total
}

func sendQoS(t testing.TB, n *node, user, event, data string) (string, int) {
	t.Helper()
	code, body := apiCall(t, n.url, http.MethodPost, "send", map[string]any{
		"to": map[string]any{"userIds": []string{user}}, "event": event, "data": data, "qos": true})
	var res struct {
		ID        string
		Stored    bool
		Delivered int
	}
	if code != 200 || json.Unmarshal([]byte(body), &res) != nil || !res.Stored || res.ID == "" {
		t.Fatalf("qos send: %d %s", code, body)
	}
	return res.ID, res.Delivered
}

func ack(t testing.TB, n *node, user, connID string, ids ...string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"connectionId": connID, "ids": ids})
	code, body := do(t, http.MethodPost, n.url+"/sse/demo/connect/ack.do?userId="+user, "application/json", strings.NewReader(string(b)))
	if code != 200 {
		t.Fatalf("ack.do: %d %s", code, body)
	}
}

// TestQoSSurvivesPushdRestart: a QoS message to an offline user survives a
// pushd restart, arrives with its id, and does not come again once acked.
func TestQoSSurvivesPushdRestart(t *testing.T) {
	r := startRedis(t, false)
	n := startPushd(t, qosConfig(r.URL()))
	id, delivered := sendQoS(t, n, "off", "bell", "hello")
	if delivered != 0 {
		t.Fatalf("delivered %d to an offline user", delivered)
	}
	n.stop()
	n.start()

	s := openStream(t, n.url+"/sse/demo/connect?userId=off&ack=1")
	connID := field(s.frame(), "id")
	f := s.frame()
	if f != "id:"+id+"\nevent:bell\n:resend\ndata:hello\n\n" {
		t.Fatalf("redelivery frame %q", f)
	}
	ack(t, n, "off", connID, id)
	if got := backlog(t, n, "off"); got != 0 {
		t.Errorf("backlog after ack = %d", got)
	}
	s.close()
	s2 := openStream(t, n.url+"/sse/demo/connect?userId=off&ack=1")
	s2.frame()
	if _, _ = sendQoS(t, n, "off", "marker", "m"); field(s2.frame(), "event") != "marker" {
		t.Error("the acknowledged message came again before the next one")
	}
}

// TestQoSSurvivesRedisRestart: with AOF, a stored message survives a
// redis-server crash; a send while Redis is down fails with 503 and
// stores nothing; acks made while Redis is down are retried.
func TestQoSSurvivesRedisRestart(t *testing.T) {
	r := startRedis(t, true)
	n := startPushd(t, qosConfig(r.URL()))
	id, _ := sendQoS(t, n, "aof", "bell", "kept")
	r.Restart()
	waitFor(t, 10*time.Second, func() error {
		if code, _ := do(t, http.MethodGet, n.url+"/readyz", "", nil); code != 200 {
			return fmt.Errorf("readyz %d", code)
		}
		return nil
	})
	s := openStream(t, n.url+"/sse/demo/connect?userId=aof&ack=1")
	connID := field(s.frame(), "id")
	if f := s.frame(); field(f, "id") != id || !strings.Contains(f, "data:kept") {
		t.Fatalf("after redis restart got %q", f)
	}

	r.Kill()
	code, body := apiCall(t, n.url, http.MethodPost, "send", map[string]any{
		"to": map[string]any{"userIds": []string{"aof"}}, "event": "x", "data": 1, "qos": true})
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"error"`) {
		t.Errorf("qos send with redis down: %d %s, want 503", code, body)
	}
	if code, _ := do(t, http.MethodGet, n.url+"/readyz", "", nil); code != http.StatusServiceUnavailable {
		t.Errorf("readyz with redis down: %d", code)
	}
	ack(t, n, "aof", connID, id) // fails inside, queued for retry
	r.Start()
	waitFor(t, 10*time.Second, func() error { // the store answers again
		if code, _ := do(t, http.MethodGet, n.url+"/readyz", "", nil); code != 200 {
			return fmt.Errorf("readyz %d", code)
		}
		return nil
	})
	waitFor(t, 15*time.Second, func() error {
		if got := backlog(t, n, "aof"); got != 0 {
			return fmt.Errorf("backlog %d: the ack made while redis was down was not retried", got)
		}
		return nil
	})
}

// TestQoSSeedClient: a client that cannot acknowledge (the seed's sse.js)
// has a message removed once it was written to it.
func TestQoSSeedClient(t *testing.T) {
	r := startRedis(t, false)
	n := startPushd(t, qosConfig(r.URL()))
	id, _ := sendQoS(t, n, "seed", "bell", "once")
	s := openStream(t, n.url+"/sse/demo/connect?userId=seed")
	s.frame()
	if f := s.frame(); field(f, "id") != id {
		t.Fatalf("seed client got %q", f)
	}
	waitFor(t, 5*time.Second, func() error {
		if got := backlog(t, n, "seed"); got != 0 {
			return fmt.Errorf("backlog %d after writing to a non-acking client", got)
		}
		return nil
	})
	_, delivered := sendQoS(t, n, "seed", "live", "now")
	if delivered != 1 {
		t.Errorf("live qos send delivered %d", delivered)
	}
	if f := s.frame(); field(f, "event") != "live" {
		t.Errorf("live frame %q", f)
	}
	waitFor(t, 5*time.Second, func() error {
		if got := backlog(t, n, "seed"); got != 0 {
			return fmt.Errorf("backlog %d after a live send to a non-acking client", got)
		}
		return nil
	})
}

// TestQoSRacingConnects sends 1000 QoS messages while the user connects
// and disconnects in loops: every message is received at least once.
func TestQoSRacingConnects(t *testing.T) {
	r := startRedis(t, false)
	n := startPushd(t, qosConfig(r.URL()))
	const total = 1000
	var mu sync.Mutex
	seen := map[string]int{}   // by message id, over both tabs
	perTab := map[string]int{} // by tab and message id
	connections := 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for w := range 2 { // two tabs of the same user
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				received := raceOnce(t, n, fmt.Sprintf("tab%d", w), time.Duration(20+rand.IntN(80))*time.Millisecond)
				mu.Lock()
				connections++
				for _, id := range received {
					seen[id]++
					perTab[fmt.Sprint(w)+id]++
				}
				mu.Unlock()
			}
		}()
	}
	ids := make([]string, total)
	for i := range total {
		ids[i], _ = sendQoS(t, n, "racer", "msg", fmt.Sprint(i))
	}
	waitFor(t, 60*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		missing := 0
		for _, id := range ids {
			if seen[id] == 0 {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d messages not received yet", missing, total)
		}
		return nil
	})
	cancel()
	wg.Wait()
	dups, both := 0, 0
	for _, c := range perTab {
		dups += c - 1
	}
	for _, c := range seen {
		if c > 1 {
			both++
		}
	}
	t.Logf("qos race: %d messages to one user with 2 tabs, %d connections, all received; "+
		"%d duplicate deliveries to the same tab (%.1f%%), %d messages seen by both tabs",
		total, connections, dups, 100*float64(dups)/total, both)
}

// raceOnce connects as "racer" (ack-capable), reads for d, acknowledges
// what it got and leaves; it returns the QoS ids received.
func raceOnce(t testing.TB, n *node, tab string, d time.Duration) []string {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.url+"/sse/demo/connect?userId=racer&ack=1&clientId="+tab, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var connID string
	var ids []string
	rd := bufio.NewReader(resp.Body)
	var id, event string
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			break
		}
		switch {
		case strings.HasPrefix(line, "id:"):
			id = strings.TrimSpace(line[3:])
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(line[6:])
		case line == "\n":
			if event == "connect-finish" {
				connID = id
			} else if event == "msg" {
				ids = append(ids, id)
			}
			id, event = "", ""
		}
	}
	if connID != "" && len(ids) > 0 {
		b, _ := json.Marshal(map[string]any{"connectionId": connID, "ids": ids})
		// The connection may already be gone on the server: an unknown
		// connection then answers 404 and the message stays pending.
		req, _ := http.NewRequest(http.MethodPost, n.url+"/sse/demo/connect/ack.do?userId=racer", strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	return ids
}

// TestQoSSentinelFailover runs pushd with its QoS store and the cluster
// transport behind a Redis Sentinel: when the master dies, Sentinel
// promotes the replica and pushd carries on with it, with the messages
// stored before the failover.
func TestQoSSentinelFailover(t *testing.T) {
	ctx := context.Background()
	master := startRedis(t, false)
	replica := testredis.Start(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.Port()))
	sentinel := testredis.StartSentinel(t, "pushdmaster", master)
	sc := sentinel.Client()
	waitFor(t, 30*time.Second, func() error { // Sentinel learns the replica from the master
		replicas, err := sc.Do(ctx, "SENTINEL", "REPLICAS", "pushdmaster").Slice()
		if err != nil || len(replicas) != 1 {
			return fmt.Errorf("sentinel replicas: %v %v", replicas, err)
		}
		return nil
	})

	url := "redis://" + sentinel.Addr() + "/0?master_name=pushdmaster"
	n := startPushd(t, `
node_id: n1
cluster: {transport: redis}
`+qosConfig(url), "PUSHD_REDIS_URL="+url)
	online := openStream(t, n.url+"/sse/demo/connect?userId=on")
	online.frame()
	if _, delivered := sendQoS(t, n, "on", "bell", "before"); delivered != 1 {
		t.Fatalf("QoS send before the failover: delivered %d", delivered)
	}
	if f := online.frame(); !strings.Contains(f, "data:before") {
		t.Fatalf("online user got %q", f)
	}
	storedID, _ := sendQoS(t, n, "off", "bell", "kept")
	if acked, err := master.Client().Do(ctx, "WAIT", 1, 5000).Int(); err != nil || acked != 1 {
		t.Fatalf("WAIT for the replica: %d %v", acked, err)
	}

	master.Kill()
	waitFor(t, 30*time.Second, func() error {
		addr, err := sc.Do(ctx, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "pushdmaster").StringSlice()
		if err != nil || len(addr) != 2 || addr[1] != strconv.Itoa(replica.Port()) {
			return fmt.Errorf("master is %v %v, want the replica", addr, err)
		}
		return nil
	})
	waitFor(t, 30*time.Second, func() error {
		if code, body := do(t, http.MethodGet, n.url+"/readyz", "", nil); code != 200 {
			return fmt.Errorf("readyz %d %s", code, body)
		}
		return nil
	})
	if _, delivered := sendQoS(t, n, "on", "bell", "after"); delivered != 1 {
		t.Fatalf("QoS send after the failover: delivered %d", delivered)
	}
	// A resubscribe after the failover replays what the connection has
	// not acknowledged ("before" again, marked :resend): at least once.
	f := online.frame()
	for strings.Contains(f, ":resend\ndata:before") {
		f = online.frame()
	}
	if !strings.Contains(f, "data:after") {
		t.Fatalf("online user got %q", f)
	}
	late := openStream(t, n.url+"/sse/demo/connect?userId=off")
	late.frame()
	if f := late.frame(); field(f, "id") != storedID || !strings.Contains(f, "data:kept") {
		t.Fatalf("message stored before the failover: got %q", f)
	}
}

// twoQoSNodes starts nodes n1 and n2 on the Redis transport at
// transportURL, sharing the QoS store at storeURL.
func twoQoSNodes(t *testing.T, transportURL, storeURL string) (*node, *node) {
	t.Helper()
	var nodes []*node
	for i := 1; i <= 2; i++ {
		nodes = append(nodes, startPushd(t, fmt.Sprintf(`
node_id: n%d
cluster: {transport: redis, redis_url: %q, timeout: 2s}
`, i, transportURL)+qosConfig(storeURL)))
	}
	return nodes[0], nodes[1]
}

// isOnline asks n's online endpoint about user.
func isOnline(t testing.TB, n *node, user string) bool {
	t.Helper()
	var res struct{ Online bool }
	apiJSON(t, n.url, http.MethodGet, "online?userId="+user, nil, &res)
	return res.Online
}

// TestQoSStoredOnOneNodeReplayedOnAnother: a QoS message sent through
// node A to an offline user is replayed when the user connects to node B,
// and B's acknowledgement empties the shared store.
func TestQoSStoredOnOneNodeReplayedOnAnother(t *testing.T) {
	r := startRedis(t, false)
	a, b := twoQoSNodes(t, r.URL(), r.URL())
	id, delivered := sendQoS(t, a, "roamer", "bell", "via-a")
	if delivered != 0 {
		t.Fatalf("delivered %d to an offline user", delivered)
	}
	if isOnline(t, b, "roamer") {
		t.Fatal("roamer online before connecting")
	}
	s := openStream(t, b.url+"/sse/demo/connect?userId=roamer&ack=1")
	connID := field(s.frame(), "id")
	if f := s.frame(); f != "id:"+id+"\nevent:bell\n:resend\ndata:via-a\n\n" {
		t.Fatalf("on node B got %q, want the message stored via A", f)
	}
	if !isOnline(t, a, "roamer") {
		t.Error("node A does not see roamer online on node B")
	}
	ack(t, b, "roamer", connID, id)
	if got := backlog(t, a, "roamer"); got != 0 {
		t.Errorf("backlog seen by A after B's ack = %d", got)
	}
}

var resubscribesRe = regexp.MustCompile(`(?m)^pushd_cluster_redis_resubscribes_total (\d+)`)

// TestQoSReplayAfterTransportResubscribe: the cluster transport's Redis
// dies while a user is connected to node A; a QoS message sent through
// node B meanwhile is stored but cannot cross; once that Redis is back, A
// resubscribes and re-reads its connections' inboxes, so the message
// arrives as a resend.
func TestQoSReplayAfterTransportResubscribe(t *testing.T) {
	store, bus := startRedis(t, false), startRedis(t, false)
	a, b := twoQoSNodes(t, bus.URL(), store.URL())
	s := openStream(t, a.url+"/sse/demo/connect?userId=steady&ack=1")
	connID := field(s.frame(), "id")
	waitFor(t, 10*time.Second, func() error { // B sees the user through the transport
		if !isOnline(t, b, "steady") {
			return fmt.Errorf("node B does not see steady online")
		}
		return nil
	})

	bus.Kill()
	id, delivered := sendQoS(t, b, "steady", "bell", "while-down")
	if delivered != 0 {
		t.Fatalf("delivered %d across a dead transport", delivered)
	}
	bus.Start()
	f := s.frame()
	if field(f, "id") != id || !strings.Contains(f, "\n:resend\n") || !strings.Contains(f, "data:while-down") {
		t.Fatalf("after the resubscribe node A wrote %q, want the stored message as a resend", f)
	}
	m := resubscribesRe.FindStringSubmatch(doOK(t, http.MethodGet, a.url+"/metrics", "", nil))
	if m == nil || m[1] == "0" {
		t.Errorf("node A's /metrics counts no resubscribe: %v", m)
	}
	ack(t, a, "steady", connID, id)
	if got := backlog(t, b, "steady"); got != 0 {
		t.Errorf("backlog after the ack = %d", got)
	}
}
