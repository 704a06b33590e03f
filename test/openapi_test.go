package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pushd/pushd/api/contract"
)

// apiContract is the contract every exchange of do with the server API is
// checked against, loaded once for the package.
var apiContract = sync.OnceValues(contract.New)

// checkContract fails t when a call of the server API (any path under
// /api/) or its answer breaks the OpenAPI contract: an unknown path, an
// undocumented status or field, or a 2xx to a request the contract refuses.
func checkContract(t testing.TB, req *http.Request, sent []byte, resp *http.Response, body []byte) {
	t.Helper()
	if !strings.HasPrefix(req.URL.Path, "/api/") {
		return
	}
	v, err := apiContract()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Check(req.Context(), contract.Exchange{Request: req, RequestBody: sent,
		Status: resp.StatusCode, Header: resp.Header, Body: body}); err != nil {
		t.Errorf("OpenAPI contract: %v", err)
	}
}

// TestAPIContract makes every operation of the contract against a real
// pushd, with good input and bad, and checks each status; do checks each
// exchange against the contract, and the test that none was left out.
func TestAPIContract(t *testing.T) {
	v, err := apiContract()
	if err != nil {
		t.Fatal(err)
	}
	n := startPushd(t, "")
	s := openStream(t, n.url+"/sse/demo/connect?userId=ann&name=Ann&listeners=bell")
	s.frame() // connect-finish
	covered := map[string]bool{}
	call := func(method, url, key, body string, want int) string {
		t.Helper()
		req, _ := http.NewRequest(method, url, nil)
		op, err := v.Operation(req)
		if err != nil {
			t.Fatal(err)
		}
		covered[op] = true
		var header []string
		if key != "" {
			header = []string{"Authorization", "Bearer " + key}
		}
		code, answer := do(t, method, url, "application/json", strings.NewReader(body), header...)
		if code != want {
			t.Errorf("%s %s %.80s: %d %s, want %d", method, url, body, code, answer, want)
		}
		return answer
	}
	api := n.url + "/api/v1/apps/demo/"
	const key = "demo-key"
	send := func(body string, want int) string { t.Helper(); return call("POST", api+"send", key, body, want) }

	if got := send(`{"to":{"userIds":["ann"]},"event":"bell","data":{"n":1}}`, 200); !strings.Contains(got, `"delivered":1`) {
		t.Errorf("send: %s", got)
	}
	if f := s.frame(); field(f, "data") != `{"n":1}` {
		t.Errorf("frame %q", f)
	}
	if got := send(`{"to":{"userIds":["away"]},"event":"bell","data":"kept","qos":true,"ttl":"1h"}`, 200); !strings.Contains(got, `"stored":true`) {
		t.Errorf("qos send: %s", got)
	}
	send(`{"to":{"userIds":["nobody"]},"event":"bell","data":null,"async":true}`, 202)
	batch := send(`[{"to":{"userIds":["ann"]},"event":"bell","data":2},{"to":{"userIds":[""]},"event":"bell"},1,`+
		`{"to":{"listening":true},"event":"bell"},{"to":{"userIds":["ann"]},"event":"bell","data":3,"async":true}]`, 200)
	var items []struct{ Status int }
	if err := json.Unmarshal([]byte(batch), &items); err != nil || len(items) != 5 ||
		items[0].Status != 0 || items[1].Status != 400 || items[2].Status != 400 || items[3].Status != 400 || items[4].Status != 202 {
		t.Errorf("batch: %v %s", err, batch)
	}
	for _, want := range []string{"2", "3"} {
		if f := s.frame(); field(f, "data") != want {
			t.Errorf("batch frame %q, want data %s", f, want)
		}
	}
	code, answers := do(t, "POST", api+"send", contract.NDJSON, strings.NewReader(`{"to":{"userIds":["ann"]},"event":"bell","data":4}`+
		"\n\n{\n"+`{"to":{"listening":true},"event":"bell"}`+"\n"), "Authorization", "Bearer "+key)
	if lines := strings.Split(strings.TrimSpace(answers), "\n"); code != 200 || len(lines) != 3 || !strings.Contains(lines[0], `"delivered":1`) ||
		!strings.Contains(lines[1], `"status":400`) || !strings.Contains(lines[2], `"status":400`) {
		t.Errorf("streamed batch: %d %s", code, answers)
	}
	if f := s.frame(); field(f, "data") != "4" {
		t.Errorf("streamed batch frame %q", f)
	}
	if got := call("POST", api+"subscribe", key, `{"to":{"userIds":["ann"]},"channels":["room-7"]}`, 200); got != `{"changed":1}`+"\n" {
		t.Errorf("subscribe: %s", got)
	}
	if got := send(`{"to":{"channels":["room-7"]},"event":"bell","data":5}`, 200); !strings.Contains(got, `"delivered":1`) {
		t.Errorf("send to the channel: %s", got)
	}
	if f := s.frame(); field(f, "data") != "5" {
		t.Errorf("channel frame %q", f)
	}
	if got := call("GET", api+"channels?prefix=room-&pageSize=10", key, "", 200); !strings.Contains(got, `{"name":"room-7","connections":1,"users":1}`) {
		t.Errorf("channels: %s", got)
	}
	if got := call("GET", api+"channels/room-7/presence?pageSize=1", key, "", 200); !strings.Contains(got, `"users":[{"id":"ann","name":"Ann","connections":1}]`) ||
		!strings.Contains(got, `"channels":["room-7"]`) {
		t.Errorf("presence: %s", got)
	}
	if got := call("GET", api+"channels/room-7/history?limit=10", key, "", 200); !strings.Contains(got, `"event":"bell","data":"5"`) {
		t.Errorf("history: %s", got)
	}
	call("GET", api+"channels/room-7/history?limit=0", key, "", 400)
	call("GET", api+"channels/room-7/history?after=x", key, "", 400)
	call("POST", api+"subscribe", key, `{"to":{},"channels":["room-7"]}`, 400)
	call("POST", api+"subscribe", key, `{"to":{"userIds":["ann"]},"channels":["a\nb"]}`, 400)
	call("POST", api+"unsubscribe", key, `{"to":{"userIds":["ann"]},"channels":[]}`, 400)
	if got := call("POST", api+"unsubscribe", key, `{"to":{"userIds":["ann"]},"channels":["room-7"]}`, 200); got != `{"changed":1}`+"\n" {
		t.Errorf("unsubscribe: %s", got)
	}
	send(`{}`, 400)
	send(`{"to":{"all":true},"event":"a\r\nevent: x"}`, 400)
	send(`{"to":{"all":true},"event":"a","extra":1}`, 400)
	send(`{"to":{"all":true},"event":"a","ttl":"1h"}`, 400)
	send(`{"to":{"all":true},"event":"a"} {}`, 400)
	send(fmt.Sprintf(`{"to":{"all":true},"event":"a","data":%q}`, strings.Repeat("x", 1<<20+1)), 413)
	call("POST", api+"send", "", `{"to":{"all":true},"event":"a"}`, 401)
	call("POST", api+"send", "wrong", `{"to":{"all":true},"event":"a"}`, 401)
	call("GET", n.url+"/api/v1/apps/nope/stats", key, "", 404)

	call("GET", api+"users", key, "", 200)
	if got := call("GET", api+"users?name=an&pageNum=1&pageSize=1", key, "", 200); !strings.Contains(got, `"id":"ann"`) {
		t.Errorf("users: %s", got)
	}
	call("GET", api+"users?pageSize=0", key, "", 200)
	if got := call("GET", api+"connections?userId=ann", key, "", 200); !strings.Contains(got, `"listeners":["bell"]`) {
		t.Errorf("connections: %s", got)
	}
	call("GET", api+"connections?name=nobody&pageNum=2&pageSize=5", key, "", 200)
	call("GET", api+"stats", key, "", 200)
	if got := call("GET", api+"online?userId=ann", key, "", 200); !strings.Contains(got, `"online":true`) {
		t.Errorf("online: %s", got)
	}
	call("GET", api+"online", key, "", 400)
	if got := call("GET", api+"messages?userId=away", key, "", 200); !strings.Contains(got, `"data":"kept"`) {
		t.Errorf("messages: %s", got)
	}
	call("GET", api+"messages?tenantId=none&listeners=bell,news", key, "", 200)
	if got := call("POST", api+"duration", key, `{"to":{"userIds":["ann"]},"seconds":60}`, 200); !strings.Contains(got, `"reached":1`) {
		t.Errorf("duration: %s", got)
	}
	call("POST", api+"duration", key, `{"to":{"userIds":["ann"]},"seconds":-1}`, 400)
	call("POST", api+"disconnect", key, `{}`, 400)
	if got := call("POST", api+"disconnect", key, `{"userIds":["ann"]}`, 200); !strings.Contains(got, `"disconnected":1`) {
		t.Errorf("disconnect: %s", got)
	}
	if got := call("GET", n.url+"/api/v1/openapi.yaml", "", "", 200); !strings.HasPrefix(got, "openapi: 3.1.") {
		t.Errorf("contract: %.40q", got)
	}

	for _, op := range v.Operations() {
		if !covered[op] {
			t.Errorf("no call of %s", op)
		}
	}
}

// TestGeneratedClient generates a TypeScript client from the contract as
// pushd serves it (openapi-typescript, with openapi-fetch for the calls,
// api/typescript), type-checks the example backend against it and runs it
// against a real pushd. It is skipped without npm or when `npm ci` fails
// (the npm registry cannot be reached), and fails in both cases when CI is
// set.
func TestGeneratedClient(t *testing.T) {
	requireTool(t, "npm", "the client generated from the contract")
	dir := t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json", "tsconfig.json", "example.ts"} {
		b, err := os.ReadFile(filepath.Join("..", "api", "typescript", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	install := exec.Command("npm", "ci", "--no-audit", "--no-fund")
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		// Like requireTool: a skip on a developer's machine, a failure under CI,
		// where the generated client must be tested.
		if os.Getenv("CI") != "" {
			t.Fatalf("npm ci failed and CI is set: the client generated from the contract is not tested: %v\n%s", err, out)
		}
		t.Skipf("npm ci (is the npm registry reachable? CI=1 makes this a failure): %v\n%s", err, out)
	}

	n := startPushd(t, "")
	s := openStream(t, n.url+"/sse/demo/connect?userId=ann&listeners=bell")
	s.frame() // connect-finish
	run("npx", "openapi-typescript", n.url+"/api/v1/openapi.yaml", "-o", "schema.d.ts")
	run("npx", "tsc", "-p", ".")
	out := run("node", "dist/example.js", n.url, "demo", "demo-key", "ann")

	var got struct {
		Delivered int
		Online    bool
		Users     []string
		Listeners []string
		Refused   struct {
			Status int
			Error  string
		}
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got.Delivered != 1 || !got.Online || !slices.Equal(got.Users, []string{"ann"}) ||
		!slices.Equal(got.Listeners, []string{"bell"}) || got.Refused.Status != 400 || got.Refused.Error == "" {
		t.Fatalf("the generated client saw %+v", got)
	}
	if f := s.frame(); field(f, "event") != "bell" || field(f, "data") != `{"count":1}` {
		t.Fatalf("frame %q", f)
	}
}
