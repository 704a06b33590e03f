package test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pushd/pushd/pkg/notify"
	"github.com/pushd/pushd/pkg/signature"
	"github.com/pushd/pushd/pkg/upstream"
)

// TestEnvironmentOverrides runs the embedded demo configured by PUSHD_*
// variables only.
func TestEnvironmentOverrides(t *testing.T) {
	n := startPushd(t, "", "PUSHD_NODE_ID=pod-env", "PUSHD_API_KEY=from-env")
	s := openStream(t, n.url+"/sse/demo/connect?userId=e")
	s.frame()
	if got := s.resp.Header.Get("X-Sse-Server-Id"); got != "pod-env" {
		t.Errorf("X-Sse-Server-Id = %q, want the PUSHD_NODE_ID", got)
	}
	code, _ := do(t, http.MethodGet, n.url+"/api/v1/apps/demo/stats", "", nil, "Authorization", "Bearer from-env")
	if code != 200 {
		t.Errorf("PUSHD_API_KEY not accepted: %d", code)
	}
	if code, _ := apiCall(t, n.url, http.MethodGet, "stats", nil); code != 401 {
		t.Errorf("the default key still works after PUSHD_API_KEY: %d", code)
	}
	if !strings.Contains(n.out.String(), "demo authentication is on") {
		t.Error("no warning about demo authentication")
	}
	metrics := doOK(t, http.MethodGet, n.url+"/metrics", "", nil)
	for _, want := range []string{`pushd_connections{app="demo"} 1`, `pushd_qos_store_saved_total 0`, `pushd_sends_total{app="demo"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	code, page := do(t, http.MethodGet, n.url+"/", "", nil)
	if code != 200 || !strings.Contains(page, "/sse/demo") {
		t.Errorf("demo page: %d", code)
	}
}

// TestGracefulDrain sends SIGTERM: readiness fails, streams get a retry:
// hint and end, and the process exits cleanly.
func TestGracefulDrain(t *testing.T) {
	n := startPushd(t, `
shutdown: {drain_window: 1s, timeout: 10s}
apps:
  - name: demo
    auth: {mode: demo}
    api_keys: [demo-key]
`)
	var streams []*stream
	for i := range 5 {
		s := openStream(t, n.url+fmt.Sprintf("/sse/demo/connect?userId=d%d", i))
		s.frame()
		streams = append(streams, s)
	}
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for _, s := range streams {
		if f := s.frame(); !strings.HasPrefix(f, "retry:") {
			t.Errorf("drain frame %q, want a retry: hint", f)
		}
		if !s.ended(10 * time.Second) {
			t.Error("stream not closed by the drain")
		}
	}
	done := make(chan error, 1)
	go func() { done <- n.wait() }()
	select {
	case err := <-done:
		n.cmd = nil
		if err != nil {
			t.Errorf("pushd exited with %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("pushd did not exit after SIGTERM")
	}
}

// backend is a business backend for pushd: it authenticates browsers
// (webhook), answers message/upload calls (upstream) and receives
// online/offline events (hooks).
type backend struct {
	srv    *httptest.Server
	mu     sync.Mutex
	events []notify.Event
	calls  []upstream.Identity
	bodies []string
}

const backendSecret = "backend-shared-secret-0123456789"

func newBackend(t *testing.T) *backend {
	b := &backend{}
	// One replay cache per receiver: a nonce is accepted once.
	verify := signature.Options{Window: time.Minute, Replay: signature.NewReplayCache(10000)}
	mux := http.NewServeMux()
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("session")
		if err != nil || !strings.HasPrefix(c.Value, "user-") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"id": strings.TrimPrefix(c.Value, "user-"), "tenantId": "shop1", "role": "buyer"})
	})
	mux.HandleFunc("/upstream/", func(w http.ResponseWriter, r *http.Request) {
		id, err := upstream.Verify(r, backendSecret, verify)
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		b.mu.Lock()
		b.calls = append(b.calls, id)
		b.bodies = append(b.bodies, r.URL.Path+" "+string(body))
		b.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"ok":"` + id.UserID + `"}`))
	})
	mux.HandleFunc("/hooks", func(w http.ResponseWriter, r *http.Request) {
		ev, err := notify.Verify(r, backendSecret, verify)
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		b.mu.Lock()
		b.events = append(b.events, ev)
		b.mu.Unlock()
	})
	b.srv = httptest.NewServer(mux)
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) eventTypes(user string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, e := range b.events {
		if e.UserID == user {
			out = append(out, e.Type)
		}
	}
	return out
}

// TestBackendIntegration runs an app authenticated by a webhook, whose
// browser messages go to the backend signed, and whose users' online and
// offline events reach the backend; and an app authenticated by JWT.
func TestBackendIntegration(t *testing.T) {
	b := newBackend(t)
	n := startPushd(t, fmt.Sprintf(`
apps:
  - name: shop
    auth: {mode: webhook, webhook: {url: %[1]s/whoami}}
    api_keys: [shop-key]
    upstream: {url: %[1]s/upstream, secret: %[2]s}
    hooks: {url: %[1]s/hooks, secret: %[2]s, grace: 300ms}
  - name: jwt
    auth: {mode: jwt, jwt: {secret: %[2]s}}
    api_keys: [jwt-key]
`, b.srv.URL, backendSecret))
	base := n.url + "/sse/shop"
	code, _ := do(t, http.MethodGet, base+"/connect", "", nil, "Cookie", "session=nobody")
	if code != 401 {
		t.Errorf("webhook said 401, pushd answered %d", code)
	}
	s := openStream(t, base+"/connect", "Cookie", "session=user-77")
	id := field(s.frame(), "id")
	waitFor(t, 5*time.Second, func() error {
		if got := b.eventTypes("77"); len(got) != 1 || got[0] != "online" {
			return fmt.Errorf("hook events %v", got)
		}
		return nil
	})
	code, body := do(t, http.MethodPost, base+"/connect/message/order.do?connectionId="+id, "application/json",
		strings.NewReader(`{"item":"book"}`), "Cookie", "session=user-77", "X-Pushd-User-Id", "forged")
	if code != 201 || body != `{"ok":"77"}` {
		t.Errorf("message.do through the backend: %d %s", code, body)
	}
	b.mu.Lock()
	if len(b.calls) != 1 || b.calls[0].UserID != "77" || b.calls[0].ConnectionID != id || b.calls[0].App != "shop" ||
		b.bodies[0] != `/upstream/message/order {"item":"book"}` {
		t.Errorf("backend saw %+v %q", b.calls, b.bodies)
	}
	b.mu.Unlock()
	s.close()
	code, _ = do(t, http.MethodPost, base+"/connect/disconnect.do", "application/x-www-form-urlencoded", strings.NewReader("connectionId="+id))
	if code != 200 {
		t.Errorf("disconnect.do: %d", code)
	}
	waitFor(t, 5*time.Second, func() error {
		if got := b.eventTypes("77"); len(got) != 2 || got[1] != "offline" {
			return fmt.Errorf("hook events %v", got)
		}
		return nil
	})

	jwtBase := n.url + "/sse/jwt/connect"
	now := time.Now().Unix()
	good := signHS256(t, map[string]any{"sub": "j1", "exp": now + 60, "jti": "session-1"}, backendSecret)
	js := openStream(t, jwtBase, "Authorization", "Bearer "+good)
	if f := js.frame(); field(f, "event") != "connect-finish" {
		t.Errorf("valid JWT: %q", f)
	}
	for name, token := range map[string]string{
		"expired":       signHS256(t, map[string]any{"sub": "j1", "exp": now - 60}, backendSecret),
		"another key":   signHS256(t, map[string]any{"sub": "j1", "exp": now + 60}, "another-secret-another-secret-xx"),
		"alg none":      unsigned(map[string]any{"sub": "j1", "exp": now + 60}),
		"not a token":   "garbage",
		"tampered body": good[:strings.Index(good, ".")+1] + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin","exp":9999999999}`)) + good[strings.LastIndex(good, "."):],
	} {
		code, body := do(t, http.MethodGet, jwtBase+"?access_token="+token, "", nil)
		if code != 401 || !strings.Contains(body, `"error"`) {
			t.Errorf("JWT %s: %d %s, want 401 with an error", name, code, body)
		}
	}
}

func signHS256(t *testing.T, claims map[string]any, secret string) string {
	t.Helper()
	head := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	payload, _ := json.Marshal(claims)
	signed := head + "." + base64.RawURLEncoding.EncodeToString(payload)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(signed))
	return signed + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func unsigned(claims map[string]any) string {
	head := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	payload, _ := json.Marshal(claims)
	return head + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
}

// TestClusterPresenceHooks runs two nodes on the Redis transport with hooks:
// a user whose tabs are on both nodes is reported online once (by the node
// holding the earlier tab) and offline once (by the node whose tab closes
// last).
func TestClusterPresenceHooks(t *testing.T) {
	b := newBackend(t)
	rd := startRedis(t, false)
	var nodes []*node
	for i := 1; i <= 2; i++ {
		nodes = append(nodes, startPushd(t, fmt.Sprintf(`
node_id: n%d
cluster: {transport: redis, redis_url: %q}
apps:
  - name: demo
    auth: {mode: demo}
    api_keys: [demo-key]
    hooks: {url: %s/hooks, secret: %s, grace: 200ms}
`, i, rd.URL(), b.srv.URL, backendSecret)))
	}
	a, bn := nodes[0], nodes[1]
	connect := func(n *node, user string) (*stream, string) {
		s := openStream(t, n.url+"/sse/demo/connect?userId="+user)
		return s, field(s.frame(), "id")
	}
	leave := func(n *node, s *stream, id string) {
		s.close()
		code, _ := do(t, http.MethodPost, n.url+"/sse/demo/connect/disconnect.do", "application/x-www-form-urlencoded", strings.NewReader("connectionId="+id))
		if code != 200 {
			t.Fatalf("disconnect.do: %d", code)
		}
	}
	// awaitEvents waits until user's events are want; a node sends its
	// events in order, so a marker user's event proves what that node
	// decided before it.
	awaitEvents := func(user string, want ...string) {
		t.Helper()
		waitFor(t, 5*time.Second, func() error {
			if got := b.eventTypes(user); !slices.Equal(got, want) {
				return fmt.Errorf("%s: hook events %v, want %v", user, got, want)
			}
			return nil
		})
	}

	onA, onAID := connect(a, "p1")
	awaitEvents("p1", "online")
	onB, onBID := connect(bn, "p1")
	connect(bn, "markerB")
	awaitEvents("markerB", "online")
	awaitEvents("p1", "online") // B left it to A, whose tab is older

	markerA, markerAID := connect(a, "markerA")
	awaitEvents("markerA", "online")
	leave(a, onA, onAID)
	waitFor(t, 5*time.Second, func() error { // A has seen p1's tab close …
		var page struct{ List []struct{ ID string } }
		apiJSON(t, a.url, http.MethodGet, "connections?userId=p1", nil, &page)
		for _, c := range page.List {
			if c.ID == onAID {
				return fmt.Errorf("p1's tab on A still listed")
			}
		}
		return nil
	})
	leave(a, markerA, markerAID) // … before the marker's, so its offline was decided first
	awaitEvents("markerA", "online", "offline")
	awaitEvents("p1", "online") // A left it to B, where p1 is still connected

	leave(bn, onB, onBID)
	awaitEvents("p1", "online", "offline")
	b.mu.Lock()
	defer b.mu.Unlock()
	var from []string
	for _, e := range b.events {
		if e.UserID == "p1" {
			from = append(from, e.Type+"@"+e.Node)
		}
	}
	if !slices.Equal(from, []string{"online@n1", "offline@n2"}) {
		t.Errorf("p1's events came from %v", from)
	}
	for _, n := range nodes { // each left one of p1's events to the other
		if metrics := doOK(t, http.MethodGet, n.url+"/metrics", "", nil); !strings.Contains(metrics, `pushd_hooks_covered_total{app="demo"} 1`) {
			t.Errorf("%s's /metrics does not count the covered event", n.url)
		}
	}
}

// TestDrainRefusesNewConnections sends SIGTERM to a node holding streams:
// while its drain window is open, /readyz answers 503 and a new connect is
// refused with 503 and a JSON error.
func TestDrainRefusesNewConnections(t *testing.T) {
	// Four streams over 20 s: the last closes 15 s after SIGTERM, and the
	// listener stays open until then.
	n := startPushd(t, `
shutdown: {drain_window: 20s, timeout: 30s}
apps:
  - name: demo
    auth: {mode: demo}
    api_keys: [demo-key]
`)
	for i := range 4 {
		openStream(t, n.url+fmt.Sprintf("/sse/demo/connect?userId=held%d", i)).frame()
	}
	if code, body := do(t, http.MethodGet, n.url+"/readyz", "", nil); code != http.StatusOK {
		t.Fatalf("readyz before SIGTERM: %d %s", code, body)
	}
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		if code, body := do(t, http.MethodGet, n.url+"/readyz", "", nil); code != http.StatusServiceUnavailable {
			return fmt.Errorf("readyz after SIGTERM: %d %s, want 503", code, body)
		}
		return nil
	})
	code, body := do(t, http.MethodGet, n.url+"/sse/demo/connect?userId=late", "", nil, "Accept", "text/event-stream")
	var e struct{ Error string }
	if code != http.StatusServiceUnavailable || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
		t.Errorf("connect while draining: %d %q, want 503 with a JSON error", code, body)
	}
	if !strings.Contains(n.out.String(), "draining") {
		t.Error("the log does not say the node is draining")
	}
}

// TestCredentialedCORS: an app's allowed origin gets credentialed CORS
// headers on its preflight and its stream; a foreign origin gets none.
func TestCredentialedCORS(t *testing.T) {
	const allowed, foreign = "https://shop.example", "https://evil.example"
	n := startPushd(t, `
apps:
  - name: demo
    auth: {mode: demo}
    api_keys: [demo-key]
    cors: [`+allowed+`]
`)
	preflight := func(origin string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodOptions, n.url+"/sse/demo/connect/addListener.do", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", http.MethodPost)
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := preflight(allowed)
	if h := resp.Header; resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != allowed ||
		h.Get("Access-Control-Allow-Credentials") != "true" || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "content-type") {
		t.Errorf("preflight from the allowed origin: %d %v", resp.StatusCode, h)
	}
	s := openStream(t, n.url+"/sse/demo/connect?userId=cors", "Origin", allowed, "Cookie", "session=x")
	if field(s.frame(), "event") != "connect-finish" {
		t.Fatal("no connect-finish for the allowed origin")
	}
	if h := s.resp.Header; h.Get("Access-Control-Allow-Origin") != allowed || h.Get("Access-Control-Allow-Credentials") != "true" ||
		!slices.Contains(h.Values("Vary"), "Origin") {
		t.Errorf("stream of the allowed origin lacks credentialed CORS headers: %v", h)
	}

	resp = preflight(foreign)
	if h := resp.Header; h.Get("Access-Control-Allow-Origin") != "" || h.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("preflight from a foreign origin got CORS headers: %d %v", resp.StatusCode, h)
	}
	req, _ := http.NewRequest(http.MethodGet, n.url+"/sse/demo/connect?userId=cors2", nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Origin", foreign)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if h := resp.Header; h.Get("Access-Control-Allow-Origin") != "" || h.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("connect from a foreign origin got CORS headers: %d %v", resp.StatusCode, h)
	}
}

// TestOnlineEndpoint asks GET /api/v1/apps/{app}/online while a user
// connects and leaves, and without a userId.
func TestOnlineEndpoint(t *testing.T) {
	n := startPushd(t, "")
	online := func(user string) bool {
		t.Helper()
		var res struct{ Online *bool }
		apiJSON(t, n.url, http.MethodGet, "online?userId="+user, nil, &res)
		if res.Online == nil {
			t.Fatal("online: no online field")
		}
		return *res.Online
	}
	if online("walker") {
		t.Error("a user never connected is online")
	}
	s := openStream(t, n.url+"/sse/demo/connect?userId=walker")
	id := field(s.frame(), "id")
	if !online("walker") {
		t.Error("a connected user is not online")
	}
	if online("other") {
		t.Error("another user is online")
	}
	s.close()
	if code, body := do(t, http.MethodPost, n.url+"/sse/demo/connect/disconnect.do", "application/x-www-form-urlencoded",
		strings.NewReader("connectionId="+id)); code != http.StatusOK {
		t.Fatalf("disconnect.do: %d %s", code, body)
	}
	waitFor(t, 10*time.Second, func() error {
		if online("walker") {
			return fmt.Errorf("walker still online after the stream closed")
		}
		return nil
	})
	code, body := apiCall(t, n.url, http.MethodGet, "online", nil)
	var e struct{ Error string }
	if code != http.StatusBadRequest || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
		t.Errorf("online without userId: %d %s, want 400 with a JSON error", code, body)
	}
}
