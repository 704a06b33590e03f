package qostest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushd/pushd/pkg/qos"
)

// Benchmark measures a repository with the benchmarks every implementation
// runs, each against a new repository from newRepo (unbounded or bounded
// generously: the benchmarks keep at most qos.MaxAckIDs messages per inbox):
//
//   - RoundTrip/serial, RoundTrip/parallel: what one QoS message costs, a
//     Save to a user, Pending for that user, Ack; in parallel, many users
//     at once;
//   - Ack1000/pending: one Ack of qos.MaxAckIDs ids, the most one call may
//     carry, all pending for the recipient (each round saves them anew;
//     ns/ack reports the time of the Ack alone);
//   - Ack1000/unknown: the same ids naming nothing, what a browser sending
//     made-up ids costs.
func Benchmark(b *testing.B, newRepo func(b *testing.B) qos.Repository) {
	b.Run("RoundTrip", func(b *testing.B) {
		b.Run("serial", func(b *testing.B) { benchRoundTrip(b, newRepo(b)) })
		b.Run("parallel", func(b *testing.B) { benchRoundTripParallel(b, newRepo(b)) })
	})
	b.Run("Ack1000", func(b *testing.B) {
		b.Run("pending", func(b *testing.B) { benchAckPending(b, newRepo(b)) })
		b.Run("unknown", func(b *testing.B) { benchAckUnknown(b, newRepo(b)) })
	})
}

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

func benchAckPending(b *testing.B, repo qos.Repository) {
	ctx := context.Background()
	rc := qos.Recipient{AccessToken: "tok"}
	ids := make([]string, qos.MaxAckIDs)
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
}

func benchAckUnknown(b *testing.B, repo qos.Repository) {
	ctx := context.Background()
	rc := qos.Recipient{AccessToken: "tok"}
	ids := make([]string, qos.MaxAckIDs)
	for i := range ids {
		ids[i] = qos.NewID()
	}
	for b.Loop() {
		if n, err := repo.Ack(ctx, "bench", rc, ids...); err != nil || n != 0 {
			b.Fatalf("Ack: %d, %v; want 0", n, err)
		}
	}
}
