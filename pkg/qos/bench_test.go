package qos_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushd/pushd/internal/testredis"
	"github.com/pushd/pushd/pkg/qos"
)

// benchRoundTrip measures what one QoS message costs: Save to a user,
// Pending for that user, Ack.
func benchRoundTrip(b *testing.B, repo qos.Repository) {
	ctx := context.Background()
	rc := qos.Recipient{UserID: "u1", TenantID: "t1", Listeners: []string{"e"}}
	b.ReportAllocs()
	for b.Loop() {
		m := qos.Message{ID: qos.NewID(), Event: "e", Data: `{"order":42,"state":"shipped"}`,
			UserIDs: []string{"u1"}, ExpiresAt: time.Now().Add(time.Hour)}
		if err := repo.Save(ctx, "bench", m); err != nil {
			b.Fatal(err)
		}
		got, err := repo.Pending(ctx, "bench", rc, "", 10)
		if err != nil || len(got) != 1 {
			b.Fatalf("Pending: %d messages, %v", len(got), err)
		}
		if n, err := repo.Ack(ctx, "bench", rc, got[0].ID); err != nil || n != 1 {
			b.Fatalf("Ack: %d, %v", n, err)
		}
	}
}

// benchRoundTripParallel runs round trips of many users at once.
func benchRoundTripParallel(b *testing.B, repo qos.Repository) {
	ctx := context.Background()
	var seq atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		rc := qos.Recipient{UserID: fmt.Sprint("u", seq.Add(1))}
		for pb.Next() {
			m := qos.Message{ID: qos.NewID(), Event: "e", Data: "x", UserIDs: []string{rc.UserID},
				ExpiresAt: time.Now().Add(time.Hour)}
			if err := repo.Save(ctx, "bench", m); err != nil {
				b.Fatal(err)
			}
			got, err := repo.Pending(ctx, "bench", rc, "", 10)
			if err != nil || len(got) != 1 {
				b.Fatalf("Pending: %d messages, %v", len(got), err)
			}
			if _, err := repo.Ack(ctx, "bench", rc, got[0].ID); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkMemoryRoundTrip(b *testing.B) {
	m, err := qos.NewMemory(qos.MemoryConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) { benchRoundTrip(b, m) })
	b.Run("parallel", func(b *testing.B) { benchRoundTripParallel(b, m) })
}

func BenchmarkRedisRoundTrip(b *testing.B) {
	s := testredis.Start(b)
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	b.Cleanup(func() { _ = c.Close() })
	r, err := qos.NewRedis(qos.RedisConfig{Client: c, Prefix: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) { benchRoundTrip(b, r) })
	b.Run("parallel", func(b *testing.B) { benchRoundTripParallel(b, r) })
}

// benchAck1000 measures one Ack of qos.MaxAckIDs ids, the most one call may
// carry. In "pending" every id is pending for the recipient: each round
// saves the messages anew, and ns/ack reports the time of the Ack alone.
// In "unknown" the ids name nothing (what a browser sending made-up ids
// costs).
func benchAck1000(b *testing.B, repo qos.Repository) {
	ctx := context.Background()
	rc := qos.Recipient{AccessToken: "tok"}
	ids := make([]string, qos.MaxAckIDs)
	b.Run("pending", func(b *testing.B) {
		var acking time.Duration
		rounds := 0
		for b.Loop() {
			for i := range ids {
				m := qos.Message{ID: qos.NewID(), Event: "e", Data: "x", AccessTokens: []string{"tok"},
					ExpiresAt: time.Now().Add(time.Hour)}
				if err := repo.Save(ctx, "bench", m); err != nil {
					b.Fatal(err)
				}
				ids[i] = m.ID
			}
			start := time.Now()
			n, err := repo.Ack(ctx, "bench", rc, ids...)
			acking += time.Since(start)
			rounds++
			if err != nil || n != len(ids) {
				b.Fatalf("Ack: %d, %v; want %d", n, err, len(ids))
			}
		}
		b.ReportMetric(float64(acking.Nanoseconds())/float64(rounds), "ns/ack")
	})
	b.Run("unknown", func(b *testing.B) {
		for i := range ids {
			ids[i] = qos.NewID()
		}
		for b.Loop() {
			if n, err := repo.Ack(ctx, "bench", rc, ids...); err != nil || n != 0 {
				b.Fatalf("Ack: %d, %v; want 0", n, err)
			}
		}
	})
}

func BenchmarkAck1000(b *testing.B) {
	b.Run("memory", func(b *testing.B) {
		m, err := qos.NewMemory(qos.MemoryConfig{})
		if err != nil {
			b.Fatal(err)
		}
		benchAck1000(b, m)
	})
	b.Run("redis", func(b *testing.B) {
		s := testredis.Start(b)
		c := redis.NewClient(&redis.Options{Addr: s.Addr()})
		b.Cleanup(func() { _ = c.Close() })
		r, err := qos.NewRedis(qos.RedisConfig{Client: c, Prefix: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		benchAck1000(b, r)
	})
}
