package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/pushd/pushd/pkg/admin"
	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/qos"
)

// searchPage is the decoded answer of a search.
type searchPage struct {
	App    string
	Items  []json.RawMessage
	Offset int
	Limit  int
	More   bool
	Total  *int
}

func searchIDs(t *testing.T, h http.Handler, path string, field string) ([]string, searchPage) {
	t.Helper()
	code, _, body := get(t, h, path, "s3cret")
	if code != http.StatusOK {
		t.Fatalf("%s: %d %s", path, code, body)
	}
	var p searchPage
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, it := range p.Items {
		var m map[string]any
		if err := json.Unmarshal(it, &m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, fmt.Sprint(m[field]))
	}
	return ids, p
}

func TestSearch(t *testing.T) {
	demo := newHub(t, "demo")
	ctx := context.Background()
	// u1 Ann ×2, u2 Bob, u3 Annette, u4 Carl.
	for _, u := range []hub.User{{ID: "u1", Name: "Ann"}, {ID: "u2", Name: "Bob"}, {ID: "u1", Name: "Ann"}, {ID: "u3", Name: "Annette"}, {ID: "u4", Name: "Carl"}} {
		if _, err := demo.Connect(ctx, hub.ConnectRequest{User: u}); err != nil {
			t.Fatal(err)
		}
	}
	h := handlerFor(t, demo)
	total := func(p searchPage) int {
		if p.Total == nil {
			return -1
		}
		return *p.Total
	}
	for _, tc := range []struct {
		path  string
		ids   []string
		more  bool
		total int // -1: none
	}{
		{"users?app=demo", []string{"u1", "u2", "u3", "u4"}, false, -1},
		{"users?app=demo&limit=2", []string{"u1", "u2"}, true, -1},
		{"users?app=demo&limit=2&offset=2", []string{"u3", "u4"}, false, -1},
		{"users?app=demo&offset=9", []string{}, false, -1},
		{"users?app=demo&name=ANN", []string{"u1", "u3"}, false, -1},
		{"users?app=demo&name=ann&limit=1", []string{"u1"}, true, -1},
		{"users?app=demo&userId=u1", []string{"u1"}, false, 1},
		{"users?app=demo&userId=u1&name=bob", []string{}, false, 0},
		{"users?app=demo&userId=nobody", []string{}, false, 0},
		{"connections?app=demo&userId=u1", []string{"Ann", "Ann"}, false, 2},
		{"connections?app=demo&name=ann", []string{"Ann", "Ann", "Annette"}, false, 3},
		{"connections?app=demo&name=ann&limit=2", []string{"Ann", "Ann"}, true, 3},
		{"connections?app=demo&name=ann&limit=2&offset=2", []string{"Annette"}, false, 3},
		{"connections?app=demo", []string{"Ann", "Ann", "Annette", "Bob", "Carl"}, false, 5},
		{"connections?app=demo&name=zed", []string{}, false, 0},
	} {
		field := "id"
		if tc.path[0] == 'c' {
			field = "accessUserName"
		}
		ids, p := searchIDs(t, h, "/admin/api/"+tc.path, field)
		if !slices.Equal(ids, tc.ids) || p.More != tc.more || total(p) != tc.total || p.App != "demo" {
			t.Errorf("%s: %v more %v total %d, want %v more %v total %d", tc.path, ids, p.More, total(p), tc.ids, tc.more, tc.total)
		}
	}
	// u1's entry counts both its connections.
	code, _, body := get(t, h, "/admin/api/users?app=demo&userId=u1", "s3cret")
	var p admin.Page[hub.UserInfo]
	if code != http.StatusOK || json.Unmarshal([]byte(body), &p) != nil || len(p.Items) != 1 || p.Items[0].Connections != 2 || p.Items[0].Name != "Ann" {
		t.Errorf("u1: %d %s", code, body)
	}
}

func TestSearchBadRequests(t *testing.T) {
	h := handlerFor(t, newHub(t, "demo"))
	for _, tc := range []struct {
		path string
		code int
	}{
		{"users", http.StatusBadRequest},
		{"users?app=nope", http.StatusNotFound},
		{"connections?app=nope", http.StatusNotFound},
		{"users?app=demo&limit=0", http.StatusBadRequest},
		{"users?app=demo&limit=x", http.StatusBadRequest},
		{"users?app=demo&limit=201", http.StatusBadRequest},
		{"connections?app=demo&offset=-1", http.StatusBadRequest},
		{"connections?app=demo&offset=900&limit=200", http.StatusBadRequest},
		{"connections?app=demo&offset=800&limit=200", http.StatusOK},
	} {
		code, _, body := get(t, h, "/admin/api/"+tc.path, "s3cret")
		var e struct{ Error string }
		if code != tc.code || json.Unmarshal([]byte(body), &e) != nil || (code != http.StatusOK) != (e.Error != "") {
			t.Errorf("%s: %d %s, want %d", tc.path, code, body, tc.code)
		}
	}
	for _, path := range []string{"users?app=demo", "connections?app=demo"} {
		if code, _, _ := get(t, h, "/admin/api/"+path, "wrong"); code != http.StatusUnauthorized {
			t.Errorf("%s with a wrong token: %d", path, code)
		}
	}
}

func TestOverviewSummaryAndBacklog(t *testing.T) {
	repo, err := qos.NewMemory(qos.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	withQoS, err := hub.New(hub.Config{App: "demo", NodeID: "n1", Repository: repo})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = withQoS.Shutdown(context.Background()) })
	ctx := context.Background()
	if _, err := withQoS.Connect(ctx, hub.ConnectRequest{User: hub.User{ID: "u1", Name: "Ann"}}); err != nil {
		t.Fatal(err)
	}
	for range 3 { // to a user who is offline: stored until it comes
		if _, err := withQoS.Publish(ctx, hub.Target{UserIDs: []string{"u9"}}, hub.Event{Name: "n", Data: "x"}, hub.WithQoS(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	h := handlerFor(t, withQoS, newHub(t, "plain"))
	for _, tc := range []struct {
		path  string
		lists bool
	}{{"/admin/api/overview", true}, {"/admin/api/overview?summary=1", false}} {
		var ov admin.Overview
		code, _, body := get(t, h, tc.path, "s3cret")
		if code != http.StatusOK || json.Unmarshal([]byte(body), &ov) != nil || len(ov.Apps) != 2 {
			t.Fatalf("%s: %d %s", tc.path, code, body)
		}
		d, p := ov.Apps[0], ov.Apps[1]
		if d.QoSBacklog == nil || *d.QoSBacklog != 3 || p.QoSBacklog != nil || d.Partial != "" || p.Partial != "" {
			t.Errorf("%s: backlog %v / %v, partial %q %q", tc.path, d.QoSBacklog, p.QoSBacklog, d.Partial, p.Partial)
		}
		if (len(d.Users) == 1 && len(d.Connections) == 1) != tc.lists || d.UsersTotal != 1 || d.ConnectionsTotal != 1 {
			t.Errorf("%s: %d users, %d connections, totals %d %d", tc.path, len(d.Users), len(d.Connections), d.UsersTotal, d.ConnectionsTotal)
		}
	}
}
