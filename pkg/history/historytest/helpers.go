package historytest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pushd/pushd/pkg/history"
)

const app = "app1"

// opts are the options of the cases that do not test the bounds: room for
// everything they append, for an hour.
var opts = history.Options{Size: 1000, TTL: time.Hour}

// entry is the n-th test entry of a stream.
func entry(n int) history.Entry {
	return history.Entry{Event: "e", Data: fmt.Sprintf(`{"n":%d}`, n), ID: fmt.Sprint("id", n)}
}

func appendN(t *testing.T, s history.Store, app, stream string, n int, o history.Options) []history.Position {
	t.Helper()
	out := make([]history.Position, n)
	for i := range n {
		out[i] = appendOne(t, s, app, stream, entry(i+1), o)
	}
	return out
}

func appendOne(t *testing.T, s history.Store, app, stream string, e history.Entry, o history.Options) history.Position {
	t.Helper()
	p, err := s.Append(context.Background(), app, stream, e, o)
	if err != nil {
		t.Fatalf("Append(%s, %s): %v", app, stream, err)
	}
	return p
}

func since(t *testing.T, s history.Store, app, stream string, p history.Position, limit int, o history.Options) history.Result {
	t.Helper()
	r, err := s.Since(context.Background(), app, stream, p, limit, o)
	if err != nil {
		t.Fatalf("Since(%s, %s, %+v, %d): %v", app, stream, p, limit, err)
	}
	for i := 1; i < len(r.Entries); i++ {
		if r.Entries[i].Offset <= r.Entries[i-1].Offset {
			t.Fatalf("Since(%s, %s, %+v): offsets out of order: %v", app, stream, p, offsets(r.Entries))
		}
	}
	return r
}

func top(t *testing.T, s history.Store, app, stream string, o history.Options) history.Position {
	t.Helper()
	p, err := s.Top(context.Background(), app, stream, o)
	if err != nil {
		t.Fatalf("Top(%s, %s): %v", app, stream, err)
	}
	return p
}

func offsets(es []history.Entry) []uint64 {
	out := make([]uint64, len(es))
	for i, e := range es {
		out[i] = e.Offset
	}
	return out
}

// span is from, from+1, …, to (nothing when to < from).
func span(from, to uint64) []uint64 {
	var out []uint64
	for o := from; o <= to; o++ {
		out = append(out, o)
	}
	return out
}

// want checks what a Since read: its entries' offsets, More and Gap.
func want(t *testing.T, what string, r history.Result, offs []uint64, more bool, gap history.Gap) {
	t.Helper()
	if got := offsets(r.Entries); !slices.Equal(got, offs) && (len(got) != 0 || len(offs) != 0) {
		t.Fatalf("%s: got offsets %v, want %v", what, got, offs)
	}
	if r.More != more {
		t.Fatalf("%s: More %v, want %v", what, r.More, more)
	}
	if r.Gap != gap {
		t.Fatalf("%s: Gap %q, want %q", what, r.Gap, gap)
	}
}

func wantPos(t *testing.T, what string, got, want history.Position) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got position %+v, want %+v", what, got, want)
	}
}
