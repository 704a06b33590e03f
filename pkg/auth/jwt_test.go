package auth

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const testSecret = "0123456789abcdef0123456789abcdef"

var (
	keysOnce         sync.Once
	rsaKey, rsaOther *rsa.PrivateKey
	rsaPEM, rsaPKCS1 string
)

func testKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if rsaOther, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		rsaPEM = pkixPEM(&rsaKey.PublicKey)
		rsaPKCS1 = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)}))
	})
}

func b64(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// hs256 signs header and claims with a shared secret.
func hs256(header, claims map[string]any, secret string) string {
	signed := b64(header) + "." + b64(claims)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(signed))
	return signed + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func rs256(header, claims map[string]any, key *rsa.PrivateKey) string {
	signed := b64(header) + "." + b64(claims)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		panic(err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

var testNow = time.Unix(1_800_000_000, 0)

func claims(extra map[string]any) map[string]any {
	c := map[string]any{"sub": "u1", "tenant_id": "t1", "name": "Ann", "jti": "sess-1",
		"exp": testNow.Add(time.Hour).Unix(), "role": "admin"}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func bearer(token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/sse/demo/connect", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

func TestJWT(t *testing.T) {
	testKeys(t)
	testKeysEC(t)
	hsHdr := map[string]any{"alg": "HS256", "typ": "JWT"}
	rsHdr := map[string]any{"alg": "RS256", "typ": "JWT"}
	esHdr := map[string]any{"alg": "ES256", "typ": "JWT"}
	edHdr := map[string]any{"alg": "EdDSA", "typ": "JWT"}
	hsCfg := JWTConfig{Secret: testSecret}
	rsCfg := JWTConfig{PublicKeyPEM: rsaPEM}
	esCfg := JWTConfig{PublicKeyPEM: ecPEM}
	edCfg := JWTConfig{PublicKeyPEM: edPEM}

	tests := []struct {
		name   string
		cfg    JWTConfig
		req    *http.Request
		reason string // "" = success
	}{
		{"hs256 ok", hsCfg, bearer(hs256(hsHdr, claims(nil), testSecret)), ""},
		{"rs256 ok", rsCfg, bearer(rs256(rsHdr, claims(nil), rsaKey)), ""},
		{"rs256 pkcs1 key", JWTConfig{PublicKeyPEM: rsaPKCS1}, bearer(rs256(rsHdr, claims(nil), rsaKey)), ""},
		{"es256 ok", esCfg, bearer(es256(esHdr, claims(nil), ecKey)), ""},
		{"es256 named", JWTConfig{Algorithm: ES256, PublicKeyPEM: ecPEM}, bearer(es256(esHdr, claims(nil), ecKey)), ""},
		{"eddsa ok", edCfg, bearer(eddsa(edHdr, claims(nil), edKey)), ""},
		{"es256 wrong key", esCfg, bearer(es256(esHdr, claims(nil), ecOther)), "signature invalid"},
		{"eddsa wrong key", edCfg, bearer(eddsa(edHdr, claims(nil), edOther)), "signature invalid"},
		{"es256 on eddsa", edCfg, bearer(es256(esHdr, claims(nil), ecKey)), `token algorithm "ES256" not accepted`},
		{"eddsa on es256", esCfg, bearer(eddsa(edHdr, claims(nil), edKey)), `token algorithm "EdDSA" not accepted`},
		{"rs256 on es256", esCfg, bearer(rs256(rsHdr, claims(nil), rsaKey)), `token algorithm "RS256" not accepted`},
		{"hs256 keyed with the ec pem on es256", esCfg, bearer(hs256(hsHdr, claims(nil), ecPEM)), `token algorithm "HS256" not accepted`},
		{"es256 short signature", esCfg, bearer(func() string {
			tok := es256(esHdr, claims(nil), ecKey)
			i := strings.LastIndex(tok, ".")
			sig, _ := base64.RawURLEncoding.DecodeString(tok[i+1:])
			return tok[:i+1] + enc(sig[:63])
		}()), "signature invalid"},
		{"hs256 wrong secret", hsCfg, bearer(hs256(hsHdr, claims(nil), testSecret+"x")), "signature invalid"},
		{"rs256 wrong key", rsCfg, bearer(rs256(rsHdr, claims(nil), rsaOther)), "signature invalid"},
		{"expired", hsCfg, bearer(hs256(hsHdr, claims(map[string]any{"exp": testNow.Add(-time.Second).Unix()}), testSecret)), "token expired"},
		{"expired at exactly now", hsCfg, bearer(hs256(hsHdr, claims(map[string]any{"exp": testNow.Unix()}), testSecret)), "token expired"},
		{"expired within leeway", JWTConfig{Secret: testSecret, Leeway: time.Minute}, bearer(hs256(hsHdr, claims(map[string]any{"exp": testNow.Add(-time.Second).Unix()}), testSecret)), ""},
		{"no exp", hsCfg, bearer(hs256(hsHdr, claims(map[string]any{"exp": nil}), testSecret)), "token has no expiry"},
		{"no exp allowed", JWTConfig{Secret: testSecret, AllowNoExpiry: true}, bearer(hs256(hsHdr, claims(map[string]any{"exp": nil}), testSecret)), ""},
		{"exp is a string", hsCfg, bearer(hs256(hsHdr, claims(map[string]any{"exp": "tomorrow"}), testSecret)), "token exp malformed"},
		{"nbf in future", hsCfg, bearer(hs256(hsHdr, claims(map[string]any{"nbf": testNow.Add(time.Minute).Unix()}), testSecret)), "token not valid yet"},
		{"nbf within leeway", JWTConfig{Secret: testSecret, Leeway: 2 * time.Minute}, bearer(hs256(hsHdr, claims(map[string]any{"nbf": testNow.Add(time.Minute).Unix()}), testSecret)), ""},
		{"nbf is a string", hsCfg, bearer(hs256(hsHdr, claims(map[string]any{"nbf": "soon"}), testSecret)), "token nbf malformed"},
		{"alg not a string", hsCfg, bearer(hs256(map[string]any{"alg": 5}, claims(nil), testSecret)), "token header malformed"},
		{"too long", hsCfg, bearer(strings.Repeat("a", maxTokenLen+1)), "token too long"},
		{"issuer not a string", JWTConfig{Secret: testSecret, Issuer: "idp"}, bearer(hs256(hsHdr, claims(map[string]any{"iss": 5}), testSecret)), "token issuer not accepted"},
		{"audience not a string", JWTConfig{Secret: testSecret, Audience: "pushd"}, bearer(hs256(hsHdr, claims(map[string]any{"aud": 5}), testSecret)), "token audience not accepted"},
		{"nbf past", hsCfg, bearer(hs256(hsHdr, claims(map[string]any{"nbf": testNow.Add(-time.Minute).Unix()}), testSecret)), ""},
		{"alg none", hsCfg, bearer(b64(map[string]any{"alg": "none"}) + "." + b64(claims(nil)) + "."), `token algorithm "none" not accepted`},
		{"alg none with sig", hsCfg, bearer(b64(map[string]any{"alg": "none"}) + "." + b64(claims(nil)) + ".AAAA"), `token algorithm "none" not accepted`},
		{"alg lower-case", hsCfg, bearer(hs256(map[string]any{"alg": "hs256"}, claims(nil), testSecret)), `token algorithm "hs256" not accepted`},
		// The classic swap: an HS256 token "signed" with the RSA public key
		// as HMAC secret must not pass an RS256 verifier.
		{"alg swap hs256 on rs256", rsCfg, bearer(hs256(hsHdr, claims(nil), rsaPEM)), `token algorithm "HS256" not accepted`},
		{"alg swap rs256 on hs256", hsCfg, bearer(rs256(rsHdr, claims(nil), rsaKey)), `token algorithm "RS256" not accepted`},
		{"crit header", hsCfg, bearer(hs256(map[string]any{"alg": "HS256", "crit": []string{"exp"}}, claims(nil), testSecret)), "token has unsupported critical headers"},
		{"two parts", hsCfg, bearer("abc.def"), "token malformed"},
		{"four parts", hsCfg, bearer(hs256(hsHdr, claims(nil), testSecret) + ".x"), "token malformed"},
		{"header not base64", hsCfg, bearer("%%%." + b64(claims(nil)) + ".sig"), "token header malformed"},
		{"header not json", hsCfg, bearer(base64.RawURLEncoding.EncodeToString([]byte("{alg")) + "." + b64(claims(nil)) + ".sig"), "token header malformed"},
		{"padded signature", hsCfg, bearer(hs256(hsHdr, claims(nil), testSecret) + "="), "token signature malformed"},
		{"claims not json", hsCfg, bearer(signHS(b64(hsHdr) + "." + base64.RawURLEncoding.EncodeToString([]byte("[1,2]")))), "token claims malformed"},
		{"issuer ok", JWTConfig{Secret: testSecret, Issuer: "idp"}, bearer(hs256(hsHdr, claims(map[string]any{"iss": "idp"}), testSecret)), ""},
		{"issuer wrong", JWTConfig{Secret: testSecret, Issuer: "idp"}, bearer(hs256(hsHdr, claims(map[string]any{"iss": "evil"}), testSecret)), "token issuer not accepted"},
		{"issuer missing", JWTConfig{Secret: testSecret, Issuer: "idp"}, bearer(hs256(hsHdr, claims(nil), testSecret)), "token issuer not accepted"},
		{"audience string", JWTConfig{Secret: testSecret, Audience: "pushd"}, bearer(hs256(hsHdr, claims(map[string]any{"aud": "pushd"}), testSecret)), ""},
		{"audience list", JWTConfig{Secret: testSecret, Audience: "pushd"}, bearer(hs256(hsHdr, claims(map[string]any{"aud": []string{"x", "pushd"}}), testSecret)), ""},
		{"audience wrong", JWTConfig{Secret: testSecret, Audience: "pushd"}, bearer(hs256(hsHdr, claims(map[string]any{"aud": []string{"x"}}), testSecret)), "token audience not accepted"},
		{"no token", hsCfg, httptest.NewRequest(http.MethodGet, "/", nil), "no token"},
		{"basic auth is no token", hsCfg, func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.SetBasicAuth("a", "b")
			return r
		}(), "no token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Now = func() time.Time { return testNow }
			j, err := NewJWT(cfg)
			if err != nil {
				t.Fatalf("NewJWT: %v", err)
			}
			u, err := j.Authenticate(tt.req)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Authenticate: %v", err)
				}
				if u.ID != "u1" || u.TenantID != "t1" || u.Name != "Ann" || u.AccessToken != "sess-1" {
					t.Fatalf("user = %+v", u)
				}
				var want time.Time
				if exp, ok := u.Claims["exp"].(json.Number); ok {
					sec, _ := exp.Int64()
					want = time.Unix(sec, 0).Add(cfg.Leeway)
				}
				if !u.ExpiresAt.Equal(want) {
					t.Fatalf("ExpiresAt = %v, want exp+leeway %v", u.ExpiresAt, want)
				}
				return
			}
			if !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("err = %v, want ErrUnauthenticated", err)
			}
			if got := Reason(err); got != tt.reason {
				t.Fatalf("reason = %q, want %q", got, tt.reason)
			}
		})
	}
}

func signHS(signed string) string {
	m := hmac.New(sha256.New, []byte(testSecret))
	m.Write([]byte(signed))
	return signed + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func TestJWTSources(t *testing.T) {
	hdr := map[string]any{"alg": "HS256"}
	good := hs256(hdr, claims(nil), testSecret)
	bad := hs256(hdr, claims(nil), testSecret+"x")
	req := func(mod func(r *http.Request)) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/connect", nil)
		mod(r)
		return r
	}
	withQuery := func(k, v string) func(r *http.Request) {
		return func(r *http.Request) { r.URL.RawQuery = k + "=" + v }
	}
	tests := []struct {
		name    string
		sources []string
		req     *http.Request
		ok      bool
	}{
		{"bearer", nil, bearer(good), true},
		{"bearer lower-case scheme", nil, req(func(r *http.Request) { r.Header.Set("Authorization", "bearer "+good) }), true},
		{"default cookie", nil, req(func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "pushd_token", Value: good}) }), true},
		{"default query", nil, req(withQuery("access_token", good)), true},
		{"named cookie", []string{"cookie:sid"}, req(func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "sid", Value: good}) }), true},
		{"named cookie not default", []string{"cookie:sid"}, req(func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "pushd_token", Value: good}) }), false},
		{"named query", []string{"query:t"}, req(withQuery("t", good)), true},
		{"custom header", []string{"header:X-Token"}, req(func(r *http.Request) { r.Header.Set("X-Token", good) }), true},
		{"source not enabled", []string{"cookie"}, bearer(good), false},
		{"first source wins", []string{"query", "bearer"}, req(func(r *http.Request) {
			r.URL.RawQuery = "access_token=" + bad
			r.Header.Set("Authorization", "Bearer "+good)
		}), false},
		{"empty first source skipped", []string{"query", "bearer"}, bearer(good), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := NewJWT(JWTConfig{Secret: testSecret, Sources: tt.sources, Now: func() time.Time { return testNow }})
			if err != nil {
				t.Fatal(err)
			}
			u, err := j.Authenticate(tt.req)
			if tt.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && u.ID != "u1" {
				t.Fatalf("user = %+v", u)
			}
		})
	}
}

func TestJWTClaimMapping(t *testing.T) {
	c := map[string]any{"uid": 12345678901234, "org": "acme", "display": "Bob", "sid": "s9",
		"exp": testNow.Add(time.Hour).Unix(), "sub": "ignored-sub", "role": "viewer"}
	token := hs256(map[string]any{"alg": "HS256"}, c, testSecret)
	j, err := NewJWT(JWTConfig{Secret: testSecret, UserClaim: "uid", TenantClaim: "org", NameClaim: "display",
		AccessTokenClaim: "sid", Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	u, err := j.Authenticate(bearer(token))
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != "12345678901234" || u.TenantID != "acme" || u.Name != "Bob" || u.AccessToken != "s9" {
		t.Fatalf("user = %+v", u)
	}
	if u.Claims["role"] != "viewer" || u.Claims["sub"] != "ignored-sub" {
		t.Fatalf("claims = %v", u.Claims)
	}
	for _, k := range []string{"uid", "org", "display", "sid"} {
		if _, ok := u.Claims[k]; ok {
			t.Fatalf("mapped claim %q also in Claims", k)
		}
	}

	raw, err := NewJWT(JWTConfig{Secret: testSecret, AccessTokenClaim: RawTokenClaim, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	u, err = raw.Authenticate(bearer(token))
	if err != nil {
		t.Fatal(err)
	}
	if u.AccessToken != token || u.ID != "ignored-sub" {
		t.Fatalf("raw token user = %+v", u)
	}
}

func TestJWTChannelsClaim(t *testing.T) {
	j, err := NewJWT(JWTConfig{Secret: testSecret, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		claim any
		want  []string
	}{
		{[]any{"news", "team-*"}, []string{"news", "team-*"}},
		{"news  sport", []string{"news", "sport"}},
		{nil, nil},
	} {
		c := claims(map[string]any{"channels": tc.claim})
		if tc.claim == nil {
			delete(c, "channels")
		}
		u, err := j.Authenticate(bearer(hs256(map[string]any{"alg": "HS256"}, c, testSecret)))
		if err != nil || !slices.Equal(u.Channels, tc.want) {
			t.Errorf("channels claim %v: user channels %v, %v; want %v", tc.claim, u.Channels, err, tc.want)
		}
		if _, dup := u.Claims["channels"]; dup {
			t.Errorf("channels claim %v also in Claims", tc.claim)
		}
	}
	for _, bad := range []any{42, []any{"ok", 7}, []any{""}} {
		token := hs256(map[string]any{"alg": "HS256"}, claims(map[string]any{"channels": bad}), testSecret)
		if _, err := j.Authenticate(bearer(token)); !errors.Is(err, ErrUnauthenticated) || Reason(err) != "token channels claim malformed" {
			t.Errorf("channels claim %v: err = %v, want a malformed-claim refusal", bad, err)
		}
	}
}

func TestNewJWTValidation(t *testing.T) {
	testKeys(t)
	testKeysEC(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(keyFile, []byte(rsaPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
	smallPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))

	tests := []struct {
		name string
		cfg  JWTConfig
		ok   bool
	}{
		{"hs256 inferred", JWTConfig{Secret: testSecret}, true},
		{"rs256 from file", JWTConfig{PublicKeyFile: keyFile}, true},
		{"es256 inferred", JWTConfig{PublicKeyPEM: ecPEM}, true},
		{"eddsa named", JWTConfig{Algorithm: EdDSA, PublicKeyPEM: edPEM}, true},
		{"jwks", JWTConfig{JWKSURL: "https://idp.example.com/.well-known/jwks.json"}, true},
		{"jwks with algorithm", JWTConfig{Algorithm: ES256, JWKSURL: "https://idp.example.com/jwks"}, true},
		{"es256 named on an rsa key", JWTConfig{Algorithm: ES256, PublicKeyPEM: rsaPEM}, false},
		{"rs256 named on an ed25519 key", JWTConfig{Algorithm: RS256, PublicKeyPEM: edPEM}, false},
		{"ec P-384 key", JWTConfig{PublicKeyPEM: ecP384PEM}, false},
		{"jwks and a public key", JWTConfig{PublicKeyPEM: rsaPEM, JWKSURL: "https://idp.example.com/jwks"}, false},
		{"jwks and a public key with algorithm", JWTConfig{Algorithm: RS256, PublicKeyPEM: rsaPEM, JWKSURL: "https://idp.example.com/jwks"}, false},
		{"jwks and a secret", JWTConfig{Secret: testSecret, JWKSURL: "https://idp.example.com/jwks"}, false},
		{"jwks not http", JWTConfig{JWKSURL: "file:///etc/jwks.json"}, false},
		{"jwks relative", JWTConfig{JWKSURL: "/jwks.json"}, false},
		{"jwks negative refresh", JWTConfig{JWKSURL: "https://idp.example.com/jwks", JWKSRefresh: -1}, false},
		{"hs256 with jwks only", JWTConfig{Algorithm: HS256, JWKSURL: "https://idp.example.com/jwks"}, false},
		{"nothing", JWTConfig{}, false},
		{"both keys without alg", JWTConfig{Secret: testSecret, PublicKeyPEM: rsaPEM}, false},
		{"short secret", JWTConfig{Secret: "short"}, false},
		{"rs256 without key", JWTConfig{Algorithm: RS256, Secret: testSecret}, false},
		{"missing file", JWTConfig{PublicKeyFile: filepath.Join(dir, "nope")}, false},
		{"garbage pem", JWTConfig{PublicKeyPEM: "not a key"}, false},
		{"small rsa key", JWTConfig{PublicKeyPEM: smallPEM}, false},
		{"alg none", JWTConfig{Algorithm: "none", Secret: testSecret}, false},
		{"unknown source", JWTConfig{Secret: testSecret, Sources: []string{"form"}}, false},
		{"header source without name", JWTConfig{Secret: testSecret, Sources: []string{"header"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewJWT(tt.cfg)
			if tt.ok != (err == nil) {
				t.Fatalf("NewJWT err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "auth: ") {
				t.Fatalf("error %q lacks package prefix", err)
			}
		})
	}
}

func BenchmarkJWTHS256(b *testing.B) {
	j, _ := NewJWT(JWTConfig{Secret: testSecret, Now: func() time.Time { return testNow }})
	r := bearer(hs256(map[string]any{"alg": "HS256"}, claims(nil), testSecret))
	for b.Loop() {
		if _, err := j.Authenticate(r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJWTRS256(b *testing.B) {
	testKeys(b)
	j, _ := NewJWT(JWTConfig{PublicKeyPEM: rsaPEM, Now: func() time.Time { return testNow }})
	r := bearer(rs256(map[string]any{"alg": "RS256"}, claims(nil), rsaKey))
	for b.Loop() {
		if _, err := j.Authenticate(r); err != nil {
			b.Fatal(err)
		}
	}
}
