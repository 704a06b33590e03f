package hub_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/pkg/hub"
)

// TestStalledSocketDoesNotHoldUpOthers: a browser that stops reading (its
// socket buffers fill up) must not delay the pool's writes to the others,
// and is closed once stalled for longer than the write timeout.
func TestStalledSocketDoesNotHoldUpOthers(t *testing.T) {
	h, err := hub.New(hub.Config{App: "a", Writers: 1, WriteTimeout: 3 * time.Second, QueueSize: 100000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Shutdown(context.Background()) })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := h.Connect(r.Context(), hub.ConnectRequest{User: hub.User{ID: r.URL.Query().Get("u")}})
		if err != nil {
			t.Error(err)
			return
		}
		h.ServeStream(w, r, c)
	}))
	t.Cleanup(srv.Close)

	// The stuck client: connects, never reads, with a tiny receive buffer.
	stuck, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = stuck.(*net.TCPConn).SetReadBuffer(4096)
	t.Cleanup(func() { stuck.Close() })
	_, _ = stuck.Write([]byte("GET /?u=stuck HTTP/1.1\r\nHost: x\r\n\r\n"))

	resp, err := http.Get(srv.URL + "/?u=ok")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewReader(resp.Body)

	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if online, _ := h.IsOnline(context.Background(), "stuck"); online {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	big := strings.Repeat("x", 64<<10)
	for i := range 100 { // 6.4 MB to the stuck client: far more than its socket holds
		if _, err := h.SendAll(context.Background(), "big", big); err != nil {
			t.Fatal(err)
		}
		if _, err := h.SendByUserID(context.Background(), "ok", "small", i); err != nil {
			t.Fatal(err)
		}
	}
	// The reader of user ok gets all its small events although the only
	// pool worker also serves the stuck socket.
	got := 0
	start := time.Now()
	for got < 100 {
		line, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("stream of ok ended: %v", err)
		}
		if line == "event:small\n" {
			got++
		}
	}
	t.Logf("100 small events to the healthy client in %s", time.Since(start))
	// They all arrived while the stuck socket was still held (not yet
	// timed out): the worker did not wait for it.
	if online, _ := h.IsOnline(context.Background(), "stuck"); !online {
		t.Error("the healthy client was served only after the stuck one was closed")
	}
	for time.Now().Before(deadline) {
		if online, _ := h.IsOnline(context.Background(), "stuck"); !online {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Error("the stalled connection was not closed after the write timeout")
}

// TestLongLivedHijackedStream: a hijacked stream keeps receiving long
// after the write timeout that bounded its response head.
func TestLongLivedHijackedStream(t *testing.T) {
	h, err := hub.New(hub.Config{App: "a", WriteTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Shutdown(context.Background()) })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := h.Connect(r.Context(), hub.ConnectRequest{User: hub.User{ID: "u"}})
		if err != nil {
			t.Error(err)
			return
		}
		h.ServeStream(w, r, c)
	}))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewReader(resp.Body)
	time.Sleep(300 * time.Millisecond) // let the head's write deadline pass: time itself is under test
	if n, err := h.SendByUserID(context.Background(), "u", "late", "still open"); n != 1 || err != nil {
		t.Fatalf("send = %d, %v", n, err)
	}
	for {
		line, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended before the late event: %v", err)
		}
		if line == "data:still open\n" {
			return
		}
	}
}
