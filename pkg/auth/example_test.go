package auth_test

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/pushd/pushd/pkg/auth"
)

func ExampleJWT() {
	const secret = "a-shared-secret-of-32-bytes-or-more"
	j, err := auth.NewJWT(auth.JWTConfig{
		Secret:  secret,
		Sources: []string{"bearer", "query:token"},
		Issuer:  "https://login.example.com",
	})
	if err != nil {
		panic(err)
	}

	// A token as the login service would issue it.
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims := fmt.Sprintf(`{"sub":"42","tenant_id":"acme","name":"Ann","jti":"session-7","iss":"https://login.example.com","exp":%d}`,
		time.Now().Add(time.Hour).Unix())
	signed := head + "." + enc.EncodeToString([]byte(claims))
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(signed))
	token := signed + "." + enc.EncodeToString(mac.Sum(nil))

	r := httptest.NewRequest(http.MethodGet, "/sse/demo/connect?token="+token, nil)
	u, err := j.Authenticate(r)
	fmt.Println(u.ID, u.TenantID, u.Name, u.AccessToken, err)

	r = httptest.NewRequest(http.MethodGet, "/sse/demo/connect?token="+token+"x", nil)
	_, err = j.Authenticate(r)
	fmt.Println(errors.Is(err, auth.ErrUnauthenticated), auth.Reason(err))
	// Output:
	// 42 acme Ann session-7 <nil>
	// true signature invalid
}

// An identity provider publishes its keys as a JWK Set; pushd picks the
// key by the token's kid and fetches the set again when the provider
// rotates its keys.
func ExampleJWT_jwks() {
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)) // the provider's signing key
	enc := base64.RawURLEncoding
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"2026-12","use":"sig","x":%q}]}`,
			enc.EncodeToString(key.Public().(ed25519.PublicKey)))
	}))
	defer idp.Close()

	j, err := auth.NewJWT(auth.JWTConfig{JWKSURL: idp.URL + "/.well-known/jwks.json", Audience: "pushd"})
	if err != nil {
		panic(err)
	}

	exp := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	signed := enc.EncodeToString([]byte(`{"alg":"EdDSA","kid":"2026-12"}`)) + "." +
		enc.EncodeToString(fmt.Appendf(nil, `{"sub":"42","aud":"pushd","exp":%d}`, exp.Unix()))
	token := signed + "." + enc.EncodeToString(ed25519.Sign(key, []byte(signed)))

	r := httptest.NewRequest(http.MethodGet, "/sse/demo/connect", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	u, err := j.Authenticate(r)
	fmt.Println(u.ID, u.ExpiresAt.UTC().Format(time.DateOnly), err)
	// Output:
	// 42 2100-01-01 <nil>
}

func ExampleWebhook() {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie("SESSION"); err == nil && c.Value == "s1" {
			fmt.Fprint(w, `{"id":"42","name":"Ann","tenantId":"acme","roles":["admin"]}`)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer backend.Close()

	wh, err := auth.NewWebhook(auth.WebhookConfig{URL: backend.URL + "/pushd/whoami"})
	if err != nil {
		panic(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/sse/demo/connect", nil)
	r.AddCookie(&http.Cookie{Name: "SESSION", Value: "s1"})
	u, err := wh.Authenticate(r)
	fmt.Println(u.ID, u.Name, u.Claims["roles"], err)

	_, err = wh.Authenticate(httptest.NewRequest(http.MethodGet, "/sse/demo/connect", nil))
	fmt.Println(auth.Reason(err))
	// Output:
	// 42 Ann [admin] <nil>
	// rejected by backend (401)
}
