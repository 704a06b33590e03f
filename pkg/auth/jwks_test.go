package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var (
	ecKeysOnce     sync.Once
	ecKey, ecOther *ecdsa.PrivateKey
	edKey, edOther ed25519.PrivateKey
	ecPEM, edPEM   string
	ecP384PEM      string
)

// testKeysEC makes the EC and Ed25519 test keys (testKeys makes the RSA ones).
func testKeysEC(t testing.TB) {
	t.Helper()
	ecKeysOnce.Do(func() {
		var err error
		if ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if ecOther, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if _, edKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
		if _, edOther, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
		p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			panic(err)
		}
		ecPEM = pkixPEM(&ecKey.PublicKey)
		edPEM = pkixPEM(edKey.Public())
		ecP384PEM = pkixPEM(&p384.PublicKey)
	})
}

func enc(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func pkixPEM(pub any) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// es256 signs per RFC 7518 §3.4: r and s as 32 bytes each.
func es256(header, claims map[string]any, key *ecdsa.PrivateKey) string {
	signed := b64(header) + "." + b64(claims)
	sum := sha256.Sum256([]byte(signed))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		panic(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signed + "." + enc(sig)
}

func eddsa(header, claims map[string]any, key ed25519.PrivateKey) string {
	signed := b64(header) + "." + b64(claims)
	return signed + "." + enc(ed25519.Sign(key, []byte(signed)))
}

func rsaJWK(kid string, k *rsa.PublicKey) map[string]any {
	return map[string]any{"kty": "RSA", "kid": kid, "use": "sig", "n": enc(k.N.Bytes()), "e": enc(big.NewInt(int64(k.E)).Bytes())}
}

func ecJWK(kid string, k *ecdsa.PublicKey) map[string]any {
	b, err := k.Bytes()
	if err != nil {
		panic(err)
	}
	return map[string]any{"kty": "EC", "kid": kid, "crv": "P-256", "alg": "ES256", "x": enc(b[1:33]), "y": enc(b[33:])}
}

func edJWK(kid string, k ed25519.PrivateKey) map[string]any {
	return map[string]any{"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": enc(k.Public().(ed25519.PublicKey))}
}

// keyServer serves a JWK Set that tests change while it runs.
type keyServer struct {
	mu     sync.Mutex
	body   string
	status int
	hits   atomic.Int64
	srv    *httptest.Server
}

func newKeyServer(t *testing.T, keys ...map[string]any) *keyServer {
	t.Helper()
	k := &keyServer{}
	k.set(keys...)
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.hits.Add(1)
		k.mu.Lock()
		body, status := k.body, k.status
		k.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(k.srv.Close)
	return k
}

// set makes the server answer 200 with these keys.
func (k *keyServer) set(keys ...map[string]any) {
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		panic(err)
	}
	k.mu.Lock()
	k.body, k.status = string(b), http.StatusOK
	k.mu.Unlock()
}

// fail makes the server answer 500.
func (k *keyServer) fail() {
	k.mu.Lock()
	k.body, k.status = "down", http.StatusInternalServerError
	k.mu.Unlock()
}

func newJWKSAuth(t *testing.T, url string, clock *fakeClock, mod func(*JWTConfig)) *JWT {
	t.Helper()
	cfg := JWTConfig{JWKSURL: url, Now: clock.Now}
	if mod != nil {
		mod(&cfg)
	}
	j, err := NewJWT(cfg)
	if err != nil {
		t.Fatalf("NewJWT: %v", err)
	}
	return j
}

func hdr(alg, kid string) map[string]any {
	h := map[string]any{"alg": alg, "typ": "JWT"}
	if kid != "" {
		h["kid"] = kid
	}
	return h
}

// Attack (issue 10 #15): tokens that pick a key of the identity provider's
// set for another algorithm than its own (HS256 keyed with a public key,
// an ES256 signature under an RSA key's kid), "none", unknown kids and
// forged signatures, sent over HTTP to a handler that authenticates with
// keys from a JWKS URL.
func TestJWKSAlgorithmsAndKeys(t *testing.T) {
	testKeys(t)
	testKeysEC(t)
	ks := newKeyServer(t, rsaJWK("r1", &rsaKey.PublicKey), ecJWK("e1", &ecKey.PublicKey), edJWK("d1", edKey))
	clock := &fakeClock{now: testNow}
	srv := authServer(t, newJWKSAuth(t, ks.srv.URL, clock, nil))
	rsaN := enc(rsaKey.N.Bytes())

	tests := []struct {
		name   string
		token  string
		reason string // "" = accepted
	}{
		{"rs256 by kid", rs256(hdr(RS256, "r1"), claims(nil), rsaKey), ""},
		{"es256 by kid", es256(hdr(ES256, "e1"), claims(nil), ecKey), ""},
		{"eddsa by kid", eddsa(hdr(EdDSA, "d1"), claims(nil), edKey), ""},
		{"no kid tries the keys of its algorithm", es256(hdr(ES256, ""), claims(nil), ecKey), ""},
		{"rs256 forged", rs256(hdr(RS256, "r1"), claims(nil), rsaOther), "signature invalid"},
		{"es256 forged", es256(hdr(ES256, "e1"), claims(nil), ecOther), "signature invalid"},
		{"eddsa forged", eddsa(hdr(EdDSA, "d1"), claims(nil), edOther), "signature invalid"},
		{"no kid forged", eddsa(hdr(EdDSA, ""), claims(nil), edOther), "signature invalid"},
		{"unknown kid", rs256(hdr(RS256, "r9"), claims(nil), rsaKey), "token key unknown"},
		{"es256 under an rsa kid", es256(hdr(ES256, "r1"), claims(nil), ecKey), `token algorithm "ES256" does not fit its key`},
		{"rs256 under an ec kid", rs256(hdr(RS256, "e1"), claims(nil), rsaKey), `token algorithm "RS256" does not fit its key`},
		{"hs256 keyed with the rsa modulus", hs256(hdr(HS256, "r1"), claims(nil), rsaN), `token algorithm "HS256" not accepted`},
		{"hs256 keyed with the jwks", hs256(hdr(HS256, "r1"), claims(nil), ks.body), `token algorithm "HS256" not accepted`},
		{"alg none", b64(hdr("none", "r1")) + "." + b64(claims(nil)) + ".", `token algorithm "none" not accepted`},
		{"ps256", b64(hdr("PS256", "r1")) + "." + b64(claims(nil)) + ".AAAA", `token algorithm "PS256" not accepted`},
		{"kid not a string", rs256(map[string]any{"alg": RS256, "kid": 1}, claims(nil), rsaKey), "token header malformed"},
		{"expired", es256(hdr(ES256, "e1"), claims(map[string]any{"exp": testNow.Add(-time.Second).Unix()}), ecKey), "token expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := callAuth(t, srv, tt.token)
			if tt.reason == "" {
				if status != http.StatusOK || body.ID != "u1" {
					t.Fatalf("status %d, body %+v; want 200 for u1", status, body)
				}
				return
			}
			if status != http.StatusUnauthorized || !strings.HasSuffix(body.Error, ": "+tt.reason) {
				t.Fatalf("status %d, error %q; want 401 with reason %q", status, body.Error, tt.reason)
			}
		})
	}
	// One fetch: the unknown kid came within JWKSRetry of it.
	if got := ks.hits.Load(); got != 1 {
		t.Fatalf("key set fetched %d times, want 1", got)
	}
}

func TestJWKSConfiguredAlgorithm(t *testing.T) {
	testKeys(t)
	testKeysEC(t)
	ks := newKeyServer(t, rsaJWK("r1", &rsaKey.PublicKey), ecJWK("e1", &ecKey.PublicKey))
	j := newJWKSAuth(t, ks.srv.URL, &fakeClock{now: testNow}, func(c *JWTConfig) { c.Algorithm = ES256 })
	if _, err := j.Authenticate(bearer(es256(hdr(ES256, "e1"), claims(nil), ecKey))); err != nil {
		t.Fatalf("ES256: %v", err)
	}
	_, err := j.Authenticate(bearer(rs256(hdr(RS256, "r1"), claims(nil), rsaKey)))
	if got := Reason(err); got != `token algorithm "RS256" not accepted` {
		t.Fatalf("RS256 on an ES256-only set: reason %q (%v)", got, err)
	}
}

// TestJWKSRotation: a key the provider adds is accepted without a restart,
// a key it removes is refused once the set is fetched again.
func TestJWKSRotation(t *testing.T) {
	testKeys(t)
	ks := newKeyServer(t, rsaJWK("k1", &rsaKey.PublicKey))
	clock := &fakeClock{now: testNow}
	j := newJWKSAuth(t, ks.srv.URL, clock, func(c *JWTConfig) { c.JWKSRefresh = 10 * time.Minute })
	tok1 := rs256(hdr(RS256, "k1"), claims(nil), rsaKey)
	tok2 := rs256(hdr(RS256, "k2"), claims(nil), rsaOther)
	expect := func(step, token, reason string, hits int64) {
		t.Helper()
		_, err := j.Authenticate(bearer(token))
		if got := Reason(err); got != reason || (reason == "" && err != nil) {
			t.Fatalf("%s: reason %q (%v), want %q", step, got, err, reason)
		}
		if got := ks.hits.Load(); got != hits {
			t.Fatalf("%s: key set fetched %d times, want %d", step, got, hits)
		}
	}

	expect("first token", tok1, "", 1)
	ks.set(rsaJWK("k1", &rsaKey.PublicKey), rsaJWK("k2", &rsaOther.PublicKey))
	expect("new kid right after a fetch", tok2, "token key unknown", 1)
	clock.Add(JWKSRetry)
	expect("new kid after JWKSRetry", tok2, "", 2)
	expect("old kid still there", tok1, "", 2)

	ks.set(rsaJWK("k2", &rsaOther.PublicKey))
	expect("removed kid before the refresh", tok1, "", 2)
	clock.Add(10 * time.Minute)
	expect("removed kid after the refresh", tok1, "token key unknown", 3)
	expect("remaining kid", tok2, "", 3)
}

// TestJWKSUnavailable: an unreachable key set does not stop NewJWT; tokens
// get ErrUnavailable (503, not 401) until a fetch succeeds, fetches are
// spaced by JWKSRetry, and a later failure keeps the last good set.
func TestJWKSUnavailable(t *testing.T) {
	testKeys(t)
	ks := newKeyServer(t)
	ks.fail()
	clock := &fakeClock{now: testNow}
	j := newJWKSAuth(t, ks.srv.URL, clock, func(c *JWTConfig) { c.JWKSRefresh = time.Minute })
	srv := authServer(t, j)
	tok := rs256(hdr(RS256, "k1"), claims(nil), rsaKey)

	for i := range 3 {
		if status, body := callAuth(t, srv, tok); status != http.StatusServiceUnavailable {
			t.Fatalf("try %d with the key set down: status %d %+v, want 503", i, status, body)
		}
	}
	if got := ks.hits.Load(); got != 1 {
		t.Fatalf("key set fetched %d times while down, want 1 (JWKSRetry)", got)
	}

	ks.set(rsaJWK("k1", &rsaKey.PublicKey))
	clock.Add(JWKSRetry)
	if status, body := callAuth(t, srv, tok); status != http.StatusOK {
		t.Fatalf("key set back: status %d %+v", status, body)
	}
	ks.fail()
	clock.Add(time.Minute)
	if status, body := callAuth(t, srv, tok); status != http.StatusOK {
		t.Fatalf("refresh failed: status %d %+v, want the last good set", status, body)
	}
	if got := ks.hits.Load(); got != 3 {
		t.Fatalf("key set fetched %d times, want 3", got)
	}

	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	j = newJWKSAuth(t, closed.URL, clock, nil)
	if _, err := j.Authenticate(bearer(tok)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("unreachable key set: %v, want ErrUnavailable", err)
	}
}

// Attack (issue 10 #15): the key set URL answers with a redirect to keys
// an attacker controls, hangs, or sends an endless body. Keys come only
// from the configured URL, within the timeout and the size limit.
func TestJWKSFetchLimits(t *testing.T) {
	testKeys(t)
	evil := newKeyServer(t, rsaJWK("k1", &rsaOther.PublicKey))
	forged := rs256(hdr(RS256, "k1"), claims(nil), rsaOther)
	clock := &fakeClock{now: testNow}

	redirect := httptest.NewServer(http.RedirectHandler(evil.srv.URL, http.StatusFound))
	t.Cleanup(redirect.Close)
	status, body := callAuth(t, authServer(t, newJWKSAuth(t, redirect.URL, clock, nil)), forged)
	if status != http.StatusServiceUnavailable || evil.hits.Load() != 0 {
		t.Fatalf("redirect: status %d %+v, redirect target fetched %d times; want 503 and 0", status, body, evil.hits.Load())
	}

	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(hang.Close)
	start := time.Now()
	_, err := newJWKSAuth(t, hang.URL, clock, func(c *JWTConfig) { c.JWKSTimeout = 100 * time.Millisecond }).Authenticate(bearer(forged))
	if !errors.Is(err, ErrUnavailable) || time.Since(start) > 5*time.Second {
		t.Fatalf("hanging key set: %v after %v, want ErrUnavailable after the 100ms timeout", err, time.Since(start))
	}

	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"keys":[`))
		pad := []byte(strings.Repeat(" ", 64<<10))
		for range maxJWKSAnswer / len(pad) * 2 {
			if _, err := w.Write(pad); err != nil {
				return
			}
		}
	}))
	t.Cleanup(huge.Close)
	_, err = newJWKSAuth(t, huge.URL, clock, nil).Authenticate(bearer(forged))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("huge key set: %v, want ErrUnavailable for its size", err)
	}
}

// TestJWKSConcurrentFirstUse: requests arriving while the first fetch runs
// wait for it instead of fetching again.
func TestJWKSConcurrentFirstUse(t *testing.T) {
	testKeys(t)
	body, _ := json.Marshal(map[string]any{"keys": []any{rsaJWK("k1", &rsaKey.PublicKey)}})
	arrived, release := make(chan struct{}), make(chan struct{})
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			close(arrived)
		}
		<-release
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	j := newJWKSAuth(t, srv.URL, &fakeClock{now: testNow}, nil)
	tok := rs256(hdr(RS256, "k1"), claims(nil), rsaKey)

	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := j.Authenticate(bearer(tok))
			errs <- err
		}()
	}
	<-arrived
	close(release)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := hits.Load(); got != 1 {
		t.Fatalf("key set fetched %d times, want 1", got)
	}
}
