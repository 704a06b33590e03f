package qos_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushd/pushd/pkg/qos"
)

// fakeClock is a settable clock for MemoryConfig.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestNewMemoryValidates(t *testing.T) {
	for _, cfg := range []qos.MemoryConfig{{MaxPerRecipient: -1}, {MaxMessages: -1}, {MaxBytes: -2}, {DefaultTTL: -time.Second}} {
		if _, err := qos.NewMemory(cfg); err == nil {
			t.Errorf("NewMemory(%+v): no error", cfg)
		}
	}
}

func TestMemoryMaxMessagesEvictsOldestAndLogs(t *testing.T) {
	var logs bytes.Buffer
	m, err := qos.NewMemory(qos.MemoryConfig{MaxMessages: 3, Logger: zerolog.New(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var saved []qos.Message
	for i, app := range []string{"a", "b", "a", "b", "a"} {
		msg := qos.Message{ID: qos.NewID(), Event: "e", UserIDs: []string{string(rune('0' + i))}}
		if err := m.Save(ctx, app, msg); err != nil {
			t.Fatal(err)
		}
		saved = append(saved, msg)
	}
	_, totalA, _ := m.List(ctx, "a", qos.Filter{}, 0, 0)
	_, totalB, _ := m.List(ctx, "b", qos.Filter{}, 0, 0)
	if totalA+totalB != 3 {
		t.Fatalf("stored %d+%d messages, want 3", totalA, totalB)
	}
	for _, gone := range saved[:2] {
		if !strings.Contains(logs.String(), gone.ID) {
			t.Errorf("eviction of %s not logged:\n%s", gone.ID, logs.String())
		}
	}
	if !strings.Contains(logs.String(), `"level":"warn"`) {
		t.Errorf("evictions not logged as warnings:\n%s", logs.String())
	}
	if st := m.Stats(); st.Evicted != 2 || st.Stored != 5 {
		t.Fatalf("stats %+v, want Stored 5, Evicted 2", st)
	}
}

// Attack (issue 10 #13): the memory store was bounded by count only, so 40
// sends of 1 MB raised the heap by 61 MB (and 100 000 would have been kept).
// With MaxBytes, sends beyond it drop the oldest messages, whatever their
// app, counted and logged as evictions.
func TestMemoryMaxBytesEvictsOldestAndLogs(t *testing.T) {
	const maxBytes = 8 << 20
	var logs bytes.Buffer
	m, err := qos.NewMemory(qos.MemoryConfig{MaxBytes: maxBytes, Logger: zerolog.New(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	data := strings.Repeat("x", 1<<20)
	var saved []qos.Message
	for i := range 40 {
		msg := qos.Message{ID: qos.NewID(), Event: "e", Data: data, UserIDs: []string{fmt.Sprint("u", i)}}
		if err := m.Save(ctx, []string{"a", "b"}[i%2], msg); err != nil {
			t.Fatal(err)
		}
		saved = append(saved, msg)
	}
	var kept []qos.Message
	for _, app := range []string{"a", "b"} {
		ms, _, err := m.List(ctx, app, qos.Filter{}, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, ms...)
	}
	held := 0
	for _, msg := range kept {
		held += len(msg.Data)
	}
	if held > maxBytes || len(kept) != 7 {
		t.Fatalf("store holds %d messages, %d bytes of data; want 7, at most %d bytes", len(kept), held, maxBytes)
	}
	for _, gone := range saved[:33] {
		if !strings.Contains(logs.String(), gone.ID) {
			t.Fatalf("eviction of %s not logged", gone.ID)
		}
	}
	if !strings.Contains(logs.String(), `"level":"warn"`) {
		t.Errorf("evictions not logged as warnings")
	}
	if st := m.Stats(); st.Evicted != 33 || st.Stored != 40 {
		t.Fatalf("stats %+v, want Stored 40, Evicted 33", st)
	}
}

// A message larger than the whole store is refused as invalid, not stored
// by dropping everything else; MaxBytes -1 lifts the bound.
func TestMemoryMaxBytesRefusesHugeMessage(t *testing.T) {
	ctx := context.Background()
	huge := qos.Message{ID: qos.NewID(), Event: "e", Data: strings.Repeat("x", qos.DefaultMemoryMaxBytes), UserIDs: []string{"u"}}
	small := qos.Message{ID: qos.NewID(), Event: "e", UserIDs: []string{"u"}}
	m, err := qos.NewMemory(qos.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Save(ctx, "a", small); err != nil {
		t.Fatal(err)
	}
	if err := m.Save(ctx, "a", huge); !errors.Is(err, qos.ErrInvalidMessage) {
		t.Fatalf("Save of a message over the default MaxBytes: %v, want ErrInvalidMessage", err)
	}
	if _, total, _ := m.List(ctx, "a", qos.Filter{}, 0, 0); total != 1 {
		t.Fatalf("store holds %d messages after the refused Save, want 1", total)
	}
	if st := m.Stats(); st.Evicted != 0 || st.Stored != 1 {
		t.Fatalf("stats %+v, want Stored 1, Evicted 0", st)
	}

	unbounded, err := qos.NewMemory(qos.MemoryConfig{MaxBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range []qos.Message{small, huge} {
		if err := unbounded.Save(ctx, "a", msg); err != nil {
			t.Fatalf("Save with MaxBytes -1: %v", err)
		}
	}
	if _, total, _ := unbounded.List(ctx, "a", qos.Filter{}, 0, 0); total != 2 {
		t.Fatalf("store without byte bound holds %d messages, want 2", total)
	}
}

func TestMemoryExpiryWithClock(t *testing.T) {
	var logs bytes.Buffer
	clock := &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	m, err := qos.NewMemory(qos.MemoryConfig{DefaultTTL: time.Minute, Now: clock.Now, Logger: zerolog.New(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	undelivered := qos.Message{ID: qos.NewID(), Event: "e", UserIDs: []string{"u1"}}
	broadcast := qos.Message{ID: qos.NewID(), Event: "e", All: true, ExpiresAt: clock.Now().Add(2 * time.Minute)}
	for _, msg := range []qos.Message{undelivered, broadcast} {
		if err := m.Save(ctx, "a", msg); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := m.Pending(ctx, "a", qos.Recipient{UserID: "u1"}, "", 0)
	if len(got) != 2 || !got[0].ExpiresAt.Equal(clock.Now().Add(time.Minute)) {
		t.Fatalf("pending before expiry: %+v", got)
	}
	clock.Add(time.Minute) // ExpiresAt itself is expired
	got, _ = m.Pending(ctx, "a", qos.Recipient{UserID: "u1"}, "", 0)
	if len(got) != 1 || got[0].ID != broadcast.ID {
		t.Fatalf("pending after 1m: %+v, want only the broadcast", got)
	}
	if !strings.Contains(logs.String(), `"level":"info"`) || !strings.Contains(logs.String(), undelivered.ID) {
		t.Fatalf("expiry of an undelivered message not logged at info:\n%s", logs.String())
	}
	clock.Add(time.Minute)
	if _, total, _ := m.List(ctx, "a", qos.Filter{}, 0, 0); total != 0 {
		t.Fatalf("List after 2m: total %d, want 0", total)
	}
	if st := m.Stats(); st.Expired != 2 {
		t.Fatalf("stats %+v, want Expired 2", st)
	}
}
