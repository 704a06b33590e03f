package history_test

import (
	"context"
	"fmt"
	"time"

	"github.com/pushd/pushd/pkg/history"
)

// A connection joins a stream (Top), misses two entries, and reads them
// back from its position; a position of a lost epoch is told by its Gap.
func Example() {
	ctx := context.Background()
	store, err := history.NewMemory(history.MemoryConfig{})
	if err != nil {
		panic(err)
	}
	o := history.Options{Size: 100, TTL: 10 * time.Minute}

	joined, _ := store.Top(ctx, "demo", "c:news", o)
	for _, data := range []string{"first", "second"} {
		_, _ = store.Append(ctx, "demo", "c:news", history.Entry{Event: "news", Data: data}, o)
	}

	r, _ := store.Since(ctx, "demo", "c:news", joined, 10, o)
	for _, e := range r.Entries {
		fmt.Println(e.Offset, e.Data)
	}
	fmt.Printf("top %d, more %v, gap %q\n", r.Top.Offset, r.More, r.Gap)

	stale := history.Position{Offset: 7, Epoch: "lost"}
	r, _ = store.Since(ctx, "demo", "c:news", stale, 10, o)
	fmt.Printf("%d entries from the oldest, gap %q\n", len(r.Entries), r.Gap)
	// Output:
	// 1 first
	// 2 second
	// top 2, more false, gap ""
	// 2 entries from the oldest, gap "epoch"
}
