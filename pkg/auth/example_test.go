package auth_test

import (
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
