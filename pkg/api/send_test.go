package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/pkg/api"
	"github.com/pushd/pushd/pkg/auth"
	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/qos"
	"github.com/pushd/pushd/pkg/web"
)

// node is an in-process pushd on a real HTTP server: app "demo" with API
// key "k", demo authentication, a memory QoS store.
type node struct {
	url string
	hub *hub.Hub
}

func startNode(t *testing.T, cfg api.Config) *node {
	t.Helper()
	repo, err := qos.NewMemory(qos.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(hub.Config{App: "demo", NodeID: "n1", Repository: repo})
	if err != nil {
		t.Fatal(err)
	}
	wh, err := web.New(web.Config{Hub: h, Path: "/sse/demo", Auth: auth.Demo{}})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Apps = map[string]api.App{"demo": {Hub: h, Keys: []string{"k"}}}
	ah, err := api.New(cfg)
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
		_ = repo.Close()
	})
	return &node{url: srv.URL, hub: h}
}

// post sends body to …/send with the API key and returns the status and
// answer.
func (n *node) post(t *testing.T, body string) (int, string) {
	t.Helper()
	return n.do(t, http.MethodPost, "/api/v1/apps/demo/send", body)
}

// do makes an API call with the API key.
func (n *node) do(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, n.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer k")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	return resp.StatusCode, string(b)
}

// events opens a browser connection of user and returns its events
// after connect-finish, as "name data" lines.
func (n *node) events(t *testing.T, user string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.url+"/sse/demo/connect?userId="+user, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	out := make(chan string, 64)
	finished := make(chan struct{})
	go func() {
		defer close(out)
		r := bufio.NewReader(resp.Body)
		var event string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case strings.HasPrefix(line, "event:"):
				event = line[len("event:"):]
			case strings.HasPrefix(line, "data:") && event == "connect-finish":
				close(finished)
			case strings.HasPrefix(line, "data:"):
				out <- event + " " + line[len("data:"):]
			}
		}
	}()
	select {
	case <-finished:
	case <-time.After(5 * time.Second):
		t.Fatalf("no connect-finish for %s", user)
	}
	return out
}

// next returns the next event of a stream, waiting at most 5 s.
func next(t *testing.T, events <-chan string) string {
	t.Helper()
	select {
	case e, ok := <-events:
		if !ok {
			t.Fatal("stream ended")
		}
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5 s")
	}
	return ""
}

// item is one result of a batch, any shape.
type item struct {
	Delivered *int   `json:"delivered"`
	Stored    bool   `json:"stored"`
	ID        string `json:"id"`
	Error     string `json:"error"`
	Status    int    `json:"status"`
}

func TestBatchSend(t *testing.T) {
	n := startNode(t, api.Config{})
	u1, u2 := n.events(t, "u1"), n.events(t, "u2")
	status, body := n.post(t, `[
		{"to":{"userIds":["u1"]},"event":"a","data":"one"},
		{"to":{"userIds":["u2"]},"event":"b","data":{"x": 1}},
		{"to":{"userIds":["u1"]},"event":"bad\r\nid:1","data":"x"},
		{"to":{"userIds":["nobody"]},"event":"c"},
		{"to":{"userIds":["u1"]},"event":"q","data":"stored","qos":true,"ttl":"1h"},
		5,
		{"to":{"userIds":["u2"]},"event":"later","data":"async","async":true},
		{"to":{"userIds":["u1","u2"]},"event":"both","data":[1, 2]},
		{"to":{"userIds":["u1"]},"event":"e","bogus":true}
	]`)
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	var items []item
	if err := json.Unmarshal([]byte(body), &items); err != nil {
		t.Fatalf("answer %s: %v", body, err)
	}
	delivered := func(i, want int) {
		t.Helper()
		if it := items[i]; it.Delivered == nil || *it.Delivered != want || it.Error != "" || it.Status != 0 {
			t.Errorf("item %d: %+v; want delivered %d", i, it, want)
		}
	}
	refused := func(i, status int, text string) {
		t.Helper()
		if it := items[i]; it.Status != status || !strings.Contains(it.Error, text) || it.Delivered != nil {
			t.Errorf("item %d: %+v; want %d %q", i, it, status, text)
		}
	}
	if len(items) != 9 {
		t.Fatalf("%d results: %s", len(items), body)
	}
	delivered(0, 1)
	delivered(1, 1)
	refused(2, http.StatusBadRequest, "CR, LF or NUL")
	delivered(3, 0)
	delivered(4, 1)
	if !items[4].Stored || items[4].ID == "" {
		t.Errorf("qos item: %+v", items[4])
	}
	refused(5, http.StatusBadRequest, "a JSON object is expected")
	if it := items[6]; it.Status != http.StatusAccepted || it.ID == "" || it.Delivered != nil {
		t.Errorf("async item: %+v", it)
	}
	delivered(7, 2)
	refused(8, http.StatusBadRequest, `unknown field "bogus"`)

	for _, want := range []string{"a one", "q stored", "both [1,2]"} {
		if got := next(t, u1); got != want {
			t.Errorf("u1 got %q; want %q", got, want)
		}
	}
	// The async item goes out in the background, before or after the
	// sync items that follow it.
	got := []string{next(t, u2), next(t, u2), next(t, u2)}
	if got[0] != `b {"x":1}` || !slices.Contains(got, "both [1,2]") || !slices.Contains(got, "later async") {
		t.Errorf("u2 got %q", got)
	}
}

func TestBatchBounds(t *testing.T) {
	n := startNode(t, api.Config{MaxBatch: 3, MaxBody: 1024})
	u1 := n.events(t, "u1")
	one := `{"to":{"userIds":["u1"]},"event":"refused"}`
	for _, tc := range []struct {
		name, body string
		status     int
		text       string
	}{
		{"over MaxBatch", "[" + strings.Repeat(one+",", 3) + one + "]", http.StatusRequestEntityTooLarge, "batch of more than 3 sends"},
		{"over MaxBody", "[" + strings.Repeat(one+",", 30) + one + "]", http.StatusRequestEntityTooLarge, "body over 1024 bytes"},
		{"malformed array", "[" + one + ",", http.StatusBadRequest, "malformed JSON"},
		{"garbage after the array", "[" + one + "] x", http.StatusBadRequest, "malformed JSON"},
		{"empty body", " ", http.StatusBadRequest, "empty body"},
	} {
		status, body := n.post(t, tc.body)
		var e struct{ Error string }
		if status != tc.status || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, tc.text) {
			t.Errorf("%s: %d %s; want %d %q", tc.name, status, body, tc.status, tc.text)
		}
	}
	if status, body := n.post(t, "[]"); status != http.StatusOK || body != "[]\n" {
		t.Errorf("empty batch: %d %q", status, body)
	}
	// Nothing of the refused batches went out: the next event is this one.
	if status, body := n.post(t, `[{"to":{"userIds":["u1"]},"event":"after"}]`); status != http.StatusOK {
		t.Fatalf("batch: %d %s", status, body)
	}
	if got := next(t, u1); got != "after " {
		t.Errorf("u1 got %q; want the event after the refused batches", got)
	}
}

// TestSendAnswers checks the single send's answers, byte for byte where
// a backend might compare them.
func TestSendAnswers(t *testing.T) {
	n := startNode(t, api.Config{})
	n.events(t, "u1")
	for _, tc := range []struct {
		name, body string
		status     int
		want       string // the answer, or a part of its error
	}{
		{"send", `{"to":{"userIds":["u1"]},"event":"e","data":{"a": 1}}`, http.StatusOK, `{"delivered":1,"stored":false}` + "\n"},
		{"nobody online", `{"to":{"userIds":["u9"]},"event":"e"}`, http.StatusOK, `{"delivered":0,"stored":false}` + "\n"},
		{"unknown field", `{"to":{"userIds":["u1"]},"event":"e","x":1}`, http.StatusBadRequest, `malformed JSON: unknown field \"x\"`},
		{"wrong type", `{"to":{"userIds":"u1"},"event":"e"}`, http.StatusBadRequest, "to.userIds: an array of strings is expected, not a string"},
		{"two values", `{"to":{"all":true},"event":"e"} {}`, http.StatusBadRequest, "malformed JSON"},
		{"not an object", `"send"`, http.StatusBadRequest, "a JSON object is expected"},
		{"null", `null`, http.StatusBadRequest, "empty event name"},
		{"ttl without qos", `{"to":{"all":true},"event":"e","ttl":"1h"}`, http.StatusBadRequest, "ttl applies to qos sends only"},
	} {
		status, body := n.post(t, tc.body)
		if status != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s; want %d %s", tc.name, status, body, tc.status, tc.want)
		}
	}
	status, body := n.post(t, `{"to":{"userIds":["u1"]},"event":"e","qos":true}`)
	var res api.SendResponse
	if status != http.StatusOK || json.Unmarshal([]byte(body), &res) != nil || !res.Stored || res.ID == "" || res.Delivered != 1 {
		t.Errorf("qos send: %d %s", status, body)
	}
	status, body = n.post(t, `{"to":{"userIds":["u1"]},"event":"e","async":true}`)
	var acc struct{ ID string }
	if status != http.StatusAccepted || json.Unmarshal([]byte(body), &acc) != nil || acc.ID == "" || strings.Contains(body, "status") {
		t.Errorf("async send: %d %s", status, body)
	}
}

// TestSendRouting checks that sends reach the handler as the mux routes
// them, whether or not the path takes the fast way.
func TestSendRouting(t *testing.T) {
	n := startNode(t, api.Config{})
	const body = `{"to":{"all":true},"event":"e"}`
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{http.MethodPost, "/api/v1/apps/demo/send", http.StatusOK},
		{http.MethodPost, "/api/v1/apps/de%6Do/send", http.StatusOK},
		{http.MethodPost, "/api/v1/apps/other/send", http.StatusNotFound},
		{http.MethodPost, "/api/v1/apps/demo/send/", http.StatusNotFound},
		{http.MethodPost, "/api/v1/apps/demo/x/send", http.StatusNotFound},
		{http.MethodPost, "/api/v1/apps//send", http.StatusTemporaryRedirect}, // the mux cleans the path
		{http.MethodPost, "/api/v1/apps/../send", http.StatusTemporaryRedirect},
		{http.MethodGet, "/api/v1/apps/demo/send", http.StatusNotFound},
	} {
		req, err := http.NewRequest(tc.method, n.url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.URL.Opaque = tc.path // sent as it is, not cleaned
		req.Header.Set("Authorization", "Bearer k")
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: %d; want %d", tc.method, tc.path, resp.StatusCode, tc.status)
		}
	}
}

// TestStreamedBatch sends NDJSON lines one by one over one call and reads
// each result before the next line is written: answers flow while the
// body is still being sent.
func TestStreamedBatch(t *testing.T) {
	n := startNode(t, api.Config{MaxBody: 256})
	u1 := n.events(t, "u1")
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, n.url+"/api/v1/apps/demo/send", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer k")
	req.Header.Set("Content-Type", "application/x-ndjson; charset=utf-8")
	answered := make(chan *http.Response, 1)
	failed := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			failed <- err
			return
		}
		answered <- resp
	}()
	write := func(line string) {
		t.Helper()
		if _, err := io.WriteString(pw, line); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"to":{"userIds":["u1"]},"event":"e","data":"one"}` + "\n")
	var resp *http.Response
	select {
	case resp = <-answered:
	case err := <-failed:
		t.Fatal(err)
	case <-time.After(5 * time.Second):
		t.Fatal("no answer to the first line within 5 s")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("answer %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	results := bufio.NewReader(resp.Body)
	result := func() item {
		t.Helper()
		line, err := results.ReadString('\n')
		if err != nil {
			t.Fatalf("result line: %q %v", line, err)
		}
		var it item
		if err := json.Unmarshal([]byte(line), &it); err != nil {
			t.Fatalf("result %q: %v", line, err)
		}
		return it
	}
	if it := result(); it.Delivered == nil || *it.Delivered != 1 {
		t.Errorf("first result %+v", it)
	}
	if got := next(t, u1); got != "e one" {
		t.Errorf("u1 got %q", got)
	}
	for _, tc := range []struct {
		line   string
		status int
	}{
		{`{"to":{"userIds":["u1"]},"event":"e","data":"two"}` + "\n\n  \n", 0},
		{`{"to":` + "\n", http.StatusBadRequest},
		{`{"to":{"userIds":["u1"]},"event":"e","data":"` + strings.Repeat("x", 300) + `"}` + "\n", http.StatusRequestEntityTooLarge},
		{`[1]` + "\n", http.StatusBadRequest},
		{`{"to":{"userIds":["u1"]},"event":"e","data":"three","async":true}` + "\n", http.StatusAccepted},
	} {
		write(tc.line)
		if it := result(); it.Status != tc.status || (tc.status == 0) != (it.Delivered != nil) {
			t.Errorf("line %.40q: %+v; want status %d", tc.line, it, tc.status)
		}
	}
	write(`{"to":{"userIds":["u1"]},"event":"e","data":"last"}`) // no newline: the end of the body ends it
	pw.Close()
	if it := result(); it.Delivered == nil || *it.Delivered != 1 {
		t.Errorf("last result %+v", it)
	}
	if rest, err := io.ReadAll(results); err != nil || len(rest) != 0 {
		t.Errorf("after the last result: %q %v", rest, err)
	}
	// The async line goes out in the background, before or after the
	// last one.
	got := []string{next(t, u1), next(t, u1), next(t, u1)}
	if got[0] != "e two" || !slices.Contains(got, "e three") || !slices.Contains(got, "e last") {
		t.Errorf("u1 got %q", got)
	}
}
