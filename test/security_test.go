package test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/syncbuf"
)

// The attacks of issue 10, performed over real HTTP against a real pushd
// process. Each test names the finding it covers; the package tests
// (pkg/web, pkg/hub, pkg/qos, pkg/auth, pkg/upstream, pkg/notify,
// pkg/transport/nacos) cover the rest against the real handler stack.

// slowConfig is the demo app with short HTTP timeouts, so that a slow
// client is seen to be cut off in test time.
const slowConfig = `
http: {read_timeout: 1s, idle_timeout: 1s}
apps:
  - name: demo
    auth: {mode: demo}
    api_keys: [demo-key]
`

// closedWithin reports whether the server closes conn within d (EOF or
// reset), reading and discarding whatever it answers first.
func closedWithin(t *testing.T, conn net.Conn, d time.Duration) (bool, string) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(d))
	got, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false, string(got)
	}
	return true, string(got)
}

// Attack (issue 10 #7): slowloris. A client sends the headers of a request
// with a body and then nothing; before, the connection (a goroutine and a
// descriptor) stayed open for as long as the client liked, for
// unauthenticated browser calls and API calls with a bad key alike.
func TestSlowBodyIsCutOff(t *testing.T) {
	n := startPushd(t, slowConfig)
	for _, path := range []string{
		"/api/v1/apps/demo/send",                      // answered 401 at once, then waits for the body
		"/sse/demo/connect/addListener.do",            // reads the body
		"/sse/demo/connect/disconnect.do",             // the unauthenticated beacon
		"/sse/demo/connect/message/order.do?userId=1", // forwarded body
	} {
		t.Run(path, func(t *testing.T) {
			conn, err := net.Dial("tcp", n.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer wrong\r\n"+
				"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"connectionId\":", path, n.addr)
			if closed, got := closedWithin(t, conn, 15*time.Second); !closed {
				t.Fatalf("connection still open 15 s after the client stalled its body (read_timeout 1s); got %q", got)
			}
		})
	}
}

// Attack (issue 10 #7): idle keep-alive connections held forever.
func TestIdleKeepAliveIsClosed(t *testing.T) {
	n := startPushd(t, slowConfig)
	conn, err := net.Dial("tcp", n.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", n.addr)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if closed, _ := closedWithin(t, conn, 15*time.Second); !closed {
		t.Fatal("an idle keep-alive connection stayed open 15 s (idle_timeout 1s)")
	}
}

// Attack (issue 10 #7, the other side): the read deadline must not end
// streams, which legitimately stay open far longer than read_timeout.
func TestStreamOutlivesReadTimeout(t *testing.T) {
	n := startPushd(t, slowConfig)
	s := openStream(t, n.url+"/sse/demo/connect?userId=patient&listeners=bell")
	s.frame()                           // connect-finish
	time.Sleep(2500 * time.Millisecond) // the time under test: longer than read_timeout 1s
	code, body := apiCall(t, n.url, http.MethodPost, "send", map[string]any{
		"to": map[string]any{"userIds": []string{"patient"}}, "event": "bell", "data": "still here"})
	if code != http.StatusOK || !strings.Contains(body, `"delivered":1`) {
		t.Fatalf("send after read_timeout: %d %s", code, body)
	}
	if f := s.frame(); field(f, "data") != "still here" {
		t.Fatalf("frame %q", f)
	}
}

// Attack (issue 10 #1): one ack.do with 60 000 ids stalled QoS for every
// app. It is refused with 413 before any store work; 1 000 ids are fine.
func TestHugeAckIsRefused(t *testing.T) {
	n := startPushd(t, "")
	s := openStream(t, n.url+"/sse/demo/connect?userId=acker&ack=1")
	connID := field(s.frame(), "id")
	ids := make([]string, 60000)
	for i := range ids {
		ids[i] = fmt.Sprintf("q%026d", i)
	}
	b, _ := json.Marshal(map[string]any{"connectionId": connID, "ids": ids})
	code, body := do(t, http.MethodPost, n.url+"/sse/demo/connect/ack.do?userId=acker", "application/json", strings.NewReader(string(b)))
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(body, `"error"`) {
		t.Fatalf("60 000-id ack.do: %d %s, want 413 with a JSON error", code, body)
	}
	b, _ = json.Marshal(map[string]any{"connectionId": connID, "ids": ids[:1000]})
	code, body = do(t, http.MethodPost, n.url+"/sse/demo/connect/ack.do?userId=acker", "application/json", strings.NewReader(string(b)))
	if code != http.StatusOK {
		t.Fatalf("1 000-id ack.do: %d %s", code, body)
	}
}

// Attack (issue 10 #6): a QoS message was written to a non-acking client
// that did not listen to its event, counted as delivered and lost. It now
// waits for a connection that listens to it.
func TestQoSWaitsForAListeningClient(t *testing.T) {
	n := startPushd(t, "")
	deaf := openStream(t, n.url+"/sse/demo/connect?userId=payer&listeners=other")
	deaf.frame() // connect-finish
	id, _ := sendQoS(t, n, "payer", "invoice", "due")
	if got := backlog(t, n, "payer"); got != 1 {
		t.Fatalf("backlog after a send to a client that does not listen: %d, want 1", got)
	}
	deaf.close()
	listening := openStream(t, n.url+"/sse/demo/connect?userId=payer&listeners=invoice")
	listening.frame() // connect-finish
	f := listening.frame()
	if field(f, "id") != id || field(f, "event") != "invoice" || field(f, "data") != "due" {
		t.Fatalf("listening client got %q, want the stored invoice %s", f, id)
	}
}

// Attack (issue 10 #14): the embedded demo, with its well-known keys,
// listened on every interface. It now binds 127.0.0.1 only: another
// loopback address (127.0.0.2, reachable only if the socket is bound to
// every interface) is refused.
func TestEmbeddedDemoBindsLoopbackOnly(t *testing.T) {
	if ln, err := net.Listen("tcp", "127.0.0.1:8080"); err != nil {
		t.Skipf("port 8080 is taken on this machine, cannot start the embedded demo on its default address: %v", err)
	} else {
		ln.Close()
	}
	cmd := exec.Command(pushdBin)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PUSHD_") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	// Our own process must be the one serving: wait for its start-up line,
	// not for any answer on the port.
	waitFor(t, 20*time.Second, func() error {
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			if strings.Contains(out.String(), "address already in use") {
				t.Skipf("port 8080 was taken meanwhile: %s", out.String())
			}
			t.Fatalf("the embedded demo exited (%v):\n%s", err, out.String())
		default:
		}
		if !strings.Contains(out.String(), "pushd started") {
			return errors.New("not started yet")
		}
		return nil
	})
	// pushd logs the notice before "pushd started"; wait for it anyway, so
	// that the order of two log lines cannot make this test flaky.
	waitFor(t, 2*time.Second, func() error {
		if !strings.Contains(out.String(), "127.0.0.1 only") {
			return fmt.Errorf("start-up does not say where the demo listens:\n%s", out.String())
		}
		return nil
	})
	if conn, err := net.DialTimeout("tcp", "127.0.0.2:8080", 2*time.Second); err == nil {
		conn.Close()
		t.Fatal("the embedded demo accepts connections on 127.0.0.2: it listens on every interface")
	}
}

// Attack (issue 10 #4): credentials leaked through telemetry. A tenant's
// user read another user's JWT in the connection list and connected with
// it; tokens also travelled in the upstream URL and in logs. Here a real
// pushd is connected to with a token in each configured source (bearer,
// cookie, query, custom header) plus a credential-looking parameter, and
// every answer that shows connections (the server API, the admin page,
// connections.json), the upstream request of a browser message, and the
// whole log are searched for them.
func TestCredentialsNeverLeak(t *testing.T) {
	const secret = "credential-test-secret-0123456789abcdef"
	var upstreamSeen syncbuf.Buffer
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(&upstreamSeen, "%s %s\n%v\n%s\n", r.Method, r.RequestURI, r.Header, body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(backend.Close)
	n := startPushd(t, fmt.Sprintf(`
admin: {token: admin-secret-token}
apps:
  - name: demo
    auth:
      mode: jwt
      jwt:
        secret: %q
        sources: [bearer, "cookie:pushd_token", "query:access_token", "header:X-Auth-Token"]
    api_keys: [demo-key]
    enable_json_endpoints: true
    upstream: {url: %q, secret: upstream-secret}
`, secret, backend.URL))
	exp := time.Now().Add(time.Hour).Unix()
	tokens := map[string]string{}
	for _, src := range []string{"bearer", "cookie", "query", "header"} {
		tokens[src] = signHS256(t, map[string]any{"sub": "victim-" + src, "tenant_id": "acme", "exp": exp}, secret)
	}
	const extraSecret = "sessionSecretValue42"
	base := n.url + "/sse/demo/connect?listeners=bell&clientId=c1&session_secret=" + extraSecret
	connIDs := map[string]string{}
	for src, tok := range tokens {
		var s *stream
		switch src {
		case "bearer":
			s = openStream(t, base, "Authorization", "Bearer "+tok)
		case "cookie":
			s = openStream(t, base, "Cookie", "pushd_token="+tok)
		case "query":
			s = openStream(t, base+"&access_token="+tok)
		case "header":
			s = openStream(t, base, "X-Auth-Token", tok)
		}
		connIDs[src] = field(s.frame(), "id")
	}
	// A browser message carrying every token, forwarded upstream; the bearer
	// source comes first, so it is the bearer user's connection.
	code, body := do(t, http.MethodPost, n.url+"/sse/demo/connect/message/order.do?connectionId="+connIDs["bearer"]+
		"&access_token="+tokens["query"]+"&session_secret="+extraSecret, "application/json", strings.NewReader(`{"item":"book"}`),
		"Authorization", "Bearer "+tokens["bearer"], "Cookie", "pushd_token="+tokens["cookie"], "X-Auth-Token", tokens["header"])
	if code != http.StatusOK {
		t.Fatalf("message.do: %d %s", code, body)
	}
	var answers []string
	_, b := apiCall(t, n.url, http.MethodGet, "connections?pageSize=100", nil)
	answers = append(answers, b)
	_, b = do(t, http.MethodGet, n.url+"/admin/api/overview", "", nil, "Authorization", "Bearer admin-secret-token")
	answers = append(answers, b)
	_, b = do(t, http.MethodGet, n.url+"/sse/demo/connect/connections.json?access_token="+tokens["query"], "", nil)
	answers = append(answers, b)
	for _, a := range answers {
		if !strings.Contains(a, "victim-") {
			t.Fatalf("an answer does not list the connections, so it proves nothing: %.300s", a)
		}
	}
	places := map[string]string{"the upstream request": upstreamSeen.String(), "the log": n.out.String()}
	for i, a := range answers {
		places[fmt.Sprintf("answer %d", i)] = a
	}
	for where, text := range places {
		for src, tok := range tokens {
			// The signature part alone is enough to use the token.
			sig := tok[strings.LastIndex(tok, ".")+1:]
			if strings.Contains(text, sig) {
				t.Errorf("the %s token is in %s", src, where)
			}
		}
		if strings.Contains(text, extraSecret) {
			t.Errorf("the session_secret parameter is in %s", where)
		}
	}
}

// tenantSecret signs the tokens of tenantConfig's app.
const tenantSecret = "tenant-test-secret-0123456789abcdefghij"

// tenantConfig is app demo with JWT authentication (the tenant in the
// claim tenant_id, optional) and the memory QoS store.
const tenantConfig = `
apps:
  - name: demo
    auth:
      mode: jwt
      jwt: {secret: "` + tenantSecret + `"}
    api_keys: [demo-key]
`

// ackAs acknowledges ids for the connection connID with the bearer token
// tok and returns how many were pending (the answer's "acked").
func ackAs(t *testing.T, n *node, tok, connID string, ids ...string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"connectionId": connID, "ids": ids})
	code, body := do(t, http.MethodPost, n.url+"/sse/demo/connect/ack.do", "application/json", strings.NewReader(string(b)),
		"Authorization", "Bearer "+tok)
	if code != http.StatusOK {
		t.Fatalf("ack.do: %d %s", code, body)
	}
}

// sendQoSTo sends a QoS event to the address to and returns its id.
func sendQoSTo(t *testing.T, n *node, to map[string]any, event, data string) string {
	t.Helper()
	code, body := apiCall(t, n.url, http.MethodPost, "send", map[string]any{"to": to, "event": event, "data": data, "qos": true})
	var res struct {
		ID     string
		Stored bool
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &res) != nil || !res.Stored {
		t.Fatalf("qos send to %v: %d %s", to, code, body)
	}
	return res.ID
}

// Attack (issue 10 #10): the same user id in two tenants shared QoS state —
// dup3@tenantA acknowledged an "all" QoS message and dup3@tenantB never
// received it. And the gap left after that fix: a dup3 without tenant (a
// token without tenant_id) acknowledging a message to the user id dup3
// removed it for dup3 of every tenant. Over real HTTP: each identity's
// ack.do is its own, and what the others have not acknowledged reaches
// them when they connect.
func TestTenantQoSAcksAreScoped(t *testing.T) {
	n := startPushd(t, tenantConfig)
	exp := time.Now().Add(time.Hour).Unix()
	tokA := signHS256(t, map[string]any{"sub": "dup3", "tenant_id": "tenantA", "exp": exp}, tenantSecret)
	tokB := signHS256(t, map[string]any{"sub": "dup3", "tenant_id": "tenantB", "exp": exp}, tenantSecret)
	tokNone := signHS256(t, map[string]any{"sub": "dup3", "exp": exp}, tenantSecret)
	const connect = "/sse/demo/connect?ack=1&listeners=bell,marker"
	open := func(tok string) (*stream, string) {
		t.Helper()
		s := openStream(t, n.url+connect, "Authorization", "Bearer "+tok)
		f := s.frame()
		if field(f, "event") != "connect-finish" {
			t.Fatalf("first frame %q, want connect-finish", f)
		}
		return s, field(f, "id")
	}
	// expect reads the next frame of s: the event with id.
	expect := func(who string, s *stream, id, event string) {
		t.Helper()
		if f := s.frame(); field(f, "id") != id || field(f, "event") != event {
			t.Fatalf("%s got %q, want %s %s", who, f, event, id)
		}
	}
	// nothingMore proves that s has no stored message left: the next frame
	// is a live marker sent now, which it acknowledges (the marker is for
	// every dup3: the others get it later).
	nothingMore := func(who string, s *stream, tok, connID string) string {
		t.Helper()
		id := sendQoSTo(t, n, map[string]any{"userIds": []string{"dup3"}}, "marker", who)
		expect(who+" (nothing before the marker)", s, id, "marker")
		ackAs(t, n, tok, connID, id)
		return id
	}

	// dup3@tenantA is online and acknowledges a QoS message to everybody;
	// dup3@tenantB, offline, still gets it when it connects.
	a, connA := open(tokA)
	all := sendQoSTo(t, n, map[string]any{"all": true}, "bell", "for everybody")
	expect("dup3@tenantA", a, all, "bell")
	ackAs(t, n, tokA, connA, all)
	b, connB := open(tokB)
	expect("dup3@tenantB after dup3@tenantA's ack", b, all, "bell")
	ackAs(t, n, tokB, connB, all)
	a.close()
	b.close()

	// dup3@tenantB's ack is its own: acknowledged, it does not come again.
	b, connB = open(tokB)
	marker := nothingMore("dup3@tenantB", b, tokB, connB)
	b.close()

	// The tenant-less dup3 receives and acknowledges a message to the user
	// id dup3 (and the marker above); dup3@tenantA, offline meanwhile,
	// still gets the message.
	direct := sendQoSTo(t, n, map[string]any{"userIds": []string{"dup3"}}, "bell", "for dup3")
	none, connNone := open(tokNone)
	var got []string
	for range 3 { // all, the marker of tenantB's check, direct: any order of arrival
		f := none.frame()
		got = append(got, field(f, "id"))
	}
	if !slices.Contains(got, direct) || !slices.Contains(got, all) || !slices.Contains(got, marker) {
		t.Fatalf("tenant-less dup3 got ids %v, want %s, %s and %s", got, all, marker, direct)
	}
	ackAs(t, n, tokNone, connNone, got...)
	none.close()
	a, connA = open(tokA)
	// dup3@tenantA's backlog: the marker of tenantB's check and direct
	// (before the fix, the tenant-less ack had removed both, and no frame
	// came). It comes after connect-finish, so a live send now could
	// overtake it: read the two frames, nothing else was sent.
	t.Logf("dup3@tenantA's backlog must hold %s and %s; no frame means the tenant-less ack removed them for every tenant", marker, direct)
	gotA := []string{field(a.frame(), "id"), field(a.frame(), "id")}
	if !slices.Contains(gotA, direct) || !slices.Contains(gotA, marker) {
		t.Fatalf("dup3@tenantA got ids %v after the tenant-less dup3's ack, want %s and %s", gotA, marker, direct)
	}
	ackAs(t, n, tokA, connA, gotA...)
	a.close()
	a, connA = open(tokA)
	nothingMore("dup3@tenantA", a, tokA, connA)
}
