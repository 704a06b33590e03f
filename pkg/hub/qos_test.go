package hub

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushd/pushd/pkg/qos"
)

// newMemoryRepo returns the in-memory QoS repository, closed at the end.
func newMemoryRepo(tb testing.TB) *qos.Memory {
	tb.Helper()
	m, err := qos.NewMemory(qos.MemoryConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = m.Close() })
	return m
}

var errRepoDown = errors.New("repository down")

// faultyRepo is a repository whose calls fail on demand.
type faultyRepo struct {
	qos.Repository
	failSave, failPending, failList atomic.Bool
	hangSave                        atomic.Bool
	failAcks                        atomic.Int32 // the next n Ack calls fail
	acks                            atomic.Int32 // Ack calls made
}

var _ qos.Repository = (*faultyRepo)(nil)

func (r *faultyRepo) Save(ctx context.Context, app string, m qos.Message) error {
	if r.failSave.Load() {
		return errRepoDown
	}
	if r.hangSave.Load() { // an unreachable Redis: no answer until the deadline
		<-ctx.Done()
		return ctx.Err()
	}
	return r.Repository.Save(ctx, app, m)
}

func (r *faultyRepo) Pending(ctx context.Context, app string, rc qos.Recipient, after string, limit int) ([]qos.Message, error) {
	if r.failPending.Load() {
		return nil, errRepoDown
	}
	return r.Repository.Pending(ctx, app, rc, after, limit)
}

func (r *faultyRepo) Ack(ctx context.Context, app string, rc qos.Recipient, ids ...string) (int, error) {
	r.acks.Add(1)
	if r.failAcks.Add(-1) >= 0 {
		return 0, errRepoDown
	}
	return r.Repository.Ack(ctx, app, rc, ids...)
}

func (r *faultyRepo) List(ctx context.Context, app string, f qos.Filter, offset, limit int) ([]qos.Message, int, error) {
	if r.failList.Load() {
		return nil, 0, errRepoDown
	}
	return r.Repository.List(ctx, app, f, offset, limit)
}

// pendingIDs lists the ids pending for user in app "test".
func pendingIDs(tb testing.TB, repo qos.Repository, user string) []string {
	tb.Helper()
	msgs, err := repo.Pending(context.Background(), "test", qos.Recipient{UserID: user}, "", 100)
	if err != nil {
		tb.Fatal(err)
	}
	var ids []string
	for _, m := range msgs {
		ids = append(ids, m.ID)
	}
	return ids
}

// awaitNoPending waits until nothing is pending for user.
func awaitNoPending(tb testing.TB, repo qos.Repository, user string) {
	tb.Helper()
	checkFor(tb, waitTimeout, func() error {
		if ids := pendingIDs(tb, repo, user); len(ids) > 0 {
			return fmt.Errorf("still pending for %s: %v", user, ids)
		}
		return nil
	})
}

// awaitQoSCounters polls the hub's QoS counters until ok holds: an
// acknowledgement made off the caller's goroutine is counted after the
// repository has recorded it.
func awaitQoSCounters(tb testing.TB, h *Hub, ok func(QoSCounters) bool) {
	tb.Helper()
	checkFor(tb, waitTimeout, func() error {
		if c := h.Counters().QoS; !ok(c) {
			return fmt.Errorf("QoS counters %+v", c)
		}
		return nil
	})
}

func TestQoSOfflineThenReplay(t *testing.T) {
	forEachPath(t, func(t *testing.T, p streamPath) {
		repo := newMemoryRepo(t)
		f := newFixture(t, p, Config{Repository: repo, Heartbeat: -1})
		ctx := context.Background()
		res, err := f.h.Publish(ctx, Target{UserIDs: []string{"bob"}}, Event{Name: "order", Data: "line1\nline2"}, WithQoS(time.Hour))
		if err != nil {
			t.Fatalf("Publish: %v", err)
		}
		if !res.Stored || res.Delivered != 0 || !looksLikeQoSID(res.ID) {
			t.Fatalf("Publish result %+v", res)
		}
		if ids := pendingIDs(t, repo, "bob"); len(ids) != 1 || ids[0] != res.ID {
			t.Fatalf("pending %v", ids)
		}
		cl := f.connect(vals("userId", "bob", "ack", "1"))
		it := cl.nextFrame()
		want := "id:" + res.ID + "\nevent:order\n:resend\ndata:line1\ndata:line2\n\n"
		if it.raw != want || it.id != res.ID || it.event != "order" || it.data != "line1\nline2" {
			t.Fatalf("replayed frame %q, want %q", it.raw, want)
		}
		// The owner acknowledges; others cannot.
		if _, err := f.h.Ack(ctx, cl.id, User{ID: "mallory"}, []string{res.ID}); !errors.Is(err, ErrUnknownConnection) {
			t.Errorf("Ack by another user: %v", err)
		}
		if _, err := f.h.Ack(ctx, "nope", User{ID: "bob"}, []string{res.ID}); !errors.Is(err, ErrUnknownConnection) {
			t.Errorf("Ack on unknown connection: %v", err)
		}
		n, err := f.h.Ack(ctx, cl.id, User{ID: "bob"}, []string{res.ID, "qunknown"})
		if err != nil || n != 1 {
			t.Fatalf("Ack: %d %v", n, err)
		}
		if ids := pendingIDs(t, repo, "bob"); len(ids) != 0 {
			t.Errorf("pending after ack: %v", ids)
		}
		if list, total, err := f.h.Messages(ctx, qos.Filter{}, 0, 10); err != nil || total != 0 || len(list) != 0 {
			t.Errorf("Messages after ack: %v %d %v", list, total, err)
		}
		// Redelivered is counted after the frame is queued, on the replaying
		// goroutine.
		awaitQoSCounters(t, f.h, func(c QoSCounters) bool { return c.Stored == 1 && c.Redelivered == 1 && c.Acked == 1 })
		// A live event after the replay still counts from 1.
		if _, err := f.h.SendByUserID(ctx, "bob", "live", "x"); err != nil {
			t.Fatal(err)
		}
		if it := cl.nextFrame(); it.id != "1" {
			t.Errorf("live event id %q", it.id)
		}
	})
}

func TestQoSResumeAfterLastEventID(t *testing.T) {
	repo := newMemoryRepo(t)
	f := newFixture(t, streamPaths[0], Config{Repository: repo, Heartbeat: -1})
	ctx := context.Background()
	var ids []string
	for i := range 3 {
		res, err := f.h.Publish(ctx, Target{UserIDs: []string{"bob"}}, Event{Name: "m", Data: fmt.Sprint(i)}, WithQoS(0))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.ID)
	}
	// An acknowledging client gets everything it has not acknowledged,
	// whatever its Last-Event-ID says.
	acking := f.connect(vals("userId", "bob", "ack", "1", "lastEventId", ids[1]))
	for _, want := range ids {
		if it := acking.nextFrame(); it.id != want || len(it.comments) != 1 || it.comments[0] != "resend" {
			t.Errorf("acking client: replayed %q, want id %s", it.raw, want)
		}
	}
	// A client that cannot acknowledge resumes after its Last-Event-ID
	// (and has what it gets acknowledged once written, so the next
	// connection has nothing left: use a second user for that).
	for i := range 3 {
		if _, err := f.h.Publish(ctx, Target{UserIDs: []string{"carl"}}, Event{Name: "m", Data: fmt.Sprint(i)}, WithQoS(0)); err != nil {
			t.Fatal(err)
		}
	}
	carl := pendingIDs(t, repo, "carl")
	plain := f.connect(vals("userId", "carl", "lastEventId", carl[0]))
	for _, want := range carl[1:] {
		if it := plain.nextFrame(); it.id != want {
			t.Errorf("non-acking client: replayed %q, want id %s", it.raw, want)
		}
	}
	if _, err := f.h.SendByUserID(ctx, "carl", "marker", "x"); err != nil {
		t.Fatal(err)
	}
	if it := plain.nextFrame(); it.event != "marker" {
		t.Errorf("non-acking client: %q before the marker", it.raw)
	}
	// Ids that are not QoS ids (a counter, a connection id) skip nothing.
	dora := []string{}
	for i := range 2 {
		res, err := f.h.Publish(ctx, Target{UserIDs: []string{"dora"}}, Event{Name: "m", Data: fmt.Sprint(i)}, WithQoS(0))
		if err != nil {
			t.Fatal(err)
		}
		dora = append(dora, res.ID)
	}
	cl := f.connect(vals("userId", "dora", "lastEventId", "7"))
	for _, want := range dora {
		if it := cl.nextFrame(); it.id != want {
			t.Errorf("Last-Event-ID 7: replayed %q, want id %s", it.raw, want)
		}
	}
}

func TestQoSLiveDelivery(t *testing.T) {
	repo := newMemoryRepo(t)
	h := newTestHub(t, Config{Writers: -1, Repository: repo})
	c := mustConnect(t, h, ConnectRequest{User: User{ID: "bob"}, CanAck: true})
	drainQueue(c)
	res, err := h.Publish(context.Background(), Target{UserIDs: []string{"bob"}}, Event{Name: "e", Data: "d"}, WithQoS(0))
	if err != nil || res.Delivered != 1 || !res.Stored {
		t.Fatalf("Publish: %+v %v", res, err)
	}
	frames, _ := c.take()
	if len(frames) != 1 || frames[0].qosID != res.ID || render(frames[0], 0) != "event:e\nid:"+res.ID+"\ndata:d\n\n" {
		t.Errorf("live QoS frame %+v", frames)
	}
	// A sender may bring its own QoS id.
	own := qos.NewID()
	if res, err := h.Publish(context.Background(), Target{UserIDs: []string{"bob"}}, Event{Name: "e", ID: own}, WithQoS(0)); err != nil || res.ID != own {
		t.Errorf("own id: %+v %v", res, err)
	}
	if _, err := h.Publish(context.Background(), Target{UserIDs: []string{"bob"}}, Event{Name: "e", ID: "bad\nid"}, WithQoS(0)); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("bad own id: %v", err)
	}
}

func TestQoSRedeliverWhileConnected(t *testing.T) {
	forEachPath(t, func(t *testing.T, p streamPath) {
		repo := newMemoryRepo(t)
		f := newFixture(t, p, Config{Repository: repo, Heartbeat: -1, RedeliverAfter: time.Millisecond})
		runHub(t, f.h)
		ctx := context.Background()
		// Only events the client listens to are sent again: it cannot
		// acknowledge the others.
		cl := f.connect(vals("userId", "bob", "ack", "1", "listeners", "e"))
		res, err := f.h.Publish(ctx, Target{UserIDs: []string{"bob"}}, Event{Name: "e", Data: "x"}, WithQoS(0))
		if err != nil || res.Delivered != 1 {
			t.Fatalf("Publish: %+v %v", res, err)
		}
		if it := cl.nextFrame(); it.raw != "event:e\nid:"+res.ID+"\ndata:x\n\n" {
			t.Fatalf("live frame %q", it.raw)
		}
		// Not acknowledged: sent again by the sweep.
		it := cl.nextFrame()
		if it.raw != "id:"+res.ID+"\nevent:e\n:resend\ndata:x\n\n" {
			t.Fatalf("redelivered frame %q", it.raw)
		}
		if n, err := f.h.Ack(ctx, cl.id, User{ID: "bob"}, []string{res.ID}); err != nil || n != 1 {
			t.Fatalf("Ack: %d %v", n, err)
		}
		if ids := pendingIDs(t, repo, "bob"); len(ids) != 0 {
			t.Errorf("pending after ack: %v", ids)
		}
		// Counted after the frame is queued, on the redelivering goroutine.
		awaitQoSCounters(t, f.h, func(c QoSCounters) bool { return c.Redelivered >= 1 })
		// Once acknowledged nothing is overdue any more.
		checkFor(t, waitTimeout, func() error {
			c := f.h.Conn(cl.id)
			if c != nil && c.hasOverdue(time.Now().Add(time.Hour), time.Millisecond) {
				return errors.New("acknowledged message still tracked")
			}
			return nil
		})
	})
}

func TestQoSNonAckingClient(t *testing.T) {
	forEachPath(t, func(t *testing.T, p streamPath) {
		repo := newMemoryRepo(t)
		f := newFixture(t, p, Config{Repository: repo, Heartbeat: -1, RedeliverAfter: time.Millisecond})
		runHub(t, f.h)
		ctx := context.Background()
		// Stored while offline, replayed on connect, acknowledged once written.
		res1, err := f.h.Publish(ctx, Target{UserIDs: []string{"ann"}}, Event{Name: "e", Data: "1"}, WithQoS(0))
		if err != nil {
			t.Fatal(err)
		}
		cl := f.connect(vals("userId", "ann"))
		if it := cl.nextFrame(); it.id != res1.ID || len(it.comments) != 1 || it.comments[0] != "resend" {
			t.Fatalf("replayed %q", it.raw)
		}
		awaitNoPending(t, repo, "ann")
		// Live: acknowledged once written, never sent again.
		res2, err := f.h.Publish(ctx, Target{UserIDs: []string{"ann"}}, Event{Name: "e", Data: "2"}, WithQoS(0))
		if err != nil || res2.Delivered != 1 {
			t.Fatalf("Publish: %+v %v", res2, err)
		}
		if it := cl.nextFrame(); it.id != res2.ID {
			t.Fatalf("live %q", it.raw)
		}
		awaitNoPending(t, repo, "ann")
		if _, err := f.h.SendByUserID(ctx, "ann", "marker", "x"); err != nil {
			t.Fatal(err)
		}
		if it := cl.nextFrame(); it.event != "marker" {
			t.Errorf("after the acknowledged message: %q", it.raw)
		}
		awaitQoSCounters(t, f.h, func(c QoSCounters) bool { return c.Acked == 2 })
	})
}

func TestQoSTargets(t *testing.T) {
	repo := newMemoryRepo(t)
	h := newTestHub(t, Config{Writers: -1, Repository: repo})
	ctx := context.Background()
	c := mustConnect(t, h, connectReq("u"))
	drainQueue(c)
	for _, tg := range []Target{
		{ConnectionIDs: []string{c.ID()}},
		{ConnectionIDs: []string{c.ID()}, Listening: true},
		{},
		{UserIDs: []string{""}, ConnectionIDs: []string{c.ID()}},
	} {
		if _, err := h.Publish(ctx, tg, Event{Name: "e"}, WithQoS(0)); !errors.Is(err, ErrNoTarget) {
			t.Errorf("QoS to %+v: %v", tg, err)
		}
	}
	if list, total, _ := h.Messages(ctx, qos.Filter{}, 0, 10); total != 0 {
		t.Errorf("stored after refused sends: %v", list)
	}
	if got, _ := drainQueue(c); got != "" {
		t.Errorf("refused QoS sends delivered %q", got)
	}
	for _, tg := range []Target{{All: true}, {TenantIDs: []string{"t"}}, {Channels: []string{"c"}}, {AccessTokens: []string{"k"}}} {
		res, err := h.Publish(ctx, tg, Event{Name: "e"}, WithQoS(time.Minute))
		if err != nil || !res.Stored {
			t.Errorf("QoS to %+v: %+v %v", tg, res, err)
		}
	}
	list, total, err := h.Messages(ctx, qos.Filter{}, 0, 10)
	if err != nil || total != 4 {
		t.Fatalf("Messages: %d %v", total, err)
	}
	if ttl := list[0].ExpiresAt.Sub(list[0].CreatedAt); ttl != time.Minute {
		t.Errorf("ttl %v", ttl)
	}
	if !list[0].All {
		t.Errorf("first message %+v", list[0])
	}
}

func TestQoSStoreFailure(t *testing.T) {
	repo := &faultyRepo{Repository: newMemoryRepo(t)}
	h := newTestHub(t, Config{Writers: -1, Repository: repo})
	ctx := context.Background()
	c := mustConnect(t, h, connectReq("u"))
	drainQueue(c)
	repo.failSave.Store(true)
	res, err := h.Publish(ctx, Target{UserIDs: []string{"u"}}, Event{Name: "e", Data: "x"}, WithQoS(0))
	if !errors.Is(err, ErrStore) || !errors.Is(err, errRepoDown) {
		t.Errorf("Publish with failing store: %v", err)
	}
	if !reflect.DeepEqual(res, Result{}) {
		t.Errorf("result %+v", res)
	}
	if got, _ := drainQueue(c); got != "" {
		t.Errorf("delivered despite the store failure: %q", got)
	}
	if cnt := h.Counters(); cnt.Sends != 0 || cnt.Deliveries != 0 || cnt.QoS.Stored != 0 {
		t.Errorf("counters %+v", cnt)
	}
	repo.failList.Store(true)
	if _, _, err := h.Messages(ctx, qos.Filter{}, 0, 10); !errors.Is(err, ErrStore) {
		t.Errorf("Messages with failing store: %v", err)
	}
	// A plain send does not need the store.
	if n, err := h.SendByUserID(ctx, "u", "e", "x"); err != nil || n != 1 {
		t.Errorf("plain send: %d %v", n, err)
	}
}

func TestQoSReplayFailureLeavesStream(t *testing.T) {
	repo := &faultyRepo{Repository: newMemoryRepo(t)}
	f := newFixture(t, streamPaths[0], Config{Repository: repo, Heartbeat: -1})
	ctx := context.Background()
	if _, err := f.h.Publish(ctx, Target{UserIDs: []string{"u"}}, Event{Name: "e"}, WithQoS(0)); err != nil {
		t.Fatal(err)
	}
	repo.failPending.Store(true)
	cl := f.connect(vals("userId", "u", "ack", "1"))
	if _, err := f.h.SendByUserID(ctx, "u", "live", "x"); err != nil {
		t.Fatal(err)
	}
	if it := cl.nextFrame(); it.event != "live" {
		t.Errorf("got %q", it.raw)
	}
	// Once the store is back, ReplayAll brings the message.
	repo.failPending.Store(false)
	f.h.ReplayAll(ctx)
	if it := cl.nextFrame(); it.event != "e" || it.comments[0] != "resend" {
		t.Errorf("after ReplayAll: %q", it.raw)
	}
}

func TestQoSAckRetried(t *testing.T) {
	repo := &faultyRepo{Repository: newMemoryRepo(t)}
	h := newTestHub(t, Config{Writers: -1, Repository: repo, RedeliverAfter: -1})
	ctx := context.Background()
	c := mustConnect(t, h, ConnectRequest{User: User{ID: "bob"}, CanAck: true})
	res, err := h.Publish(ctx, Target{UserIDs: []string{"bob"}}, Event{Name: "e"}, WithQoS(0))
	if err != nil {
		t.Fatal(err)
	}
	repo.failAcks.Store(2) // this Ack and the first retry fail
	n, err := h.Ack(ctx, c.ID(), User{ID: "bob"}, []string{res.ID})
	if err != nil || n != 0 {
		t.Errorf("Ack with failing store: %d %v (the ack is queued, not lost)", n, err)
	}
	if ids := pendingIDs(t, repo, "bob"); len(ids) != 1 {
		t.Fatalf("pending %v", ids)
	}
	runHub(t, h)
	awaitNoPending(t, repo, "bob")
	awaitQoSCounters(t, h, func(c QoSCounters) bool { return c.AckRetries >= 1 && c.Acked == 1 && c.AckDropped == 0 })
	if a := repo.acks.Load(); a < 3 {
		t.Errorf("%d Ack calls, want at least 3", a)
	}
}

func TestQoSNonAckingAckRetried(t *testing.T) {
	repo := &faultyRepo{Repository: newMemoryRepo(t)}
	f := newFixture(t, streamPaths[0], Config{Repository: repo, Heartbeat: -1})
	runHub(t, f.h)
	ctx := context.Background()
	cl := f.connect(vals("userId", "ann"))
	repo.failAcks.Store(1)
	res, err := f.h.Publish(ctx, Target{UserIDs: []string{"ann"}}, Event{Name: "e"}, WithQoS(0))
	if err != nil {
		t.Fatal(err)
	}
	if it := cl.nextFrame(); it.id != res.ID {
		t.Fatalf("got %q", it.raw)
	}
	awaitNoPending(t, repo, "ann")
	awaitQoSCounters(t, f.h, func(c QoSCounters) bool { return c.AckRetries == 1 && c.Acked == 1 })
}

func TestQoSTransportCarriesID(t *testing.T) {
	tr := newFakeTransport()
	h := newTestHub(t, Config{Writers: -1, Repository: newMemoryRepo(t), Transport: tr})
	res, err := h.Publish(context.Background(), Target{UserIDs: []string{"remote"}}, Event{Name: "e", Data: "d"}, WithQoS(0))
	if err != nil {
		t.Fatal(err)
	}
	call := <-tr.sink
	if call.ev.ID != res.ID || call.ev.Name != "e" || call.ev.Data != "d" {
		t.Errorf("Deliver got %+v, want the QoS id %s", call.ev, res.ID)
	}
}

// A repository that does not answer fails the send with ErrStore after
// Config.StoreTimeout instead of holding the caller.
func TestStoreTimeoutBoundsQoSSend(t *testing.T) {
	mem, err := qos.NewMemory(qos.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	repo := &faultyRepo{Repository: mem}
	repo.hangSave.Store(true)
	h := newTestHub(t, Config{Writers: -1, Repository: repo, StoreTimeout: 50 * time.Millisecond})
	_, err = h.Publish(context.Background(), Target{UserIDs: []string{"u"}}, Event{Name: "e", Data: "x"}, WithQoS(0))
	if !errors.Is(err, ErrStore) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish with a hanging store: %v, want ErrStore wrapping the deadline", err)
	}
}
