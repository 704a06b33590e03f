package test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// More attacks of issue 10 over real HTTP against a real pushd (see
// security_test.go): the memory QoS store's byte bound, the per-user
// connection cap, tokens without identity, and keys from a JWKS URL.

// metricSum returns the sum of the samples of the Prometheus metric name
// (every label set) in pushd's /metrics.
func metricSum(t *testing.T, n *node, name string) float64 {
	t.Helper()
	resp, err := http.Get(n.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	sum, seen := 0.0, false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest == "" || (rest[0] != ' ' && rest[0] != '{')) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum, seen = sum+v, true
	}
	if !seen {
		t.Fatalf("/metrics has no %s", name)
	}
	return sum
}

// Attack (issue 10 #13): the memory QoS store was bounded by count only —
// 40 sends of 1 MB raised the heap by 61 MB. With qos.max_bytes of 3 MB,
// six sends of 900 KB keep only the newest that fit: a client connecting
// afterwards receives those and nothing older, and every eviction is
// counted in pushd_qos_store_evicted_total.
func TestQoSMaxBytesEvictsOldest(t *testing.T) {
	n := startPushd(t, `
qos: {max_bytes: 3000000}
apps:
  - name: demo
    auth: {mode: demo}
    api_keys: [demo-key]
`)
	const size = 900_000
	before := metricSum(t, n, "pushd_qos_store_evicted_total")
	var sent []string
	for i := range 6 {
		id, _ := sendQoS(t, n, "hoarder", "blob", strings.Repeat(string(rune('a'+i)), size))
		sent = append(sent, id)
	}
	kept := backlog(t, n, "hoarder")
	if kept < 1 || kept > 3 {
		t.Fatalf("backlog of six %d-byte messages under max_bytes 3000000: %d, want 1 to 3", size, kept)
	}
	s := openStream(t, n.url+"/sse/demo/connect?userId=hoarder&ack=1&listeners=blob,marker")
	s.frame() // connect-finish
	// A live marker: the stored messages may come before or after it, but
	// once it and as many messages as are stored came, nothing else is
	// on its way.
	marker, _ := sendQoS(t, n, "hoarder", "marker", "end")
	var got []string
	for seen := false; !seen || len(got) < kept; {
		f := s.frame()
		id := field(f, "id")
		if id == marker {
			seen = true
			continue
		}
		if d := field(f, "data"); len(d) != size {
			t.Fatalf("frame %s carries %d bytes of data, want %d", id, len(d), size)
		}
		got = append(got, id)
	}
	if want := sent[len(sent)-kept:]; !slices.Equal(got, want) {
		t.Fatalf("backlog received %v, want the newest %d of %v", got, kept, sent)
	}
	after := metricSum(t, n, "pushd_qos_store_evicted_total")
	if after-before != float64(len(sent)-kept) {
		t.Fatalf("pushd_qos_store_evicted_total rose by %v, want %d (the evicted messages)", after-before, len(sent)-kept)
	}
}

// Attack (issue 10 #5): one user held 50 streams — the per-client cap
// applied only with a clientId. With max_connections_per_user 2 and no
// clientId, a third stream of the same user closes the oldest, which is
// told why (connect-close, reason user-limit); the other two stay and
// receive.
func TestUserCapClosesOldest(t *testing.T) {
	n := startPushd(t, `
apps:
  - name: demo
    auth: {mode: demo}
    api_keys: [demo-key]
    max_connections_per_user: 2
`)
	const url = "/sse/demo/connect?userId=greedy&listeners=bell"
	var streams []*stream
	for range 3 {
		s := openStream(t, n.url+url)
		if f := s.frame(); field(f, "event") != "connect-finish" {
			t.Fatalf("first frame %q, want connect-finish", f)
		}
		streams = append(streams, s)
	}
	oldest := streams[0]
	if f := oldest.frame(); field(f, "event") != "connect-close" || !strings.Contains(f, `"reason":"user-limit"`) {
		t.Fatalf("the oldest stream got %q, want connect-close with reason user-limit", f)
	}
	if !oldest.ended(5 * time.Second) {
		t.Fatal("the oldest stream is still open 5 s after its connect-close")
	}
	code, body := apiCall(t, n.url, http.MethodPost, "send", map[string]any{
		"to": map[string]any{"userIds": []string{"greedy"}}, "event": "bell", "data": "ring"})
	if code != http.StatusOK || !strings.Contains(body, `"delivered":2`) {
		t.Fatalf("send to the capped user: %d %s, want delivered 2", code, body)
	}
	for i, s := range streams[1:] {
		if f := s.frame(); field(f, "data") != "ring" {
			t.Fatalf("stream %d got %q, want the bell", i+1, f)
		}
	}
}

// Attack (issue 10 #9): tokens without an identity — {"exp":…} with no
// sub, or a sub that is an object — were accepted as anonymous. pushd now
// answers the connect 401 with a JSON error, as the app does not allow
// anonymous connections.
func TestSecurityTokenWithoutSubjectIsRefused(t *testing.T) {
	n := startPushd(t, tenantConfig)
	exp := time.Now().Add(time.Hour).Unix()
	for name, claims := range map[string]map[string]any{
		"no sub":    {"exp": exp},
		"empty sub": {"sub": "", "exp": exp},
		"sub {}":    {"sub": map[string]any{"a": 1}, "exp": exp},
	} {
		t.Run(name, func(t *testing.T) {
			tok := signHS256(t, claims, tenantSecret)
			assertRefused(t, n, tok)
		})
	}
	// The same app with a token naming a user connects: the refusals are
	// about the identity, not the key.
	tok := signHS256(t, map[string]any{"sub": "someone", "exp": exp}, tenantSecret)
	if f := openStream(t, n.url+"/sse/demo/connect", "Authorization", "Bearer "+tok).frame(); field(f, "event") != "connect-finish" {
		t.Fatalf("a token with a sub: %q, want connect-finish", f)
	}
}

// assertRefused asserts that connecting to app demo with the bearer token
// tok is answered 401 with a JSON error.
func assertRefused(t *testing.T, n *node, tok string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, n.url+"/sse/demo/connect?listeners=bell", nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Error string }
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
		json.NewDecoder(resp.Body).Decode(&body) != nil || body.Error == "" {
		t.Fatalf("connect: %d %s, want 401 with a JSON error", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// jwksServer serves a JSON Web Key Set with the P-256 public keys by kid.
func jwksServer(t *testing.T, keys map[string]*ecdsa.PrivateKey) *httptest.Server {
	t.Helper()
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	for kid, k := range keys {
		pub, err := k.PublicKey.ECDH()
		if err != nil {
			t.Fatal(err)
		}
		raw := pub.Bytes() // 0x04 || X || Y
		set.Keys = append(set.Keys, map[string]string{"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
			"x": base64.RawURLEncoding.EncodeToString(raw[1:33]), "y": base64.RawURLEncoding.EncodeToString(raw[33:])})
	}
	body, _ := json.Marshal(set)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// signES256 returns a compact JWS of claims, ES256 with key, header kid.
func signES256(t *testing.T, kid string, claims map[string]any, key *ecdsa.PrivateKey) string {
	t.Helper()
	head, _ := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT", "kid": kid})
	payload, _ := json.Marshal(claims)
	signed := base64.RawURLEncoding.EncodeToString(head) + "." + base64.RawURLEncoding.EncodeToString(payload)
	sum := sha256.Sum256([]byte(signed))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// Attack (issue 10 #15): JWT verification was hand-written, with static
// keys only. Through pushd, an app with auth.jwt.jwks_url pointing at the
// identity provider's key set accepts an ES256 token whose kid selects a
// key of the set, and refuses (401, JSON) a token signed by a key the set
// does not have, under an unknown kid or under a known one.
func TestJWKSKeysThroughPushd(t *testing.T) {
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k1, k2, stranger := newKey(), newKey(), newKey()
	ks := jwksServer(t, map[string]*ecdsa.PrivateKey{"k1": k1, "k2": k2})
	n := startPushd(t, fmt.Sprintf(`
apps:
  - name: demo
    auth:
      mode: jwt
      jwt: {jwks_url: %q}
    api_keys: [demo-key]
`, ks.URL))
	claims := map[string]any{"sub": "idp-user", "exp": time.Now().Add(time.Hour).Unix()}
	for kid, key := range map[string]*ecdsa.PrivateKey{"k1": k1, "k2": k2} {
		s := openStream(t, n.url+"/sse/demo/connect?listeners=bell", "Authorization", "Bearer "+signES256(t, kid, claims, key))
		if f := s.frame(); field(f, "event") != "connect-finish" {
			t.Fatalf("ES256 token of kid %s: %q, want connect-finish", kid, f)
		}
		s.close()
	}
	t.Run("unknown kid", func(t *testing.T) { assertRefused(t, n, signES256(t, "k9", claims, stranger)) })
	t.Run("known kid, foreign key", func(t *testing.T) { assertRefused(t, n, signES256(t, "k1", claims, stranger)) })
	t.Run("kid of the other key", func(t *testing.T) { assertRefused(t, n, signES256(t, "k2", claims, k1)) })
}
