package historytest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushd/pushd/pkg/history"
)

// benchOpts bound the benchmarks' streams: 1000 entries for an hour.
var benchOpts = history.Options{Size: 1000, TTL: time.Hour}

// benchEntry is a typical small channel message.
var benchEntry = history.Entry{Event: "update", Data: `{"order":42,"state":"shipped"}`, ID: "01J9Z8Q4W2XK3M5N7P9R1S3T5V"}

// Benchmark measures a store with the benchmarks every implementation
// runs, each against a new store from newStore:
//
//   - Append/serial: appends to one stream (kept at 1000 entries);
//   - Append/parallel: appends by many goroutines, each to a stream of
//     its own;
//   - Append/contended: appends by many goroutines to one stream;
//   - Append/spread: appends to 10 000 streams in turn, each kept at
//     100 entries, as personal sends to many users' streams do (each
//     append finds its stream cold);
//   - Since/serial, Since/parallel: reads of the last 10 of 1000 entries,
//     what a reconnect that missed 10 messages costs;
//   - Since/top: a read at the top, a reconnect that missed nothing;
//   - Top: what joining a stream costs.
func Benchmark(b *testing.B, newStore func(b *testing.B) history.Store) {
	b.Run("Append", func(b *testing.B) {
		b.Run("serial", func(b *testing.B) { benchAppend(b, newStore(b)) })
		b.Run("parallel", func(b *testing.B) { benchAppendParallel(b, newStore(b), false) })
		b.Run("contended", func(b *testing.B) { benchAppendParallel(b, newStore(b), true) })
		b.Run("spread", func(b *testing.B) { benchAppendSpread(b, newStore(b)) })
	})
	b.Run("Since", func(b *testing.B) {
		b.Run("serial", func(b *testing.B) { benchSince(b, newStore(b), 10, false) })
		b.Run("parallel", func(b *testing.B) { benchSince(b, newStore(b), 10, true) })
		b.Run("top", func(b *testing.B) { benchSince(b, newStore(b), 0, false) })
	})
	b.Run("Top", func(b *testing.B) { benchTop(b, newStore(b)) })
}

func benchAppend(b *testing.B, s history.Store) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Append(ctx, "bench", "c:news", benchEntry, benchOpts); err != nil {
			b.Fatal(err)
		}
	}
}

func benchAppendSpread(b *testing.B, s history.Store) {
	const streams = 10000
	names := make([]string, streams)
	for i := range names {
		names[i] = fmt.Sprint("u:", i)
	}
	opts := history.Options{Size: 100, TTL: time.Hour}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Append(ctx, "bench", names[i%streams], benchEntry, opts); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func benchAppendParallel(b *testing.B, s history.Store, oneStream bool) {
	var seq atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		stream := "c:news"
		if !oneStream {
			stream = fmt.Sprint("c:", seq.Add(1))
		}
		for pb.Next() {
			if _, err := s.Append(ctx, "bench", stream, benchEntry, benchOpts); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchSince reads the missed entries after a position missed entries
// behind the top of a stream of 1000.
func benchSince(b *testing.B, s history.Store, missed int, parallel bool) {
	ctx := context.Background()
	var p history.Position
	for range benchOpts.Size {
		var err error
		if p, err = s.Append(ctx, "bench", "c:news", benchEntry, benchOpts); err != nil {
			b.Fatal(err)
		}
	}
	p.Offset -= uint64(missed)
	read := func() {
		r, err := s.Since(ctx, "bench", "c:news", p, 100, benchOpts)
		if err != nil || len(r.Entries) != missed || r.Gap != history.NoGap {
			b.Fatalf("Since: %d entries, gap %q, %v; want %d", len(r.Entries), r.Gap, err, missed)
		}
	}
	b.ReportAllocs()
	if !parallel {
		for b.Loop() {
			read()
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			read()
		}
	})
}

func benchTop(b *testing.B, s history.Store) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Top(ctx, "bench", "c:news", benchOpts); err != nil {
			b.Fatal(err)
		}
	}
}
