package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/await"
	"github.com/pushd/pushd/pkg/transport/nacos/registry/nacostest"
)

// loggedServer is a pushd server run in this process whose log is read
// line by line from a pipe, as from a redirected stderr.
type loggedServer struct {
	url  string
	mu   sync.Mutex
	logs []string
	stop func()
}

// lines returns the log lines written so far.
func (l *loggedServer) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.logs...)
}

// waitLine waits for a log line that has every one of the fragments.
func (l *loggedServer) waitLine(t *testing.T, fragments ...string) string {
	t.Helper()
	var found string
	await.True(t, 20*time.Second, fmt.Sprintf("a log line with %q", fragments), func() bool {
		for _, line := range l.lines() {
			ok := true
			for _, f := range fragments {
				ok = ok && strings.Contains(line, f)
			}
			if ok {
				found = line
				return true
			}
		}
		return false
	})
	return found
}

// startLogged runs pushd with config (the embedded demo when empty) and
// env, and waits until it serves (and with ready until /readyz says so); stop (also run at cleanup) shuts it
// down and reads the log to its end.
func startLogged(t *testing.T, config string, ready bool, env ...string) *loggedServer {
	t.Helper()
	file := ""
	if config != "" {
		file = writeConfig(t, config)
	}
	cfg, err := loadConfig(file, append([]string{"PUSHD_SHUTDOWN_DRAIN_WINDOW=10ms", "PUSHD_LOG_LEVEL=debug"}, env...))
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	l := &loggedServer{}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			l.mu.Lock()
			l.logs = append(l.logs, sc.Text())
			l.mu.Unlock()
		}
	}()
	s, err := newServer(cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.url = "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.serve(ctx, ln) }()
	var once sync.Once
	l.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-served; err != nil {
				t.Errorf("serve: %v", err)
			}
			_ = w.Close()
			<-read
			_ = r.Close()
		})
	}
	t.Cleanup(l.stop)
	l.waitLine(t, `"message":"pushd started"`)
	await.Until(t, 20*time.Second, func() error { // the transport subscribed, the stores reached
		if code := l.call(t, http.MethodGet, "/readyz", ""); code != http.StatusOK && ready {
			return fmt.Errorf("readyz %d", code)
		}
		return nil
	})
	return l
}

// call makes an HTTP request to the server on a new connection (so that
// the listener sorts it by this request: api.Handler.Listener) and returns
// the status.
func (l *loggedServer) call(t *testing.T, method, path, body string, header ...string) int {
	t.Helper()
	req, err := http.NewRequest(method, l.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	tr := &http.Transport{} // keep-alive: a Connection: close request is net/http's
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// openStream connects a browser of user and waits for its first frame.
func (l *loggedServer) openStream(t *testing.T, app, user string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, l.url+"/sse/"+app+"/connect?userId="+user, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("connect %s: %d", user, resp.StatusCode)
	}
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
}

// checkJSONLines fails t for every line that is not exactly one JSON
// object, or has a key twice in one object (encoding/json would keep the
// last silently, and log stores disagree about which one counts).
func checkJSONLines(t *testing.T, lines []string) {
	t.Helper()
	if len(lines) == 0 {
		t.Fatal("no log lines")
	}
	for _, line := range lines {
		if err := uniqueKeysObject(line); err != nil {
			t.Errorf("log line %q: %v", line, err)
		}
	}
}

func uniqueKeysObject(line string) error {
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != json.Delim('{') {
		return errors.New("not a JSON object")
	}
	if err := uniqueKeys(dec, "{"); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("more than one JSON value on the line")
	}
	return nil
}

// uniqueKeys reads the rest of an object or array whose opening delimiter
// was read, checking every object in it.
func uniqueKeys(dec *json.Decoder, open string) error {
	seen := map[string]bool{}
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if tok == json.Delim('}') || tok == json.Delim(']') {
			return nil
		}
		if open == "{" {
			key := tok.(string)
			if seen[key] {
				return fmt.Errorf("key %q twice", key)
			}
			seen[key] = true
			if tok, err = dec.Token(); err != nil {
				return err
			}
		}
		if d, ok := tok.(json.Delim); ok {
			if err := uniqueKeys(dec, d.String()); err != nil {
				return err
			}
		}
	}
}

func TestUniqueKeysChecker(t *testing.T) {
	for line, ok := range map[string]bool{
		`{"node":"a","component":"x"}`:              true,
		`{"a":{"b":1,"c":[{"d":1},{"d":2}]}}`:       true,
		`{"node":"a","component":"x","node":"a"}`:   false,
		`{"a":{"b":1,"b":2}}`:                       false,
		`{"a":1} {"b":2}`:                           false,
		"\x1b[90m12:00:00\x1b[0m INF pushd started": false,
	} {
		if err := uniqueKeysObject(line); (err == nil) != ok {
			t.Errorf("%s: %v, want ok=%v", line, err, ok)
		}
	}
}

// TestLogLinesAreJSONWithUniqueKeys runs pushd as the demo, with the
// Redis transport and with the nacos transport whose peers come from an
// in-process Nacos (the SDK's own log routed too), has it serve a
// browser and a send, and reads every line it logged to a pipe: each one
// is one JSON object with unique keys.
func TestLogLinesAreJSONWithUniqueKeys(t *testing.T) {
	traffic := func(t *testing.T, l *loggedServer) {
		l.openStream(t, "demo", "alice")
		if code := l.call(t, http.MethodPost, "/api/v1/apps/demo/send", `{"to":{"userIds":["alice"]},"event":"hi","data":"x"}`,
			"Authorization", "Bearer demo-key"); code != http.StatusOK {
			t.Errorf("send: %d", code)
		}
		l.call(t, http.MethodGet, "/api/v1/apps/demo/users", "") // 401, logged or not
	}
	const app = `
apps:
  - name: demo
    auth: {mode: demo}
    api_keys: [demo-key]
`
	t.Run("demo", func(t *testing.T) {
		l := startLogged(t, "", true, "PUSHD_LOG_SUMMARY=50ms")
		traffic(t, l)
		l.waitLine(t, `"message":"summary"`, `"sends":1`)
		l.stop()
		checkJSONLines(t, l.lines())
	})
	t.Run("redis", func(t *testing.T) {
		l := startLogged(t, "node_id: logs-redis\ncluster: {transport: redis, redis_url: \"redis://127.0.0.1:6379/0\", prefix: pushd-logtest}\n"+app, true)
		traffic(t, l)
		l.stop()
		lines := l.lines()
		checkJSONLines(t, lines)
		if all := strings.Join(lines, "\n"); !strings.Contains(all, `"cluster":"redis"`) || !strings.Contains(all, `"component":"hub"`) {
			t.Errorf("no start line of the redis transport or no line of the hub in:\n%s", all)
		}
	})
	t.Run("nacos", func(t *testing.T) {
		srv, err := nacostest.Start("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Close)
		l := startLogged(t, fmt.Sprintf(`node_id: logs-nacos
cluster:
  transport: nacos
  secret: "0123456789abcdef0123456789abcdef"
  peer_listen: "127.0.0.1:0"
  advertise_addr: "127.0.0.1:1"
  nacos: {servers: [%q], dir: %q}
`, srv.ClientAddr(), t.TempDir())+app, true)
		traffic(t, l)
		l.stop()
		lines := l.lines()
		checkJSONLines(t, lines)
		all := strings.Join(lines, "\n")
		if !strings.Contains(all, `"component":"nacos-transport"`) && !strings.Contains(all, `"component":"nacos-discovery"`) {
			t.Errorf("no line of the nacos transport or registry in:\n%s", all)
		}
	})
}

// TestSummaryCountsErrors: a QoS send that the store refuses (its Redis
// is not there: 503) is an error in the next summary, and go-redis's own
// line about the failed dial is a JSON line of component redis — with the
// send served by the lean API path and by net/http alike.
func TestSummaryCountsErrors(t *testing.T) {
	for _, server := range []string{"lean", "net/http"} {
		t.Run(strings.ReplaceAll(server, "/", ""), func(t *testing.T) { testSummaryCountsErrors(t, server) })
	}
}

func testSummaryCountsErrors(t *testing.T, apiServer string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nobody listens there now
	l := startLogged(t, fmt.Sprintf(`
qos: {repository: redis, redis_url: "redis://%s/0"}
apps:
  - name: demo
    auth: {mode: demo}
    api_keys: [demo-key]
`, dead), false, "PUSHD_LOG_SUMMARY=50ms", "PUSHD_HTTP_API_SERVER="+apiServer)
	code := l.call(t, http.MethodPost, "/api/v1/apps/demo/send", `{"to":{"userIds":["bob"]},"event":"hi","data":"x","qos":true}`,
		"Authorization", "Bearer demo-key")
	if code < 500 {
		t.Fatalf("a QoS send to a store that is down answered %d, want 5xx", code)
	}
	line := l.waitLine(t, `"message":"summary"`, `"errors":1`)
	var summary map[string]any
	if err := json.Unmarshal([]byte(line), &summary); err != nil || summary["app"] != "demo" {
		t.Errorf("summary %q: %v", line, err)
	}
	redisLine := l.waitLine(t, `"component":"redis"`, "failed to dial")
	var fields map[string]any
	if err := json.Unmarshal([]byte(redisLine), &fields); err != nil || fields["level"] != "warn" {
		t.Errorf("go-redis line %q is not a JSON warning: %v", redisLine, err)
	}
	l.stop()
	checkJSONLines(t, l.lines())
}
