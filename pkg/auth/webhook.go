package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"

	"github.com/pushd/pushd/pkg/hub"
)

// Webhook defaults.
const (
	DefaultWebhookTimeout   = 3 * time.Second
	DefaultWebhookCacheTTL  = 30 * time.Second
	DefaultWebhookCacheSize = 10000
	maxWebhookAnswer        = 1 << 20
	webhookAppHeader        = "X-Pushd-App"
)

// WebhookConfig configures NewWebhook.
type WebhookConfig struct {
	// URL is the backend endpoint; required. pushd sends it a GET with the
	// selected browser headers and query parameters.
	URL string
	// App, when set, is sent as header X-Pushd-App, so one backend can
	// serve several apps.
	App string
	// Headers are the browser request headers passed on. Default: Cookie
	// and Authorization.
	Headers []string
	// QueryParams are the browser query parameters passed on (appended to
	// URL's query). Default: none.
	QueryParams []string
	// Timeout bounds one backend call. Default 3 s.
	Timeout time.Duration
	// CacheTTL is how long an answer (a user, or a 401/403) is reused for
	// an identical request. Default 30 s; -1 disables the cache.
	CacheTTL time.Duration
	// CacheSize bounds the number of cached answers (least recently used
	// go first). Default 10000.
	CacheSize int
	// AllowAnonymous accepts answers without an "id" as users without an
	// id. Default false: such an answer is a rejection ("backend named no
	// user").
	AllowAnonymous bool
	// Client makes the calls. Default: a client without redirects.
	Client *http.Client
	// Now is the clock of the cache. Default time.Now.
	Now func() time.Time
}

// Webhook authenticates a request by asking the app's backend, which sees
// the browser's cookies and headers and knows its own sessions. Build it
// with NewWebhook.
//
// The backend answers 200 with a JSON object — "id", "name", "tenantId",
// "accessToken" fill the hub.User, "channels" (an array of channel names
// or patterns, or one string of them separated by spaces) its Channels,
// "expiresAt" (Unix seconds, or an RFC
// 3339 string) its ExpiresAt, every other field goes to User.Claims; an
// answer without "id" is refused unless AllowAnonymous, and one whose
// expiresAt has passed is refused — or 401/403 (with any body) for "not
// logged in". Anything else (other statuses, bad JSON or field types,
// timeouts, network errors) wraps ErrUnavailable and is not cached.
//
// Answers are cached for CacheTTL (a user not beyond its expiresAt), keyed
// by a SHA-256 of exactly what was sent (header and parameter names and
// values), and identical concurrent requests share one backend call.
type Webhook struct {
	cfg    WebhookConfig
	base   *url.URL
	client *http.Client

	cache   *lru.Cache[string, cacheEntry] // by outgoing.key
	calls   singleflight.Group             // one backend call per key at a time
	waiting atomic.Int32                   // callers waiting on a call; for tests
}

// cacheEntry is a cached answer. expires is the entry's own deadline on
// cfg.Now's clock: CacheTTL after the answer, or the user's ExpiresAt if
// that is sooner.
type cacheEntry struct {
	user    hub.User
	err     error // nil or an *Error
	expires time.Time
}

// NewWebhook validates cfg and returns a Webhook authenticator.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	if cfg.URL == "" {
		return nil, errors.New("auth: webhook: URL is required")
	}
	base, err := url.Parse(cfg.URL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("auth: webhook: URL %q is not an absolute http(s) URL", cfg.URL)
	}
	if cfg.Headers == nil {
		cfg.Headers = []string{"Cookie", "Authorization"}
	}
	for i, h := range cfg.Headers {
		cfg.Headers[i] = http.CanonicalHeaderKey(h)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultWebhookTimeout
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultWebhookCacheTTL
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = DefaultWebhookCacheSize
	}
	if cfg.Timeout < 0 {
		return nil, errors.New("auth: webhook: negative Timeout")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
	}
	cache, err := lru.New[string, cacheEntry](cfg.CacheSize)
	if err != nil {
		return nil, fmt.Errorf("auth: webhook: cache: %w", err)
	}
	return &Webhook{cfg: cfg, base: base, client: client, cache: cache}, nil
}

// outgoing is what the backend will see of a browser request.
type outgoing struct {
	header http.Header
	query  url.Values
}

func (w *Webhook) outgoing(r *http.Request) outgoing {
	o := outgoing{header: http.Header{}, query: url.Values{}}
	for _, h := range w.cfg.Headers {
		if vs := r.Header.Values(h); len(vs) > 0 {
			o.header[h] = append([]string(nil), vs...)
		}
	}
	if len(w.cfg.QueryParams) > 0 {
		q := r.URL.Query()
		for _, p := range w.cfg.QueryParams {
			if vs, ok := q[p]; ok {
				o.query[p] = vs
			}
		}
	}
	return o
}

// key hashes the outgoing request unambiguously (length-prefixed fields).
func (o outgoing) key(app string) string {
	h := sha256.New()
	write := func(s string) { fmt.Fprintf(h, "%d:%s", len(s), s) }
	write(app)
	for _, m := range []map[string][]string{o.header, o.query} {
		names := make([]string, 0, len(m))
		for k := range m {
			names = append(names, k)
		}
		sort.Strings(names)
		write(fmt.Sprint(len(names)))
		for _, k := range names {
			write(k)
			write(fmt.Sprint(len(m[k])))
			for _, v := range m[k] {
				write(v)
			}
		}
	}
	return string(h.Sum(nil))
}

// Authenticate implements Authenticator.
func (w *Webhook) Authenticate(r *http.Request) (hub.User, error) {
	o := w.outgoing(r)
	key := o.key(w.cfg.App)
	if e, ok := w.cache.Get(key); ok && w.live(e) {
		return cloneUser(e.user), e.err
	}
	ctx := r.Context()
	// The call outlives the first caller's cancellation, so the requests
	// sharing it are not failed by someone else's hang-up.
	done := w.calls.DoChan(key, func() (any, error) {
		return w.fetch(context.WithoutCancel(ctx), key, o)
	})
	w.waiting.Add(1)
	defer w.waiting.Add(-1)
	select {
	case res := <-done:
		return cloneUser(res.Val.(hub.User)), res.Err
	case <-ctx.Done():
		return hub.User{}, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
}

// fetch is the one call for key: it reads the cache again (a caller that
// missed it may start a call just after another call stored the answer and
// ended), else asks the backend and caches a user or a rejection. Only
// calls store, and w.calls runs one per key at a time, so removing an
// expired entry here cannot drop a newer one.
func (w *Webhook) fetch(ctx context.Context, key string, o outgoing) (hub.User, error) {
	if e, ok := w.cache.Peek(key); ok {
		if w.live(e) {
			return e.user, e.err
		}
		w.cache.Remove(key)
	}
	u, err := w.ask(ctx, o)
	if w.cfg.CacheTTL >= 0 && (err == nil || errors.Is(err, ErrUnauthenticated)) {
		expires := w.cfg.Now().Add(w.cfg.CacheTTL)
		if !u.ExpiresAt.IsZero() && u.ExpiresAt.Before(expires) {
			expires = u.ExpiresAt
		}
		w.cache.Add(key, cacheEntry{user: cloneUser(u), err: err, expires: expires})
	}
	return u, err
}

// live reports whether e is before its deadline.
func (w *Webhook) live(e cacheEntry) bool { return w.cfg.Now().Before(e.expires) }

// cloneUser copies the claims map so callers cannot alter the cache.
func cloneUser(u hub.User) hub.User {
	if u.Claims != nil {
		c := make(map[string]any, len(u.Claims))
		for k, v := range u.Claims {
			c[k] = v
		}
		u.Claims = c
	}
	return u
}

// ask calls the backend once.
func (w *Webhook) ask(ctx context.Context, o outgoing) (hub.User, error) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()

	u := *w.base
	if len(o.query) > 0 {
		q := u.Query()
		for k, vs := range o.query {
			q[k] = append(q[k], vs...)
		}
		u.RawQuery = q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return hub.User{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	for k, vs := range o.header {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "application/json")
	if w.cfg.App != "" {
		req.Header.Set(webhookAppHeader, w.cfg.App)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return hub.User{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxWebhookAnswer+1))
	if err != nil {
		return hub.User{}, fmt.Errorf("%w: read answer: %w", ErrUnavailable, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		return hub.User{}, unauthenticated("rejected by backend (401)")
	case http.StatusForbidden:
		return hub.User{}, unauthenticated("rejected by backend (403)")
	default:
		return hub.User{}, fmt.Errorf("%w: backend answered %d", ErrUnavailable, resp.StatusCode)
	}
	if len(body) > maxWebhookAnswer {
		return hub.User{}, fmt.Errorf("%w: answer larger than %d bytes", ErrUnavailable, maxWebhookAnswer)
	}
	user, err := parseWebhookUser(body)
	switch {
	case err != nil:
		return hub.User{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	case user.ID == "" && !w.cfg.AllowAnonymous:
		return hub.User{}, unauthenticated("backend named no user")
	case !user.ExpiresAt.IsZero() && !w.cfg.Now().Before(user.ExpiresAt):
		return hub.User{}, unauthenticated("session expired")
	}
	return user, nil
}

func parseWebhookUser(body []byte) (hub.User, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return hub.User{}, errors.New("answer is not a JSON object")
	}
	var u hub.User
	for _, f := range []struct {
		name string
		dst  *string
	}{{"id", &u.ID}, {"name", &u.Name}, {"tenantId", &u.TenantID}, {"accessToken", &u.AccessToken}} {
		v, ok := m[f.name]
		if !ok || v == nil {
			continue
		}
		switch s := v.(type) {
		case string:
			*f.dst = s
		case json.Number:
			*f.dst = s.String()
		default:
			return hub.User{}, fmt.Errorf("answer field %q is not a string", f.name)
		}
		delete(m, f.name)
	}
	channels, err := channelList(m["channels"])
	if err != nil {
		return hub.User{}, fmt.Errorf("answer field %q: %w", "channels", err)
	}
	u.Channels = channels
	delete(m, "channels")
	if v, ok := m["expiresAt"]; ok && v != nil {
		t, err := answerTime(v)
		if err != nil {
			return hub.User{}, err
		}
		u.ExpiresAt = t
		delete(m, "expiresAt")
	}
	if len(m) > 0 {
		u.Claims = m
	}
	return u, nil
}

// answerTime reads the answer's expiresAt: Unix seconds, or an RFC 3339
// string.
func answerTime(v any) (time.Time, error) {
	switch t := v.(type) {
	case json.Number:
		f, err := t.Float64()
		if err == nil && f > 0 && f < 1e11 {
			sec, frac := math.Modf(f)
			return time.Unix(int64(sec), int64(frac*1e9)), nil
		}
	case string:
		if ts, err := time.Parse(time.RFC3339, t); err == nil {
			return ts, nil
		}
	}
	return time.Time{}, errors.New(`answer field "expiresAt" is not a time (Unix seconds or RFC 3339)`)
}
