package hub

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/pkg/qos"
)

func TestSendTargets(t *testing.T) {
	forEachPath(t, func(t *testing.T, p streamPath) {
		f := newFixture(t, p, Config{})
		ctx := context.Background()
		a := f.connect(vals("userId", "u1", "tenantId", "t1", "token", "k1", "channel", "ch1", "listeners", "news"))
		b := f.connect(vals("userId", "u2", "tenantId", "t1", "token", "k2"))
		c := f.connect(vals("userId", "u3", "tenantId", "t2", "channel", "ch1", "listeners", "news,other"))
		clients := map[string]*sseClient{"a": a, "b": b, "c": c}

		type send func(name string) (int, error)
		target := func(tg Target) send {
			return func(name string) (int, error) { return f.h.Send(ctx, tg, Event{Name: name, Data: name}) }
		}
		tests := []struct {
			name string
			send send
			want string // receivers
		}{
			{"all", func(n string) (int, error) { return f.h.SendAll(ctx, n, n) }, "abc"},
			{"user", func(n string) (int, error) { return f.h.SendByUserID(ctx, "u1", n, n) }, "a"},
			{"users", target(Target{UserIDs: []string{"u1", "u3"}}), "ac"},
			{"token", func(n string) (int, error) { return f.h.SendByAccessToken(ctx, "k2", n, n) }, "b"},
			{"tenant", func(n string) (int, error) { return f.h.SendByTenantID(ctx, "t1", n, n) }, "ab"},
			{"channel", func(n string) (int, error) { return f.h.SendByChannel(ctx, "ch1", n, n) }, "ac"},
			{"connection", func(n string) (int, error) { return f.h.SendByConnectionID(ctx, b.id, n, n) }, "b"},
			{"connections", target(Target{ConnectionIDs: []string{a.id, c.id, "nobody"}}), "ac"},
			{"unknown user", func(n string) (int, error) { return f.h.SendByUserID(ctx, "u9", n, n) }, ""},
			{"unknown connection", func(n string) (int, error) { return f.h.SendByConnectionID(ctx, "nobody", n, n) }, ""},
			{"every key of a", target(Target{UserIDs: []string{"u1"}, AccessTokens: []string{"k1"}, TenantIDs: []string{"t1"},
				Channels: []string{"ch1"}, ConnectionIDs: []string{a.id}}), "abc"},
			{"same user twice", target(Target{UserIDs: []string{"u2", "u2"}}), "b"},
			{"overlapping keys", target(Target{UserIDs: []string{"u3"}, TenantIDs: []string{"t2", "t1"}, Channels: []string{"ch1"}}), "abc"},
			// Listening: only connections listening to the event's name.
			{"news", target(Target{All: true, Listening: true}), "ac"},
			{"other", target(Target{All: true, Listening: true}), "c"},
			{"nobody listens", target(Target{All: true, Listening: true}), ""},
			{"news", target(Target{UserIDs: []string{"u1", "u2"}, Listening: true}), "a"},
			{"other", target(Target{TenantIDs: []string{"t1", "t2"}, Listening: true}), "c"},
			{"news", target(Target{Channels: []string{"ch1"}, Listening: true}), "ac"},
			{"news", target(Target{AccessTokens: []string{"k1", "k2"}, Listening: true}), "a"},
			{"news", target(Target{ConnectionIDs: []string{b.id, c.id}, Listening: true}), "c"},
		}
		want := map[string][]string{}
		for i, tt := range tests {
			name := tt.name
			if name != "news" && name != "other" {
				name = "e" + strconv.Itoa(i)
			}
			n, err := tt.send(name)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if n != len(tt.want) {
				t.Errorf("%s: count %d, want %d", tt.name, n, len(tt.want))
			}
			for _, r := range tt.want {
				want[string(r)] = append(want[string(r)], name)
			}
		}
		if _, err := f.h.SendAll(ctx, "end", "end"); err != nil {
			t.Fatal(err)
		}
		for key, cl := range clients {
			var got []string
			for i := 1; ; i++ {
				it := cl.nextFrame()
				if it.id != strconv.Itoa(i) {
					t.Errorf("client %s: frame %d has id %q, want %d (per-connection counter)", key, i, it.id, i)
				}
				if it.event == "end" {
					break
				}
				got = append(got, it.event)
			}
			if !slices.Equal(got, want[key]) {
				t.Errorf("client %s got %v, want %v", key, got, want[key])
			}
		}
		if st := f.h.Counters(); st.Sends != uint64(len(tests)+1) {
			t.Errorf("Counters.Sends = %d, want %d", st.Sends, len(tests)+1)
		}
	})
}

func TestSendDataOnTheWire(t *testing.T) {
	forEachPath(t, func(t *testing.T, p streamPath) {
		f := newFixture(t, p, Config{})
		cl := f.connect(vals("userId", "u1"))
		ctx := context.Background()
		sends := []struct {
			data any
			raw  string
			want string
		}{
			{"plain", "event:m\nid:1\ndata:plain\n\n", "plain"},
			{"a\nb\r\nc\rd", "event:m\nid:2\ndata:a\ndata:b\ndata:c\ndata:d\n\n", "a\nb\nc\nd"},
			{map[string]int{"n": 1}, "event:m\nid:3\ndata:{\"n\":1}\n\n", `{"n":1}`},
			{"", "event:m\nid:4\ndata:\n\n", ""},
		}
		for _, s := range sends {
			if n, err := f.h.SendByUserID(ctx, "u1", "m", s.data); err != nil || n != 1 {
				t.Fatalf("send %v: n=%d err=%v", s.data, n, err)
			}
			it := cl.nextFrame()
			if it.raw != s.raw || it.data != s.want {
				t.Errorf("frame %q data %q, want %q data %q", it.raw, it.data, s.raw, s.want)
			}
		}
		// A QoS-style id chosen by the sender is kept and does not advance
		// the counter.
		if _, err := f.h.Send(ctx, Target{UserIDs: []string{"u1"}}, Event{Name: "m", ID: "custom", Data: "x"}); err != nil {
			t.Fatal(err)
		}
		if it := cl.nextFrame(); it.raw != "event:m\nid:custom\ndata:x\n\n" {
			t.Errorf("frame with own id: %q", it.raw)
		}
		if _, err := f.h.SendByUserID(ctx, "u1", "m", "y"); err != nil {
			t.Fatal(err)
		}
		if it := cl.nextFrame(); it.id != "5" {
			t.Errorf("counter after own id: %q, want 5", it.id)
		}
	})
}

func TestConnectFinishOnTheWire(t *testing.T) {
	forEachPath(t, func(t *testing.T, p streamPath) {
		f := newFixture(t, p, Config{App: "demo", ReconnectTime: 3 * time.Second})
		cl := f.connect(vals("userId", "u1"))
		c := f.h.Conn(cl.id)
		if c == nil {
			t.Fatalf("connection %q unknown to the hub", cl.id)
		}
		retry := cl.finish.retry // spread over [3000, 4500] ms
		if ms, err := strconv.Atoi(retry); err != nil || ms < 3000 || ms > 4500 {
			t.Errorf("retry: %q, want 3000–4500 ms", retry)
		}
		want := "id:" + c.ID() + "\nretry:" + retry + "\nevent:connect-finish\ndata:{\"connectionId\":\"" + c.ID() +
			"\",\"serverTime\":" + strconv.FormatInt(c.CreatedAt().UnixMilli(), 10) +
			",\"reconnectTime\":3000,\"name\":\"demo\",\"enableCluster\":false,\"version\":\"" + Version + "\"}\n\n"
		if cl.finish.raw != want {
			t.Errorf("connect-finish\n got %q\nwant %q", cl.finish.raw, want)
		}
		hdr := cl.resp.Header
		if hdr.Get("Content-Type") != "text/event-stream;charset=UTF-8" || hdr.Get("Cache-Control") != "no-cache" ||
			hdr.Get("X-Accel-Buffering") != "no" || hdr.Get("X-Sse-Server-Id") != "n1" {
			t.Errorf("headers: %v", hdr)
		}
		if hdr.Get("Content-Length") != "" {
			t.Errorf("stream has Content-Length %q", hdr.Get("Content-Length"))
		}
	})
}

func TestSendErrors(t *testing.T) {
	h := newTestHub(t, Config{Writers: -1})
	ctx := context.Background()
	if _, err := h.Send(ctx, Target{}, Event{Name: "a"}); !errors.Is(err, ErrNoTarget) {
		t.Errorf("zero target: %v", err)
	}
	if _, err := h.Send(ctx, Target{Listening: true}, Event{Name: "a"}); !errors.Is(err, ErrNoTarget) {
		t.Errorf("listening-only target: %v", err)
	}
	if _, err := h.Send(ctx, Target{UserIDs: []string{""}, TenantIDs: []string{"", ""}}, Event{Name: "a"}); !errors.Is(err, ErrNoTarget) {
		t.Errorf("target of empty ids: %v", err)
	}
	if _, err := h.Send(ctx, Target{All: true}, Event{Name: "a\nb"}); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("bad name: %v", err)
	}
	if _, err := h.Send(ctx, Target{All: true}, Event{Name: "a", ID: "1\r"}); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("bad id: %v", err)
	}
	if _, err := h.SendAll(ctx, "", "x"); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("empty name: %v", err)
	}
	if _, err := h.Publish(ctx, Target{All: true}, Event{Name: "a"}, WithQoS(0)); !errors.Is(err, ErrQoSDisabled) {
		t.Errorf("qos without repository: %v", err)
	}
	if _, _, err := h.Messages(ctx, qos.Filter{}, 0, 10); !errors.Is(err, ErrQoSDisabled) {
		t.Errorf("Messages without repository: %v", err)
	}
	if _, err := h.Ack(ctx, "x", User{ID: "u"}, []string{"q"}); !errors.Is(err, ErrQoSDisabled) {
		t.Errorf("Ack without repository: %v", err)
	}
	if n := h.Counters().Sends; n != 0 {
		t.Errorf("failed sends counted: %d", n)
	}
}

func TestSendToUnattachedConnection(t *testing.T) {
	h := newTestHub(t, Config{Writers: -1})
	c := mustConnect(t, h, ConnectRequest{User: User{ID: "u1", TenantID: "t"}, Channels: []string{"ch"}})
	n, err := h.Send(context.Background(), Target{UserIDs: []string{"u1"}, TenantIDs: []string{"t"}, Channels: []string{"ch"},
		ConnectionIDs: []string{c.ID()}}, Event{Name: "x", Data: "1"})
	if err != nil || n != 1 {
		t.Fatalf("Send: n=%d err=%v", n, err)
	}
	got, done := drainQueue(c)
	if done || strings.Count(got, "event:x\n") != 1 || !strings.HasSuffix(got, "event:x\nid:1\ndata:1\n\n") {
		t.Errorf("queue %q done %v", got, done)
	}
	if c.Snapshot().MessageCount != 1 {
		t.Errorf("MessageCount = %d, want 1", c.Snapshot().MessageCount)
	}
	if d := h.Counters().Deliveries; d != 1 {
		t.Errorf("Deliveries = %d, want 1", d)
	}
}

func TestSlowConsumerUnattached(t *testing.T) {
	h := newTestHub(t, Config{Writers: -1, QueueSize: 4})
	ctx := context.Background()
	slow := mustConnect(t, h, connectReq("slow")) // holds connect-finish already
	fast := mustConnect(t, h, connectReq("fast"))
	var counts []int
	for i := range 6 {
		n, err := h.SendAll(ctx, "e", strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		counts = append(counts, n)
		drainQueue(fast) // the fast connection's writer keeps up
	}
	// slow holds connect-finish + 3 events = 4 frames; the 4th event
	// overflows it.
	if want := []int{2, 2, 2, 1, 1, 1}; !slices.Equal(counts, want) {
		t.Errorf("counts %v, want %v", counts, want)
	}
	if !slow.Closed() || slow.Reason() != ReasonSlow {
		t.Errorf("slow connection: closed %v reason %v", slow.Closed(), slow.Reason())
	}
	if fast.Closed() {
		t.Error("fast connection closed")
	}
	got, done := drainQueue(slow)
	if got != "" || !done {
		t.Errorf("slow connection's queue after the overflow: %q done %v (want dropped, done)", got, done)
	}
	if n := h.Counters().SlowDisconnects; n != 1 {
		t.Errorf("SlowDisconnects = %d", n)
	}
}

func TestSlowConsumer(t *testing.T) {
	forEachPath(t, func(t *testing.T, p streamPath) {
		// The write timeout must outlast the few sends that overflow the
		// queue even on a loaded machine (else the connection ends as a
		// write error first), and end the blocked write well within
		// waitTimeout once the connection is dropped.
		f := newFixture(t, p, Config{QueueSize: 8, WriteTimeout: 3 * time.Second})
		log := watchHooks(f.h)
		ctx := context.Background()
		fast1 := f.connect(vals("userId", "fast1"))
		fast2 := f.connect(vals("userId", "fast2"))
		// The slow client sends its request and never reads the body.
		f.request(vals("userId", "slow"))
		var slow *Conn
		checkFor(t, waitTimeout, func() error {
			list := f.h.LocalConnections(ConnectionQuery{UserID: "slow"})
			if len(list) != 1 {
				return fmt.Errorf("%d slow connections", len(list))
			}
			slow = f.h.Conn(list[0].ID)
			return nil
		})
		// Big events fill the socket buffers quickly; each send waits only
		// for the fast clients, so their queues never overflow, and the
		// loop ends when the slow one was dropped.
		data := strings.Repeat("x", 32<<10)
		sent := 0
		sendsDone := make(chan error, 1)
		go func() {
			defer close(sendsDone)
			for i := 0; i < 5000 && !slow.Closed(); i++ {
				n, err := f.h.SendAll(ctx, "e", strconv.Itoa(i)+data)
				if err != nil {
					sendsDone <- err
					return
				}
				if n < 2 {
					sendsDone <- fmt.Errorf("send %d reached %d connections", i, n)
					return
				}
				for _, cl := range []*sseClient{fast1, fast2} {
					it, err := cl.nextErr(waitTimeout)
					if err != nil || it.data != strconv.Itoa(i)+data {
						sendsDone <- fmt.Errorf("fast client missed event %d: %v", i, err)
						return
					}
				}
				sent++
			}
		}()
		select {
		case err := <-sendsDone:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(2 * waitTimeout):
			t.Fatal("sends blocked behind the slow client")
		}
		if !slow.Closed() || slow.Reason() != ReasonSlow {
			t.Fatalf("after %d sends the slow connection is closed=%v reason=%v", sent, slow.Closed(), slow.Reason())
		}
		t.Logf("slow client dropped after %d events of 32 KiB", sent)
		d := log.awaitDisconnect(t, slow.ID())
		if d.reason != ReasonSlow {
			t.Errorf("disconnect hook reason %v, want slow", d.reason)
		}
		awaitGone(t, f.h, slow.ID())
		// The fast clients are unaffected.
		n, err := f.h.SendAll(ctx, "after", "1")
		if err != nil || n != 2 {
			t.Fatalf("send after the drop: n=%d err=%v", n, err)
		}
		for _, cl := range []*sseClient{fast1, fast2} {
			if it := cl.nextFrame(); it.event != "after" {
				t.Errorf("fast client got %q", it.raw)
			}
		}
		if n := f.h.Counters().SlowDisconnects; n != 1 {
			t.Errorf("SlowDisconnects = %d, want 1", n)
		}
	})
}

// A stream that stays idle for longer than the write timeout after a write
// lives on: the deadline bounds a write, not the pause after it (HTTP/2
// resets a stream whose write deadline passes even when nothing is being
// written — every idle stream died WriteTimeout after its last event).
func TestIdleStreamOutlivesWriteTimeout(t *testing.T) {
	forEachPath(t, func(t *testing.T, p streamPath) {
		const writeTimeout = 200 * time.Millisecond
		f := newFixture(t, p, Config{WriteTimeout: writeTimeout})
		cl := f.connect(vals("userId", "idle"))
		ctx := context.Background()
		if n, err := f.h.SendByUserID(ctx, "idle", "before", "1"); err != nil || n != 1 {
			t.Fatalf("send before the pause: n=%d err=%v", n, err)
		}
		if it := cl.nextFrame(); it.event != "before" {
			t.Fatalf("got %q, want the event before the pause", it.raw)
		}
		// The condition under test is the pause itself: three write
		// timeouts without a write.
		time.Sleep(3 * writeTimeout)
		if n, err := f.h.SendByUserID(ctx, "idle", "after", "2"); err != nil || n != 1 {
			t.Fatalf("send after the pause: n=%d err=%v (the idle stream was ended)", n, err)
		}
		if it := cl.nextFrame(); it.event != "after" {
			t.Fatalf("got %q, want the event after the pause", it.raw)
		}
	})
}
