package channels

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/signature"
)

// Defaults of WebhookConfig.
const (
	DefaultWebhookTimeout   = 3 * time.Second
	DefaultWebhookCacheTTL  = 30 * time.Second
	DefaultWebhookDenyTTL   = 5 * time.Second
	DefaultWebhookCacheSize = 10000
	// maxAnswer bounds the backend's answer, in bytes.
	maxAnswer = 64 << 10
)

// The identity headers of an ask, the same as those of the calls package
// upstream forwards, and signed the same way.
const (
	headerApp          = "X-Pushd-App"
	headerUserID       = "X-Pushd-User-Id"
	headerTenantID     = "X-Pushd-Tenant-Id"
	headerConnectionID = "X-Pushd-Connection-Id"
)

// WebhookConfig configures NewWebhookAsker.
type WebhookConfig struct {
	// URL receives the asks; required, absolute http(s).
	URL string
	// Secret signs each ask (see WebhookAsker). Default empty: asks are
	// sent unsigned, and the backend must trust the network instead.
	Secret string
	// Timeout bounds one backend call. Default 3 s.
	Timeout time.Duration
	// CacheTTL is how long an allow is reused for the same app, tenant,
	// user and channel. Default 30 s; -1 disables caching.
	CacheTTL time.Duration
	// DenyTTL is how long a denial is reused. Default 5 s, or CacheTTL when
	// that is shorter (so -1 with it); -1 does not keep denials.
	DenyTTL time.Duration
	// CacheSize bounds the answers kept (least recently used go first).
	// Default 10000.
	CacheSize int
	// Client makes the calls. Default: a client that follows no redirect
	// (a 3xx is no answer).
	Client *http.Client
	// Now is the clock of the signatures and the cache. Default time.Now.
	Now func() time.Time
}

// WebhookAsker is the standard Asker: it asks the app's backend. Build it
// with NewWebhookAsker; it is safe for concurrent use.
//
// Each ask is a POST of an Ask as JSON to the URL, with headers
// X-Pushd-App, X-Pushd-User-Id, X-Pushd-Tenant-Id and X-Pushd-Connection-Id
// and signed with package signature exactly as package upstream signs the
// calls it forwards (the four identity values are the extra lines), so a Go
// backend verifies an ask with upstream.Verify. The backend answers 2xx
// with {"allow": true} or {"allow": false}, or 403 for a denial; anything
// else (another status, a redirect, a body without "allow" or over 64 KiB,
// a timeout, a network error) is no answer: an error wrapping
// ErrUnavailable, not kept.
//
// Answers are kept per app, tenant, user id and channel (per connection
// for a user without id), allows for CacheTTL and denials for DenyTTL, in
// an LRU of CacheSize; concurrent identical asks share one backend call.
type WebhookAsker struct {
	cfg    WebhookConfig
	client *http.Client
	cache  *answers[bool]
}

var _ Asker = (*WebhookAsker)(nil)

// Ask is the JSON body of an ask.
type Ask struct {
	App          string `json:"app"`
	Channel      string `json:"channel"`
	UserID       string `json:"userId"`
	TenantID     string `json:"tenantId"`
	Name         string `json:"name"`
	ConnectionID string `json:"connectionId"`
}

// NewWebhookAsker validates cfg and returns a WebhookAsker.
func NewWebhookAsker(cfg WebhookConfig) (*WebhookAsker, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("channels: webhook: URL %q is not an absolute http(s) URL", cfg.URL)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultWebhookTimeout
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultWebhookCacheTTL
	}
	if cfg.DenyTTL == 0 {
		cfg.DenyTTL = min(DefaultWebhookDenyTTL, cfg.CacheTTL)
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultWebhookCacheSize
	}
	switch {
	case cfg.Timeout < 0:
		return nil, errors.New("channels: webhook: negative Timeout")
	case cfg.CacheTTL < -1, cfg.DenyTTL < -1:
		return nil, errors.New("channels: webhook: CacheTTL and DenyTTL must be positive or -1")
	case cfg.CacheSize < 0:
		return nil, errors.New("channels: webhook: negative CacheSize")
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
	cache, err := newAnswers[bool](cfg.CacheSize, cfg.Now)
	if err != nil {
		return nil, fmt.Errorf("channels: webhook: cache: %w", err)
	}
	return &WebhookAsker{cfg: cfg, client: client, cache: cache}, nil
}

// MayJoin implements Asker: it returns the kept answer or asks the backend.
func (w *WebhookAsker) MayJoin(ctx context.Context, app string, u hub.User, connID, channel string) (bool, error) {
	a := Ask{App: app, Channel: channel, UserID: u.ID, TenantID: u.TenantID, Name: u.Name, ConnectionID: connID}
	allow, err := w.cache.get(ctx, a.key(), func(ctx context.Context) (bool, time.Duration, error) {
		allow, err := w.ask(ctx, a)
		if allow {
			return true, w.cfg.CacheTTL, err
		}
		return false, w.cfg.DenyTTL, err
	})
	if err != nil && !errors.Is(err, ErrUnavailable) {
		err = fmt.Errorf("%w: %w", ErrUnavailable, err) // the caller's ctx ended
	}
	return allow, err
}

// key identifies the answer to a: its app, tenant, user and channel (and
// connection when the user has no id), length-prefixed so that no two
// asks share one.
func (a Ask) key() string {
	conn := ""
	if a.UserID == "" {
		conn = a.ConnectionID
	}
	var b []byte
	for _, s := range [...]string{a.App, a.TenantID, a.UserID, conn, a.Channel} {
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, ':')
		b = append(b, s...)
	}
	return string(b)
}

// ask makes one backend call.
func (w *WebhookAsker) ask(ctx context.Context, a Ask) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	body, err := json.Marshal(a)
	if err != nil { // cannot happen with string fields
		return false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err := w.sign(req, a, body); err != nil {
		return false, fmt.Errorf("%w: sign: %w", ErrUnavailable, err)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	switch {
	case err != nil:
		return false, fmt.Errorf("%w: read answer: %w", ErrUnavailable, err)
	case resp.StatusCode == http.StatusForbidden:
		return false, nil
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return false, fmt.Errorf("%w: webhook answered %d", ErrUnavailable, resp.StatusCode)
	case len(answer) > maxAnswer:
		return false, fmt.Errorf("%w: webhook answer larger than %d bytes", ErrUnavailable, maxAnswer)
	}
	var v struct {
		Allow *bool `json:"allow"`
	}
	if err := json.Unmarshal(answer, &v); err != nil || v.Allow == nil {
		return false, fmt.Errorf(`%w: webhook answer is not {"allow": true|false}`, ErrUnavailable)
	}
	return *v.Allow, nil
}

// sign sets the headers of an ask: its identity, and the signature over it
// (or, without a secret, the timestamp and body hash only).
func (w *WebhookAsker) sign(req *http.Request, a Ask, body []byte) error {
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json")
	h.Set(headerApp, a.App)
	h.Set(headerUserID, a.UserID)
	h.Set(headerTenantID, a.TenantID)
	h.Set(headerConnectionID, a.ConnectionID)
	sum := signature.BodySHA256(body)
	now := w.cfg.Now()
	if w.cfg.Secret == "" {
		h.Set(signature.HeaderTimestamp, signature.Timestamp(now))
		h.Set(signature.HeaderContentSHA256, sum)
		return nil
	}
	return signature.SignRequest(req, w.cfg.Secret, sum, now, a.App, a.UserID, a.TenantID, a.ConnectionID)
}
