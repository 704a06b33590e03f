package client_test

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/pkg/api"
	"github.com/pushd/pushd/pkg/auth"
	"github.com/pushd/pushd/pkg/client"
	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/web"
)

// newServer runs one app "demo" with demo auth, its browser endpoints and
// the API, in process.
func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	h, err := hub.New(hub.Config{App: "demo", NodeID: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	wh, err := web.New(web.Config{Hub: h, Path: "/sse/demo", Auth: auth.Demo{}})
	if err != nil {
		t.Fatal(err)
	}
	ah, err := api.New(api.Config{Apps: map[string]api.App{"demo": {Hub: h, Keys: []string{"k1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/sse/demo/", wh)
	mux.Handle("/api/", ah)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		_ = h.Shutdown(context.Background())
		srv.Close()
	})
	return srv
}

// connect opens a stream for user and returns its lines.
func connect(t *testing.T, srv *httptest.Server, user string) <-chan string {
	t.Helper()
	resp, err := http.Get(srv.URL + "/sse/demo/connect?userId=" + user + "&tenantId=acme&name=" + user)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		r := bufio.NewReader(resp.Body)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			lines <- strings.TrimSuffix(line, "\n")
		}
	}()
	await(t, lines, "event:connect-finish")
	return lines
}

func await(t *testing.T, lines <-chan string, want string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("stream ended before %q", want)
			}
			if l == want {
				return
			}
		case <-timeout:
			t.Fatalf("no %q within 5s", want)
		}
	}
}

func TestClientAgainstAPI(t *testing.T) {
	srv := newServer(t)
	ctx := context.Background()
	c, err := client.New(client.Config{URL: srv.URL, App: "demo", APIKey: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	ann := connect(t, srv, "ann")
	bob := connect(t, srv, "bob")

	n, err := c.SendToUser(ctx, "ann", "bell", map[string]int{"count": 3})
	if err != nil || n != 1 {
		t.Fatalf("SendToUser = %d, %v", n, err)
	}
	await(t, ann, `data:{"count":3}`)

	res, err := c.Send(ctx, client.Message{To: hub.Target{TenantIDs: []string{"acme"}}, Event: "news", Data: "plain text"})
	if err != nil || res.Delivered != 2 {
		t.Fatalf("Send to tenant = %+v, %v", res, err)
	}
	await(t, ann, "data:plain text")

	users, err := c.Users(ctx, 1, 10)
	if err != nil || users.Total != 2 || users.List[0].ID != "ann" || users.List[0].Connections != 1 {
		t.Fatalf("Users = %+v, %v", users, err)
	}
	conns, err := c.Connections(ctx, "bob", 1, 10)
	if err != nil || conns.Total != 1 || conns.List[0].AccessUserID != "bob" {
		t.Fatalf("Connections = %+v, %v", conns, err)
	}
	st, err := c.Stats(ctx)
	if err != nil || st.Connections != 2 || st.Users != 2 || st.Tenants != 1 {
		t.Fatalf("Stats = %+v, %v", st, err)
	}
	res, err = c.Send(ctx, client.Message{To: hub.Target{UserIDs: []string{"bob"}}, Event: "later", Data: "async", Async: true})
	if err != nil || res.ID == "" {
		t.Fatalf("async Send = %+v, %v", res, err)
	}
	await(t, bob, "data:async")

	closed, err := c.Disconnect(ctx, []string{"ann"}, nil, nil)
	if err != nil || closed != 1 {
		t.Fatalf("Disconnect = %d, %v", closed, err)
	}
	await(t, ann, "event:connect-close")

	_, err = c.Send(ctx, client.Message{To: hub.Target{All: true}, Event: "x", QoS: true, Data: 1})
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotImplemented {
		t.Errorf("QoS without repository: %v, want a 501 error", err)
	}
	bad, _ := client.New(client.Config{URL: srv.URL, App: "demo", APIKey: "wrong"})
	if _, err := bad.Stats(ctx); !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized {
		t.Errorf("wrong key: %v, want 401", err)
	}
	if _, err := c.Send(ctx, client.Message{Event: "x"}); !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest {
		t.Errorf("no target: %v, want 400", err)
	}
}
