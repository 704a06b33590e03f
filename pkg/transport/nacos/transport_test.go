package nacos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushd/pushd/pkg/hub"
)

func TestDeliverSumsPeerCounts(t *testing.T) {
	nodes, _ := staticCluster(t, 2, 3, 5)
	tgt := hub.Target{UserIDs: []string{"u1", "u2"}, Listening: true}
	ev := hub.Event{Name: "news", Data: "line1\nline2", ID: "q-1"}

	got, err := nodes[0].tr.Deliver(context.Background(), "demo", tgt, ev)
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if got != 3+5 {
		t.Fatalf("Deliver = %d, want 8 (peers only)", got)
	}
	if n := nodes[0].handler.delivers.Load(); n != 0 {
		t.Fatalf("sender's own handler called %d times; the hub serves local connections itself", n)
	}
	for _, n := range nodes[1:] {
		h := n.handler
		if h.delivers.Load() != 1 {
			t.Fatalf("%s: handler called %d times, want 1", n.tr.Self().NodeID, h.delivers.Load())
		}
		h.mu.Lock()
		if h.lastApp != "demo" || !reflect.DeepEqual(h.lastEv, ev) || strings.Join(h.lastTgt.UserIDs, ",") != "u1,u2" || !h.lastTgt.Listening {
			t.Fatalf("%s got app=%q target=%+v event=%+v", n.tr.Self().NodeID, h.lastApp, h.lastTgt, h.lastEv)
		}
		h.mu.Unlock()
	}

	// Any node can send: n3 reaches n1 and n2.
	got, err = nodes[2].tr.Deliver(context.Background(), "demo", hub.Target{All: true}, ev)
	if err != nil || got != 2+3 {
		t.Fatalf("Deliver from n3 = %d, %v; want 5", got, err)
	}
}

func TestSurveyMergesReplies(t *testing.T) {
	nodes, _ := staticCluster(t, 1, 4, 6)
	nodes[2].handler.surveyFn = func(hub.Request) (hub.Reply, error) {
		return hub.Reply{NodeID: "liar"}, errors.New("boom")
	}
	req := hub.Request{Op: hub.OpUsers, Args: json.RawMessage(`{"page":1}`)}
	replies, err := nodes[0].tr.Survey(context.Background(), "demo", req)
	if err != nil {
		t.Fatalf("Survey: %v", err)
	}
	if len(replies) != 2 {
		t.Fatalf("got %d replies, want 2: %+v", len(replies), replies)
	}
	sort.Slice(replies, func(i, j int) bool { return replies[i].NodeID < replies[j].NodeID })
	if r := replies[0]; r.NodeID != "n2" || r.Count != 4 || string(r.Data) != `["user-of-demo"]` || r.Error != "" {
		t.Fatalf("reply of n2 = %+v", r)
	}
	if r := replies[1]; r.NodeID != "n3" || r.Error != "boom" {
		t.Fatalf("reply of n3 = %+v (want its node id and the handler's error)", r)
	}
	nodes[1].handler.mu.Lock()
	defer nodes[1].handler.mu.Unlock()
	if nodes[1].handler.lastReq.Op != hub.OpUsers || string(nodes[1].handler.lastReq.Args) != `{"page":1}` {
		t.Fatalf("n2 got request %+v", nodes[1].handler.lastReq)
	}
}

func TestHangingPeerIsBoundedByDeadline(t *testing.T) {
	disc, _ := NewStatic()
	fast := startNode(t, Config{NodeID: "fast", Discovery: disc}, &countingHandler{count: 7})
	hang := &countingHandler{count: 100, hang: make(chan struct{})}
	slow := startNode(t, Config{NodeID: "slow", Discovery: disc}, hang)
	// The deadlines are what the hanging peer costs; they are 2 s so that
	// the fast peer answers within them on a loaded machine too.
	sender := startNode(t, Config{NodeID: "sender", Discovery: disc, Timeout: 2 * time.Second}, &countingHandler{})
	if err := disc.SetPeers(fast.tr.Self(), slow.tr.Self(), sender.tr.Self()); err != nil {
		t.Fatal(err)
	}

	// With an explicit ctx deadline. The hanging handler is released only
	// after Deliver returned, so a Deliver that waited for it would never
	// return (the test would time out).
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	got, err := sender.tr.Deliver(ctx, "demo", hub.Target{All: true}, hub.Event{Name: "e", Data: "x"})
	cancel()
	if err != nil || got != 7 {
		t.Fatalf("Deliver = %d, %v; want 7 from the fast peer only", got, err)
	}
	// Without a deadline: Config.Timeout applies.
	replies, err := sender.tr.Survey(context.Background(), "demo", hub.Request{Op: hub.OpStats})
	if err != nil || len(replies) != 1 || replies[0].NodeID != "fast" {
		t.Fatalf("Survey = %+v, %v; want only the fast peer", replies, err)
	}
	if hang.total() == 0 {
		t.Fatal("the hanging peer was never asked")
	}
	close(hang.hang)
}

func TestDeadPeerIsSkipped(t *testing.T) {
	nodes, disc := staticCluster(t, 0, 3)
	peers := []Peer{nodes[0].tr.Self(), nodes[1].tr.Self(), {NodeID: "gone", Addr: deadAddr(t)}}
	if err := disc.SetPeers(peers...); err != nil {
		t.Fatal(err)
	}
	got, err := nodes[0].tr.Deliver(context.Background(), "demo", hub.Target{All: true}, hub.Event{Name: "e"})
	if err != nil || got != 3 {
		t.Fatalf("Deliver = %d, %v; want 3", got, err)
	}
	// A node whose Run ended is skipped as well.
	nodes[1].stop()
	if err := <-nodes[1].done; err != nil {
		t.Fatalf("Run returned %v", err)
	}
	nodes[1].done <- nil // for the cleanup
	got, err = nodes[0].tr.Deliver(context.Background(), "demo", hub.Target{All: true}, hub.Event{Name: "e"})
	if err != nil || got != 0 {
		t.Fatalf("Deliver after n2 stopped = %d, %v; want 0", got, err)
	}
}

func TestUnsignedOrForgedReplyIsSkipped(t *testing.T) {
	// A "peer" that answers 200 with a big count but cannot sign: an
	// address that got into the registry without the secret.
	var asked atomic.Int32
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		w.Header().Set(headerFrom, r.Header.Get(headerTo))
		w.Header().Set(headerSignature, "v1=00")
		_, _ = io.WriteString(w, `{"count":1000}`)
	}))
	defer fake.Close()
	nodes, disc := staticCluster(t, 0, 2)
	addr := strings.TrimPrefix(fake.URL, "http://")
	if err := disc.SetPeers(nodes[0].tr.Self(), nodes[1].tr.Self(), Peer{NodeID: "rogue", Addr: addr}); err != nil {
		t.Fatal(err)
	}
	got, err := nodes[0].tr.Deliver(context.Background(), "demo", hub.Target{All: true}, hub.Event{Name: "e"})
	if err != nil || got != 2 {
		t.Fatalf("Deliver = %d, %v; want 2 (forged reply ignored)", got, err)
	}
	// Asked for a link (its answer is no signed 101, so no link), then with
	// the request over HTTP (whose reply is ignored).
	if n := asked.Load(); n < 2 {
		t.Fatalf("rogue asked %d times, want the link and the request", n)
	}
}

// signedRequest builds a request to n signed by a sender node "n9" with
// secret, at time at, with nonce.
func signedRequest(t *testing.T, n *node, secret string, at time.Time, nonce string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+n.tr.Addr().String()+PathDeliver, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	newSigner(secret).signRequest(req, "n9", n.tr.Self().NodeID, nonce, at, body)
	return req
}

func TestPeerAuthentication(t *testing.T) {
	nodes, _ := staticCluster(t, 4)
	n := nodes[0]
	body := []byte(`{"app":"demo","target":{"all":true},"event":{"name":"e","data":"d"}}`)
	do := func(req *http.Request) (int, string) {
		t.Helper()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	now := time.Now()

	cases := []struct {
		name   string
		req    func() *http.Request
		status int
	}{
		{"unsigned", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, "http://"+n.tr.Addr().String()+PathDeliver, bytes.NewReader(body))
			return r
		}, 401},
		{"wrong secret", func() *http.Request {
			return signedRequest(t, n, "another-secret-0123456789", now, randomHex(16), body)
		}, 401},
		{"tampered body", func() *http.Request {
			r := signedRequest(t, n, testSecret, now, randomHex(16), body)
			r.Body = io.NopCloser(strings.NewReader(strings.Replace(string(body), `"d"`, `"e"`, 1)))
			return r
		}, 401},
		{"tampered length", func() *http.Request {
			r := signedRequest(t, n, testSecret, now, randomHex(16), body)
			r.Body = io.NopCloser(strings.NewReader(strings.Replace(string(body), `"d"`, `"evil"`, 1)))
			r.ContentLength += 3
			return r
		}, 401},
		{"chunked", func() *http.Request {
			r := signedRequest(t, n, testSecret, now, randomHex(16), body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = -1
			return r
		}, http.StatusLengthRequired},
		{"declared too large", func() *http.Request {
			r := signedRequest(t, n, testSecret, now, randomHex(16), body)
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), bytes.NewReader(make([]byte, 17<<20))))
			r.ContentLength += 17 << 20
			return r
		}, http.StatusRequestEntityTooLarge},
		{"tampered signature", func() *http.Request {
			r := signedRequest(t, n, testSecret, now, randomHex(16), body)
			sig := r.Header.Get(headerSignature)
			last := "0"
			if sig[len(sig)-1] == '0' {
				last = "1"
			}
			r.Header.Set(headerSignature, sig[:len(sig)-1]+last)
			return r
		}, 401},
		{"stale timestamp", func() *http.Request {
			return signedRequest(t, n, testSecret, now.Add(-45*time.Second), randomHex(16), body)
		}, 401},
		{"future timestamp", func() *http.Request {
			return signedRequest(t, n, testSecret, now.Add(45*time.Second), randomHex(16), body)
		}, 401},
		{"malformed nonce", func() *http.Request {
			return signedRequest(t, n, testSecret, now, "not-hex", body)
		}, 401},
		{"for another node", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, "http://"+n.tr.Addr().String()+PathDeliver, bytes.NewReader(body))
			newSigner(testSecret).signRequest(r, "n9", "n2", randomHex(16), now, body)
			return r
		}, http.StatusMisdirectedRequest},
		{"from itself", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, "http://"+n.tr.Addr().String()+PathDeliver, bytes.NewReader(body))
			newSigner(testSecret).signRequest(r, "n1", "n1", randomHex(16), now, body)
			return r
		}, http.StatusConflict},
		{"wrong method", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, "http://"+n.tr.Addr().String()+PathDeliver, nil)
			return r
		}, http.StatusMethodNotAllowed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := n.handler.total()
			status, msg := do(c.req())
			if status != c.status {
				t.Fatalf("status %d (%s), want %d", status, msg, c.status)
			}
			if n.handler.total() != before {
				t.Fatal("the handler was called for a rejected request")
			}
		})
	}

	t.Run("replayed nonce", func(t *testing.T) {
		nonce := randomHex(16)
		status, msg := do(signedRequest(t, n, testSecret, now, nonce, body))
		if status != 200 || msg != `{"count":4}` {
			t.Fatalf("first request: %d %s", status, msg)
		}
		before := n.handler.total()
		// Exactly the same request again, and the same nonce with a fresh
		// timestamp (a new signature would need the secret, but check anyway).
		for i, at := range []time.Time{now, time.Now()} {
			status, _ := do(signedRequest(t, n, testSecret, at, nonce, body))
			if status != 401 {
				t.Fatalf("replay %d: status %d, want 401", i, status)
			}
		}
		if n.handler.total() != before {
			t.Fatal("the handler was called for a replay")
		}
	})
}

func TestNewValidatesConfig(t *testing.T) {
	disc, _ := NewStatic()
	for name, cfg := range map[string]Config{
		"no discovery":  {Secret: testSecret},
		"no secret":     {Discovery: disc},
		"short secret":  {Discovery: disc, Secret: "short"},
		"negative time": {Discovery: disc, Secret: testSecret, Timeout: -1},
		"bad advertise": {Discovery: disc, Secret: testSecret, Listen: "127.0.0.1:0", AdvertiseAddr: ":80"},
	} {
		if _, err := New(cfg); !isErr(err, ErrConfig) {
			t.Errorf("%s: New err = %v, want ErrConfig", name, err)
		}
	}
	if _, err := New(Config{Discovery: disc, Secret: testSecret, Listen: "256.0.0.1:0"}); err == nil {
		t.Error("New with an impossible listen address succeeded")
	}
}

func TestInsecureModeWorks(t *testing.T) {
	disc, _ := NewStatic()
	a := startNode(t, Config{NodeID: "a", Discovery: disc, AllowInsecure: true}, &countingHandler{count: 1})
	b := startNode(t, Config{NodeID: "b", Discovery: disc, AllowInsecure: true}, &countingHandler{count: 2})
	_ = disc.SetPeers(a.tr.Self(), b.tr.Self())
	got, err := a.tr.Deliver(context.Background(), "demo", hub.Target{All: true}, hub.Event{Name: "e"})
	if err != nil || got != 2 {
		t.Fatalf("Deliver = %d, %v; want 2", got, err)
	}
	// A secure node refuses the unsigned requests of an insecure one.
	c := startNode(t, Config{NodeID: "c", Discovery: disc}, &countingHandler{count: 5})
	_ = disc.SetPeers(a.tr.Self(), c.tr.Self())
	got, _ = a.tr.Deliver(context.Background(), "demo", hub.Target{All: true}, hub.Event{Name: "e"})
	if got != 0 || c.handler.total() != 0 {
		t.Fatalf("insecure → secure: Deliver = %d, handler calls %d; want 0, 0", got, c.handler.total())
	}
}

func TestLifecycle(t *testing.T) {
	disc, _ := NewStatic()
	tr, err := New(Config{NodeID: "x", Discovery: disc, Secret: testSecret, Listen: "127.0.0.1:0", AdvertiseAddr: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := tr.Self().Addr; got != tr.Addr().String() {
		t.Fatalf("advertised %s, bound %s", got, tr.Addr())
	}
	if err := tr.Ready(context.Background()); !isErr(err, ErrNotServing) {
		t.Fatalf("Ready before Run = %v", err)
	}
	if err := tr.Run(context.Background(), nil); !isErr(err, ErrConfig) {
		t.Fatalf("Run(nil handler) = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx, &countingHandler{}) }()
	waitFor(t, 5*time.Second, "ready", func() bool { return tr.Ready(context.Background()) == nil })
	if err := tr.Run(ctx, &countingHandler{}); !isErr(err, ErrRunning) {
		t.Fatalf("second Run = %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if err := tr.Ready(context.Background()); err == nil {
		t.Fatal("Ready after Run ended = nil")
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if _, err := tr.Deliver(context.Background(), "demo", hub.Target{All: true}, hub.Event{Name: "e"}); !isErr(err, ErrClosed) {
		t.Fatalf("Deliver after Close = %v", err)
	}
	if err := tr.Run(context.Background(), &countingHandler{}); !isErr(err, ErrClosed) {
		t.Fatalf("Run after Close = %v", err)
	}

	// Close stops a running Run.
	tr2, err := New(Config{NodeID: "y", Discovery: disc, Secret: testSecret, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- tr2.Run(context.Background(), &countingHandler{}) }()
	waitFor(t, 5*time.Second, "ready", func() bool { return tr2.Ready(context.Background()) == nil })
	_ = tr2.Close()
	if err := <-done; err != nil {
		t.Fatalf("Run after Close = %v", err)
	}
}

func TestParsePeers(t *testing.T) {
	got, err := ParsePeers("n1@10.0.0.1:7946, n2@[fd00::2]:7946", "n3@host:1")
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprint(got); s != "[{n1 10.0.0.1:7946 } {n2 [fd00::2]:7946 } {n3 host:1 }]" {
		t.Fatalf("got %s", s)
	}
	for _, bad := range []string{"10.0.0.1:7946", "@10.0.0.1:7946", "n1@10.0.0.1", "n1@10.0.0.1:0"} {
		if _, err := ParsePeers(bad); !isErr(err, ErrConfig) {
			t.Errorf("ParsePeers(%q) err = %v", bad, err)
		}
	}
}

func TestAdvertiseDefault(t *testing.T) {
	disc, _ := NewStatic()
	tr, err := New(Config{Discovery: disc, Secret: testSecret, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	self := tr.Self()
	if !strings.HasPrefix(self.NodeID, "node-") || self.Version != "dev" {
		t.Fatalf("defaults: %+v", self)
	}
	_, port, _ := strings.Cut(self.Addr, ":")
	if !strings.HasSuffix(tr.Addr().String(), ":"+port) {
		t.Fatalf("advertised %s does not carry the bound port of %s", self.Addr, tr.Addr())
	}
}

func TestMain(m *testing.M) {
	os.Exit(m.Run())
}
