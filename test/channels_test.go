package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/pkg/signature"
	"github.com/pushd/pushd/pkg/upstream"
)

// presenceOf decodes an sse-presence frame's data.
func presenceOf(t *testing.T, frame string) (channel, action, user string) {
	t.Helper()
	if ev := field(frame, "event"); ev != "sse-presence" {
		t.Fatalf("frame %q, want an sse-presence event", frame)
	}
	var d struct{ Channel, Action, UserID, ConnectionID string }
	if err := json.Unmarshal([]byte(field(frame, "data")), &d); err != nil {
		t.Fatalf("presence data of %q: %v", frame, err)
	}
	if d.ConnectionID != "" || strings.Contains(frame, "connectionId") {
		t.Fatalf("presence event %q shows a connection id (a credential)", frame)
	}
	return d.Channel, d.Action, d.UserID
}

// A channel of a namespace with presence tells its subscribers who joins
// and leaves, through a real pushd; one without presence stays quiet; a
// channel in a server-only namespace cannot be joined from the browser,
// and the seed's channel= under a public namespace still works.
func TestChannelPresenceAndPolicy(t *testing.T) {
	n := startPushd(t, `
apps:
  - name: demo
    auth: {mode: demo}
    api_keys: [demo-key]
    channels:
      namespaces:
        - {prefix: "room.", join: public, presence: true}
        - {prefix: "ops.", join: server}
        - {match: "*", join: public}
`)
	base := n.url + "/sse/demo/connect?"
	watcher := openStream(t, base+"userId=ann&channel=room.1")
	watcher.frame() // connect-finish
	if ch, action, user := presenceOf(t, watcher.frame()); ch != "room.1" || action != "join" || user != "ann" {
		t.Fatalf("own join: %s %s %s", ch, action, user)
	}
	bob := openStream(t, base+"userId=bob&channels=room.1,lobby")
	bob.frame()
	if ch, action, user := presenceOf(t, watcher.frame()); ch != "room.1" || action != "join" || user != "bob" {
		t.Fatalf("bob's join: %s %s %s", ch, action, user)
	}
	bob.close()
	if ch, action, user := presenceOf(t, watcher.frame()); ch != "room.1" || action != "leave" || user != "bob" {
		t.Fatalf("bob's leave: %s %s %s", ch, action, user)
	}
	code, body := do(t, http.MethodGet, base+"userId=eve&channel=ops.pager", "", nil)
	if code != http.StatusForbidden || !strings.Contains(body, "ops.pager") {
		t.Fatalf("joining a server-only channel from the browser: %d %s", code, body)
	}
	// The seed's single channel, in a public namespace: a send reaches it.
	seed := openStream(t, base+"userId=carl&channel=news")
	seed.frame()
	code, body = apiCall(t, n.url, http.MethodPost, "send", map[string]any{"to": map[string]any{"channels": []string{"news"}}, "event": "headline", "data": "x"})
	if code != http.StatusOK || !strings.Contains(body, `"delivered":1`) {
		t.Fatalf("send to news: %d %s", code, body)
	}
	if f := seed.frame(); field(f, "event") != "headline" {
		t.Fatalf("seed channel got %q", f)
	}
}

// A namespace with hooks: true reports each join and leave of its
// channels to the app's hooks URL, signed like the other hooks; other
// namespaces do not.
func TestChannelHooks(t *testing.T) {
	events := make(chan map[string]any, 16)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev map[string]any
		if json.NewDecoder(r.Body).Decode(&ev) == nil && r.Header.Get("X-Pushd-Signature") != "" {
			if typ := ev["type"]; typ == "join" || typ == "leave" {
				events <- ev
			}
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(backend.Close)
	n := startPushd(t, fmt.Sprintf(`
apps:
  - name: demo
    auth: {mode: demo}
    api_keys: [demo-key]
    hooks: {url: %q, secret: "hook-secret-0123456789abcdef0123"}
    channels:
      namespaces:
        - {prefix: "deal.", join: public, hooks: true}
        - {match: "*", join: public}
`, backend.URL))
	s := openStream(t, n.url+"/sse/demo/connect?userId=ann&tenantId=acme&channels=deal.7,lobby")
	s.frame()
	s.close()
	for _, want := range []string{"join", "leave"} {
		select {
		case ev := <-events:
			if ev["type"] != want || ev["channel"] != "deal.7" || ev["userId"] != "ann" || ev["tenantId"] != "acme" {
				t.Fatalf("hook %v, want %s of deal.7 by ann", ev, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s hook within 10 s", want)
		}
	}
	select {
	case ev := <-events:
		t.Fatalf("unexpected hook %v (lobby has no hooks)", ev)
	default:
	}
}

// Attack (issue 14): a channel's QoS backlog goes only to connections that
// joined it legitimately — a browser refused the channel never gets it,
// one in another channel neither.
func TestChannelQoSBacklogOnlyToMembers(t *testing.T) {
	n := startPushd(t, `
apps:
  - name: demo
    auth: {mode: demo}
    api_keys: [demo-key]
    channels:
      namespaces:
        - {prefix: "ops.", join: server}
        - {match: "*", join: public}
`)
	for _, to := range []string{"ops.alerts", "news"} {
		code, body := apiCall(t, n.url, http.MethodPost, "send", map[string]any{
			"to": map[string]any{"channels": []string{to}}, "event": "stored", "data": "for " + to, "qos": true})
		if code != http.StatusOK || !strings.Contains(body, `"stored":true`) {
			t.Fatalf("qos send to %s: %d %s", to, code, body)
		}
	}
	base := n.url + "/sse/demo/connect?"
	code, body := do(t, http.MethodGet, base+"userId=eve&channel=ops.alerts", "", nil)
	if code != http.StatusForbidden || strings.Contains(body, "for ops.alerts") {
		t.Fatalf("a browser asking for the server-only channel: %d %s", code, body)
	}
	carl := openStream(t, base+"userId=carl&channel=news")
	carl.frame() // connect-finish
	if f := carl.frame(); field(f, "data") != "for news" {
		t.Fatalf("the news member's replay: %q", f)
	}
	// The fence: a live send after the replay, nothing of ops.alerts before it.
	code, body = apiCall(t, n.url, http.MethodPost, "send", map[string]any{"to": map[string]any{"userIds": []string{"carl"}}, "event": "fence", "data": "x"})
	if code != http.StatusOK {
		t.Fatalf("fence: %d %s", code, body)
	}
	if f := carl.frame(); field(f, "event") != "fence" {
		t.Fatalf("after the news backlog carl got %q, want the fence (nothing of ops.alerts)", f)
	}
}

// A webhook namespace asks the backend over a signed call, from the
// daemon's configuration: the backend's yes joins, its no is a 403, and
// an unsigned or forged ask would be refused by the backend's check.
func TestChannelSubscribeWebhook(t *testing.T) {
	const secret = "join-secret-0123456789abcdef0123456"
	asked := make(chan string, 8)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := upstream.Verify(r, secret, signature.Options{})
		var ask struct{ Channel, UserID string }
		if err != nil || json.NewDecoder(r.Body).Decode(&ask) != nil || id.UserID != ask.UserID {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		asked <- ask.UserID + ":" + ask.Channel
		fmt.Fprintf(w, `{"allow": %t}`, ask.Channel == "deal.yes")
	}))
	t.Cleanup(backend.Close)
	n := startPushd(t, fmt.Sprintf(`
apps:
  - name: demo
    auth: {mode: demo}
    api_keys: [demo-key]
    channels:
      webhook: {url: %q, secret: %q}
      namespaces: [{prefix: "deal.", join: webhook}]
`, backend.URL, secret))
	base := n.url + "/sse/demo/connect?userId=ann&channel="
	s := openStream(t, base+"deal.yes")
	s.frame()
	if got := <-asked; got != "ann:deal.yes" {
		t.Fatalf("the backend was asked %q", got)
	}
	code, body := do(t, http.MethodGet, base+"deal.no", "", nil)
	if code != http.StatusForbidden || !strings.Contains(body, "deal.no") {
		t.Fatalf("the backend's no: %d %s", code, body)
	}
	if got := <-asked; got != "ann:deal.no" {
		t.Fatalf("the backend was asked %q", got)
	}
}
