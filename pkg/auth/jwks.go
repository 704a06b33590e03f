package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// JWKS defaults.
const (
	// DefaultJWKSRefresh is how old a fetched key set may get before the
	// next token fetches it again.
	DefaultJWKSRefresh = time.Hour
	// DefaultJWKSTimeout bounds one key set fetch.
	DefaultJWKSTimeout = 5 * time.Second
	// JWKSRetry is the shortest time between two fetches of a key set when
	// the last one failed or a token names a key id the set lacks, so
	// neither a down identity provider nor invented key ids make pushd
	// hammer it.
	JWKSRetry = 30 * time.Second
	// maxJWKSAnswer bounds the key set document.
	maxJWKSAnswer = 1 << 20
)

// jwks is a key set fetched from an identity provider's URL: cached,
// fetched again on use when older than refresh or when a token names an
// unknown key id, never more often than JWKSRetry. It runs no goroutine:
// the request that needs a fetch makes it, the others wait for it.
type jwks struct {
	url     string
	client  *http.Client
	refresh time.Duration
	timeout time.Duration
	now     func() time.Time

	mu      sync.Mutex
	set     *keySet       // nil until a fetch succeeded
	fetched time.Time     // of set
	tried   time.Time     // last fetch attempt; zero before the first
	lastErr error         // of the last attempt, nil when it succeeded
	running chan struct{} // closed when the running fetch ends; nil when none runs
}

// keySet is one fetched key set, indexed by key id ("" for keys without).
type keySet struct {
	byKid map[string][]verifyKey
	all   []verifyKey
}

func newJWKS(url string, refresh, timeout time.Duration, now func() time.Time) *jwks {
	return &jwks{
		url: url,
		// Redirects are not followed: keys come from the configured URL only.
		client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		refresh: refresh,
		timeout: timeout,
		now:     now,
	}
}

// keys returns the keys a token with key id kid may be verified with (all
// of them when kid is empty). It fails with ErrUnavailable only while no
// key set could be fetched yet; afterwards a failing provider leaves the
// last good set in use.
func (s *jwks) keys(ctx context.Context, kid string) ([]verifyKey, error) {
	s.mu.Lock()
	now := s.now()
	stale := s.set == nil || now.Sub(s.fetched) >= s.refresh || !s.set.has(kid)
	if stale && (s.running != nil || s.tried.IsZero() || now.Sub(s.tried) >= JWKSRetry) {
		running := s.running
		if running == nil {
			running = make(chan struct{})
			s.running = running
			s.mu.Unlock()
			s.update(ctx, running)
		} else {
			s.mu.Unlock()
			select {
			case <-running:
			case <-ctx.Done():
				return nil, fmt.Errorf("%w: jwks: %w", ErrUnavailable, ctx.Err())
			}
		}
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	if s.set == nil {
		return nil, fmt.Errorf("%w: jwks: %w", ErrUnavailable, s.lastErr)
	}
	return s.set.lookup(kid), nil
}

// update fetches the set once and wakes the waiters. The fetch outlives
// the caller's cancellation (bounded by the timeout), so the requests
// waiting on it are not failed by someone else's hang-up.
func (s *jwks) update(ctx context.Context, done chan struct{}) {
	set, err := s.fetch(context.WithoutCancel(ctx))
	s.mu.Lock()
	s.tried, s.lastErr = s.now(), err
	if err == nil {
		s.set, s.fetched = set, s.tried
	}
	s.running = nil
	s.mu.Unlock()
	close(done)
}

func (s *jwks) fetch(ctx context.Context) (*keySet, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("key set URL answered %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("read key set: %w", err)
	}
	if len(body) > maxJWKSAnswer {
		return nil, fmt.Errorf("key set larger than %d bytes", maxJWKSAnswer)
	}
	return parseJWKS(body)
}

// parseJWKS reads a JWK Set document. Keys that are not for signatures or
// that parseJWK refuses are skipped; a set without any usable key is an
// error, so that a broken answer does not replace a good set.
func parseJWKS(body []byte) (*keySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("key set is not a JWK Set: %w", err)
	}
	set := &keySet{byKid: make(map[string][]verifyKey)}
	var skipped []error
	for i, raw := range doc.Keys {
		var k jwk
		if err := json.Unmarshal(raw, &k); err != nil {
			skipped = append(skipped, fmt.Errorf("key %d: %w", i, err))
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		vk, err := parseJWK(k)
		if err != nil {
			skipped = append(skipped, fmt.Errorf("key %d: %w", i, err))
			continue
		}
		set.byKid[k.Kid] = append(set.byKid[k.Kid], vk)
		set.all = append(set.all, vk)
	}
	switch {
	case len(set.all) > 0:
		return set, nil
	case len(skipped) > 0:
		return nil, fmt.Errorf("key set has no usable signature key: %w", errors.Join(skipped...))
	}
	return nil, errors.New("key set has no signature key")
}

func (k *keySet) has(kid string) bool {
	_, ok := k.byKid[kid]
	return kid == "" || ok
}

func (k *keySet) lookup(kid string) []verifyKey {
	if kid == "" {
		return k.all
	}
	return k.byKid[kid]
}
