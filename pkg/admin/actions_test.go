package admin_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushd/pushd/internal/syncbuf"
	"github.com/pushd/pushd/pkg/admin"
	"github.com/pushd/pushd/pkg/hub"
)

// sseEvent is one event read from a stream.
type sseEvent struct{ name, data string }

// stream is a real SSE stream of a hub, read in the background.
type stream struct {
	connID string
	events chan sseEvent // closed at the end of the stream
}

// openStream connects user id (named name) to hb over real HTTP and waits
// for its connect-finish.
func openStream(t *testing.T, hb *hub.Hub, id, name string) *stream {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := hb.Connect(r.Context(), hub.ConnectRequest{User: hub.User{ID: id, Name: name}})
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		hb.ServeStream(w, r, c)
	}))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	s := &stream{events: make(chan sseEvent, 16)}
	go func() {
		defer close(s.events)
		rd := bufio.NewReader(resp.Body)
		var ev sseEvent
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				return
			}
			switch line = strings.TrimSuffix(line, "\n"); {
			case line == "":
				if ev.name != "" {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event:"):
				ev.name = line[len("event:"):]
			case strings.HasPrefix(line, "data:") && ev.data == "":
				ev.data = line[len("data:"):]
			case strings.HasPrefix(line, "data:"):
				ev.data += "\n" + line[len("data:"):]
			}
		}
	}()
	ev := s.next(t)
	var finish struct{ ConnectionID string }
	if ev.name != "connect-finish" || json.Unmarshal([]byte(ev.data), &finish) != nil || finish.ConnectionID == "" {
		t.Fatalf("first event: %+v", ev)
	}
	s.connID = finish.ConnectionID
	return s
}

// next returns the stream's next event, failing at the end of the stream
// or after 5 s.
func (s *stream) next(t *testing.T) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5 s")
	}
	return sseEvent{}
}

// ended waits until the stream ends, failing on any event but connect-close
// or after 5 s.
func (s *stream) ended(t *testing.T) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return
			}
			if ev.name != "connect-close" {
				t.Fatalf("event before the end: %+v", ev)
			}
		case <-deadline:
			t.Fatal("the stream did not end within 5 s")
		}
	}
}

// post calls an action over real HTTP and decodes the JSON answer.
func post(t *testing.T, url, token, contentType, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var answer map[string]any
	if err := json.Unmarshal(b, &answer); err != nil {
		t.Fatalf("%s: %d, not JSON: %q", url, resp.StatusCode, b)
	}
	return resp.StatusCode, answer
}

func newServer(t *testing.T, hubs ...*hub.Hub) string {
	t.Helper()
	return serve(t, admin.Config{Token: "s3cret", Hubs: hubs})
}

func serve(t *testing.T, cfg admin.Config) string {
	t.Helper()
	h, err := admin.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestActionsNeedTheToken(t *testing.T) {
	demo := newHub(t, "demo")
	s := openStream(t, demo, "u1", "Ann")
	base := newServer(t, demo)
	for _, action := range []string{"send", "kick"} {
		for _, tc := range []struct{ name, token string }{{"no token", ""}, {"wrong token", "s3cre"}, {"longer token", "s3cret!"}} {
			code, answer := post(t, base+"/admin/api/"+action, tc.token, "application/json", `{"app":"demo","userId":"u1"}`)
			if code != http.StatusUnauthorized || answer["error"] == nil {
				t.Errorf("%s, %s: %d %v", action, tc.name, code, answer)
			}
		}
		// The token in a cookie is no token: a form of another site could send it.
		req, _ := http.NewRequest(http.MethodPost, base+"/admin/api/"+action, strings.NewReader(`{"app":"demo","userId":"u1"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Cookie", "Authorization=Bearer s3cret; token=s3cret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s with the token in a cookie: %d", action, resp.StatusCode)
		}
		// Actions are POSTs only.
		if code, _, body := get(t, handlerFor(t, demo), "/admin/api/"+action+"?app=demo&userId=u1", "s3cret"); code != http.StatusNotFound || !strings.Contains(body, `"error"`) {
			t.Errorf("GET %s: %d %s", action, code, body)
		}
	}
	// Nothing reached the user, nothing was closed.
	if c := demo.LocalConnections(hub.ConnectionQuery{ID: s.connID}); len(c) != 1 || c[0].MessageCount != 0 {
		t.Errorf("after refused actions: %+v", c)
	}
}

func handlerFor(t *testing.T, hubs ...*hub.Hub) http.Handler {
	t.Helper()
	h, err := admin.New(admin.Config{Token: "s3cret", Hubs: hubs})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestActionBadRequests(t *testing.T) {
	demo := newHub(t, "demo")
	base := newServer(t, demo)
	for _, tc := range []struct {
		name, ctype, body string
		code              int
	}{
		{"no content type", "", `{"app":"demo","userId":"u1"}`, http.StatusUnsupportedMediaType},
		{"form", "application/x-www-form-urlencoded", `app=demo&userId=u1`, http.StatusUnsupportedMediaType},
		{"empty body", "application/json", ``, http.StatusBadRequest},
		{"malformed", "application/json", `{"app":"demo",`, http.StatusBadRequest},
		{"not an object", "application/json", `["demo"]`, http.StatusBadRequest},
		{"unknown field", "application/json", `{"app":"demo","userId":"u1","user":"u2"}`, http.StatusBadRequest},
		{"trailing data", "application/json", `{"app":"demo","userId":"u1"} {}`, http.StatusBadRequest},
		{"too big", "application/json", `{"app":"demo","userId":"u1","data":"` + strings.Repeat("x", 70<<10) + `"}`, http.StatusRequestEntityTooLarge},
		{"no app", "application/json", `{"userId":"u1"}`, http.StatusBadRequest},
		{"unknown app", "application/json", `{"app":"nope","userId":"u1"}`, http.StatusNotFound},
		{"no recipient", "application/json", `{"app":"demo"}`, http.StatusBadRequest},
		{"two recipients", "application/json", `{"app":"demo","userId":"u1","connectionId":"c1"}`, http.StatusBadRequest},
	} {
		for _, action := range []string{"send", "kick"} {
			code, answer := post(t, base+"/admin/api/"+action, "s3cret", tc.ctype, tc.body)
			if code != tc.code || answer["error"] == nil {
				t.Errorf("%s, %s: %d %v, want %d", action, tc.name, code, answer, tc.code)
			}
		}
	}
	for _, ev := range []string{`"a\nb"`, `"a\rb"`, `"a\u0000b"`} {
		code, answer := post(t, base+"/admin/api/send", "s3cret", "application/json", `{"app":"demo","userId":"u1","event":`+ev+`}`)
		if code != http.StatusBadRequest || answer["error"] == nil {
			t.Errorf("event %s: %d %v", ev, code, answer)
		}
	}
}

func TestSendAndKick(t *testing.T) {
	demo, other := newHub(t, "demo"), newHub(t, "other")
	ann1, ann2, bob := openStream(t, demo, "u1", "Ann"), openStream(t, demo, "u1", "Ann"), openStream(t, demo, "u2", "Bob")
	elsewhere := openStream(t, other, "u1", "Ann")
	var log syncbuf.Buffer
	base := serve(t, admin.Config{Token: "s3cret", Hubs: []*hub.Hub{demo, other}, Logger: zerolog.New(&log)})
	send := func(body string) float64 {
		t.Helper()
		code, answer := post(t, base+"/admin/api/send", "s3cret", "application/json; charset=utf-8", body)
		if code != http.StatusOK {
			t.Fatalf("send %s: %d %v", body, code, answer)
		}
		return answer["delivered"].(float64)
	}
	kick := func(body string) float64 {
		t.Helper()
		code, answer := post(t, base+"/admin/api/kick", "s3cret", "application/json", body)
		if code != http.StatusOK {
			t.Fatalf("kick %s: %d %v", body, code, answer)
		}
		return answer["closed"].(float64)
	}

	if n := send(`{"app":"demo","userId":"nobody","data":"x"}`); n != 0 {
		t.Errorf("send to an unknown user: delivered %v", n)
	}
	if n := send(`{"app":"demo","connectionId":"no-such-connection","data":"x"}`); n != 0 {
		t.Errorf("send to an unknown connection: delivered %v", n)
	}
	if n := send(`{"app":"demo","userId":"u1","data":"hello\nthere"}`); n != 2 {
		t.Errorf("send to u1: delivered %v, want 2", n)
	}
	for i, s := range []*stream{ann1, ann2} {
		if ev := s.next(t); ev.name != admin.DefaultTestEvent || ev.data != "hello\nthere" {
			t.Errorf("u1's stream %d got %+v", i, ev)
		}
	}
	if n := send(`{"app":"demo","connectionId":"` + ann2.connID + `","event":"ping","data":"{\"n\":1}"}`); n != 1 {
		t.Errorf("send to one connection: delivered %v", n)
	}
	if ev := ann2.next(t); ev.name != "ping" || ev.data != `{"n":1}` {
		t.Errorf("the connection got %+v", ev)
	}

	if n := kick(`{"app":"demo","userId":"nobody"}`); n != 0 {
		t.Errorf("kick an unknown user: closed %v", n)
	}
	if n := kick(`{"app":"demo","connectionId":"` + ann1.connID + `"}`); n != 1 {
		t.Errorf("kick one connection: closed %v", n)
	}
	ann1.ended(t)
	if n := kick(`{"app":"demo","userId":"u1"}`); n != 1 {
		t.Errorf("kick u1's other connection: closed %v", n)
	}
	ann2.ended(t)
	// Bob on demo and Ann on the other app saw none of it and are still there.
	if n := send(`{"app":"demo","userId":"u2","data":"still here"}`); n != 1 {
		t.Errorf("send to u2: delivered %v", n)
	}
	if ev := bob.next(t); ev.data != "still here" {
		t.Errorf("u2 got %+v", ev)
	}
	if n := send(`{"app":"other","userId":"u1","data":"other app"}`); n != 1 {
		t.Errorf("send to u1 of the other app: delivered %v", n)
	}
	if ev := elsewhere.next(t); ev.data != "other app" {
		t.Errorf("u1 of the other app got %+v", ev)
	}
	// Every action leaves an audit line.
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) != 9 || !strings.Contains(lines[5], `"action":"kick"`) || !strings.Contains(lines[5], `"conn":"`+ann1.connID+`"`) ||
		!strings.Contains(lines[5], `"closed":1`) || !strings.Contains(lines[2], `"user":"u1"`) || !strings.Contains(lines[2], `"delivered":2`) {
		t.Errorf("audit log:\n%s", log.String())
	}
}

func TestSendOnAClosedHub(t *testing.T) {
	demo := newHub(t, "demo")
	base := newServer(t, demo)
	if err := demo.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	code, answer := post(t, base+"/admin/api/send", "s3cret", "application/json", `{"app":"demo","userId":"u1"}`)
	if code != http.StatusServiceUnavailable || answer["error"] == nil {
		t.Errorf("send on a closed hub: %d %v", code, answer)
	}
}
