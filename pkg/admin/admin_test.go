package admin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pushd/pushd/pkg/admin"
	"github.com/pushd/pushd/pkg/hub"
)

func newHub(t *testing.T, app string) *hub.Hub {
	t.Helper()
	h, err := hub.New(hub.Config{App: app, NodeID: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Shutdown(context.Background()) })
	return h
}

func get(t *testing.T, h http.Handler, path, token string) (int, http.Header, string) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Header(), w.Body.String()
}

func TestNewNeedsAToken(t *testing.T) {
	if _, err := admin.New(admin.Config{}); err == nil {
		t.Fatal("New without a token succeeded")
	}
}

func TestPageAndAuth(t *testing.T) {
	h, err := admin.New(admin.Config{Token: "s3cret", Hubs: []*hub.Hub{newHub(t, "demo")}})
	if err != nil {
		t.Fatal(err)
	}
	code, hdr, body := get(t, h, "/admin/", "")
	if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") || !strings.Contains(body, "api/overview") {
		t.Errorf("page: %d %s", code, hdr.Get("Content-Type"))
	}
	if code, hdr, _ := get(t, h, "/admin", ""); code != http.StatusMovedPermanently || hdr.Get("Location") != "/admin/" {
		t.Errorf("/admin: %d %q", code, hdr.Get("Location"))
	}
	for _, tc := range []struct{ name, token string }{{"no token", ""}, {"wrong token", "s3cre"}, {"longer token", "s3cret!"}} {
		code, _, body := get(t, h, "/admin/api/overview", tc.token)
		var e struct{ Error string }
		if code != http.StatusUnauthorized || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
			t.Errorf("%s: %d %s", tc.name, code, body)
		}
	}
	if code, _, body := get(t, h, "/admin/nothing", "s3cret"); code != http.StatusNotFound || !strings.Contains(body, `"error"`) {
		t.Errorf("unknown endpoint: %d %s", code, body)
	}
}

func TestOverview(t *testing.T) {
	demo, other := newHub(t, "demo"), newHub(t, "other")
	ctx := context.Background()
	for _, u := range []hub.User{{ID: "u2", Name: "Bob"}, {ID: "u1", Name: "Ann", TenantID: "acme"}, {ID: "u1", Name: "Ann", TenantID: "acme"}} {
		if _, err := demo.Connect(ctx, hub.ConnectRequest{User: u, Listeners: []string{"news"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := demo.SendByUserID(ctx, "u1", "news", "hello"); err != nil {
		t.Fatal(err)
	}
	h, err := admin.New(admin.Config{Token: "s3cret", Hubs: []*hub.Hub{demo, other}, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	code, _, body := get(t, h, "/admin/api/overview", "s3cret")
	if code != http.StatusOK {
		t.Fatalf("overview: %d %s", code, body)
	}
	var ov admin.Overview
	if err := json.Unmarshal([]byte(body), &ov); err != nil {
		t.Fatal(err)
	}
	if ov.Node != "n1" || ov.Time == 0 || len(ov.Apps) != 2 || ov.Apps[0].Name != "demo" || ov.Apps[1].Name != "other" {
		t.Fatalf("overview: %s", body)
	}
	d := ov.Apps[0]
	if len(d.Nodes) != 1 || d.Nodes[0].NodeID != "n1" || d.Nodes[0].Stats.Connections != 3 || d.Nodes[0].Stats.Users != 2 ||
		d.Nodes[0].Counters.Sends != 1 || d.Nodes[0].Counters.Deliveries != 2 {
		t.Errorf("demo nodes: %+v", d.Nodes)
	}
	if d.UsersTotal != 2 || len(d.Users) != 2 || d.Users[0].ID != "u1" || d.Users[0].Connections != 2 || d.Users[1].ID != "u2" {
		t.Errorf("demo users: %d %+v", d.UsersTotal, d.Users)
	}
	if d.ConnectionsTotal != 3 || len(d.Connections) != 2 || d.Connections[0].AccessUserName != "Ann" {
		t.Errorf("demo connections (limit 2): %d %+v", d.ConnectionsTotal, d.Connections)
	}
	if d.Partial != "" {
		t.Errorf("single node partial: %s", d.Partial)
	}
	if o := ov.Apps[1]; o.UsersTotal != 0 || o.ConnectionsTotal != 0 || len(o.Nodes) != 1 {
		t.Errorf("other app: %+v", o)
	}
}
