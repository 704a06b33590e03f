package api

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pushd/pushd/pkg/hub"
)

// leanNode is a Handler behind an http.Server on Handler.Listener, with
// one more route (/other) net/http serves; plain is the same handler on
// a plain listener, to compare answers with.
type leanNode struct {
	addr, plain string
	ln          *leanListener
	mu          sync.Mutex
	conns       []net.Conn // the connections net/http got, in order
}

func startLean(t testing.TB, cfg LeanConfig, acfg Config) *leanNode {
	t.Helper()
	hb, err := hub.New(hub.Config{App: "demo", NodeID: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hb.Shutdown(context.Background()) })
	acfg.Apps = map[string]App{"demo": {Hub: hb, Keys: []string{"k1"}}}
	handler, err := New(acfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", handler)
	mux.HandleFunc("/other", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "other") })
	n := &leanNode{}
	serve := func(ln net.Listener) {
		srv := &http.Server{Handler: mux, ConnState: func(c net.Conn, s http.ConnState) {
			if s == http.StateNew {
				n.mu.Lock()
				n.conns = append(n.conns, c)
				n.mu.Unlock()
			}
		}}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.ln = handler.Listener(raw, cfg).(*leanListener)
	n.addr = raw.Addr().String()
	serve(n.ln)
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.plain = plain.Addr().String()
	serve(plain)
	return n
}

// sendRequest is a raw POST …/send with key and extra header lines.
func sendRequest(key, body string, extra ...string) string {
	head := "POST /api/v1/apps/demo/send HTTP/1.1\r\nHost: pushd\r\n"
	if key != "" {
		head += "Authorization: Bearer " + key + "\r\n"
	}
	for _, h := range extra {
		head += h + "\r\n"
	}
	return head + fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
}

// roundTrip writes req on nc and reads one answer.
func roundTrip(t *testing.T, nc net.Conn, br *bufio.Reader, req string) (*http.Response, string) {
	t.Helper()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", req, err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp, string(b)
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return nc, bufio.NewReader(nc)
}

// awaitEOF reads nc until it ends, at most 10 s.
func awaitEOF(t *testing.T, nc net.Conn, br *bufio.Reader) {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, br); err != nil {
		t.Fatalf("the connection did not end: %v", err)
	}
}

// TestLeanAnswersAsNetHTTP makes each call on the lean path and on net/http
// and compares status, type, body and whether the connection stays: the
// key is checked, limits and errors are the handler's.
func TestLeanAnswersAsNetHTTP(t *testing.T) {
	n := startLean(t, LeanConfig{}, Config{MaxBody: 200})
	send := `{"to":{"userIds":["u1"]},"event":"e","data":"x"}`
	cases := []struct {
		name, req string
		lean      bool // served by the lean path
	}{
		{"send", sendRequest("k1", send), true},
		{"send as JSON", sendRequest("k1", send, "Content-Type: application/json"), true},
		{"batch", sendRequest("k1", "["+send+","+send+"]"), true},
		{"bad key", sendRequest("k2", send), true},
		{"no key", sendRequest("", send), true},
		{"malformed", sendRequest("k1", `{"to":`), true},
		{"unknown field", sendRequest("k1", `{"bogus":1}`), true},
		{"empty body", sendRequest("k1", ""), true},
		{"body over MaxBody", sendRequest("k1", `{"data":"`+strings.Repeat("x", 300)+`"}`), true},
		{"unknown app", strings.Replace(sendRequest("k1", send), "/apps/demo/", "/apps/nope/", 1), true},
		{"lower-case headers", strings.NewReplacer("Authorization:", "authorization:", "Content-Length:", "content-length:").Replace(sendRequest("k1", send)), true},
		{"chunked", "POST /api/v1/apps/demo/send HTTP/1.1\r\nHost: pushd\r\nAuthorization: Bearer k1\r\nTransfer-Encoding: chunked\r\n\r\n" +
			fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(send), send), false},
		{"NDJSON", sendRequest("k1", send+"\n", "Content-Type: application/x-ndjson"), false},
		{"HTTP/1.0", strings.Replace(sendRequest("k1", send), "HTTP/1.1", "HTTP/1.0", 1), false},
		{"query", strings.Replace(sendRequest("k1", send), "/send ", "/send?x=1 ", 1), false},
		{"users", "GET /api/v1/apps/demo/users HTTP/1.1\r\nHost: pushd\r\nAuthorization: Bearer k1\r\n\r\n", false},
		{"no Host", strings.Replace(sendRequest("k1", send), "Host: pushd\r\n", "", 1), false},
		{"two lengths", sendRequest("k1", send, "Content-Length: 3"), false},
		{"bad header name", sendRequest("k1", send, "X Bad: 1"), false},
		{"control byte", sendRequest("k1", send, "X-Note: a\x01b"), false},
		{"bad Host", strings.Replace(sendRequest("k1", send), "Host: pushd", "Host: a/b", 1), false},
		{"folded header", sendRequest("k1", send, "X-Note: a", " b"), false},
		{"Expect", sendRequest("k1", send, "Expect: 100-continue"), false},
		{"Connection: close", sendRequest("k1", send, "Connection: close"), false},
		{"keep-alive", sendRequest("k1", send, "Connection: keep-alive"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := n.ln.served.Load()
			lc, lbr := dial(t, n.addr)
			lresp, lbody := roundTrip(t, lc, lbr, tc.req)
			pc, pbr := dial(t, n.plain)
			presp, pbody := roundTrip(t, pc, pbr, tc.req)
			if lresp.StatusCode != presp.StatusCode || lbody != pbody ||
				lresp.Header.Get("Content-Type") != presp.Header.Get("Content-Type") || lresp.Close != presp.Close {
				t.Errorf("lean: %d %q %q close=%v; net/http: %d %q %q close=%v", lresp.StatusCode, lresp.Header.Get("Content-Type"), lbody, lresp.Close,
					presp.StatusCode, presp.Header.Get("Content-Type"), pbody, presp.Close)
			}
			if tc.lean && lresp.Header.Get("Date") == "" {
				t.Errorf("no Date")
			}
			if served := n.ln.served.Load() - before; served != map[bool]int64{true: 1}[tc.lean] {
				t.Errorf("served lean: %d", served)
			}
		})
	}
}

// TestLeanHandsOffMidConnection: a request the lean path does not serve,
// on a connection it served, goes to net/http with the bytes already
// read, and the connection keeps working; a connection that never was
// an API call reaches net/http as the socket itself.
func TestLeanHandsOffMidConnection(t *testing.T) {
	n := startLean(t, LeanConfig{}, Config{})
	send := sendRequest("k1", `{"to":{"all":true},"event":"e"}`)
	nc, br := dial(t, n.addr)
	// Two sends in one write, then one for net/http right behind them.
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(nc, send+send+"GET /other HTTP/1.1\r\nHost: pushd\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{`{"delivered":0,"stored":false}` + "\n", `{"delivered":0,"stored":false}` + "\n", "other"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != want {
			t.Fatalf("answer %d: %d %q, want %q", i, resp.StatusCode, b, want)
		}
	}
	if got := n.ln.served.Load(); got != 2 {
		t.Fatalf("served lean: %d, want 2", got)
	}
	if resp, body := roundTrip(t, nc, br, send); resp.StatusCode != 200 || !strings.Contains(body, `"delivered":0`) {
		t.Fatalf("a send after the hand-off: %d %q", resp.StatusCode, body)
	}
	oc, obr := dial(t, n.addr)
	if resp, body := roundTrip(t, oc, obr, "GET /other HTTP/1.1\r\nHost: pushd\r\n\r\n"); body != "other" {
		t.Fatalf("GET /other: %d %q", resp.StatusCode, body)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var handed, untouched net.Conn
	for _, c := range n.conns {
		if c.LocalAddr().String() != n.addr {
			continue // the plain server's
		}
		switch c.RemoteAddr().String() {
		case nc.LocalAddr().String():
			handed = c
		case oc.LocalAddr().String():
			untouched = c
		}
	}
	if _, ok := handed.(*handoffConn); !ok {
		t.Errorf("the handed-off connection is a %T", handed)
	}
	if _, ok := handed.(syscall.Conn); !ok {
		t.Errorf("the handed-off connection has no SyscallConn for the hub's raw writes")
	}
	if _, ok := untouched.(*net.TCPConn); !ok {
		t.Errorf("a connection that never was an API call reached net/http as a %T, not the socket", untouched)
	}
}

// TestLeanKeyBeforeBody: a wrong key is answered before the body is sent,
// and a body too large to read past ends the connection.
func TestLeanKeyBeforeBody(t *testing.T) {
	n := startLean(t, LeanConfig{}, Config{})
	nc, br := dial(t, n.addr)
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	head := "POST /api/v1/apps/demo/send HTTP/1.1\r\nHost: pushd\r\nAuthorization: Bearer nope\r\nContent-Length: 1000000\r\n\r\n"
	if _, err := io.WriteString(nc, head); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), "invalid API key") || !resp.Close {
		t.Fatalf("got %d %q close=%v, want 401 and the connection closed", resp.StatusCode, b, resp.Close)
	}
	awaitEOF(t, nc, br)
}

// TestLeanTimeouts: an idle connection and a stalled head end after
// their timeouts; closing the listener ends idle lean connections.
func TestLeanTimeouts(t *testing.T) {
	n := startLean(t, LeanConfig{IdleTimeout: 100 * time.Millisecond, ReadHeaderTimeout: 100 * time.Millisecond}, Config{})
	send := sendRequest("k1", `{"to":{"all":true},"event":"e"}`)

	idle, ibr := dial(t, n.addr)
	if resp, _ := roundTrip(t, idle, ibr, send); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	awaitEOF(t, idle, ibr)

	stalled, sbr := dial(t, n.addr)
	if _, err := io.WriteString(stalled, send[:40]); err != nil {
		t.Fatal(err)
	}
	awaitEOF(t, stalled, sbr)

	n2 := startLean(t, LeanConfig{}, Config{})
	c2, br2 := dial(t, n2.addr)
	if resp, _ := roundTrip(t, c2, br2, send); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	_ = n2.ln.Close()
	awaitEOF(t, c2, br2)
}

// This benchmark measures the lean path against net/http for API calls
// (issue 17): BenchmarkSendLean is BenchmarkSendHTTP on Handler.Listener.
//
//	go test -run x -bench 'SendHTTP|SendLean' -benchmem ./pkg/api/
func BenchmarkSendLean(b *testing.B) {
	n := startLean(b, LeanConfig{}, Config{})
	benchKeepAliveSends(b, n.addr, []byte(sendRequest("k1", sendBody(42, 1), "Content-Type: application/json")))
	if n.ln.served.Load() < int64(b.N) {
		b.Fatalf("served lean: %d of %d", n.ln.served.Load(), b.N)
	}
}
