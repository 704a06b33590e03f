package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/await"
)

// checkFor polls cond until it holds or the deadline passes.
func checkFor(t *testing.T, d time.Duration, cond func() bool, msg string) {
	t.Helper()
	await.True(t, d, msg, cond)
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// backend answers by the "session" cookie: "good-<id>" → user, "bad" →
// 401, "forbidden" → 403, "garbage" → bad JSON, "boom" → 500.
type backend struct {
	hits    atomic.Int64
	release chan struct{} // when non-nil, requests wait for it
	srv     *httptest.Server
}

func newBackend(t *testing.T) *backend {
	b := &backend{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		if b.release != nil {
			select {
			case <-b.release:
			case <-r.Context().Done():
				return
			}
		}
		c, _ := r.Cookie("session")
		var v string
		if c != nil {
			v = c.Value
		}
		switch {
		case v == "bad" || v == "":
			http.Error(w, "who?", http.StatusUnauthorized)
		case v == "forbidden":
			w.WriteHeader(http.StatusForbidden)
		case v == "garbage":
			fmt.Fprint(w, `{"id":`)
		case v == "boom":
			w.WriteHeader(http.StatusInternalServerError)
		default:
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"id":%q,"name":"Ann","tenantId":"t1","accessToken":"k1","channels":["news","team-*"],"roles":["a"],"auth":%q,"q":%q,"secret":%q,"app":%q}`,
				v, r.Header.Get("Authorization"), r.URL.Query().Get("lang"), r.URL.Query().Get("secret"), r.Header.Get("X-Pushd-App"))
		}
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func sessionRequest(session string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/connect?lang=en&secret=nope", nil)
	if session != "" {
		r.AddCookie(&http.Cookie{Name: "session", Value: session})
	}
	r.Header.Set("Authorization", "Bearer xyz")
	return r
}

func TestWebhookUserAndCache(t *testing.T) {
	b := newBackend(t)
	clock := &fakeClock{now: time.Unix(1000, 0)}
	w, err := NewWebhook(WebhookConfig{URL: b.srv.URL + "/whoami", App: "demo", QueryParams: []string{"lang"}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	u, err := w.Authenticate(sessionRequest("u1"))
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != "u1" || u.Name != "Ann" || u.TenantID != "t1" || u.AccessToken != "k1" || !slices.Equal(u.Channels, []string{"news", "team-*"}) {
		t.Fatalf("user = %+v", u)
	}
	if u.Claims["auth"] != "Bearer xyz" || u.Claims["q"] != "en" || u.Claims["secret"] != "" || u.Claims["app"] != "demo" {
		t.Fatalf("backend saw wrong request: %v", u.Claims)
	}
	if _, ok := u.Claims["roles"].([]any); !ok {
		t.Fatalf("extra field not in claims: %v", u.Claims)
	}
	u.Claims["roles"] = "mutated" // must not leak into the cache

	u2, err := w.Authenticate(sessionRequest("u1"))
	if err != nil || u2.ID != "u1" {
		t.Fatalf("cached: %+v %v", u2, err)
	}
	if got := b.hits.Load(); got != 1 {
		t.Fatalf("backend hits = %d, want 1 (second answer from cache)", got)
	}
	if _, ok := u2.Claims["roles"].([]any); !ok {
		t.Fatalf("cache was mutated through a returned user: %v", u2.Claims)
	}

	// A different cookie is a different key.
	if _, err := w.Authenticate(sessionRequest("u2")); err != nil {
		t.Fatal(err)
	}
	if got := b.hits.Load(); got != 2 {
		t.Fatalf("backend hits = %d, want 2", got)
	}

	// A query parameter that is not passed on does not change the key.
	r := sessionRequest("u1")
	r.URL.RawQuery = "lang=en&secret=other"
	if _, err := w.Authenticate(r); err != nil {
		t.Fatal(err)
	}
	if got := b.hits.Load(); got != 2 {
		t.Fatalf("backend hits = %d, want 2 (ignored param must not change the key)", got)
	}

	// After the TTL the backend is asked again.
	clock.Add(DefaultWebhookCacheTTL)
	if _, err := w.Authenticate(sessionRequest("u1")); err != nil {
		t.Fatal(err)
	}
	if got := b.hits.Load(); got != 3 {
		t.Fatalf("backend hits = %d, want 3 after expiry", got)
	}
}

func TestWebhookRejections(t *testing.T) {
	b := newBackend(t)
	w, err := NewWebhook(WebhookConfig{URL: b.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		session string
		want    error
		reason  string
		cached  bool
	}{
		{"bad", ErrUnauthenticated, "rejected by backend (401)", true},
		{"forbidden", ErrUnauthenticated, "rejected by backend (403)", true},
		{"", ErrUnauthenticated, "rejected by backend (401)", true},
		{"garbage", ErrUnavailable, "", false},
		{"boom", ErrUnavailable, "", false},
	} {
		t.Run(tt.session, func(t *testing.T) {
			before := b.hits.Load()
			for i := range 2 {
				_, err := w.Authenticate(sessionRequest(tt.session))
				if !errors.Is(err, tt.want) || Reason(err) != tt.reason {
					t.Fatalf("call %d: err = %v (reason %q), want %v %q", i, err, Reason(err), tt.want, tt.reason)
				}
			}
			want := int64(2)
			if tt.cached {
				want = 1
			}
			if got := b.hits.Load() - before; got != want {
				t.Fatalf("backend hits = %d, want %d (cached=%v)", got, want, tt.cached)
			}
		})
	}
}

func TestWebhookTimeout(t *testing.T) {
	b := newBackend(t)
	b.release = make(chan struct{}) // never released: the backend hangs
	t.Cleanup(func() { close(b.release) })
	w, err := NewWebhook(WebhookConfig{URL: b.srv.URL, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Authenticate(sessionRequest("u1"))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrUnavailable wrapping a deadline", err)
	}
	if errors.Is(err, ErrUnauthenticated) {
		t.Fatal("a timeout must not read as unauthenticated")
	}
}

func TestWebhookUnreachable(t *testing.T) {
	b := newBackend(t)
	b.srv.Close()
	w, err := NewWebhook(WebhookConfig{URL: b.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Authenticate(sessionRequest("u1")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
}

func TestWebhookSingleFlight(t *testing.T) {
	b := newBackend(t)
	b.release = make(chan struct{})
	w, err := NewWebhook(WebhookConfig{URL: b.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	errs := make(chan error, n)
	for range n {
		go func() {
			u, err := w.Authenticate(sessionRequest("u1"))
			if err == nil && u.ID != "u1" {
				err = fmt.Errorf("user = %+v", u)
			}
			errs <- err
		}()
	}
	checkFor(t, 5*time.Second, func() bool { return w.waiting.Load() == n }, "all callers waiting on one backend call")
	close(b.release)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := b.hits.Load(); got != 1 {
		t.Fatalf("backend hits = %d, want 1", got)
	}
}

// A caller that gives up does not fail the others sharing its call.
func TestWebhookCallerCancel(t *testing.T) {
	b := newBackend(t)
	b.release = make(chan struct{})
	w, err := NewWebhook(WebhookConfig{URL: b.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := w.Authenticate(sessionRequest("u1").WithContext(ctx))
		first <- err
	}()
	checkFor(t, 5*time.Second, func() bool { return b.hits.Load() == 1 }, "backend called")
	second := make(chan error, 1)
	go func() {
		_, err := w.Authenticate(sessionRequest("u1"))
		second <- err
	}()
	checkFor(t, 5*time.Second, func() bool { return w.waiting.Load() == 2 }, "second caller joined")
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("first = %v, want canceled", err)
	}
	close(b.release)
	if err := <-second; err != nil {
		t.Fatalf("second = %v", err)
	}
}

func TestWebhookCacheBound(t *testing.T) {
	b := newBackend(t)
	w, err := NewWebhook(WebhookConfig{URL: b.srv.URL, CacheSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"u1", "u2", "u3", "u3", "u2"} {
		if _, err := w.Authenticate(sessionRequest(s)); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.hits.Load(); got != 3 {
		t.Fatalf("hits = %d, want 3", got)
	}
	if _, err := w.Authenticate(sessionRequest("u1")); err != nil { // evicted
		t.Fatal(err)
	}
	if got := b.hits.Load(); got != 4 {
		t.Fatalf("hits = %d, want 4 (u1 evicted)", got)
	}
	if size := w.cache.Len(); size != 2 {
		t.Fatalf("cache size = %d, want 2", size)
	}
}

func TestWebhookCacheDisabled(t *testing.T) {
	b := newBackend(t)
	w, err := NewWebhook(WebhookConfig{URL: b.srv.URL, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := w.Authenticate(sessionRequest("u1")); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.hits.Load(); got != 2 {
		t.Fatalf("hits = %d, want 2", got)
	}
}

func TestNewWebhookValidation(t *testing.T) {
	for _, u := range []string{"", "ftp://x/y", "/relative", "http://"} {
		if _, err := NewWebhook(WebhookConfig{URL: u}); err == nil {
			t.Errorf("NewWebhook(%q) accepted", u)
		}
	}
}

// TestWebhookExpiresAt: the answer's expiresAt (Unix seconds or RFC 3339)
// becomes User.ExpiresAt, refuses a session already over, and bounds how
// long the answer is cached.
func TestWebhookExpiresAt(t *testing.T) {
	answers := map[string]string{
		"seconds":  `{"id":"u1","expiresAt":1010}`,
		"rfc3339":  `{"id":"u1","expiresAt":"1970-01-01T00:16:50Z"}`,
		"none":     `{"id":"u1"}`,
		"null":     `{"id":"u1","expiresAt":null}`,
		"past":     `{"id":"u1","expiresAt":999}`,
		"garbage":  `{"id":"u1","expiresAt":"tomorrow"}`,
		"boolean":  `{"id":"u1","expiresAt":true}`,
		"negative": `{"id":"u1","expiresAt":-5}`,
	}
	var hits atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		c, _ := r.Cookie("session")
		fmt.Fprint(w, answers[c.Value])
	}))
	t.Cleanup(backend.Close)
	clock := &fakeClock{now: time.Unix(1000, 0)}
	w, err := NewWebhook(WebhookConfig{URL: backend.URL, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}

	for name, want := range map[string]time.Time{"seconds": time.Unix(1010, 0), "rfc3339": time.Unix(1010, 0), "none": {}, "null": {}} {
		u, err := w.Authenticate(sessionRequest(name))
		if err != nil || !u.ExpiresAt.Equal(want) || u.Claims["expiresAt"] != nil {
			t.Errorf("%s: user %+v, %v; want ExpiresAt %v, not in Claims", name, u, err, want)
		}
	}
	if _, err := w.Authenticate(sessionRequest("past")); Reason(err) != "session expired" {
		t.Errorf("past: %v, want \"session expired\"", err)
	}
	for _, name := range []string{"garbage", "boolean", "negative"} {
		if _, err := w.Authenticate(sessionRequest(name)); !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: %v, want ErrUnavailable", name, err)
		}
	}

	// "seconds" was cached at 1000 until its expiry at 1010, not for the
	// 30 s CacheTTL; the next call asks again, and the session is over.
	before := hits.Load()
	clock.Add(9 * time.Second)
	if _, err := w.Authenticate(sessionRequest("seconds")); err != nil || hits.Load() != before {
		t.Fatalf("within expiry: %v, hits %d → %d; want the cached user", err, before, hits.Load())
	}
	clock.Add(time.Second)
	if _, err := w.Authenticate(sessionRequest("seconds")); Reason(err) != "session expired" || hits.Load() != before+1 {
		t.Fatalf("at expiry: %v, hits %d → %d; want a new call saying \"session expired\"", err, before, hits.Load())
	}
}
