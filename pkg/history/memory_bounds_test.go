package history_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushd/pushd/pkg/history"
)

// clock is a fake clock for Memory.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

var ctx = context.Background()

func mustAppend(t *testing.T, m *history.Memory, stream, data string, o history.Options) history.Position {
	t.Helper()
	p, err := m.Append(ctx, "app", stream, history.Entry{Data: data}, o)
	if err != nil {
		t.Fatalf("Append %s: %v", stream, err)
	}
	return p
}

func mustSince(t *testing.T, m *history.Memory, stream string, p history.Position, o history.Options) history.Result {
	t.Helper()
	r, err := m.Since(ctx, "app", stream, p, 100, o)
	if err != nil {
		t.Fatalf("Since %s: %v", stream, err)
	}
	return r
}

func TestNewMemoryValidates(t *testing.T) {
	for _, cfg := range []history.MemoryConfig{{MaxStreams: -1}, {MaxBytes: -2}} {
		if _, err := history.NewMemory(cfg); err == nil {
			t.Errorf("NewMemory(%+v): no error", cfg)
		}
	}
}

// TestMemoryTTL follows entries and a stream through the TTL on a fake
// clock: an entry leaves TTL after its append (Gap Expired, its bytes no
// longer counted), the stream TTL after its last append (a new epoch, and
// it leaves the index).
func TestMemoryTTL(t *testing.T) {
	c := &clock{now: time.Unix(1_000_000, 0)}
	m := newMemory(t, history.MemoryConfig{Now: c.Now})
	o := history.Options{Size: 10, TTL: 10 * time.Second}
	p1 := mustAppend(t, m, "s", "one", o)
	withOne := m.Stats().Bytes // the stream and one entry of 3 bytes
	c.Add(5 * time.Second)
	p2 := mustAppend(t, m, "s", "two", o)
	c.Add(5*time.Second - time.Nanosecond)
	if r := mustSince(t, m, "s", history.Position{Epoch: p1.Epoch}, o); len(r.Entries) != 2 || r.Gap != history.NoGap {
		t.Fatalf("just before the TTL: %+v, want both entries", r)
	}
	c.Add(time.Nanosecond)
	r := mustSince(t, m, "s", history.Position{Epoch: p1.Epoch}, o)
	if r.Gap != history.Expired || len(r.Entries) != 1 || r.Entries[0].Data != "two" || r.Top != p2 {
		t.Fatalf("at the TTL of entry 1: %+v, want Gap Expired and entry 2", r)
	}
	if st := m.Stats(); st.Bytes != withOne {
		t.Fatalf("bytes after entry 1 expired: %d, want %d (the stream and entry 2)", st.Bytes, withOne)
	}
	c.Add(5 * time.Second) // 10 s after the last append
	mustAppend(t, m, "other", "x", o)
	if st := m.Stats(); st.Streams != 1 {
		t.Fatalf("streams after s went TTL without appends: %d, want 1 (other)", st.Streams)
	}
	r = mustSince(t, m, "s", p2, o)
	if r.Gap != history.EpochChanged || len(r.Entries) != 0 || r.Top.Epoch == p1.Epoch || r.Top.Offset != 0 {
		t.Fatalf("Since after the stream's TTL: %+v, want Gap EpochChanged in a new epoch", r)
	}
	if st := m.Stats(); st.Evicted != 0 {
		t.Fatalf("expiry counted as eviction: %+v", st)
	}
}

// TestMemoryMaxStreams: a stream beyond MaxStreams evicts one never
// appended to, else the least recently appended one, whose positions then
// get Gap EpochChanged.
func TestMemoryMaxStreams(t *testing.T) {
	m := newMemory(t, history.MemoryConfig{MaxStreams: 3})
	o := history.Options{Size: 10, TTL: time.Hour}
	p := map[string]history.Position{}
	for _, s := range []string{"s1", "s2", "s3", "s1"} {
		p[s] = mustAppend(t, m, s, "x", o)
	}
	joined, err := m.Top(ctx, "app", "s4", o) // joining makes a stream too
	if err != nil {
		t.Fatal(err)
	}
	if st := m.Stats(); st.Streams != 3 || st.Evicted != 1 {
		t.Fatalf("stats %+v, want 3 streams and 1 eviction", st)
	}
	if r := mustSince(t, m, "s2", p["s2"], o); r.Gap != history.EpochChanged {
		t.Fatalf("s2, the least recently appended: %+v, want Gap EpochChanged", r)
	}
	// Reading s2 made it anew and evicted s4, never appended to, rather
	// than s3, the least recently appended.
	if st := m.Stats(); st.Streams != 3 || st.Evicted != 2 {
		t.Fatalf("stats %+v, want 3 streams and 2 evictions", st)
	}
	for _, s := range []string{"s1", "s3"} {
		if r := mustSince(t, m, s, p[s], o); r.Gap != history.NoGap || r.Top != p[s] {
			t.Fatalf("%s: %+v, want its entry kept", s, r)
		}
	}
	if q, err := m.Top(ctx, "app", "s4", o); err != nil || q.Epoch == joined.Epoch {
		t.Fatalf("Top of s4 after its eviction: %+v, %v; want a new epoch", q, err)
	}
}

// TestMemoryJoinsDoNotEvictHistory: Top of many new names (a client
// joining channels nobody sends to) evicts only streams never appended to.
func TestMemoryJoinsDoNotEvictHistory(t *testing.T) {
	m := newMemory(t, history.MemoryConfig{MaxStreams: 10})
	o := history.Options{Size: 10, TTL: time.Hour}
	var kept []history.Position
	for i := range 5 {
		kept = append(kept, mustAppend(t, m, fmt.Sprint("news", i), "x", o))
	}
	for i := range 1000 {
		if _, err := m.Top(ctx, "app", fmt.Sprint("random", i), o); err != nil {
			t.Fatal(err)
		}
	}
	if st := m.Stats(); st.Streams != 10 || st.Evicted != 995 {
		t.Fatalf("stats %+v, want 10 streams, 995 evictions", st)
	}
	for i, p := range kept {
		if r := mustSince(t, m, fmt.Sprint("news", i), history.Position{Epoch: p.Epoch}, o); r.Gap != history.NoGap || len(r.Entries) != 1 {
			t.Fatalf("news%d after 1000 joins: %+v, want its entry", i, r)
		}
	}
}

// TestMemoryMaxBytes: beyond MaxBytes the least recently appended streams
// go; an entry larger than the store is refused.
func TestMemoryMaxBytes(t *testing.T) {
	const maxBytes = 4000
	m := newMemory(t, history.MemoryConfig{MaxBytes: maxBytes})
	o := history.Options{Size: 100, TTL: time.Hour}
	if _, err := m.Append(ctx, "app", "s", history.Entry{Data: strings.Repeat("x", maxBytes)}, o); !errors.Is(err, history.ErrInvalid) {
		t.Fatalf("Append of an entry larger than the store: %v, want ErrInvalid", err)
	}
	data := strings.Repeat("x", 400)
	first := mustAppend(t, m, "s0", data, o)
	for i := range 20 {
		mustAppend(t, m, fmt.Sprint("s", i%4), data, o)
		if st := m.Stats(); st.Bytes > maxBytes {
			t.Fatalf("after append %d: %d bytes, more than %d", i, st.Bytes, maxBytes)
		}
	}
	st := m.Stats()
	if st.Evicted == 0 || st.Streams == 0 {
		t.Fatalf("stats %+v: want evictions and some streams left", st)
	}
	if r := mustSince(t, m, "s0", first, o); r.Gap != history.EpochChanged {
		t.Fatalf("s0 after evictions: %+v, want Gap EpochChanged", r)
	}
}

// TestMemoryConcurrentEvictions runs appends, reads and joins of more
// streams than the store holds at once (run with -race): the bounds hold,
// and every stream read has consecutive offsets.
func TestMemoryConcurrentEvictions(t *testing.T) {
	m := newMemory(t, history.MemoryConfig{MaxStreams: 5, MaxBytes: 20000})
	o := history.Options{Size: 20, TTL: time.Hour}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 300 {
				stream := fmt.Sprint("s", (w+i)%12)
				if _, err := m.Append(ctx, "app", stream, history.Entry{Data: strings.Repeat("y", 100)}, o); err != nil {
					t.Error(err)
					return
				}
				r, err := m.Since(ctx, "app", stream, history.Position{}, 100, o)
				if err != nil {
					t.Error(err)
					return
				}
				for j := 1; j < len(r.Entries); j++ {
					if r.Entries[j].Offset != r.Entries[j-1].Offset+1 {
						t.Errorf("%s: offsets %d then %d", stream, r.Entries[j-1].Offset, r.Entries[j].Offset)
						return
					}
				}
				if _, err := m.Top(ctx, "app", fmt.Sprint("t", i%7), o); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if st := m.Stats(); st.Streams > 5 || st.Bytes > 20000 || st.Evicted == 0 {
		t.Fatalf("stats after the run %+v: want at most 5 streams, 20000 bytes, and evictions", st)
	}
}

// TestMemoryTTLAfterTrim: once Size dropped the oldest entry, the next
// one's age decides when the stream's entries expire — not the dropped
// one's.
func TestMemoryTTLAfterTrim(t *testing.T) {
	c := &clock{now: time.Unix(1_000_000, 0)}
	m := newMemory(t, history.MemoryConfig{Now: c.Now})
	o := history.Options{Size: 2, TTL: time.Hour}
	first := mustAppend(t, m, "s", "one", o)
	c.Add(30 * time.Minute)
	mustAppend(t, m, "s", "two", o)
	c.Add(10 * time.Minute)
	mustAppend(t, m, "s", "three", o) // drops "one"
	offsets := func() []uint64 {
		var out []uint64
		for _, e := range mustSince(t, m, "s", history.Position{Epoch: first.Epoch}, o).Entries {
			out = append(out, e.Offset)
		}
		return out
	}
	c.Add(25 * time.Minute) // 1 h 05 after "one", 35 min after "two"
	if got := offsets(); len(got) != 2 || got[0] != 2 || got[1] != 3 {
		t.Fatalf("entries an hour after the dropped one: %v, want [2 3]", got)
	}
	c.Add(30 * time.Minute) // 1 h 05 after "two", 55 min after "three"
	if got := offsets(); len(got) != 1 || got[0] != 3 {
		t.Fatalf("entries an hour after the second: %v, want [3]", got)
	}
}

// TestMemoryJoinedThenAppended: a stream made by Top and then appended to
// counts as appended to: new names joined beyond MaxStreams evict each
// other, not it.
func TestMemoryJoinedThenAppended(t *testing.T) {
	m := newMemory(t, history.MemoryConfig{MaxStreams: 3})
	o := history.Options{Size: 10, TTL: time.Hour}
	if _, err := m.Top(ctx, "app", "a", o); err != nil {
		t.Fatal(err)
	}
	pa := mustAppend(t, m, "a", "x", o)
	pb := mustAppend(t, m, "b", "x", o)
	for i := range 5 {
		if _, err := m.Top(ctx, "app", fmt.Sprint("join", i), o); err != nil {
			t.Fatal(err)
		}
	}
	if st := m.Stats(); st.Streams != 3 || st.Evicted != 4 {
		t.Fatalf("stats %+v, want 3 streams and 4 evictions", st)
	}
	for s, p := range map[string]history.Position{"a": pa, "b": pb} {
		if r := mustSince(t, m, s, history.Position{Epoch: p.Epoch}, o); r.Gap != history.NoGap || r.Top != p {
			t.Fatalf("%s after the joins: %+v, want its entry kept", s, r)
		}
	}
}
