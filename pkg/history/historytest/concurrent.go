package historytest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/pushd/pushd/pkg/history"
)

// testConcurrentAppends: appenders to one stream get distinct offsets 1…N,
// no gap, and each entry is read back at the offset its Append returned.
func testConcurrentAppends(t *testing.T, s history.Store) {
	const workers, perWorker = 20, 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	byData := map[string]history.Position{}
	for w := range workers {
		wg.Go(func() {
			var last uint64
			for i := range perWorker {
				data := fmt.Sprintf("w%d-%d", w, i)
				p, err := s.Append(context.Background(), app, "s", history.Entry{Event: "e", Data: data}, opts)
				if err != nil {
					t.Error(err)
					return
				}
				if p.Offset <= last {
					t.Errorf("worker %d: offset %d after %d", w, p.Offset, last)
				}
				last = p.Offset
				mu.Lock()
				byData[data] = p
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	var offs []uint64
	epoch := ""
	for _, p := range byData {
		offs = append(offs, p.Offset)
		if epoch == "" {
			epoch = p.Epoch
		} else if p.Epoch != epoch {
			t.Fatalf("epochs %q and %q in one stream", epoch, p.Epoch)
		}
	}
	slices.Sort(offs)
	if !slices.Equal(offs, span(1, workers*perWorker)) {
		t.Fatalf("offsets of %d concurrent appends: %v, want 1 to %d", workers*perWorker, offs, workers*perWorker)
	}
	p := history.Position{Epoch: epoch}
	n := 0
	for {
		r := since(t, s, app, "s", p, 64, opts)
		for _, e := range r.Entries {
			n++
			if e.Offset != uint64(n) || byData[e.Data].Offset != e.Offset {
				t.Fatalf("entry at offset %d holds %q, appended at %+v (entry number %d)", e.Offset, e.Data, byData[e.Data], n)
			}
		}
		if !r.More {
			break
		}
		p.Offset = r.Entries[len(r.Entries)-1].Offset
	}
	if n != workers*perWorker {
		t.Fatalf("read back %d entries, want %d", n, workers*perWorker)
	}
}

// testConcurrentStreams: appends and reads of several streams and apps at
// once stay apart.
func testConcurrentStreams(t *testing.T, s history.Store) {
	const workers, perWorker = 8, 25
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			ctx := context.Background()
			a, stream := fmt.Sprint("app", w%2), fmt.Sprint("s", w)
			start, err := s.Top(ctx, a, stream, opts)
			if err != nil {
				t.Error(err)
				return
			}
			for i := range perWorker {
				p, err := s.Append(ctx, a, stream, entry(i+1), opts)
				if err != nil {
					t.Error(err)
					return
				}
				if want := (history.Position{Offset: uint64(i + 1), Epoch: start.Epoch}); p != want {
					t.Errorf("%s/%s: append %d at %+v, want %+v", a, stream, i+1, p, want)
					return
				}
				r, err := s.Since(ctx, a, stream, history.Position{Offset: p.Offset - 1, Epoch: p.Epoch}, 10, opts)
				if err != nil {
					t.Error(err)
					return
				}
				if len(r.Entries) != 1 || r.Entries[0].Data != entry(i+1).Data || r.Gap != history.NoGap {
					t.Errorf("%s/%s: read back %+v (gap %q), want entry %d", a, stream, r.Entries, r.Gap, i+1)
					return
				}
			}
		})
	}
	wg.Wait()
}
