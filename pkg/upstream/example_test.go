package upstream_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/pushd/pushd/pkg/signature"
	"github.com/pushd/pushd/pkg/upstream"
)

// A backend in Go checks that a call really comes from pushd, unchanged and
// for the first time, before it trusts the identity headers.
func ExampleVerify() {
	const secret = "shared-with-pushd"
	replay := signature.NewReplayCache(0) // one for all requests: each call is accepted once
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := upstream.Verify(r, secret, signature.Options{Replay: replay})
		if err != nil {
			http.Error(w, `{"error":"not from pushd"}`, http.StatusUnauthorized)
			return
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"user":%q,"connection":%q,"path":%q,"got":%s}`, id.UserID, id.ConnectionID, r.URL.Path, body)
	}))
	defer backend.Close()

	fwd, err := upstream.New(upstream.Config{URL: backend.URL + "/pushd", Secret: secret})
	if err != nil {
		panic(err)
	}
	// In pushd the web layer makes this call for POST {base}/connect/message/chat.do.
	r := httptest.NewRequest(http.MethodPost, "/sse/demo/connect/message/chat.do?connectionId=c1", strings.NewReader(`{"text":"hi"}`))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	fwd.Forward(w, r, upstream.KindMessage, "chat", upstream.Identity{App: "demo", UserID: "u1", ConnectionID: "c1"})
	fmt.Println(w.Code, w.Body.String())
	// Output: 200 {"user":"u1","connection":"c1","path":"/pushd/message/chat","got":{"text":"hi"}}
}
