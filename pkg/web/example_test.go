package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/pushd/pushd/pkg/auth"
	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/web"
)

// Example mounts one app in a Go program's own router, with the program's
// own authentication and message handler, and pushes to a user from
// business code.
func Example() {
	h, err := hub.New(hub.Config{App: "hr"})
	if err != nil {
		panic(err)
	}
	defer h.Shutdown(context.Background())

	// Who is calling: here a session cookie the program already knows.
	sessions := map[string]hub.User{"s3cret": {ID: "42", Name: "Ann", TenantID: "acme"}}
	authn := auth.Func(func(r *http.Request) (hub.User, error) {
		if c, err := r.Cookie("session"); err == nil {
			if u, ok := sessions[c.Value]; ok {
				return u, nil
			}
		}
		return hub.User{}, fmt.Errorf("%w: no session", auth.ErrUnauthenticated)
	})
	// What browsers send over their connection: message/{path}.do.
	onMessage := web.UpstreamFunc(func(w http.ResponseWriter, r *http.Request, call web.Call) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(web.WrapOK("got " + call.Path + " from user " + call.User.ID))
	})
	sse, err := web.New(web.Config{Hub: h, Path: "/sse/hr", Auth: authn, Upstream: onMessage})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/sse/hr/", sse)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// A browser connects (sse.js does this for a front end).
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/sse/hr/connect", nil)
	req.AddCookie(&http.Cookie{Name: "session", Value: "s3cret"})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewReader(resp.Body)
	for line, _ := lines.ReadString('\n'); line != "\n"; line, _ = lines.ReadString('\n') {
	} // connect-finish

	// Business code pushes to the user.
	n, err := h.SendByUserID(context.Background(), "42", "myHrBell", map[string]int{"count": 100})
	fmt.Println("delivered to", n, "connection(s)", errors.Is(err, nil))
	for i := 0; i < 3; i++ {
		line, _ := lines.ReadString('\n')
		fmt.Print(line)
	}

	// The browser sends a message over its connection.
	msg, _ := http.NewRequest(http.MethodPost, srv.URL+"/sse/hr/connect/message/hello.do", strings.NewReader(`{}`))
	msg.Header.Set("Content-Type", "application/json")
	msg.AddCookie(&http.Cookie{Name: "session", Value: "s3cret"})
	mresp, err := http.DefaultClient.Do(msg)
	if err != nil {
		panic(err)
	}
	var answer struct{ Data string }
	_ = json.NewDecoder(mresp.Body).Decode(&answer)
	mresp.Body.Close()
	fmt.Println(answer.Data)
	// Output:
	// delivered to 1 connection(s) true
	// event:myHrBell
	// id:1
	// data:{"count":100}
	// got hello from user 42
}
