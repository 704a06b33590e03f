package channels

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/await"
	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/signature"
	"github.com/pushd/pushd/pkg/upstream"
)

const testSecret = "webhook-secret"

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// backend is an app's join webhook. It verifies each ask's signature and
// answers by the channel's first path element: allow, deny, forbidden
// (403), fail (500), hang (until the caller gives up), wait (allow once
// release is closed), big (an answer over 64 KiB), redirect, garbage, and
// missing (no "allow").
type backend struct {
	t       *testing.T
	secret  string
	clock   *fakeClock
	replay  *signature.ReplayCache
	release chan struct{}

	mu     sync.Mutex
	asks   []Ask
	header []http.Header
}

func newBackend(t *testing.T, secret string) (*backend, *httptest.Server) {
	b := &backend{t: t, secret: secret, clock: &fakeClock{t: time.Now()},
		replay: signature.NewReplayCache(0), release: make(chan struct{})}
	srv := httptest.NewServer(b)
	t.Cleanup(srv.Close)
	return b, srv
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body []byte
	var err error
	if b.secret != "" {
		h := r.Header
		body, err = signature.VerifyRequest(r, b.secret, signature.Options{Now: b.clock.Now, Replay: b.replay},
			h.Get("X-Pushd-App"), h.Get("X-Pushd-User-Id"), h.Get("X-Pushd-Tenant-Id"), h.Get("X-Pushd-Connection-Id"))
	} else {
		body, err = signature.ReadBody(r.Body, 1<<20, r.Header.Get(signature.HeaderContentSHA256))
	}
	if err != nil {
		b.t.Errorf("backend: %s %s: %v", r.Method, r.URL, err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var a Ask
	if err := json.Unmarshal(body, &a); err != nil {
		b.t.Errorf("backend: body %q: %v", body, err)
	}
	if h := r.Header; h.Get("X-Pushd-App") != a.App || h.Get("X-Pushd-User-Id") != a.UserID ||
		h.Get("X-Pushd-Tenant-Id") != a.TenantID || h.Get("X-Pushd-Connection-Id") != a.ConnectionID {
		b.t.Errorf("backend: identity headers %v do not match the body %+v", h, a)
	}
	b.mu.Lock()
	b.asks = append(b.asks, a)
	b.header = append(b.header, r.Header.Clone())
	b.mu.Unlock()

	kind, _, _ := strings.Cut(a.Channel, "/")
	switch kind {
	case "allow":
		fmt.Fprint(w, `{"allow": true}`)
	case "deny":
		fmt.Fprint(w, `{"allow": false, "reason": "not a member"}`)
	case "forbidden":
		http.Error(w, "no", http.StatusForbidden)
	case "fail":
		http.Error(w, "database down", http.StatusInternalServerError)
	case "hang":
		<-r.Context().Done()
	case "wait":
		<-b.release
		fmt.Fprint(w, `{"allow": true}`)
	case "big":
		fmt.Fprintf(w, `{"allow": true, "pad": "%s"}`, strings.Repeat("x", 64<<10))
	case "redirect":
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	case "garbage":
		fmt.Fprint(w, `<html>`)
	case "missing":
		fmt.Fprint(w, `{"ok": true}`)
	default:
		b.t.Errorf("backend: unexpected channel %q", a.Channel)
	}
}

// calls counts the asks about channel.
func (b *backend) calls(channel string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, a := range b.asks {
		if a.Channel == channel {
			n++
		}
	}
	return n
}

func newAsker(t *testing.T, b *backend, srv *httptest.Server, edit func(*WebhookConfig)) *WebhookAsker {
	t.Helper()
	cfg := WebhookConfig{URL: srv.URL + "/pushd/join", Secret: b.secret, Now: b.clock.Now}
	if edit != nil {
		edit(&cfg)
	}
	w, err := NewWebhookAsker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

var ann = hub.User{ID: "ann", TenantID: "acme", Name: "Ann", AccessToken: "secret-token"}

func TestWebhookAnswers(t *testing.T) {
	b, srv := newBackend(t, testSecret)
	w := newAsker(t, b, srv, nil)
	short := newAsker(t, b, srv, func(c *WebhookConfig) { c.Timeout = 100 * time.Millisecond }) // for hang
	ctx := context.Background()
	for _, tt := range []struct {
		channel string
		allow   bool
		err     string // "": no error; else in the ErrUnavailable error
	}{
		{"allow/a", true, ""},
		{"deny/a", false, ""},
		{"forbidden/a", false, ""},
		{"fail/a", false, "webhook answered 500"},
		{"hang/a", false, "deadline exceeded"},
		{"big/a", false, "larger than 65536 bytes"},
		{"redirect/a", false, "webhook answered 302"},
		{"garbage/a", false, `not {"allow": true|false}`},
		{"missing/a", false, `not {"allow": true|false}`},
	} {
		asker := w
		if strings.HasPrefix(tt.channel, "hang/") {
			asker = short
		}
		allow, err := asker.MayJoin(ctx, "demo", ann, "c1", tt.channel)
		switch {
		case tt.err == "" && (err != nil || allow != tt.allow):
			t.Errorf("%s: MayJoin = %v, %v; want %v", tt.channel, allow, err, tt.allow)
		case tt.err != "" && (allow || !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: MayJoin = %v, %v; want ErrUnavailable with %q", tt.channel, allow, err, tt.err)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	want := Ask{App: "demo", Channel: "allow/a", UserID: "ann", TenantID: "acme", Name: "Ann", ConnectionID: "c1"}
	if len(b.asks) == 0 || b.asks[0] != want {
		t.Fatalf("backend got %+v, want %+v", b.asks, want)
	}
	if h := b.header[0]; h.Get("Content-Type") != "application/json" || strings.Contains(fmt.Sprint(h), "secret-token") {
		t.Fatalf("ask headers %v", h)
	}
}

func TestWebhookSignedAsUpstreamCalls(t *testing.T) {
	var got upstream.Identity
	var verr error
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, verr = upstream.Verify(r, testSecret, signature.Options{})
		fmt.Fprint(w, `{"allow": true}`)
	}))
	defer srv.Close()
	w, err := NewWebhookAsker(WebhookConfig{URL: srv.URL + "/join?app=demo", Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := w.MayJoin(context.Background(), "demo", ann, "c1", "room/1"); !ok || err != nil {
		t.Fatalf("MayJoin = %v, %v", ok, err)
	}
	if want := (upstream.Identity{App: "demo", UserID: "ann", TenantID: "acme", ConnectionID: "c1"}); verr != nil || got != want {
		t.Fatalf("upstream.Verify = %+v, %v; want %+v", got, verr, want)
	}
}

func TestWebhookUnsigned(t *testing.T) {
	b, srv := newBackend(t, "")
	w := newAsker(t, b, srv, nil)
	if ok, err := w.MayJoin(context.Background(), "demo", ann, "c1", "allow/x"); !ok || err != nil {
		t.Fatalf("MayJoin = %v, %v", ok, err)
	}
	h := b.header[0]
	if h.Get(signature.HeaderSignature) != "" || h.Get(signature.HeaderNonce) != "" || h.Get(signature.HeaderTimestamp) == "" {
		t.Fatalf("unsigned ask headers %v", h)
	}
}

func TestWebhookCache(t *testing.T) {
	b, srv := newBackend(t, testSecret)
	w := newAsker(t, b, srv, nil)
	ctx := context.Background()
	ask := func(u hub.User, conn, channel string, want bool) {
		t.Helper()
		if got, err := w.MayJoin(ctx, "demo", u, conn, channel); got != want || err != nil {
			t.Fatalf("MayJoin(%s, %s, %s) = %v, %v; want %v", u.ID, conn, channel, got, err, want)
		}
	}
	expect := func(channel string, n int) {
		t.Helper()
		if got := b.calls(channel); got != n {
			t.Fatalf("%d backend calls for %s, want %d", got, channel, n)
		}
	}

	ask(ann, "c1", "allow/a", true)
	ask(ann, "c2", "allow/a", true) // another connection of the user
	expect("allow/a", 1)
	ask(ann, "c1", "deny/a", false)
	ask(ann, "c1", "forbidden/a", false)
	ask(ann, "c1", "deny/a", false)
	ask(ann, "c1", "forbidden/a", false)
	expect("deny/a", 1)
	expect("forbidden/a", 1)

	// Other users, tenants and apps are asked about on their own.
	ask(hub.User{ID: "bob", TenantID: "acme"}, "c3", "allow/a", true)
	ask(hub.User{ID: "ann", TenantID: "globex"}, "c4", "allow/a", true)
	expect("allow/a", 3)
	if ok, err := w.MayJoin(ctx, "other", ann, "c1", "allow/a"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	expect("allow/a", 4)
	// Users without id: per connection.
	ask(hub.User{}, "c5", "allow/b", true)
	ask(hub.User{}, "c5", "allow/b", true)
	ask(hub.User{}, "c6", "allow/b", true)
	expect("allow/b", 2)

	// Denials keep 5 s, allows 30 s.
	b.clock.Add(4 * time.Second)
	ask(ann, "c1", "deny/a", false)
	expect("deny/a", 1)
	b.clock.Add(2 * time.Second)
	ask(ann, "c1", "deny/a", false)
	ask(ann, "c1", "forbidden/a", false)
	expect("deny/a", 2)
	expect("forbidden/a", 2)
	ask(ann, "c1", "allow/a", true)
	expect("allow/a", 4)
	b.clock.Add(25 * time.Second) // 31 s after the first ask
	ask(ann, "c1", "allow/a", true)
	expect("allow/a", 5)

	// Failures are not kept.
	for range 2 {
		if _, err := w.MayJoin(ctx, "demo", ann, "c1", "fail/a"); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("fail/a: %v", err)
		}
	}
	expect("fail/a", 2)
}

func TestWebhookCacheDisabledAndBounded(t *testing.T) {
	b, srv := newBackend(t, testSecret)
	off := newAsker(t, b, srv, func(c *WebhookConfig) { c.CacheTTL = -1 })
	ctx := context.Background()
	for range 3 {
		if ok, err := off.MayJoin(ctx, "demo", ann, "c1", "allow/off"); !ok || err != nil {
			t.Fatal(ok, err)
		}
		if ok, err := off.MayJoin(ctx, "demo", ann, "c1", "deny/off"); ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	if b.calls("allow/off") != 3 || b.calls("deny/off") != 3 {
		t.Fatalf("with the cache off: %d and %d calls, want 3 each", b.calls("allow/off"), b.calls("deny/off"))
	}

	small := newAsker(t, b, srv, func(c *WebhookConfig) { c.CacheSize = 2 })
	for _, ch := range []string{"allow/1", "allow/2", "allow/3", "allow/1"} {
		if ok, err := small.MayJoin(ctx, "demo", ann, "c1", ch); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	if n := small.cache.lru.Len(); n != 2 || b.calls("allow/1") != 2 {
		t.Fatalf("cache of 2 holds %d answers, allow/1 asked %d times; want 2 and 2", n, b.calls("allow/1"))
	}
}

func TestWebhookCoalesces(t *testing.T) {
	b, srv := newBackend(t, testSecret)
	w := newAsker(t, b, srv, func(c *WebhookConfig) { c.Timeout = time.Minute })
	const n = 16
	results := make(chan error, n)
	for range n {
		go func() {
			ok, err := w.MayJoin(context.Background(), "demo", ann, "c1", "wait/x")
			if err == nil && !ok {
				err = errors.New("refused")
			}
			results <- err
		}()
	}
	// One more caller gives up while the call is on: it fails alone.
	ctx, cancel := context.WithCancel(context.Background())
	quitter := make(chan error, 1)
	go func() {
		_, err := w.MayJoin(ctx, "demo", ann, "c2", "wait/x")
		quitter <- err
	}()
	await.True(t, 10*time.Second, "all callers waiting on one call", func() bool { return w.cache.waiting.Load() == n+1 })
	cancel()
	if err := <-quitter; !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v, want ErrUnavailable and context.Canceled", err)
	}
	close(b.release)
	for range n {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	if got := b.calls("wait/x"); got != 1 {
		t.Fatalf("%d concurrent asks made %d backend calls, want 1", n+1, got)
	}
}

func TestWebhookAskerThroughPolicy(t *testing.T) {
	b, srv := newBackend(t, testSecret)
	p, err := New(Config{
		Namespaces: []Namespace{{Name: "rooms", Prefix: "", Match: "*", Join: Webhook}},
		Webhook:    newAsker(t, b, srv, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.Authorize(ctx, "demo", ann, "c1", []string{"allow/1", "allow/2"}); err != nil {
		t.Fatalf("allowed: %v", err)
	}
	if err := p.Authorize(ctx, "demo", ann, "c1", []string{"allow/1", "deny/1"}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("denied: %v", err)
	}
	if err := p.Authorize(ctx, "demo", ann, "c1", []string{"fail/1"}); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrForbidden) {
		t.Fatalf("backend failing: %v", err)
	}
}

func TestNewWebhookAskerValidates(t *testing.T) {
	for _, tt := range []struct {
		cfg  WebhookConfig
		want string
	}{
		{WebhookConfig{}, "not an absolute http(s) URL"},
		{WebhookConfig{URL: "/join"}, "not an absolute http(s) URL"},
		{WebhookConfig{URL: "ftp://backend/join"}, "not an absolute http(s) URL"},
		{WebhookConfig{URL: "http://backend/join", Timeout: -time.Second}, "negative Timeout"},
		{WebhookConfig{URL: "http://backend/join", CacheTTL: -2}, "positive or -1"},
		{WebhookConfig{URL: "http://backend/join", DenyTTL: -2}, "positive or -1"},
		{WebhookConfig{URL: "http://backend/join", CacheSize: -1}, "negative CacheSize"},
	} {
		if _, err := NewWebhookAsker(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewWebhookAsker(%+v) = %v, want %q", tt.cfg, err, tt.want)
		}
	}
	w, err := NewWebhookAsker(WebhookConfig{URL: "https://backend/join", CacheTTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if w.cfg.Timeout != DefaultWebhookTimeout || w.cfg.DenyTTL != 2*time.Second || w.cache.lru.Len() != 0 {
		t.Fatalf("defaults: %+v", w.cfg)
	}
}
