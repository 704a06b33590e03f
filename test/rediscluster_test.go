package test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

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
