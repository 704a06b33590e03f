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
