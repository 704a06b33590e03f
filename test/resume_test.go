package test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// resumeConfig is a node of a Redis cluster whose channels and users keep
// history in Redis.
func resumeConfig(id, redisURL string) string {
	return fmt.Sprintf(`
node_id: %s
cluster: {transport: redis, redis_url: %q, timeout: 2s}
history: {store: redis, redis_url: %q}
apps:
  - name: demo
    auth: {mode: demo}
    api_keys: [demo-key]
    user_history: {size: 100, ttl: 10m}
    channels:
      namespaces: [{match: "*", join: public, history: {size: 100, ttl: 10m}}]
`, id, redisURL, redisURL)
}

// nextEventFrame reads frames up to the next one with an event, and the
// last id seen on the way.
func nextEventFrame(s *stream, id *string) string {
	for {
		f := s.frame()
		if v := field(f, "id"); v != "" {
			*id = v
		}
		if field(f, "event") != "" {
			return f
		}
	}
}

// A browser whose node is killed reconnects to another node with its
// Last-Event-ID and gets exactly what its channel and its user were sent
// meanwhile, in order, then live events; connect-finish says the resume
// was complete. A plain EventSource does just this by itself.
func TestResumeOnAnotherNodeAfterKill(t *testing.T) {
	redis := startRedis(t, false)
	a := startPushd(t, resumeConfig("a", redis.URL()))
	b := startPushd(t, resumeConfig("b", redis.URL()))
	s := openStream(t, a.url+"/sse/demo/connect?userId=ann&channel=news")
	var lastID string
	if f := nextEventFrame(s, &lastID); field(f, "event") != "connect-finish" {
		t.Fatalf("first frame %q", f)
	}
	send := func(to map[string]any, event string) {
		t.Helper()
		code, body := apiCall(t, b.url, http.MethodPost, "send", map[string]any{"to": to, "event": event, "data": event})
		if code != http.StatusOK || !strings.Contains(body, `"positions":[`) {
			t.Fatalf("send %s via b: %d %s", event, code, body)
		}
	}
	news, ann := map[string]any{"channels": []string{"news"}}, map[string]any{"userIds": []string{"ann"}}
	send(news, "e1")
	if f := nextEventFrame(s, &lastID); field(f, "event") != "e1" || !strings.HasPrefix(lastID, "p.") {
		t.Fatalf("live e1: %q (id %q)", f, lastID)
	}
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = a.wait()
	send(news, "e2")
	send(ann, "e3")
	send(map[string]any{"channels": []string{"news"}, "userIds": []string{"ann"}}, "e4")

	again := openStream(t, b.url+"/sse/demo/connect?userId=ann&channel=news", "Last-Event-ID", lastID)
	var id string
	if f := nextEventFrame(again, &id); !strings.Contains(f, `"resumed":true`) {
		t.Fatalf("connect-finish %q, want resumed true", f)
	}
	for _, want := range []string{"e2", "e3", "e4"} {
		if f := nextEventFrame(again, &id); field(f, "event") != want {
			t.Fatalf("replay: %q, want %s", f, want)
		}
	}
	send(news, "e5")
	if f := nextEventFrame(again, &id); field(f, "event") != "e5" {
		t.Fatalf("after the replay: %q, want the live e5", f)
	}
	// From the latest id nothing is missing: the next frame is live.
	third := openStream(t, b.url+"/sse/demo/connect?userId=ann&channel=news&lastEventId="+id)
	var id3 string
	nextEventFrame(third, &id3)
	send(ann, "e6")
	if f := nextEventFrame(third, &id3); field(f, "event") != "e6" {
		t.Fatalf("a reconnect that missed nothing got %q first, want the live e6", f)
	}
}

// Redis restarted without persistence lost the history: a reconnect is
// told which streams it cannot resume (epoch) instead of a silent loss,
// and then resumes normally from the new epoch.
func TestResumeAfterHistoryLost(t *testing.T) {
	redis := startRedis(t, false)
	n := startPushd(t, resumeConfig("a", redis.URL()))
	s := openStream(t, n.url+"/sse/demo/connect?userId=bo&channel=news")
	var lastID string
	nextEventFrame(s, &lastID)
	code, body := apiCall(t, n.url, http.MethodPost, "send", map[string]any{"to": map[string]any{"channels": []string{"news"}}, "event": "before", "data": "x"})
	if code != http.StatusOK {
		t.Fatalf("send: %d %s", code, body)
	}
	nextEventFrame(s, &lastID)
	s.close()
	redis.Restart()
	waitFor(t, 20*time.Second, func() error {
		code, body := apiCall(t, n.url, http.MethodPost, "send", map[string]any{"to": map[string]any{"channels": []string{"news"}}, "event": "after", "data": "x"})
		if code != http.StatusOK {
			return fmt.Errorf("send after the restart: %d %s", code, body)
		}
		return nil
	})
	again := openStream(t, n.url+"/sse/demo/connect?userId=bo&channel=news", "Last-Event-ID", lastID)
	var id string
	if f := nextEventFrame(again, &id); !strings.Contains(f, `"resumed":false`) {
		t.Fatalf("connect-finish %q, want resumed false", f)
	}
	f := nextEventFrame(again, &id)
	if field(f, "event") != "sse-gap" || !strings.Contains(f, `{"channel":"news","reason":"epoch"}`) || !strings.Contains(f, `{"user":"bo","reason":"epoch"}`) {
		t.Fatalf("after a history loss got %q, want sse-gap naming news and bo with reason epoch", f)
	}
	if f := nextEventFrame(again, &id); field(f, "event") != "after" {
		t.Fatalf("then %q, want what the new epoch kept (after)", f)
	}
}
