package hub

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/await"
)

// waitTimeout bounds every wait of these tests; it is far above what any of
// them needs, so that only a real hang trips it.
const waitTimeout = 10 * time.Second

// checkFor polls fn until it returns nil or timeout passes, then fails the
// test with fn's last error.
func checkFor(tb testing.TB, timeout time.Duration, fn func() error) {
	tb.Helper()
	await.Until(tb, timeout, fn)
}

// newTestHub builds a hub from cfg (App "test" and NodeID "n1" unless set)
// and shuts it down when the test ends.
func newTestHub(tb testing.TB, cfg Config) *Hub {
	tb.Helper()
	if cfg.App == "" {
		cfg.App = "test"
	}
	if cfg.NodeID == "" {
		cfg.NodeID = "n1"
	}
	h, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		_ = h.Shutdown(ctx)
	})
	return h
}

// runHub runs h.Run until the test ends.
func runHub(tb testing.TB, h *Hub) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = h.Run(ctx)
	}()
	tb.Cleanup(func() {
		cancel()
		<-done
	})
}

// render lays a frame out as a writer would, with n as its id counter.
func render(f *frame, n uint64) string {
	if !f.counted {
		return string(f.head)
	}
	return string(f.head) + strconv.FormatUint(n, 10) + string(f.tail)
}

// drainQueue acts as the writer of an unattached connection: it takes the
// waiting frames and returns their bytes (counters filled in) and whether
// the stream would end.
func drainQueue(c *Conn) (string, bool) {
	frames, done := c.take()
	var sb strings.Builder
	bufs, _ := c.buffers(frames, nil, nil)
	for _, b := range bufs {
		sb.Write(b)
	}
	return sb.String(), done
}

// connectReq is a shorthand ConnectRequest for a user.
func connectReq(userID string) ConnectRequest {
	return ConnectRequest{User: User{ID: userID}}
}

// mustConnect registers a connection that no stream serves.
func mustConnect(tb testing.TB, h *Hub, req ConnectRequest) *Conn {
	tb.Helper()
	c, err := h.Connect(context.Background(), req)
	if err != nil {
		tb.Fatalf("Connect: %v", err)
	}
	return c
}

// streamPath selects how a test server's streams are written.
type streamPath struct {
	name    string
	writers int  // Config.Writers
	h2      bool // serve HTTP/2 over TLS
}

// streamPaths are the writer paths every stream test runs on: the default
// hijacked HTTP/1.1 stream written by the pool, a direct HTTP/1.1 stream
// (Writers -1) and an HTTP/2 stream (always direct).
var streamPaths = []streamPath{
	{name: "hijack", writers: 0},
	{name: "direct", writers: -1},
	{name: "h2", writers: 0, h2: true},
}

// forEachPath runs fn as a parallel subtest per writer path.
func forEachPath(t *testing.T, fn func(t *testing.T, p streamPath)) {
	t.Helper()
	for _, p := range streamPaths {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			fn(t, p)
		})
	}
}

// connectHandler is the test's connect endpoint: identity and options come
// from query parameters (userId, name, tenantId, token, expiresIn=<duration
// from now>, channel, clientId, domain, listeners=a,b, ack=1,
// keepalive=<duration>, session=<seconds>, lastEventId). A refused connect
// is answered as the web layer does: 401 for an expired credential, 413
// for too many listeners, 400 for a bad name, 503 otherwise.
func connectHandler(h *Hub) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		req := ConnectRequest{
			User:        User{ID: q.Get("userId"), Name: q.Get("name"), TenantID: q.Get("tenantId"), AccessToken: q.Get("token")},
			Info:        ClientInfo{ClientID: q.Get("clientId"), RequestDomain: q.Get("domain")},
			Channels:    q["channel"],
			CanAck:      q.Get("ack") == "1",
			LastEventID: q.Get("lastEventId"),
		}
		if l := q.Get("listeners"); l != "" {
			req.Listeners = strings.Split(l, ",")
		}
		if e := q.Get("expiresIn"); e != "" {
			d, err := time.ParseDuration(e)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			req.User.ExpiresAt = time.Now().Add(d)
		}
		if k := q.Get("keepalive"); k != "" {
			d, err := time.ParseDuration(k)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			req.Keepalive = d
		}
		if s := q.Get("session"); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			req.SessionDuration = n
		}
		w.Header().Set("X-Sse-Server-Id", h.NodeID())
		c, err := h.Connect(r.Context(), req)
		if err != nil {
			status := http.StatusServiceUnavailable
			switch {
			case errors.Is(err, ErrTokenExpired):
				status = http.StatusUnauthorized
			case errors.Is(err, ErrTooManyListeners):
				status = http.StatusRequestEntityTooLarge
			case errors.Is(err, ErrInvalidName):
				status = http.StatusBadRequest
			}
			http.Error(w, err.Error(), status)
			return
		}
		h.ServeStream(w, r, c)
	})
}

// fixture is a hub behind a real HTTP server.
type fixture struct {
	t   *testing.T
	h   *Hub
	srv *httptest.Server
	p   streamPath
}

// newFixture starts a hub configured by cfg (Writers taken from p) behind
// an httptest server speaking p's protocol. The hub is shut down before the
// server closes, so that no stream keeps the server's Close waiting.
func newFixture(t *testing.T, p streamPath, cfg Config) *fixture {
	t.Helper()
	cfg.Writers = p.writers
	if cfg.App == "" {
		cfg.App = "test"
	}
	if cfg.NodeID == "" {
		cfg.NodeID = "n1"
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /connect", connectHandler(h))
	var srv *httptest.Server
	if p.h2 {
		srv = httptest.NewUnstartedServer(mux)
		srv.EnableHTTP2 = true
		srv.StartTLS()
	} else {
		srv = httptest.NewServer(mux)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		srv.Close()
	})
	return &fixture{t: t, h: h, srv: srv, p: p}
}

// connect opens a stream with the query params and returns its client once
// connect-finish arrived.
func (f *fixture) connect(params url.Values) *sseClient {
	f.t.Helper()
	c := f.open(params)
	first := c.next()
	if first.event != "connect-finish" {
		f.t.Fatalf("first frame is not connect-finish: %q", first.raw)
	}
	c.id = first.id
	c.finish = first
	return c
}

// open starts a stream and its reader.
func (f *fixture) open(params url.Values) *sseClient {
	f.t.Helper()
	resp, cancel := f.request(params)
	c := newSSEClient(f.t, resp, cancel)
	f.t.Cleanup(c.close)
	return c
}

// request sends the connect request and returns the response with its
// body unread; the body is closed when the test ends.
func (f *fixture) request(params url.Values) (*http.Response, context.CancelFunc) {
	f.t.Helper()
	resp, cancel := f.send(params)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		f.t.Fatalf("connect: status %d: %s", resp.StatusCode, b)
	}
	wantProto := 1
	if f.p.h2 {
		wantProto = 2
	}
	if resp.ProtoMajor != wantProto {
		f.t.Fatalf("stream speaks HTTP/%d, want HTTP/%d", resp.ProtoMajor, wantProto)
	}
	f.t.Cleanup(func() {
		cancel()
		_ = resp.Body.Close()
	})
	return resp, cancel
}

// send sends the connect request and returns the response, whatever its
// status.
func (f *fixture) send(params url.Values) (*http.Response, context.CancelFunc) {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+"/connect?"+params.Encode(), nil)
	if err != nil {
		cancel()
		f.t.Fatal(err)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		cancel()
		f.t.Fatalf("connect: %v", err)
	}
	return resp, cancel
}

// refused sends a connect request that must be refused and returns the
// status and body of the answer.
func (f *fixture) refused(params url.Values) (int, string) {
	f.t.Helper()
	resp, cancel := f.send(params)
	defer cancel()
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		f.t.Fatalf("connect %s was accepted", params.Encode())
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// sseItem is one thing read from a stream: a frame ended by a blank line,
// or a comment line standing alone between frames (the heartbeat).
type sseItem struct {
	raw      string // the exact bytes, blank line included
	comment  bool   // a lone comment line
	event    string
	id       string
	data     string // data lines joined with \n, as a browser does
	retry    string
	comments []string // comment lines inside the frame, without ":"
	lines    []string // the frame's lines in order
}

// sseClient reads a stream into items, without ever blocking the writer:
// the reader keeps going whether or not the test looks at the items.
type sseClient struct {
	t      testing.TB
	resp   *http.Response
	cancel context.CancelFunc
	id     string  // connection id from connect-finish
	finish sseItem // the connect-finish frame

	mu     sync.Mutex
	items  []sseItem
	pos    int
	ended  bool
	endErr error
	wake   chan struct{}
	done   chan struct{}
	once   sync.Once
}

func newSSEClient(tb testing.TB, resp *http.Response, cancel context.CancelFunc) *sseClient {
	c := &sseClient{t: tb, resp: resp, cancel: cancel, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go c.read()
	return c
}

func (c *sseClient) read() {
	defer close(c.done)
	br := bufio.NewReader(c.resp.Body)
	var cur sseItem
	var raw strings.Builder
	var data []string
	hasData := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			c.push(sseItem{}, err)
			return
		}
		text := strings.TrimSuffix(line, "\n")
		if text == "" {
			raw.WriteString(line)
			cur.raw = raw.String()
			if hasData {
				cur.data = strings.Join(data, "\n")
			}
			c.push(cur, nil)
			cur, data, hasData = sseItem{}, nil, false
			raw.Reset()
			continue
		}
		if strings.HasPrefix(text, ":") && len(cur.lines) == 0 {
			c.push(sseItem{raw: line, comment: true, comments: []string{text[1:]}}, nil)
			continue
		}
		raw.WriteString(line)
		cur.lines = append(cur.lines, text)
		name, value, _ := strings.Cut(text, ":")
		switch name {
		case "":
			cur.comments = append(cur.comments, value)
		case "event":
			cur.event = value
		case "id":
			cur.id = value
		case "retry":
			cur.retry = value
		case "data":
			data, hasData = append(data, value), true
		}
	}
}

func (c *sseClient) push(it sseItem, err error) {
	c.mu.Lock()
	if err != nil {
		c.ended, c.endErr = true, err
	} else {
		c.items = append(c.items, it)
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// poll returns the next item, or ok false with ended set when the stream is
// over and every item was taken.
func (c *sseClient) poll() (it sseItem, ok, ended bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pos < len(c.items) {
		it = c.items[c.pos]
		c.pos++
		return it, true, false
	}
	return sseItem{}, false, c.ended
}

// next returns the next item, failing the test if none comes in time or
// the stream ends.
func (c *sseClient) next() sseItem {
	c.t.Helper()
	it, err := c.nextErr(waitTimeout)
	if err != nil {
		c.t.Fatalf("stream %s: %v", c.id, err)
	}
	return it
}

var errStreamEnded = errors.New("stream ended")

func (c *sseClient) nextErr(timeout time.Duration) (sseItem, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		it, ok, ended := c.poll()
		if ok {
			return it, nil
		}
		if ended {
			return sseItem{}, errStreamEnded
		}
		select {
		case <-c.wake:
		case <-timer.C:
			return sseItem{}, errors.New("no frame in time")
		}
	}
}

// nextFrame returns the next item that is not a lone comment.
func (c *sseClient) nextFrame() sseItem {
	c.t.Helper()
	for {
		it := c.next()
		if !it.comment {
			return it
		}
	}
}

// waitEvent skips frames until one named name arrives.
func (c *sseClient) waitEvent(name string) sseItem {
	c.t.Helper()
	for {
		it := c.next()
		if it.event == name {
			return it
		}
	}
}

// waitEnd reads to the end of the stream and returns the items that were
// not taken yet.
func (c *sseClient) waitEnd() []sseItem {
	c.t.Helper()
	var rest []sseItem
	for {
		it, err := c.nextErr(waitTimeout)
		if errors.Is(err, errStreamEnded) {
			return rest
		}
		if err != nil {
			c.t.Fatalf("stream %s did not end: %v", c.id, err)
		}
		rest = append(rest, it)
	}
}

// close drops the client side of the stream (closes its socket or resets
// its HTTP/2 stream).
func (c *sseClient) close() {
	c.once.Do(func() {
		c.cancel()
		_ = c.resp.Body.Close()
		<-c.done
	})
}

// userEvents returns the events named name among items.
func eventsNamed(items []sseItem, name string) []sseItem {
	var out []sseItem
	for _, it := range items {
		if it.event == name {
			out = append(out, it)
		}
	}
	return out
}

// connectClose checks that it is a connect-close frame for connection id
// with reason and returns its decoded data.
func checkConnectClose(tb testing.TB, it sseItem, id string, reason DisconnectReason) {
	tb.Helper()
	if it.event != "connect-close" {
		tb.Fatalf("frame is not connect-close: %q", it.raw)
	}
	var d struct {
		ConnectionID string `json:"connectionId"`
		Reason       string `json:"reason"`
	}
	if err := json.Unmarshal([]byte(it.data), &d); err != nil {
		tb.Fatalf("connect-close data is not JSON: %q: %v", it.data, err)
	}
	if d.ConnectionID != id || d.Reason != reason.String() {
		tb.Fatalf("connect-close = %+v, want connection %s reason %s", d, id, reason)
	}
}

// vals builds url.Values from key, value pairs.
func vals(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// hookLog records hook calls.
type hookLog struct {
	mu          sync.Mutex
	connects    []*Conn
	disconnects []disconnectCall
	changes     []ListenerChange
}

type disconnectCall struct {
	conn    *Conn
	reason  DisconnectReason
	session int64
}

func watchHooks(h *Hub) *hookLog {
	l := &hookLog{}
	h.OnConnect(func(c *Conn) {
		l.mu.Lock()
		l.connects = append(l.connects, c)
		l.mu.Unlock()
	})
	h.OnDisconnect(func(c *Conn, r DisconnectReason) {
		s := c.SessionDuration()
		l.mu.Lock()
		l.disconnects = append(l.disconnects, disconnectCall{conn: c, reason: r, session: s})
		l.mu.Unlock()
	})
	h.OnListenerChange(func(ch ListenerChange) {
		l.mu.Lock()
		l.changes = append(l.changes, ch)
		l.mu.Unlock()
	})
	return l
}

// disconnectOf returns the recorded disconnect of connection id.
func (l *hookLog) disconnectOf(id string) (disconnectCall, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, d := range l.disconnects {
		if d.conn.ID() == id {
			return d, true
		}
	}
	return disconnectCall{}, false
}

// awaitDisconnect waits for the disconnect hook of connection id.
func (l *hookLog) awaitDisconnect(tb testing.TB, id string) disconnectCall {
	tb.Helper()
	var d disconnectCall
	checkFor(tb, waitTimeout, func() error {
		var ok bool
		if d, ok = l.disconnectOf(id); !ok {
			return errors.New("no disconnect hook for " + id)
		}
		return nil
	})
	return d
}

// awaitGone waits until the hub no longer holds connection id.
func awaitGone(tb testing.TB, h *Hub, id string) {
	tb.Helper()
	checkFor(tb, waitTimeout, func() error {
		if h.Conn(id) != nil {
			return errors.New("connection " + id + " still registered")
		}
		return nil
	})
}
