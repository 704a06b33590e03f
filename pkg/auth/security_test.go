package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// authAnswer is what authServer answers: the user's id, or the error.
type authAnswer struct {
	ID    string `json:"id"`
	Error string `json:"error"`
}

// authServer serves a handler that authenticates every request with a,
// as the web layer does: 503 for ErrUnavailable, 401 for any other
// failure, each with a JSON error; 200 with the user id otherwise.
func authServer(t *testing.T, a Authenticator) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		u, err := a.Authenticate(r)
		switch {
		case errors.Is(err, ErrUnavailable):
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(authAnswer{Error: err.Error()})
		case err != nil:
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(authAnswer{Error: err.Error()})
		default:
			_ = json.NewEncoder(w).Encode(authAnswer{ID: u.ID})
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// callAuth sends a request to srv, with token as bearer token when not
// empty and with cookie session when not empty.
func callAuth(t *testing.T, srv *httptest.Server, token string) (int, authAnswer) {
	t.Helper()
	return callAuthRequest(t, srv, func(r *http.Request) {
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
	})
}

func callAuthRequest(t *testing.T, srv *httptest.Server, mod func(*http.Request)) (int, authAnswer) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/sse/demo/connect", nil)
	if err != nil {
		t.Fatal(err)
	}
	mod(req)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a authAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatalf("answer is not JSON: %v", err)
	}
	return resp.StatusCode, a
}

// Attack (issue 10 #9): correctly signed tokens that name no user — no
// "sub", an empty one, or a "sub" that is an object, an array, a boolean
// or null — connected as anonymous users. They are refused with 401 unless
// the app allows anonymous connections, and a user claim of the wrong
// type is refused even then.
func TestJWTRefusesTokensWithoutIdentity(t *testing.T) {
	exp := testNow.Add(time.Hour).Unix()
	sign := func(c map[string]any) string { return hs256(map[string]any{"alg": HS256}, c, testSecret) }
	tests := []struct {
		name         string
		token        string
		strict, anon string // reason without / with AllowAnonymous; "" = accepted
	}{
		{"with sub", sign(map[string]any{"sub": "u1", "exp": exp}), "", ""},
		{"numeric sub", sign(map[string]any{"sub": 42, "exp": exp}), "", ""},
		{"only exp", sign(map[string]any{"exp": exp}), "token names no user", ""},
		{"empty sub", sign(map[string]any{"sub": "", "exp": exp}), "token names no user", ""},
		{"object sub", sign(map[string]any{"sub": map[string]any{"a": 1}, "exp": exp}), "token user claim malformed", "token user claim malformed"},
		{"array sub", sign(map[string]any{"sub": []string{"u1"}, "exp": exp}), "token user claim malformed", "token user claim malformed"},
		{"boolean sub", sign(map[string]any{"sub": true, "exp": exp}), "token user claim malformed", "token user claim malformed"},
		{"null sub", sign(map[string]any{"sub": nil, "exp": exp}), "token user claim malformed", "token user claim malformed"},
	}
	for _, anon := range []bool{false, true} {
		j, err := NewJWT(JWTConfig{Secret: testSecret, AllowAnonymous: anon, Now: func() time.Time { return testNow }})
		if err != nil {
			t.Fatal(err)
		}
		srv := authServer(t, j)
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/anonymous=%v", tt.name, anon), func(t *testing.T) {
				reason := tt.strict
				if anon {
					reason = tt.anon
				}
				status, a := callAuth(t, srv, tt.token)
				if reason == "" {
					if status != http.StatusOK {
						t.Fatalf("status %d %+v, want 200", status, a)
					}
					return
				}
				if status != http.StatusUnauthorized || !strings.HasSuffix(a.Error, ": "+reason) {
					t.Fatalf("status %d, error %q; want 401 with reason %q", status, a.Error, reason)
				}
			})
		}
	}
}

// Attack (issue 10 #9): the webhook backend answered 200 without a user id
// (an empty object, or only a name) and the browser connected as an
// anonymous user. It is refused with 401 unless the app allows anonymous
// connections.
func TestWebhookRefusesAnswersWithoutIdentity(t *testing.T) {
	answers := map[string]string{
		"empty":     `{}`,
		"only name": `{"name":"Ann","tenantId":"t1"}`,
		"empty id":  `{"id":""}`,
		"user":      `{"id":"u1"}`,
	}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("session")
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, answers[c.Value])
	}))
	t.Cleanup(backend.Close)

	for _, anon := range []bool{false, true} {
		wh, err := NewWebhook(WebhookConfig{URL: backend.URL, AllowAnonymous: anon})
		if err != nil {
			t.Fatal(err)
		}
		srv := authServer(t, wh)
		for name := range answers {
			t.Run(fmt.Sprintf("%s/anonymous=%v", name, anon), func(t *testing.T) {
				status, a := callAuthRequest(t, srv, func(r *http.Request) {
					r.AddCookie(&http.Cookie{Name: "session", Value: name})
				})
				switch {
				case name == "user" || anon:
					if status != http.StatusOK {
						t.Fatalf("status %d %+v, want 200", status, a)
					}
				case status != http.StatusUnauthorized || !strings.HasSuffix(a.Error, ": backend named no user"):
					t.Fatalf("status %d, error %q; want 401 \"backend named no user\"", status, a.Error)
				}
			})
		}
	}
}
