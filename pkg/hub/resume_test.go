package hub

import (
	"context"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushd/pushd/pkg/history"
)

// newHistoryHub is a hub whose channels keep size events for an hour and
// whose users keep 100.
func newHistoryHub(t *testing.T, size int) *Hub {
	t.Helper()
	store, err := history.NewMemory(history.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return newTestHub(t, Config{Writers: -1, History: store, StreamHistory: func(s string) (history.Options, bool) {
		switch {
		case strings.HasPrefix(s, StreamChannelPrefix+"h-"):
			return history.Options{Size: size, TTL: time.Hour}, true
		case strings.HasPrefix(s, StreamUserPrefix):
			return history.Options{Size: 100, TTL: time.Hour}, true
		}
		return history.Options{}, false
	}})
}

// sseFrame is one frame of a drained queue.
type sseFrame struct{ event, id, data string }

func drainFrames(t *testing.T, c *Conn) []sseFrame {
	t.Helper()
	text, _ := drainQueue(c)
	var out []sseFrame
	for _, block := range strings.Split(strings.TrimSuffix(text, "\n\n"), "\n\n") {
		var f sseFrame
		for _, line := range strings.Split(block, "\n") {
			k, v, _ := strings.Cut(line, ":")
			switch k {
			case "event":
				f.event = v
			case "id":
				f.id = v
			case "data":
				f.data = v
			}
		}
		out = append(out, f)
	}
	return out
}

func events(fs []sseFrame) []string {
	var out []string
	for _, f := range fs {
		if f.event != "" && f.event != "connect-finish" {
			out = append(out, f.event)
		}
	}
	return out
}

func lastID(fs []sseFrame) string {
	id := ""
	for _, f := range fs {
		if f.id != "" {
			id = f.id
		}
	}
	return id
}

func publish(t *testing.T, h *Hub, to Target, names ...string) {
	t.Helper()
	for _, n := range names {
		res, err := h.Publish(context.Background(), to, Event{Name: n, Data: n})
		if err != nil {
			t.Fatalf("publish %s: %v", n, err)
		}
		if streams := h.targetStreams(to); len(res.Positions) != len(streams) {
			t.Fatalf("publish %s: positions %v for streams %v", n, res.Positions, streams)
		}
	}
}

// A reconnect with the last id seen gets exactly the events it missed in
// each stream, in order, once each (an event of two of its streams too),
// then live events; connect-finish says the resume was complete.
func TestResumeReplaysWhatWasMissed(t *testing.T) {
	h := newHistoryHub(t, 100)
	user := User{ID: "ann"}
	c := mustConnect(t, h, ConnectRequest{User: user, Channels: []string{"h-news", "plain"}})
	first := drainFrames(t, c)
	if id := lastID(first); !strings.HasPrefix(id, positionsPrefix) || !strings.Contains(first[0].data, `"position":"`+id+`"`) {
		t.Fatalf("a connection in resumable streams got ids %q and connect-finish %q, want positions in both", id, first[0].data)
	}
	news := Target{Channels: []string{"h-news"}}
	publish(t, h, news, "n1")
	seen := lastID(drainFrames(t, c))
	publish(t, h, news, "n2")
	publish(t, h, Target{UserIDs: []string{"ann"}}, "u1")
	publish(t, h, Target{UserIDs: []string{"ann"}, Channels: []string{"h-news"}}, "both")
	publish(t, h, Target{Channels: []string{"plain"}}, "no-history")
	h.Disconnect(context.Background(), Target{ConnectionIDs: []string{c.ID()}}, ReasonKicked)

	again := mustConnect(t, h, ConnectRequest{User: user, Channels: []string{"h-news", "plain"}, LastEventID: seen})
	fs := drainFrames(t, again)
	if !strings.Contains(fs[0].data, `"resumed":true`) {
		t.Fatalf("connect-finish %q, want resumed true", fs[0].data)
	}
	if got, want := events(fs), []string{"n2", "u1", "both"}; !slices.Equal(got, want) {
		t.Fatalf("replayed %v, want %v", got, want)
	}
	publish(t, h, news, "n3")
	live := drainFrames(t, again)
	if got := events(live); !slices.Equal(got, []string{"n3"}) {
		t.Fatalf("after the replay got %v, want [n3]", got)
	}
	// The newest id resumes from there: nothing to replay.
	third := mustConnect(t, h, ConnectRequest{User: user, Channels: []string{"h-news"}, LastEventID: lastID(live)})
	if got := events(drainFrames(t, third)); len(got) != 0 {
		t.Fatalf("a reconnect that saw everything got %v", got)
	}
}

// Positions that cannot be served are named in sse-gap with the reason,
// and connect-finish says the resume was not complete.
func TestResumeGaps(t *testing.T) {
	h := newHistoryHub(t, 2)
	user := User{ID: "bob"}
	c := mustConnect(t, h, ConnectRequest{User: user, Channels: []string{"h-a"}})
	drainFrames(t, c)
	publish(t, h, Target{Channels: []string{"h-a"}}, "a1")
	seen := lastID(drainFrames(t, c))
	publish(t, h, Target{Channels: []string{"h-a"}}, "a2", "a3", "a4") // only a3, a4 kept

	for _, tc := range []struct {
		what, lastID, reason string
		replay               []string
	}{
		{"trimmed", seen, "trimmed", []string{"a3", "a4"}},
		{"another epoch", string(appendPositionsID(nil, []StreamPos{{Stream: "c:h-a", Offset: 1, Epoch: "gone"}, {Stream: "u:bob", Epoch: "gone"}})), "epoch", []string{"a3", "a4"}},
		{"not in the id", string(appendPositionsID(nil, []StreamPos{{Stream: "c:other", Offset: 1, Epoch: "x"}})), "unknown", nil},
	} {
		r := mustConnect(t, h, ConnectRequest{User: user, Channels: []string{"h-a"}, LastEventID: tc.lastID})
		fs := drainFrames(t, r)
		if !strings.Contains(fs[0].data, `"resumed":false`) {
			t.Errorf("%s: connect-finish %q, want resumed false", tc.what, fs[0].data)
		}
		if len(fs) < 2 || fs[1].event != "sse-gap" || !strings.Contains(fs[1].data, `{"channel":"h-a","reason":"`+tc.reason+`"}`) {
			t.Errorf("%s: frames %+v, want sse-gap naming h-a with %s", tc.what, fs, tc.reason)
		}
		if got := slices.DeleteFunc(events(fs), func(e string) bool { return e == "sse-gap" }); !slices.Equal(got, tc.replay) {
			t.Errorf("%s: replayed %v, want %v", tc.what, got, tc.replay)
		}
	}
	// A QoS id or the seed's counter is no position: a fresh start, no
	// resume claimed.
	fresh := mustConnect(t, h, ConnectRequest{User: user, Channels: []string{"h-a"}, LastEventID: "17"})
	if fs := drainFrames(t, fresh); strings.Contains(fs[0].data, "resumed") || len(events(fs)) != 0 {
		t.Errorf("a counter id: %+v", fs)
	}
}

// A live event queued while the connect read its replay is shown once.
func TestResumeDropsLiveDuplicates(t *testing.T) {
	plan := resumePlan{seen: map[string]uint64{"c:a": 5}, epochs: map[string]string{"c:a": "E", "u:x": "E"}}
	for _, tc := range []struct {
		f      *frame
		covers bool
	}{
		{&frame{streams: []StreamPos{{Stream: "c:a", Offset: 5, Epoch: "E"}}}, true},
		{&frame{streams: []StreamPos{{Stream: "c:a", Offset: 6, Epoch: "E"}}}, false},
		{&frame{streams: []StreamPos{{Stream: "c:a", Offset: 4, Epoch: "F"}}}, false},
		{&frame{streams: []StreamPos{{Stream: "c:a", Offset: 4, Epoch: "E"}, {Stream: "c:not-mine", Offset: 9}}}, true},
		{&frame{streams: []StreamPos{{Stream: "c:a", Offset: 4, Epoch: "E"}, {Stream: "u:x", Offset: 1, Epoch: "E"}}}, false},
		{&frame{streams: []StreamPos{{Stream: "c:not-mine", Offset: 1}}}, false},
		{&frame{}, false},
	} {
		if got := coveredBy(plan.floor(), tc.f); got != tc.covers {
			t.Errorf("covers(%+v) = %v, want %v", tc.f.streams, got, tc.covers)
		}
	}
}

// Joining a channel with history later starts tracking it: a reconnect
// resumes it; leaving forgets it.
func TestResumeFollowsJoins(t *testing.T) {
	h := newHistoryHub(t, 100)
	user := User{ID: "cy"}
	c := mustConnect(t, h, ConnectRequest{User: user})
	drainFrames(t, c)
	if _, err := h.ChangeChannels(context.Background(), c.ID(), user, true, []string{"h-late"}); err != nil {
		t.Fatal(err)
	}
	publish(t, h, Target{Channels: []string{"h-late"}}, "l1")
	seen := lastID(drainFrames(t, c))
	publish(t, h, Target{Channels: []string{"h-late"}}, "l2")
	r := mustConnect(t, h, ConnectRequest{User: user, Channels: []string{"h-late"}, LastEventID: seen})
	if got := events(drainFrames(t, r)); !slices.Equal(got, []string{"l2"}) {
		t.Fatalf("replayed %v, want [l2]", got)
	}
	if _, err := h.ChangeChannels(context.Background(), r.ID(), user, false, []string{"h-late"}); err != nil {
		t.Fatal(err)
	}
	if pos := r.resume.positions(); len(pos) != 1 || pos[0].Stream != "u:cy" {
		t.Fatalf("positions after leaving: %+v", pos)
	}
}

// TestPositionsIDKeptUntilPositionsMove: events that move no position
// (broadcasts) reuse the id kept from the first of them; an event of a
// stream, a join, a leave and a resume's positions make a new one.
func TestPositionsIDKeptUntilPositionsMove(t *testing.T) {
	r := &resumeState{}
	if b, ok := r.appendIDAfter([]byte("x"), nil); ok || string(b) != "x" {
		t.Fatalf("a connection without positions got %q, %v", b, ok)
	}
	r.set([]StreamPos{{Stream: "u:1", Offset: 5, Epoch: "e"}})
	id := func(streams ...StreamPos) string {
		t.Helper()
		b, ok := r.appendIDAfter([]byte("id:"), streams)
		if !ok {
			t.Fatal("no id for a connection with positions")
		}
		return strings.TrimPrefix(string(b), "id:")
	}
	want := func(pos ...StreamPos) string { return string(appendPositionsID(nil, pos)) }
	if got := id(); got != want(StreamPos{Stream: "u:1", Offset: 5, Epoch: "e"}) {
		t.Fatalf("broadcast id %q", got)
	}
	if r.id != idOnce {
		t.Fatalf("after one broadcast the kept id is %q, want none yet", r.id)
	}
	for i := range 2 {
		if got := id(); got != want(StreamPos{Stream: "u:1", Offset: 5, Epoch: "e"}) {
			t.Fatalf("broadcast %d id %q", i+2, got)
		}
		if r.id != want(StreamPos{Stream: "u:1", Offset: 5, Epoch: "e"}) {
			t.Fatalf("after broadcast %d the kept id is %q", i+2, r.id)
		}
	}
	if got := id(StreamPos{Stream: "u:1", Offset: 6, Epoch: "e"}); got != want(StreamPos{Stream: "u:1", Offset: 6, Epoch: "e"}) {
		t.Fatalf("stream event id %q", got)
	}
	if got := id(StreamPos{Stream: "c:other", Offset: 9, Epoch: "e"}); got != want(StreamPos{Stream: "u:1", Offset: 6, Epoch: "e"}) {
		t.Fatalf("id after an event of a stream the connection is not in: %q", got)
	}
	r.track(StreamPos{Stream: "c:news", Offset: 2, Epoch: "f"}, true)
	if got := id(); got != want(StreamPos{Stream: "c:news", Offset: 2, Epoch: "f"}, StreamPos{Stream: "u:1", Offset: 6, Epoch: "e"}) {
		t.Fatalf("id after a join %q", got)
	}
	r.track(StreamPos{Stream: "c:news"}, false)
	if got := id(); got != want(StreamPos{Stream: "u:1", Offset: 6, Epoch: "e"}) {
		t.Fatalf("id after a leave %q", got)
	}
	r.set([]StreamPos{{Stream: "u:1", Offset: 10, Epoch: "g"}})
	if got := id(); got != want(StreamPos{Stream: "u:1", Offset: 10, Epoch: "g"}) {
		t.Fatalf("id after new positions %q", got)
	}
}

func TestPositionsIDRoundTrip(t *testing.T) {
	r := &resumeState{}
	r.set([]StreamPos{{Stream: "c:a", Offset: 1, Epoch: "e1"}, {Stream: "u:42", Offset: 1 << 40, Epoch: "e2"}})
	b, ok := r.appendIDAfter(nil, []StreamPos{{Stream: "c:a", Offset: 4, Epoch: "e1"}}) // 2 and 3 still to come
	if !ok {
		t.Fatal("no id for a connection with positions")
	}
	id := string(b)
	got, ok := decodePositionsID(id)
	if a := got[hash32("c:a")]; !ok || len(got) != 2 || a.epoch != hash32("e1") || a.offset != 1 || !slices.Equal(a.ahead, []uint64{4}) ||
		got[hash32("u:42")].offset != 1<<40 || got[hash32("u:42")].ahead != nil {
		t.Fatalf("%q decoded to %+v, %v", id, got, ok)
	}
	for _, bad := range []string{"", "17", "q00abc", "p.", "p.!!", "p.AAAA", positionsPrefix + strings.Repeat("A", 2000)} {
		if m, ok := decodePositionsID(bad); ok && len(m) > 0 {
			t.Errorf("%q decoded to %v", bad, m)
		}
	}
	many := make([]StreamPos, 100)
	for i := range many {
		many[i] = StreamPos{Stream: "c:" + strings.Repeat("x", i), Offset: 1 << 50, Epoch: "epoch123"}
	}
	if id := appendPositionsID(nil, many); len(id) > 1024 {
		t.Fatalf("an id of 100 streams is %d bytes, want ≤ 1024", len(id))
	}
}

// Events older than the stream's TTL are gone: a reconnect that missed
// them is told expired.
func TestResumeGapExpired(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	store, err := history.NewMemory(history.MemoryConfig{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	h := newTestHub(t, Config{Writers: -1, History: store, StreamHistory: func(s string) (history.Options, bool) {
		return history.Options{Size: 100, TTL: time.Minute}, strings.HasPrefix(s, StreamChannelPrefix)
	}})
	user := User{ID: "di"}
	c := mustConnect(t, h, ConnectRequest{User: user, Channels: []string{"x"}})
	drainFrames(t, c)
	publish(t, h, Target{Channels: []string{"x"}}, "x1")
	seen := lastID(drainFrames(t, c))
	publish(t, h, Target{Channels: []string{"x"}}, "x2")
	mu.Lock()
	now = now.Add(50 * time.Second)
	mu.Unlock()
	publish(t, h, Target{Channels: []string{"x"}}, "x3")
	mu.Lock()
	now = now.Add(20 * time.Second) // x2 is 70 s old, x3 20 s
	mu.Unlock()
	fs := drainFrames(t, mustConnect(t, h, ConnectRequest{User: user, Channels: []string{"x"}, LastEventID: seen}))
	if len(fs) < 2 || fs[1].event != "sse-gap" || !strings.Contains(fs[1].data, `{"channel":"x","reason":"expired"}`) {
		t.Fatalf("frames %+v, want sse-gap naming x with expired", fs)
	}
	if got := slices.DeleteFunc(events(fs), func(e string) bool { return e == "sse-gap" }); !slices.Equal(got, []string{"x3"}) {
		t.Fatalf("replayed %v, want [x3]", got)
	}
}

// Attack (issue 15): a Last-Event-ID is the browser's to forge. Positions
// of a stream the connection is not in replay nothing of it, and garbage
// of any length is no position.
func TestResumeForgedIDReplaysOnlyOwnStreams(t *testing.T) {
	h := newHistoryHub(t, 100)
	publish(t, h, Target{Channels: []string{"h-secret"}}, "s1", "s2")
	publish(t, h, Target{UserIDs: []string{"victim"}}, "v1")
	forged := string(appendPositionsID(nil, []StreamPos{{Stream: "c:h-secret", Offset: 0, Epoch: "x"}, {Stream: "u:victim", Epoch: "x"}}))
	for _, id := range []string{forged, positionsPrefix + strings.Repeat("A", 1<<16), positionsPrefix + "!!"} {
		c := mustConnect(t, h, ConnectRequest{User: User{ID: "mallory"}, Channels: []string{"h-mine"}, LastEventID: id})
		if got := slices.DeleteFunc(events(drainFrames(t, c)), func(e string) bool { return e == "sse-gap" }); len(got) != 0 {
			t.Errorf("a forged id replayed %v", got)
		}
	}
}

// Two senders' events can reach a connection out of offset order: the
// position stays below the missing one, so a drop before it arrives
// resumes with it (and the later one again) instead of skipping it.
func TestResumeOutOfOrderDoesNotSkip(t *testing.T) {
	store, err := history.NewMemory(history.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	opts := history.Options{Size: 100, TTL: time.Hour}
	h := newTestHub(t, Config{Writers: -1, History: store, StreamHistory: func(s string) (history.Options, bool) {
		return opts, s == "c:x"
	}})
	ctx := context.Background()
	user := User{ID: "ed"}
	c := mustConnect(t, h, ConnectRequest{User: user, Channels: []string{"x"}})
	drainFrames(t, c)
	var pos []StreamPos
	for _, name := range []string{"x1", "x2", "x3"} {
		p, err := store.Append(ctx, "test", "c:x", history.Entry{Event: name, Data: name, ID: name}, opts)
		if err != nil {
			t.Fatal(err)
		}
		pos = append(pos, StreamPos{Stream: "c:x", Offset: p.Offset, Epoch: p.Epoch})
	}
	deliver := func(i int) {
		h.HandleDeliver(ctx, "test", Target{Channels: []string{"x"}}, Event{Name: pos[i].Stream[2:] + strconv.Itoa(i+1), Data: "d", Streams: pos[i : i+1]})
	}
	deliver(0)
	deliver(2) // x3 before x2
	seen := lastID(drainFrames(t, c))
	r := mustConnect(t, h, ConnectRequest{User: user, Channels: []string{"x"}, LastEventID: seen})
	// The id says the client has x3 (ahead of its position 1): exactly x2.
	if got := events(drainFrames(t, r)); !slices.Equal(got, []string{"x2"}) {
		t.Fatalf("resumed with %v after x1 and x3 (x2 still on its way), want [x2]", got)
	}
	if pos := r.resume.positions(); len(pos) != 1 || pos[0].Offset != 3 {
		t.Fatalf("after the resume the position is %+v, want offset 3", pos)
	}
}

func TestStreamStateAdvance(t *testing.T) {
	for _, tc := range []struct {
		offsets []uint64
		want    uint64
		ahead   int
	}{
		{[]uint64{1, 2, 3}, 3, 0},
		{[]uint64{1, 3, 4}, 1, 2},
		{[]uint64{1, 3, 2}, 3, 0},
		{[]uint64{2, 2, 1, 1}, 2, 0},
	} {
		s := streamState{StreamPos: StreamPos{Stream: "c:a", Epoch: "e"}}
		for _, o := range tc.offsets {
			s.advance(StreamPos{Stream: "c:a", Offset: o, Epoch: "e"})
		}
		if s.Offset != tc.want || len(s.ahead) != tc.ahead {
			t.Errorf("after %v: offset %d ahead %v, want %d with %d ahead", tc.offsets, s.Offset, s.ahead, tc.want, tc.ahead)
		}
	}
	// A send this connection never gets (it listens to other events) is
	// given up once maxAhead offsets wait above it.
	s := streamState{StreamPos: StreamPos{Stream: "c:a", Epoch: "e"}}
	for o := uint64(2); o <= maxAhead+2; o++ {
		s.advance(StreamPos{Stream: "c:a", Offset: o, Epoch: "e"})
	}
	if s.Offset != maxAhead+2 || len(s.ahead) != 0 {
		t.Fatalf("with offset 1 never coming: offset %d ahead %d, want %d and none", s.Offset, len(s.ahead), maxAhead+2)
	}
	s.advance(StreamPos{Stream: "c:a", Offset: 1, Epoch: "f"})
	if s.Offset != 1 || s.Epoch != "f" {
		t.Fatalf("a new epoch: %+v", s.StreamPos)
	}
}

func TestHash32IsFNV32a(t *testing.T) {
	for _, s := range []string{"", "u:42", "c:news", "an epoch string", "\x00\xff"} {
		h := fnv.New32a()
		_, _ = h.Write([]byte(s))
		if got, want := hash32(s), h.Sum32(); got != want {
			t.Errorf("hash32(%q) = %#x, want FNV-32a %#x", s, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = hash32("u:someone") }); n != 0 {
		t.Errorf("hash32 allocates %v times", n)
	}
}
