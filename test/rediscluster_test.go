package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/testredis"
)

// pushd with its QoS and history stores on a real Redis Cluster (3
// masters, 3 replicas; the transport stays single-node: sharded pub/sub is
// not done yet): a QoS message survives a pushd restart and a reconnect
// resumes its channel, each from keys the cluster spreads by hash tag.
func TestStoresOnRedisCluster(t *testing.T) {
	rc := testredis.StartCluster(t)
	config := fmt.Sprintf(`
qos: {repository: redis, redis_url: %q}
history: {store: redis, redis_url: %q}
apps:
  - name: demo
    auth: {mode: demo}
    api_keys: [demo-key]
    channels:
      namespaces: [{match: "*", join: public, history: {size: 100, ttl: 10m}}]
`, rc.URL(), rc.URL())
	n := startPushd(t, config)
	// ack=1: a QoS message the closing stream may still take stays stored
	// until acknowledged.
	s := openStream(t, n.url+"/sse/demo/connect?userId=zoe&ack=1&channel=news")
	var lastID string
	nextEventFrame(s, &lastID)
	code, body := apiCall(t, n.url, http.MethodPost, "send", map[string]any{"to": map[string]any{"channels": []string{"news"}}, "event": "live", "data": "1"})
	if code != http.StatusOK || !strings.Contains(body, `"positions"`) {
		t.Fatalf("send: %d %s", code, body)
	}
	nextEventFrame(s, &lastID)
	s.close()
	code, body = apiCall(t, n.url, http.MethodPost, "send", map[string]any{"to": map[string]any{"userIds": []string{"zoe"}}, "event": "kept", "data": "q", "qos": true})
	if code != http.StatusOK || !strings.Contains(body, `"stored":true`) {
		t.Fatalf("qos send: %d %s", code, body)
	}
	code, body = apiCall(t, n.url, http.MethodPost, "send", map[string]any{"to": map[string]any{"channels": []string{"news"}}, "event": "missed", "data": "2"})
	if code != http.StatusOK {
		t.Fatalf("send: %d %s", code, body)
	}
	n.stop()
	n.start()
	again := openStream(t, n.url+"/sse/demo/connect?userId=zoe&ack=1&channel=news", "Last-Event-ID", lastID)
	var id string
	t.Log("reconnecting")
	if f := nextEventFrame(again, &id); !strings.Contains(f, `"resumed":true`) {
		t.Fatalf("connect-finish %q, want resumed true", f)
	}
	got := map[string]bool{}
	for range 2 {
		f := nextEventFrame(again, &id)
		t.Logf("after the restart: %q", f)
		got[field(f, "event")] = true
	}
	if !got["missed"] || !got["kept"] {
		t.Fatalf("after the restart got %v, want the missed channel event and the QoS message", got)
	}
}

// clusterNodeConfig is a pushd node id on the Redis (Cluster) at url, for
// the transport and the QoS store, with the demo app.
func clusterNodeConfig(id, url string) string {
	return fmt.Sprintf(`
node_id: %s
cluster: {transport: redis, redis_url: %q, timeout: 2s}
qos: {repository: redis, redis_url: %q}
apps:
  - name: demo
    auth: {mode: demo}
    api_keys: [demo-key]
`, id, url, url)
}

// Two pushd nodes on a real Redis Cluster (sharded pub/sub transport, QoS
// store): a send through b reaches a connection on a; the master that owns
// the connection's routing key is SIGKILLed mid-traffic — routing recovers
// (the time is logged) and every QoS send answered 200 reaches the user:
// zero loss.
func TestTransportOnRedisClusterMasterKilled(t *testing.T) {
	rc := testredis.StartCluster(t)
	a, b := startPushd(t, clusterNodeConfig("a", rc.URL())), startPushd(t, clusterNodeConfig("b", rc.URL()))
	s := openStream(t, a.url+"/sse/demo/connect?userId=zoe&ack=1")
	s.frame()
	type answer struct {
		Delivered int
		Stored    bool
		ID        string
	}
	send := func(qos bool, data string) (int, answer) {
		code, body := apiCall(t, b.url, http.MethodPost, "send", map[string]any{
			"to": map[string]any{"userIds": []string{"zoe"}}, "event": "e", "data": data, "qos": qos})
		var ans answer
		if code == http.StatusOK && json.Unmarshal([]byte(body), &ans) != nil {
			t.Fatalf("send answer %s", body)
		}
		return code, ans
	}
	if code, ans := send(false, "first"); code != http.StatusOK || ans.Delivered != 1 {
		t.Fatalf("a send through b before the kill: %d %+v, want delivered 1", code, ans)
	}

	rc.KillMaster("pushd:demo:u:zoe")
	killed := time.Now()
	stored := map[string]bool{}
	var recovered time.Duration
	tick := time.NewTicker(100 * time.Millisecond) // the traffic's pace
	defer tick.Stop()
	for i := 0; recovered == 0 || time.Since(killed) < recovered+2*time.Second; i++ {
		if time.Since(killed) > 45*time.Second {
			t.Fatalf("routing not back 45 s after the kill (%d QoS messages stored)", len(stored))
		}
		<-tick.C
		code, ans := send(true, fmt.Sprint("m", i))
		switch {
		case code == http.StatusOK && ans.Stored:
			stored[ans.ID] = true
			if ans.Delivered == 1 && recovered == 0 && time.Since(killed) > time.Second {
				recovered = time.Since(killed)
			}
		case code != http.StatusServiceUnavailable:
			t.Fatalf("QoS send during the failover: %d %+v, want 200 and stored, or 503", code, ans)
		}
	}
	t.Logf("routing recovered %v after the master's SIGKILL; %d QoS messages answered 200 and stored", recovered.Round(time.Millisecond), len(stored))

	// Nothing was acknowledged: a reconnect replays every stored message.
	s.close()
	again := openStream(t, a.url+"/sse/demo/connect?userId=zoe&ack=1")
	again.frame()
	for missing := len(stored); missing > 0; {
		id := field(again.frame(), "id")
		if stored[id] {
			delete(stored, id)
			missing--
		}
	}
}
