package admin_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/pushd/pushd/pkg/admin"
	"github.com/pushd/pushd/pkg/hub"
)

// The handler is mounted at /admin/; its data and actions take the admin
// token as a Bearer token and JSON bodies.
func ExampleNew() {
	demo, err := hub.New(hub.Config{App: "demo", NodeID: "n1"})
	if err != nil {
		panic(err)
	}
	defer demo.Shutdown(context.Background())
	h, err := admin.New(admin.Config{Token: "s3cret", Hubs: []*hub.Hub{demo}})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	call := func(method, path, body string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer s3cret")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Print(resp.StatusCode, " ", string(b))
	}
	call(http.MethodGet, "/admin/api/users?app=demo&name=ann", "")
	call(http.MethodPost, "/admin/api/send", `{"app":"demo","userId":"u1","data":"hello"}`)
	call(http.MethodPost, "/admin/api/kick", `{"app":"demo","userId":"u1","connectionId":"x"}`)
	// Output:
	// 200 {"app":"demo","items":[],"offset":0,"limit":25,"more":false}
	// 200 {"delivered":0}
	// 400 {"error":"name exactly one of userId and connectionId"}
}
