package hub

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushd/pushd/pkg/history"
)

// recordingStore is a history.Memory (Immediate, as Memory is) that
// records its appends, and whether their context had a deadline; with
// hang, Append waits for the context to end, as an unreachable Redis does.
type recordingStore struct {
	*history.Memory
	hang bool

	mu       sync.Mutex
	entries  []history.Entry
	deadline []bool
}

func (s *recordingStore) Append(ctx context.Context, app, stream string, e history.Entry, o history.Options) (history.Position, error) {
	_, has := ctx.Deadline()
	s.mu.Lock()
	s.entries = append(s.entries, e)
	s.deadline = append(s.deadline, has)
	s.mu.Unlock()
	if s.hang {
		<-ctx.Done()
		return history.Position{}, ctx.Err()
	}
	return s.Memory.Append(ctx, app, stream, e, o)
}

// remoteStore is a recordingStore without Immediate: what the hub sees
// of a store it must bound.
type remoteStore struct{ s *recordingStore }

func (r remoteStore) Append(ctx context.Context, app, stream string, e history.Entry, o history.Options) (history.Position, error) {
	return r.s.Append(ctx, app, stream, e, o)
}

func (r remoteStore) Since(ctx context.Context, app, stream string, p history.Position, limit int, o history.Options) (history.Result, error) {
	return r.s.Since(ctx, app, stream, p, limit, o)
}

func (r remoteStore) Top(ctx context.Context, app, stream string, o history.Options) (history.Position, error) {
	return r.s.Top(ctx, app, stream, o)
}

// newRecordingHub is a hub whose users' and channels' streams keep
// history in a recordingStore, seen by the hub as immediate (the memory
// store) or not.
func newRecordingHub(t *testing.T, immediate, hang bool, timeout time.Duration) (*Hub, *recordingStore) {
	t.Helper()
	mem, err := history.NewMemory(history.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingStore{Memory: mem, hang: hang}
	var store HistoryStore = remoteStore{rec}
	if immediate {
		store = rec
	}
	h := newTestHub(t, Config{Writers: -1, History: store, StoreTimeout: timeout, StreamHistory: func(string) (history.Options, bool) {
		return history.Options{Size: 10, TTL: time.Hour}, true
	}})
	return h, rec
}

// The memory store's appends take the caller's context as is: no timer
// per send. A store that is not history.Immediate gets the deadline of
// Config.StoreTimeout.
func TestHistoryAppendDeadlineOnlyForStoresThatWait(t *testing.T) {
	for _, immediate := range []bool{true, false} {
		h, rec := newRecordingHub(t, immediate, false, time.Minute)
		if _, err := h.Publish(context.Background(), Target{UserIDs: []string{"ann"}}, Event{Name: "e", Data: "x"}); err != nil {
			t.Fatal(err)
		}
		if len(rec.deadline) != 1 || rec.deadline[0] == immediate {
			t.Errorf("immediate store %v: appends with a deadline %v, want %v", immediate, rec.deadline, !immediate)
		}
	}
}

// A history store that does not answer fails the send with ErrStore
// after Config.StoreTimeout instead of holding the caller, and nothing is
// delivered.
func TestStoreTimeoutBoundsHistorySend(t *testing.T) {
	h, _ := newRecordingHub(t, false, true, 50*time.Millisecond)
	start := time.Now()
	_, err := h.Publish(context.Background(), Target{UserIDs: []string{"u"}}, Event{Name: "e", Data: "x"})
	if !errors.Is(err, ErrStore) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish with a hanging history store: %v, want ErrStore wrapping the deadline", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("Publish took %v with a 50 ms StoreTimeout", took)
	}
}

// history.Memory says it never waits on I/O.
func TestMemoryStoreIsImmediate(t *testing.T) {
	mem, err := history.NewMemory(history.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if !isImmediate(mem) {
		t.Fatal("history.Memory is not Immediate")
	}
	if isImmediate(nil) || isImmediate(remoteStore{}) {
		t.Fatal("a nil store or one without Immediate is Immediate")
	}
}

// A send to one stream is stored without an id (there is no other stream
// to tell it apart in); the entries of a send to several streams share
// one, new for every send.
func TestHistorySendIDs(t *testing.T) {
	h, rec := newRecordingHub(t, true, false, time.Minute)
	ctx := context.Background()
	if _, err := h.Publish(ctx, Target{UserIDs: []string{"ann"}}, Event{Name: "one"}); err != nil {
		t.Fatal(err)
	}
	two := Target{UserIDs: []string{"ann", "bob"}, Channels: []string{"news"}}
	for range 2 {
		if _, err := h.Publish(ctx, two, Event{Name: "three"}); err != nil {
			t.Fatal(err)
		}
	}
	e := rec.entries
	if len(e) != 7 {
		t.Fatalf("%d appends, want 7", len(e))
	}
	if e[0].ID != "" {
		t.Errorf("a send to one stream has id %q", e[0].ID)
	}
	for _, send := range [][]history.Entry{e[1:4], e[4:7]} {
		if id := send[0].ID; id == "" || send[1].ID != id || send[2].ID != id {
			t.Errorf("one send's entries have ids %q %q %q, want one shared id", send[0].ID, send[1].ID, send[2].ID)
		}
	}
	if e[1].ID == e[4].ID {
		t.Errorf("two sends share id %q", e[1].ID)
	}
}

// A send's positions name its streams sorted and each once, whatever the
// order and repetition of the target's keys.
func TestHistoryPositionsSortedOnce(t *testing.T) {
	h, _ := newRecordingHub(t, true, false, time.Minute)
	res, err := h.Publish(context.Background(), Target{UserIDs: []string{"bob", "ann", "bob", ""}, Channels: []string{"z", "a"}}, Event{Name: "e"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range res.Positions {
		if p.Offset != 1 || p.Epoch == "" {
			t.Errorf("position %+v, want offset 1 in an epoch", p)
		}
		names = append(names, p.Stream)
	}
	if got := strings.Join(names, " "); got != "c:a c:z u:ann u:bob" {
		t.Fatalf("positions of streams %q, want %q", got, "c:a c:z u:ann u:bob")
	}
}
