package redishistory_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/pushd/pushd/internal/testredis"
	"github.com/pushd/pushd/pkg/history"
	"github.com/pushd/pushd/pkg/history/historytest"
	"github.com/pushd/pushd/pkg/history/redishistory"
)

var prefixSeq atomic.Int64

// newStore returns a store on c with a key space of its own.
func newStore(tb testing.TB, c redis.UniversalClient) *redishistory.Store {
	tb.Helper()
	s, err := redishistory.New(c, redishistory.Config{Prefix: fmt.Sprintf("test%d", prefixSeq.Add(1))})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestRedisConformance(t *testing.T) {
	c := testredis.Start(t).Client()
	historytest.Run(t, func(t *testing.T) history.Store { return newStore(t, c) })
}

// TestRedisConformanceMiniredis runs the suite on miniredis too, so it
// runs on a machine without redis-server (where TestRedisConformance is
// skipped, or fails when CI is set).
func TestRedisConformanceMiniredis(t *testing.T) {
	m := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	historytest.Run(t, func(t *testing.T) history.Store { return newStore(t, c) },
		historytest.Skip("StreamExpires", "needs a real redis-server: miniredis expires keys only when its clock is fast-forwarded (TestRedisConformance runs it)"))
}

// BenchmarkRedis runs the store's benchmarks and, as the yardstick of
// issue 15's cost target (a publish with history ≤ 2 × one without), a
// bare PUBLISH of the same payload on the same server.
func BenchmarkRedis(b *testing.B) {
	c := testredis.Start(b).Client()
	historytest.Benchmark(b, func(b *testing.B) history.Store { return newStore(b, c) })
	b.Run("Publish", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if err := c.Publish(ctx, "c:news", `{"order":42,"state":"shipped"}`).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestNewValidates(t *testing.T) {
	if _, err := redishistory.New(nil, redishistory.Config{}); err == nil {
		t.Fatal("New without client: no error")
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	if _, err := redishistory.New(c, redishistory.Config{Prefix: "a{b"}); err == nil {
		t.Fatal("New with { in prefix: no error")
	}
}

var opts = history.Options{Size: 3, TTL: time.Hour}

// TestRedisKeys checks the key layout: two keys per stream, in one hash
// slot, both with the stream's TTL, the entries trimmed to Size.
func TestRedisKeys(t *testing.T) {
	c := testredis.StartAny(t).Client()
	s, err := redishistory.New(c, redishistory.Config{Prefix: "px"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 5 {
		if _, err := s.Append(ctx, "demo", "c:news", history.Entry{Event: "e", Data: fmt.Sprint(i)}, opts); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	meta, entries := "px:h:{4:demo:c:news}:m", "px:h:{4:demo:c:news}:s"
	if len(keys) != 2 {
		t.Fatalf("keys %v, want %s and %s", keys, meta, entries)
	}
	for _, k := range []string{meta, entries} {
		if ttl, err := c.PTTL(ctx, k).Result(); err != nil || ttl <= 0 || ttl > opts.TTL {
			t.Fatalf("key %s: PTTL %v, %v; want at most %v", k, ttl, err, opts.TTL)
		}
	}
	if n, err := c.XLen(ctx, entries).Result(); err != nil || n != int64(opts.Size) {
		t.Fatalf("XLEN %s: %d, %v; want %d", entries, n, err, opts.Size)
	}
	h, err := c.HGetAll(ctx, meta).Result()
	if err != nil || h["n"] != "5" || len(h["e"]) != history.EpochLen {
		t.Fatalf("meta %v, %v; want n 5 and an epoch", h, err)
	}
	xs, err := c.XRange(ctx, entries, "-", "+").Result()
	if err != nil || len(xs) != 3 || xs[0].ID != "3-1" || xs[0].Values["d"] != "2" {
		t.Fatalf("entries %v, %v; want ids 3-1, 4-1, 5-1", xs, err)
	}
}

// TestRedisRestartWithoutPersistence: Redis restarted without persistence
// lost every key; the stream gets a new epoch, and positions of the old
// one get Gap EpochChanged, not offsets that start again at 1 taken for
// ones already seen.
func TestRedisRestartWithoutPersistence(t *testing.T) {
	srv := testredis.Start(t)
	s := newStore(t, srv.Client())
	ctx := context.Background()
	var last history.Position
	for i := range 3 {
		var err error
		if last, err = s.Append(ctx, "demo", "c:news", history.Entry{Data: fmt.Sprint("before ", i)}, opts); err != nil {
			t.Fatal(err)
		}
	}
	srv.Restart()

	r, err := s.Since(ctx, "demo", "c:news", last, 10, opts)
	if err != nil {
		t.Fatalf("Since after the restart: %v", err)
	}
	if r.Gap != history.EpochChanged || len(r.Entries) != 0 || r.Top.Offset != 0 || r.Top.Epoch == last.Epoch {
		t.Fatalf("Since %+v after the restart: %+v; want Gap EpochChanged, no entries, offset 0 in a new epoch", last, r)
	}
	p, err := s.Append(ctx, "demo", "c:news", history.Entry{Data: "after"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if p != (history.Position{Offset: 1, Epoch: r.Top.Epoch}) {
		t.Fatalf("Append after the restart: %+v, want offset 1 in epoch %q", p, r.Top.Epoch)
	}
	r, err = s.Since(ctx, "demo", "c:news", last, 10, opts)
	if err != nil || r.Gap != history.EpochChanged || len(r.Entries) != 1 || r.Entries[0].Data != "after" {
		t.Fatalf("Since the old position: %+v, %v; want Gap EpochChanged and the new entry", r, err)
	}
}

// TestRedisRestartWithPersistence: with AOF (fsync on every write) the
// epoch, the offsets and the entries survive a SIGKILL of Redis.
func TestRedisRestartWithPersistence(t *testing.T) {
	srv := testredis.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	s := newStore(t, srv.Client())
	ctx := context.Background()
	first, err := s.Append(ctx, "demo", "c:news", history.Entry{Data: "one"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "demo", "c:news", history.Entry{Data: "two"}, opts); err != nil {
		t.Fatal(err)
	}
	srv.Restart()

	r, err := s.Since(ctx, "demo", "c:news", first, 10, opts)
	if err != nil {
		t.Fatal(err)
	}
	if r.Gap != history.NoGap || len(r.Entries) != 1 || r.Entries[0].Data != "two" || r.Top != (history.Position{Offset: 2, Epoch: first.Epoch}) {
		t.Fatalf("Since %+v after the restart: %+v; want entry 2, no gap, same epoch", first, r)
	}
	if p, err := s.Append(ctx, "demo", "c:news", history.Entry{Data: "three"}, opts); err != nil || p != (history.Position{Offset: 3, Epoch: first.Epoch}) {
		t.Fatalf("Append after the restart: %+v, %v; want offset 3 in epoch %q", p, err, first.Epoch)
	}
}

// TestRedisDown: with redis-server gone every call fails, with the
// stream named, and works again once it is back.
func TestRedisDown(t *testing.T) {
	srv := testredis.Start(t)
	s := newStore(t, srv.Client())
	srv.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Append(ctx, "demo", "c:news", history.Entry{Data: "x"}, opts); err == nil {
		t.Fatal("Append with Redis down: no error")
	} else {
		t.Logf("Append with Redis down: %v", err)
	}
	if _, err := s.Since(ctx, "demo", "c:news", history.Position{}, 10, opts); err == nil {
		t.Fatal("Since with Redis down: no error")
	}
	if _, err := s.Top(ctx, "demo", "c:news", opts); err == nil {
		t.Fatal("Top with Redis down: no error")
	}
	srv.Start()
	if p, err := s.Append(ctx, "demo", "c:news", history.Entry{Data: "x"}, opts); err != nil || p.Offset != 1 {
		t.Fatalf("Append with Redis back: %+v, %v", p, err)
	}
}
