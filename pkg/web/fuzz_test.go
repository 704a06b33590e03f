package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pushd/pushd/pkg/api"
	"github.com/pushd/pushd/pkg/auth"
	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/qos"
	"github.com/pushd/pushd/pkg/web"
)

// FuzzCalls sends arbitrary browser calls and API requests to one app
// in process, with a live connection to aim at. No input may panic, get a
// 5xx, or be answered with an error that is not {"error": …}; the
// connection stays registered unless a call closed it by its id, it never
// listens to more than the hub's MaxListeners names nor to a name longer
// than MaxNameLength (issue 10 #5: 1.5 M listeners on one connection), and
// no browser call shows its id to anybody but its owner unless the request
// named it. Run it longer with
//
//	go test -run x -fuzz FuzzCalls -fuzztime 60s ./pkg/web/
func FuzzCalls(f *testing.F) {
	repo, err := qos.NewMemory(qos.MemoryConfig{})
	if err != nil {
		f.Fatal(err)
	}
	const maxListeners, maxName = 8, 32
	h, err := hub.New(hub.Config{App: "demo", NodeID: "n1", Writers: -1, Repository: repo,
		MaxListeners: maxListeners, MaxNameLength: maxName})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = h.Shutdown(context.Background()) })
	wh, err := web.New(web.Config{Hub: h, Path: "/sse/demo", Auth: auth.Demo{}, EnableJSON: true, MaxBody: 4096})
	if err != nil {
		f.Fatal(err)
	}
	ah, err := api.New(api.Config{Apps: map[string]api.App{"demo": {Hub: h, Keys: []string{"k"}}}, MaxBody: 4096})
	if err != nil {
		f.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/sse/demo/", wh)
	mux.Handle("/api/", ah)
	victim, err := h.Connect(context.Background(), hub.ConnectRequest{User: hub.User{ID: "victim"}, Listeners: []string{"a"}, CanAck: true})
	if err != nil {
		f.Fatal(err)
	}
	id := victim.ID()

	seeds := []struct{ method, target, body string }{
		{"POST", "/sse/demo/connect/addListener.do?userId=victim", `{"connectionId":"` + id + `","listener":["b"]}`},
		{"POST", "/sse/demo/connect/removeListener.do?userId=me", `{"connectionId":"` + id + `","listener":["a"]}`},
		{"POST", "/sse/demo/connect/ack.do?userId=victim", `{"connectionId":"` + id + `","ids":["q1"]}`},
		{"POST", "/sse/demo/connect/message/x.do?userId=me&connectionId=" + id, `{"a":1}`},
		{"POST", "/sse/demo/connect/disconnect.do", "connectionId=nope&reason=x&duration=1e309"},
		{"GET", "/sse/demo/connect/connections.json?userId=me&pageNum=-1&pageSize=99999999999", ""},
		{"GET", "/sse/demo/connect/users.json?userId=me&name=%00", ""},
		{"GET", "/sse/demo/connect/connections.json?userId=me&tenantId=&cluster=false", ""},
		{"GET", "/sse/demo/connect/repositoryMessages.json?userId=me&tenantId=t&listeners=a,b", ""},
		{"POST", "/sse/demo/connect/ack.do?userId=victim", `{"connectionId":"` + id + `","ids":[` + strings.Repeat(`"q",`, hub.MaxAckIDs) + `"q"]}`},
		{"POST", "/sse/demo/connect/addListener.do?userId=victim", `{"connectionId":"` + id + `","listener":["` + strings.Repeat("n", 200) + `"]}`},
		{"POST", "/sse/demo/connect/addListener.do?userId=victim", `{"connectionId":"` + id + `","listener":[` + strings.Repeat(`"l",`, 70) + `"m"]}`},
		{"POST", "/sse/demo/connect/addListener.do?userId=victim", `{"connectionId":"` + id + `","listener":["b","c","d","e","f","g","h"]}`},
		{"POST", "/sse/demo/connect/addListener.do?userId=victim", `{"connectionId":"` + id + `","listener":["i"]}`},
		{"POST", "/sse/demo/connect/addListener.do?userId=victim", `{"connectionId":"` + id + `","listener":["` + strings.Repeat("n", maxName+1) + `"]}`},
		{"POST", "/sse/demo/connect/message/x.do?userId=victim&access_token=t&connectionId=" + id, `{}`},
		{"POST", "/api/v1/apps/demo/send", `{"to":{"userIds":["victim"]},"event":"e","data":{"x":[1,2]},"qos":true,"ttl":"1h"}`},
		{"POST", "/api/v1/apps/demo/send", `{"to":{"all":true},"event":"e\r\nid:1","data":"x"}`},
		{"POST", "/api/v1/apps/demo/disconnect", `{"connectionIds":["nope"]}`},
		{"POST", "/api/v1/apps/demo/duration", `{"to":{"userIds":["x"]},"seconds":-1}`},
		{"GET", "/api/v1/apps/demo/connections?pageNum=0&userId=victim", ""},
		{"GET", "/api/v1/apps/demo/messages?userId=victim&pageSize=0", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.target, s.body)
	}
	f.Fuzz(func(t *testing.T, method, target, body string) {
		if !strings.HasPrefix(target, "/") || strings.Contains(target, "/connect?") || strings.HasSuffix(target, "/connect") ||
			strings.Contains(target, "disconnect") || strings.Contains(target, "#") {
			return // streams block; kicks are allowed to close the victim
		}
		r, err := http.NewRequest(method, "http://pushd.test"+target, strings.NewReader(body))
		if err != nil {
			return
		}
		if strings.HasPrefix(r.URL.Path, "/api/") {
			r.Header.Set("Authorization", "Bearer k")
		}
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, target, body, w.Code, w.Body)
		}
		if w.Code >= 400 && w.Code != http.StatusMethodNotAllowed && w.Code != http.StatusNotFound || w.Code == http.StatusNotFound && strings.HasPrefix(r.URL.Path, "/api/") {
			var e struct{ Error string }
			if json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Error == "" {
				t.Fatalf("%s %s %q: %d without a JSON error: %s", method, target, body, w.Code, w.Body)
			}
		}
		if h.Conn(id) == nil {
			t.Fatalf("%s %s %q closed the victim's connection", method, target, body)
		}
		ls := victim.Listeners()
		if len(ls) > maxListeners {
			t.Fatalf("%s %s %q: the victim listens to %d names, more than MaxListeners %d", method, target, body, len(ls), maxListeners)
		}
		for _, l := range ls {
			if len(l) > maxName {
				t.Fatalf("%s %s %q: the victim listens to a %d-byte name, longer than MaxNameLength %d", method, target, body, len(l), maxName)
			}
		}
		q := r.URL.Query()
		owner := q.Get("userId") == "victim" && q.Get("tenantId") == ""
		if strings.HasPrefix(r.URL.Path, "/sse/") && !owner && strings.Contains(w.Body.String(), id) && !strings.Contains(target+body, id) {
			t.Fatalf("%s %s %q showed the victim's connection id: %s", method, target, body, w.Body)
		}
	})
}
