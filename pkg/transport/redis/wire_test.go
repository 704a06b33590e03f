package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/testredis"
	"github.com/pushd/pushd/pkg/hub"
)

func TestWireRoundTrip(t *testing.T) {
	target := hub.Target{All: true, UserIDs: []string{"u1", "ü2"}, AccessTokens: []string{"tok"},
		TenantIDs: []string{"t"}, Channels: []string{"c1", ""}, ConnectionIDs: []string{"x"}, Listening: true}
	for _, env := range []envelope{
		{ID: "p.1", Origin: "a", ReplyTo: "pushd:reply:a", Multi: true, App: app, Kind: kindDeliver, TimeoutMS: 1500,
			Target: target, Event: &hub.Event{Name: "e", ID: "q1", Data: "line1\nline2\x00é"}},
		{ID: "p.2", Origin: "a", ReplyTo: "r", App: app, Kind: kindDeliver, Target: hub.Target{UserIDs: []string{"1"}},
			Event: &hub.Event{Name: "e"}},
		{ID: "p.3", Origin: "a", ReplyTo: "r", App: app, Kind: kindSurvey, TimeoutMS: 1,
			Target:  hub.Target{ConnectionIDs: []string{"c"}},
			Request: &hub.Request{Op: hub.OpListeners, Target: hub.Target{ConnectionIDs: []string{"c"}}, Args: json.RawMessage(`{"add":["x"]}`)}},
		{ID: "p.4", ReplyTo: "r", App: app, Kind: kindSurvey, Request: &hub.Request{Op: hub.OpStats}},
		{ID: "p.5", Origin: "a", ReplyTo: "r", App: app, Kind: kindDeliver, Target: hub.Target{Channels: []string{"news"}},
			Event: &hub.Event{Name: "e", Data: "d", Streams: []hub.StreamPos{{Stream: "c:news", Offset: 1 << 40, Epoch: "e1"}, {Stream: "u:42", Offset: 7}}}},
	} {
		for _, legacy := range []bool{false, true} {
			b, err := env.encode(legacy)
			if err != nil {
				t.Fatal(err)
			}
			if got := b[0] == '{'; got != legacy {
				t.Fatalf("legacy=%v: message starts with %q", legacy, b[0])
			}
			got, err := decodeEnvelope(string(b))
			if err != nil {
				t.Fatalf("decode %q: %v", b, err)
			}
			want := env
			want.legacy = legacy
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("legacy=%v: round trip\n got %+v\nwant %+v", legacy, got, want)
			}
		}
	}

	reps := []replyEnvelope{
		{ID: "p.1", Reply: hub.Reply{NodeID: "b", Count: 3}},
		{ID: "p.2", Reply: hub.Reply{NodeID: "b", Data: json.RawMessage(`[1,2]`), Error: "boom"}, Dup: true},
		{ID: "p.3", Reply: hub.Reply{NodeID: "b", Count: -1}},
	}
	msg := startReplies(nil, "b")
	for i := range reps {
		msg = appendReply(msg, &reps[i])
	}
	var got []replyEnvelope
	if err := decodeReplies(string(msg), func(r *replyEnvelope) { got = append(got, *r) }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, reps) {
		t.Fatalf("replies round trip\n got %+v\nwant %+v", got, reps)
	}
}

func TestWireRejectsMalformed(t *testing.T) {
	env := envelope{ID: "p.1", ReplyTo: "r", App: app, Kind: kindDeliver,
		Target: hub.Target{UserIDs: []string{"u"}}, Event: &hub.Event{Name: "e", Data: "d"}}
	good, err := env.encode(false)
	if err != nil {
		t.Fatal(err)
	}
	// Every truncation, and trailing bytes, are errors.
	for n := range len(good) {
		if _, err := decodeEnvelope(string(good[:n])); err == nil {
			t.Fatalf("truncated to %d bytes: decoded", n)
		}
	}
	if _, err := decodeEnvelope(string(good) + "x"); err == nil {
		t.Fatal("trailing byte: decoded")
	}
	for _, bad := range []string{"", "{", "\x03", "\x02\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"} {
		if _, err := decodeEnvelope(bad); err == nil {
			t.Fatalf("%q: decoded", bad)
		}
	}
	msg := appendReply(startReplies(nil, "b"), &replyEnvelope{ID: "p.1", Reply: hub.Reply{Count: 2}})
	for n := range len(msg) - 1 {
		if n == len(startReplies(nil, "b")) {
			continue // a batch of no replies is well-formed
		}
		calls := 0
		if err := decodeReplies(string(msg[:n]), func(*replyEnvelope) { calls++ }); err == nil || calls != 0 {
			t.Fatalf("replies truncated to %d bytes: err %v, %d replies", n, err, calls)
		}
	}
}

func FuzzDecode(f *testing.F) {
	env := envelope{ID: "p.1", ReplyTo: "r", App: app, Kind: kindSurvey, Request: &hub.Request{Op: "x", Args: json.RawMessage(`{}`)}}
	b, _ := env.encode(false)
	f.Add(string(b))
	f.Add(string(appendReply(startReplies(nil, "b"), &replyEnvelope{ID: "p", Reply: hub.Reply{Count: 1}})))
	f.Fuzz(func(t *testing.T, s string) {
		if env, err := decodeEnvelope(s); err == nil && !env.legacy {
			again, err := env.encode(false)
			if err != nil {
				t.Fatalf("decoded %q but cannot encode it: %v", s, err)
			}
			if back, err := decodeEnvelope(string(again)); err != nil || !reflect.DeepEqual(back, env) {
				t.Fatalf("re-encoded %q differs: %+v, %v", s, back, err)
			}
		}
		_ = decodeReplies(s, func(*replyEnvelope) {})
	})
}

// A node of the version before the binary format sends JSON and reads only
// JSON replies: it gets them, one per request, with the count.
func TestJSONRequestGetsJSONReply(t *testing.T) {
	srv := testredis.StartAny(t)
	rdb := srv.Client()
	prefix := testPrefix(t)
	b := startNode(t, srv, prefix, "b", 3)
	b.SetInterest(app, "u:1", true)
	awaitSubscribers(t, rdb, b.Transport, app, "u:1", 1)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	replyTo := prefix + ":reply:old"
	sub := rdb.Subscribe(ctx, replyTo)
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		env := envelope{ID: fmt.Sprintf("old.%d", i), Origin: "old", ReplyTo: replyTo, App: app, Kind: kindDeliver,
			TimeoutMS: 20000, Target: hub.Target{UserIDs: []string{"1"}}, Event: &hub.Event{Name: "e"}}
		payload, err := json.Marshal(&env)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := rdb.Publish(ctx, b.channel(app, "u:1"), payload).Result(); err != nil || n != 1 {
			t.Fatalf("PUBLISH: %d, %v", n, err)
		}
	}
	for i := range 3 {
		m, err := sub.ReceiveMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var r replyEnvelope
		if err := json.Unmarshal([]byte(m.Payload), &r); err != nil {
			t.Fatalf("reply %d is not the JSON of the old format: %q: %v", i, m.Payload, err)
		}
		if r.ID != fmt.Sprintf("old.%d", i) || r.Count != 3 || r.NodeID != "b" {
			t.Fatalf("reply %d = %+v", i, r)
		}
	}
}

// A node with LegacyWire reaches new nodes and gets their counts.
func TestLegacyWireSender(t *testing.T) {
	srv := testredis.StartAny(t)
	rdb := srv.Client()
	prefix := testPrefix(t)
	a := startNode(t, srv, prefix, "a", 0, func(c *Config) { c.LegacyWire = true })
	b := startNode(t, srv, prefix, "b", 3)
	b.SetInterest(app, "u:1", true)
	awaitSubscribers(t, rdb, a.Transport, app, "u:1", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if n, err := a.Deliver(ctx, app, hub.Target{UserIDs: []string{"1"}}, hub.Event{Name: "e"}); err != nil || n != 3 {
		t.Fatalf("Deliver with LegacyWire = %d, %v; want 3", n, err)
	}
	if _, err := a.Survey(ctx, app, hub.Request{Op: hub.OpStats}); err != nil {
		t.Fatalf("Survey with LegacyWire: %v", err)
	}
}

// Replies that are ready together go to their sender in one PUBLISH, and
// every send still gets its own exact count.
func TestRepliesAreBatched(t *testing.T) {
	srv := startRedis(t, "INFO commandstats counts the PUBLISH commands")
	rdb := srv.Client()
	prefix := testPrefix(t)
	a := startNode(t, srv, prefix, "a", 0)
	b := startNode(t, srv, prefix, "b", 0, func(c *Config) { c.Workers = 1 })
	hang := make(chan struct{})
	b.h.hang = hang
	b.h.connections = 2
	const sends = 40
	for i := range sends {
		b.SetInterest(app, fmt.Sprintf("u:%d", i), true)
	}
	awaitSubscribers(t, rdb, a.Transport, app, fmt.Sprintf("u:%d", sends-1), 1)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before := commandCalls(t, rdb, "publish")
	var wg sync.WaitGroup
	for i := range sends {
		wg.Go(func() {
			if n, err := a.Deliver(ctx, app, hub.Target{UserIDs: []string{fmt.Sprint(i)}}, hub.Event{Name: "e"}); err != nil || n != 2 {
				t.Errorf("Deliver to user %d = %d, %v; want 2", i, n, err)
			}
		})
	}
	// The one worker is stuck in the first request; the others queue.
	waitFor(t, 10*time.Second, "every request published", func() bool {
		return commandCalls(t, rdb, "publish")-before >= sends
	})
	close(hang)
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatal("Deliver waited until the deadline")
	}
	replies := commandCalls(t, rdb, "publish") - before - sends
	if replies < 1 || replies > sends/2 {
		t.Fatalf("%d reply PUBLISHes for %d requests served back to back; want them batched (≤ %d)", replies, sends, sends/2)
	}
	t.Logf("%d requests, %d reply messages", sends, replies)
	if s := strings.TrimSpace(srv.Output()); strings.Contains(s, "ERR") {
		t.Log(s)
	}
}
