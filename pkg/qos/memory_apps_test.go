package qos_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pushd/pushd/pkg/qos"
)

// Attack (issue 10 #1): one ack.do with 60 000 ids held the memory store's
// only lock for 14 s of quadratic per-id work, and a QoS send to another
// app waited as long. Here app a's Ack of qos.MaxAckIDs ids is held in the
// middle of its per-id work (a hook runs while app a is held): app b saves
// (evicting one of app a's messages through the store-wide bound on the
// way), reads and acknowledges all the same, and app a's Ack, once let go,
// skips the message that was evicted meanwhile.
func TestMemoryAckInOneAppDoesNotHoldAnother(t *testing.T) {
	m, err := qos.NewMemory(qos.MemoryConfig{MaxMessages: qos.MaxAckIDs + 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	ctx := context.Background()
	tok := qos.Recipient{AccessToken: "tok"}
	ids := make([]string, qos.MaxAckIDs)
	for i := range ids {
		msg := qos.Message{ID: qos.NewID(), Event: "e", AccessTokens: []string{"tok"}}
		if err := m.Save(ctx, "a", msg); err != nil {
			t.Fatal(err)
		}
		ids[i] = msg.ID
	}

	held, release := make(chan struct{}), make(chan struct{})
	qos.SetAckHook(m, func(app string) {
		if app == "a" {
			close(held)
			<-release
		}
	})
	type result struct {
		n   int
		err error
	}
	acked := make(chan result, 1)
	go func() {
		n, err := m.Ack(ctx, "a", tok, ids...)
		acked <- result{n, err}
	}()
	<-held

	other := make(chan error, 1)
	go func() { other <- useApp(ctx, m, "b") }()
	select {
	case err := <-other:
		close(release)
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second): // a deadlock detector, not a timing bound
		close(release)
		t.Fatal("app b's Save, Pending and Ack waited for app a's Ack")
	}

	res := <-acked
	if res.err != nil || res.n != len(ids)-1 {
		t.Fatalf("app a's Ack: %d, %v; want %d (one message was evicted meanwhile)", res.n, res.err, len(ids)-1)
	}
	if _, total, _ := m.List(ctx, "a", qos.Filter{}, 0, 0); total != 0 {
		t.Fatalf("app a still lists %d messages", total)
	}
	if _, total, _ := m.List(ctx, "b", qos.Filter{}, 0, 0); total != 1 {
		t.Fatalf("app b lists %d messages, want the one it did not acknowledge", total)
	}
	if st := m.Stats(); st.Evicted != 1 || st.Acked != uint64(len(ids)) {
		t.Fatalf("stats %+v, want Evicted 1 and Acked %d", st, len(ids))
	}
}

// useApp saves two messages in app, the second one over the store's bound
// of the test above, reads them and acknowledges one.
func useApp(ctx context.Context, m *qos.Memory, app string) error {
	first := qos.Message{ID: qos.NewID(), Event: "e", UserIDs: []string{"u"}}
	second := qos.Message{ID: qos.NewID(), Event: "e", UserIDs: []string{"u"}}
	for _, msg := range []qos.Message{first, second} {
		if err := m.Save(ctx, app, msg); err != nil {
			return err
		}
	}
	got, err := m.Pending(ctx, app, qos.Recipient{UserID: "u"}, "", 0)
	if err != nil || len(got) != 2 {
		return fmt.Errorf("Pending in %s: %d messages, %v; want 2", app, len(got), err)
	}
	if n, err := m.Ack(ctx, app, qos.Recipient{UserID: "u"}, first.ID); err != nil || n != 1 {
		return fmt.Errorf("Ack in %s: %d, %v; want 1", app, n, err)
	}
	return nil
}

// TestMemoryAppsConcurrently runs saves, reads and acks in three apps at
// once, over a store bound that makes the apps evict each other's
// messages, and checks that every message left once: acknowledged or
// evicted, none lost from the counts, none still listed.
func TestMemoryAppsConcurrently(t *testing.T) {
	m, err := qos.NewMemory(qos.MemoryConfig{MaxMessages: 8, MaxPerRecipient: 5})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	apps := []string{"a", "b", "c"}
	const workers, rounds = 3, 200
	// Three messages per app that nobody acknowledges while the others
	// churn: nine exceed the store's bound of eight, so some are evicted
	// however the workers happen to be scheduled.
	idle := qos.Recipient{AccessToken: "idle"}
	ctx := context.Background()
	for _, app := range apps {
		for range 3 {
			if err := m.Save(ctx, app, qos.Message{ID: qos.NewID(), Event: "e", AccessTokens: []string{idle.AccessToken}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	errs := make(chan error, len(apps)*workers)
	for _, app := range apps {
		for w := range workers {
			go func() {
				errs <- churn(m, app, qos.Recipient{AccessToken: fmt.Sprint("tok", w)}, rounds)
			}()
		}
	}
	for range len(apps) * workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, app := range apps {
		for w := range workers + 1 {
			rc := qos.Recipient{AccessToken: fmt.Sprint("tok", w)}
			if w == workers {
				rc = idle
			}
			got, err := m.Pending(ctx, app, rc, "", 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.Ack(ctx, app, rc, idsOf(got)...); err != nil {
				t.Fatal(err)
			}
		}
		if ms, total, _ := m.List(ctx, app, qos.Filter{}, 0, 0); total != 0 {
			t.Fatalf("app %s still lists %v", app, idsOf(ms))
		}
	}
	st := m.Stats()
	t.Logf("stats %+v", st)
	if want := uint64(len(apps) * (workers*rounds + 3)); st.Stored != want || st.Acked+st.Evicted != st.Stored || st.Evicted == 0 {
		t.Fatalf("stats %+v: want Stored %d = Acked + Evicted, some evicted", st, want)
	}
}

// churn saves rounds messages to rc in app, acknowledging every fourth
// round what is pending for rc.
func churn(m *qos.Memory, app string, rc qos.Recipient, rounds int) error {
	ctx := context.Background()
	for i := range rounds {
		msg := qos.Message{ID: qos.NewID(), Event: "e", AccessTokens: []string{rc.AccessToken}}
		if err := m.Save(ctx, app, msg); err != nil {
			return err
		}
		if i%4 != 3 {
			continue
		}
		got, err := m.Pending(ctx, app, rc, "", 0)
		if err != nil {
			return err
		}
		if _, err := m.Ack(ctx, app, rc, idsOf(got)...); err != nil {
			return err
		}
	}
	return nil
}

func idsOf(ms []qos.Message) []string {
	out := make([]string, len(ms))
	for i, msg := range ms {
		out[i] = msg.ID
	}
	return out
}
