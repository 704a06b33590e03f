package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/await"
	"github.com/pushd/pushd/pkg/signature"
)

const secret = "notify-test-secret"

// fakeClock fires AfterFunc callbacks when Advance passes their time.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c       *fakeClock
	at      time.Time
	f       func()
	stopped bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) AfterFunc(d time.Duration, f func()) stopper {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

// Advance moves time forward and runs due callbacks outside the lock.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []func()
	keep := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.stopped:
		case !t.at.After(c.now):
			t.stopped = true
			due = append(due, t.f)
		default:
			keep = append(keep, t)
		}
	}
	c.timers = keep
	c.mu.Unlock()
	for _, f := range due {
		f()
	}
}

func (c *fakeClock) armed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.stopped {
			n++
		}
	}
	return n
}

func checkFor(t *testing.T, d time.Duration, cond func() bool, msg string) {
	t.Helper()
	await.True(t, d, msg, cond)
}

// receiver is a backend recording verified events; status decides the
// answer to the n-th request (1-based), default 200.
type receiver struct {
	srv    *httptest.Server
	hits   atomic.Int64
	status func(n int64) int

	mu     sync.Mutex
	events []Event
	errs   []error
}

func newReceiver(t *testing.T, status func(n int64) int) *receiver {
	rc := &receiver{status: status}
	replay := signature.NewReplayCache(0) // retries carry fresh nonces
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := rc.hits.Add(1)
		ev, err := Verify(r, secret, signature.Options{Replay: replay})
		code := http.StatusOK
		if rc.status != nil {
			code = rc.status(n)
		}
		rc.mu.Lock()
		if err != nil {
			rc.errs = append(rc.errs, err)
		} else if code < 300 {
			rc.events = append(rc.events, ev)
		}
		rc.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) got() []Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Event(nil), rc.events...)
}

// summary renders events as "type:user:connection".
func summary(evs []Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type + ":" + e.UserID + ":" + e.ConnectionID
	}
	return out
}

func start(t *testing.T, cfg Config, clk clock) *Notifier {
	t.Helper()
	if cfg.Secret == "" {
		cfg.Secret = secret
	}
	n, err := newNotifier(cfg, clk)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	return n
}

// settle queues an online for a marker user and waits until it arrived:
// since events are sent in order, everything queued before was handled.
func settle(t *testing.T, n *Notifier, rc *receiver) []Event {
	t.Helper()
	marker := "marker-" + newID()
	n.Connected(Presence{App: "demo", UserID: marker, ConnectionID: "m", Connections: 1})
	var evs []Event
	checkFor(t, 5*time.Second, func() bool {
		evs = rc.got()
		for _, e := range evs {
			if e.UserID == marker {
				return true
			}
		}
		return false
	}, "marker event")
	var out []Event
	for _, e := range evs {
		if !strings.HasPrefix(e.UserID, "marker-") {
			out = append(out, e)
		}
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func pr(user, conn string, conns int) Presence {
	return Presence{App: "demo", UserID: user, TenantID: "t1", ConnectionID: conn, Connections: conns}
}

func TestOnlineOnceForTwoTabs(t *testing.T) {
	rc := newReceiver(t, nil)
	clk := newFakeClock()
	n := start(t, Config{URL: rc.srv.URL}, clk)
	n.Connected(pr("u1", "c1", 1))
	n.Connected(pr("u1", "c2", 2))
	n.Disconnected(pr("u1", "c1", 1)) // one tab left: nothing
	clk.Advance(time.Hour)
	if got, want := summary(settle(t, n, rc)), []string{"online:u1:c1"}; !equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
}

func TestReconnectWithinGraceSendsNothing(t *testing.T) {
	rc := newReceiver(t, nil)
	clk := newFakeClock()
	n := start(t, Config{URL: rc.srv.URL, Grace: 5 * time.Second}, clk)
	n.Connected(pr("u1", "c1", 1))
	n.Disconnected(pr("u1", "c1", 0)) // page reload …
	clk.Advance(4 * time.Second)
	n.Connected(pr("u1", "c2", 1)) // … back within the grace
	if a := clk.armed(); a != 0 {
		t.Fatalf("%d grace timers still armed after the reconnect", a)
	}
	clk.Advance(time.Hour)
	if got, want := summary(settle(t, n, rc)), []string{"online:u1:c1"}; !equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	// The user is still online: a later final close does go offline.
	n.Disconnected(pr("u1", "c2", 0))
	clk.Advance(5 * time.Second)
	evs := settle(t, n, rc)
	if got, want := summary(evs), []string{"online:u1:c1", "offline:u1:c2"}; !equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
}

func TestOfflineAfterGrace(t *testing.T) {
	rc := newReceiver(t, nil)
	clk := newFakeClock()
	n := start(t, Config{URL: rc.srv.URL, Grace: 5 * time.Second, NodeID: "n1"}, clk)
	n.Connected(pr("u1", "c1", 1))
	n.Connected(pr("u1", "c2", 2))
	n.Disconnected(pr("u1", "c1", 1))
	closedAt := clk.Now()
	last := pr("u1", "c2", 0)
	last.SessionDuration = 90*time.Second + 500*time.Millisecond
	n.Disconnected(last)
	clk.Advance(5*time.Second - time.Millisecond)
	if got := summary(settle(t, n, rc)); !equal(got, []string{"online:u1:c1"}) {
		t.Fatalf("offline before the grace passed: %v", got)
	}
	clk.Advance(time.Millisecond)
	evs := settle(t, n, rc)
	if got := summary(evs); !equal(got, []string{"online:u1:c1", "offline:u1:c2"}) {
		t.Fatalf("events = %v", got)
	}
	off := evs[1]
	if off.App != "demo" || off.TenantID != "t1" || off.Node != "n1" || off.Connections != 0 ||
		off.SessionDuration != 90.5 || off.Timestamp != closedAt.UnixMilli() || off.ID == "" || off.ID == evs[0].ID {
		t.Fatalf("offline event = %+v", off)
	}
	// Offline again needs a new online first.
	n.Disconnected(pr("u1", "c3", 0))
	clk.Advance(time.Hour)
	if got := summary(settle(t, n, rc)); len(got) != 2 {
		t.Fatalf("a close without open produced events: %v", got)
	}
}

func TestEveryConnectionAndAnonymous(t *testing.T) {
	rc := newReceiver(t, nil)
	clk := newFakeClock()
	n := start(t, Config{URL: rc.srv.URL, EveryConnection: true, Grace: -1}, clk)
	n.Connected(pr("u1", "c1", 1))
	n.Connected(pr("", "anon", 0))
	n.Disconnected(pr("", "anon", 0))
	n.Disconnected(pr("u1", "c1", 0))
	want := []string{"online:u1:c1", "connect:u1:c1", "connect::anon", "disconnect::anon", "disconnect:u1:c1", "offline:u1:c1"}
	if got := summary(settle(t, n, rc)); !equal(got, want[:]) {
		t.Fatalf("events = %v, want %v", got, want)
	}
}

func TestChannelJoinAndLeave(t *testing.T) {
	rc := newReceiver(t, nil)
	n := start(t, Config{URL: rc.srv.URL, Grace: -1}, newFakeClock())
	p := pr("u1", "c1", 1)
	p.Channel = "room.1"
	n.ChannelChanged(p, true)
	n.ChannelChanged(p, false)
	var got []string
	for _, e := range settle(t, n, rc) {
		if e.Type == TypeJoin || e.Type == TypeLeave {
			got = append(got, e.Type+":"+e.UserID+":"+e.Channel)
		}
	}
	if want := []string{"join:u1:room.1", "leave:u1:room.1"}; !equal(got, want) {
		t.Fatalf("channel events = %v, want %v", got, want)
	}
}

func TestUsersAreIndependent(t *testing.T) {
	rc := newReceiver(t, nil)
	clk := newFakeClock()
	n := start(t, Config{URL: rc.srv.URL, Grace: time.Second}, clk)
	n.Connected(pr("u1", "c1", 1))
	n.Connected(Presence{App: "other", UserID: "u1", ConnectionID: "o1", Connections: 1}) // same id, other app
	n.Connected(pr("u2", "c2", 1))
	n.Disconnected(pr("u1", "c1", 0))
	clk.Advance(time.Second)
	got := summary(settle(t, n, rc))
	want := []string{"online:u1:c1", "online:u1:o1", "online:u2:c2", "offline:u1:c1"}
	if !equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
}

func TestRetryThenSuccess(t *testing.T) {
	rc := newReceiver(t, func(n int64) int {
		if n == 1 {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	n := start(t, Config{URL: rc.srv.URL, Backoff: time.Millisecond}, newFakeClock())
	n.Connected(pr("u1", "c1", 1))
	checkFor(t, 5*time.Second, func() bool { return n.Stats().Sent == 1 }, "event delivered")
	if h := rc.hits.Load(); h != 2 {
		t.Fatalf("backend hits = %d, want 2", h)
	}
	if s := n.Stats(); s.Retries != 1 || s.Failed != 0 {
		t.Fatalf("stats = %+v", s)
	}
	if got := summary(rc.got()); !equal(got, []string{"online:u1:c1"}) {
		t.Fatalf("events = %v", got)
	}
}

func TestRetryKeepsEventID(t *testing.T) {
	var mu sync.Mutex
	var ids []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev Event
		json.NewDecoder(r.Body).Decode(&ev)
		mu.Lock()
		ids = append(ids, ev.ID)
		n := len(ids)
		mu.Unlock()
		if n < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	n := start(t, Config{URL: srv.URL, Backoff: time.Millisecond}, newFakeClock())
	n.Connected(pr("u1", "c1", 1))
	checkFor(t, 5*time.Second, func() bool { return n.Stats().Sent == 1 }, "delivered")
	mu.Lock()
	defer mu.Unlock()
	if len(ids) != 3 || ids[0] == "" || ids[0] != ids[1] || ids[1] != ids[2] {
		t.Fatalf("ids over retries = %v", ids)
	}
}

func TestGiveUpAfterMaxAttempts(t *testing.T) {
	rc := newReceiver(t, func(int64) int { return http.StatusBadGateway })
	n := start(t, Config{URL: rc.srv.URL, Backoff: time.Millisecond, MaxAttempts: 3}, newFakeClock())
	n.Connected(pr("u1", "c1", 1))
	checkFor(t, 5*time.Second, func() bool { return n.Stats().Failed == 1 }, "event given up")
	if h := rc.hits.Load(); h != 3 {
		t.Fatalf("backend hits = %d, want 3", h)
	}
	if s := n.Stats(); s.Sent != 0 || s.Retries != 2 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestClientErrorNotRetried(t *testing.T) {
	rc := newReceiver(t, func(int64) int { return http.StatusBadRequest })
	n := start(t, Config{URL: rc.srv.URL, Backoff: time.Millisecond}, newFakeClock())
	n.Connected(pr("u1", "c1", 1))
	checkFor(t, 5*time.Second, func() bool { return n.Stats().Failed == 1 }, "event given up")
	if h := rc.hits.Load(); h != 1 {
		t.Fatalf("backend hits = %d, want 1", h)
	}
}

func TestNetworkErrorRetried(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	n := start(t, Config{URL: srv.URL, Backoff: time.Millisecond, MaxAttempts: 4}, newFakeClock())
	n.Connected(pr("u1", "c1", 1))
	checkFor(t, 5*time.Second, func() bool { return n.Stats().Failed == 1 }, "event given up")
	if s := n.Stats(); s.Retries != 3 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestQueueDropsOldest(t *testing.T) {
	rc := newReceiver(t, nil)
	n, err := newNotifier(Config{URL: rc.srv.URL, Secret: secret, QueueSize: 2, EveryConnection: true}, newFakeClock())
	if err != nil {
		t.Fatal(err)
	}
	n.Connected(pr("", "c1", 0)) // dropped
	n.Connected(pr("", "c2", 0))
	n.Connected(pr("", "c3", 0))
	if s := n.Stats(); s.Dropped != 1 || s.Queued != 2 {
		t.Fatalf("stats = %+v", s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	checkFor(t, 5*time.Second, func() bool { return n.Stats().Sent == 2 }, "queued events sent")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := summary(rc.got()); !equal(got, []string{"connect::c2", "connect::c3"}) {
		t.Fatalf("events = %v", got)
	}
}

func TestRunStopsDuringBackoff(t *testing.T) {
	rc := newReceiver(t, func(int64) int { return http.StatusInternalServerError })
	n, err := newNotifier(Config{URL: rc.srv.URL, Backoff: time.Hour}, newFakeClock())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	n.Connected(pr("u1", "c1", 1))
	checkFor(t, 5*time.Second, func() bool { return rc.hits.Load() == 1 }, "first attempt")
	if err := n.Run(ctx); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Run = %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return during backoff")
	}
}

func TestUnsignedAndVerifyFailures(t *testing.T) {
	rc := newReceiver(t, nil)
	n, err := newNotifier(Config{URL: rc.srv.URL}, newFakeClock()) // no Secret
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Run(ctx)
	n.Connected(pr("u1", "c1", 1))
	checkFor(t, 5*time.Second, func() bool { return n.Stats().Sent == 1 }, "sent")
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.errs) != 1 || len(rc.events) != 0 {
		t.Fatalf("unsigned event verified: errs %v events %v", rc.errs, rc.events)
	}
}

// Attack (issue 10 #3, presence hooks): a signed online event captured on
// its way to the backend is sent again — to another path, with another
// body or event type, after the window, or a second time. Verify refuses
// each and accepts the genuine request once.
func TestVerifyRefusesReplayedHook(t *testing.T) {
	type capture struct {
		header http.Header
		body   []byte
	}
	captured := make(chan capture, 1)
	capturer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case captured <- capture{r.Header.Clone(), b}:
		default:
		}
	}))
	defer capturer.Close()
	n, err := New(Config{URL: capturer.URL + "/hooks/presence", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Run(ctx)
	n.Connected(pr("u1", "c1", 1))
	c := <-captured

	var offset atomic.Int64
	replay := signature.NewReplayCache(0)
	results := make(chan error, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := Verify(r, secret, signature.Options{Replay: replay,
			Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
		results <- err
	}))
	defer backend.Close()
	send := func(path string, body []byte, edit func(http.Header)) error {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, backend.URL+path, bytes.NewReader(body))
		for k, v := range c.header {
			if k != "Content-Length" && k != "Accept-Encoding" {
				req.Header[k] = v
			}
		}
		if edit != nil {
			edit(req.Header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return <-results
	}
	forged := bytes.Replace(c.body, []byte(`"online"`), []byte(`"offline"`), 1)
	for name, err := range map[string]error{
		"other path":  send("/hooks/admin", c.body, nil),
		"other body":  send("/hooks/presence", forged, nil),
		"other event": send("/hooks/presence", c.body, func(h http.Header) { h.Set(HeaderEvent, TypeOffline) }),
	} {
		if !errors.Is(err, signature.ErrInvalid) {
			t.Errorf("%s: Verify = %v, want ErrInvalid", name, err)
		}
	}
	offset.Store(int64(70 * time.Second))
	if err := send("/hooks/presence", c.body, nil); !errors.Is(err, signature.ErrExpired) {
		t.Errorf("70 s later: Verify = %v, want ErrExpired", err)
	}
	offset.Store(0)
	if err := send("/hooks/presence", c.body, nil); err != nil {
		t.Fatalf("genuine request refused: %v", err)
	}
	if err := send("/hooks/presence", c.body, nil); !errors.Is(err, signature.ErrReplay) {
		t.Errorf("second time: Verify = %v, want ErrReplay", err)
	}
}

func TestBackoff(t *testing.T) {
	n, err := New(Config{URL: "http://b", Backoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for attempt, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 40: time.Second} {
		for range 50 {
			if d := n.backoff(attempt); d > want || d < want/2 {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
}

func TestNewValidation(t *testing.T) {
	bad := []Config{{}, {URL: "nope"}, {URL: "http://b", Grace: -2}, {URL: "http://b", MaxAttempts: -1}, {URL: "http://b", Timeout: -1}}
	for _, cfg := range bad {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	n, err := New(Config{URL: "http://b"})
	if err != nil {
		t.Fatal(err)
	}
	c := n.cfg
	if c.Grace != DefaultGrace || c.MaxAttempts != DefaultMaxAttempts || c.Backoff != DefaultBackoff || c.QueueSize != DefaultQueueSize || c.Timeout != DefaultTimeout {
		t.Fatalf("defaults = %+v", c)
	}
}

// Many goroutines opening and closing connections for a few users end with
// every user offline exactly once per online.
func TestConcurrentChurn(t *testing.T) {
	rc := newReceiver(t, nil)
	clk := newFakeClock()
	n := start(t, Config{URL: rc.srv.URL, Grace: time.Second, QueueSize: 100000}, clk)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := []string{"a", "b", "c"}[g%3]
			for range 200 {
				n.Connected(pr(user, "x", 1))
				n.Disconnected(pr(user, "x", 0))
			}
		}()
	}
	wg.Wait()
	clk.Advance(time.Second)
	counts := map[string]int{}
	for _, e := range settle(t, n, rc) {
		counts[e.Type+":"+e.UserID]++
	}
	for _, u := range []string{"a", "b", "c"} {
		if counts["online:"+u] < 1 || counts["online:"+u] != counts["offline:"+u] {
			t.Fatalf("unbalanced presence: %v", counts)
		}
	}
}

// fakeCluster answers OtherConnections from a table.
type fakeCluster struct {
	mu    sync.Mutex
	conns map[string][]RemoteConnection
	errs  map[string]error
}

func (c *fakeCluster) OtherConnections(_ context.Context, user string) ([]RemoteConnection, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conns[user], c.errs[user]
}

func (c *fakeCluster) set(user string, conns ...RemoteConnection) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conns[user] = conns
}

func TestClusterCoversPresence(t *testing.T) {
	rc := newReceiver(t, nil)
	clk := newFakeClock()
	now := clk.Now()
	cl := &fakeCluster{
		conns: map[string][]RemoteConnection{
			"earlier-elsewhere":     {{Node: "n1", Opened: now.Add(-time.Second)}},
			"later-elsewhere":       {{Node: "n3", Opened: now.Add(time.Second)}},
			"same-ms-smaller-node":  {{Node: "n1", Opened: now}},
			"same-ms-greater-node":  {{Node: "n3", Opened: now}},
			"partial-answer-covers": {{Node: "n1", Opened: now.Add(-time.Second)}},
		},
		errs: map[string]error{
			"cluster-down":          errors.New("survey timed out"),
			"partial-answer-covers": errors.New("one node did not answer"),
		},
	}
	n := start(t, Config{URL: rc.srv.URL, NodeID: "n2", Grace: time.Second, Cluster: cl}, clk)
	for _, u := range []string{"earlier-elsewhere", "later-elsewhere", "same-ms-smaller-node", "same-ms-greater-node", "cluster-down", "partial-answer-covers"} {
		n.Connected(pr(u, "c-"+u, 1))
	}
	want := []string{"online:later-elsewhere:c-later-elsewhere", "online:same-ms-greater-node:c-same-ms-greater-node",
		"online:cluster-down:c-cluster-down"}
	if got := summary(settle(t, n, rc)); !equal(got, want) {
		t.Fatalf("onlines = %v, want %v", got, want)
	}

	// The user still has a connection on n3: this node's offline is left to n3.
	n.Disconnected(pr("later-elsewhere", "c-later-elsewhere", 0))
	clk.Advance(time.Second)
	if got := summary(settle(t, n, rc)); !equal(got, want) {
		t.Fatalf("offline sent while another node holds the user: %v", got)
	}
	// Once n3 has none, the last close here sends it.
	cl.set("later-elsewhere")
	n.Connected(pr("later-elsewhere", "again", 1))
	n.Disconnected(pr("later-elsewhere", "again", 0))
	clk.Advance(time.Second)
	want = append(want, "online:later-elsewhere:again", "offline:later-elsewhere:again")
	if got := summary(settle(t, n, rc)); !equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	if st := n.Stats(); st.Covered != 4 {
		t.Errorf("Covered = %d, want 4 (3 onlines, 1 offline)", st.Covered)
	}
}
