package historytest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/pkg/history"
)

func testAppendOffsets(t *testing.T, s history.Store) {
	ps := appendN(t, s, app, "s1", 5, opts)
	for i, p := range ps {
		if p.Offset != uint64(i+1) || p.Epoch != ps[0].Epoch {
			t.Fatalf("append %d: position %+v, want offset %d in epoch %q", i+1, p, i+1, ps[0].Epoch)
		}
	}
	wantPos(t, "Top after 5 appends", top(t, s, app, "s1", opts), ps[4])
	r := since(t, s, app, "s1", history.Position{Epoch: ps[0].Epoch}, 10, opts)
	want(t, "Since 0", r, span(1, 5), false, history.NoGap)
	wantPos(t, "Since 0: Top", r.Top, ps[4])
	for i, e := range r.Entries {
		if w := entry(i + 1); e.Event != w.Event || e.Data != w.Data || e.ID != w.ID {
			t.Fatalf("entry %d read back as %+v, want %+v", i+1, e, w)
		}
	}
}

func testEntryRoundTrip(t *testing.T, s history.Store) {
	in := []history.Entry{
		{Event: "multi", Data: "line 1\nline 2\r\n\x00end", ID: "01HZX"},
		{Data: "no event, no id"},
		{Event: "ünïcødé", Data: "日本語 ✓ 🚀", ID: "id with spaces"},
		{Event: "big", Data: strings.Repeat("x", 64<<10)},
		{Event: "empty"},
	}
	before := time.Now()
	for _, e := range in {
		e.Offset, e.Time = 77, time.Unix(1, 0) // the store sets both
		appendOne(t, s, app, "rt", e, opts)
	}
	after := time.Now()
	r := since(t, s, app, "rt", top(t, s, app, "rt", opts), 1, opts)
	want(t, "Since the top", r, nil, false, history.NoGap)
	r = since(t, s, app, "rt", history.Position{Epoch: r.Top.Epoch}, len(in), opts)
	want(t, "Since 0", r, span(1, uint64(len(in))), false, history.NoGap)
	for i, got := range r.Entries {
		w := in[i]
		if got.Event != w.Event || got.Data != w.Data || got.ID != w.ID {
			t.Fatalf("entry %d read back as %q/%.40q/%q, want %q/%.40q/%q", i+1, got.Event, got.Data, got.ID, w.Event, w.Data, w.ID)
		}
		// A store may take the time from another clock (Redis's) and
		// round it to the millisecond: allow a minute either way.
		if got.Time.Before(before.Add(-time.Minute)) || got.Time.After(after.Add(time.Minute)) {
			t.Fatalf("entry %d: time %v, appended between %v and %v", i+1, got.Time, before, after)
		}
		if i > 0 && got.Time.Before(r.Entries[i-1].Time) {
			t.Fatalf("entry %d: time %v before the previous entry's %v", i+1, got.Time, r.Entries[i-1].Time)
		}
	}
}

func testStreamsIsolated(t *testing.T, s history.Store) {
	a := appendN(t, s, app, "c:news", 3, opts)
	b := appendN(t, s, app, "c:sport", 2, opts)
	if a[2].Offset != 3 || b[1].Offset != 2 {
		t.Fatalf("offsets not per stream: %+v, %+v", a, b)
	}
	want(t, "Since 0 of c:news", since(t, s, app, "c:news", history.Position{Epoch: a[0].Epoch}, 10, opts), span(1, 3), false, history.NoGap)
	r := since(t, s, app, "c:sport", history.Position{Epoch: b[0].Epoch}, 10, opts)
	want(t, "Since 0 of c:sport", r, span(1, 2), false, history.NoGap)
	wantPos(t, "Top of c:sport", r.Top, b[1])
}

// testAppsIsolated also tries names that would meet in a store that joins
// app and stream with a separator.
func testAppsIsolated(t *testing.T, s history.Store) {
	pairs := [][2]string{{"a", "b:c"}, {"a:b", "c"}, {"a:b:c", "x"}, {"", "a:b:c"}, {"a}{b", "c"}, {"a", "}{b:c"}}
	for i, p := range pairs {
		appendN(t, s, p[0], p[1], i+1, opts)
	}
	for i, p := range pairs {
		tp := top(t, s, p[0], p[1], opts)
		if tp.Offset != uint64(i+1) {
			t.Fatalf("app %q stream %q: top %+v, want offset %d", p[0], p[1], tp, i+1)
		}
		r := since(t, s, p[0], p[1], history.Position{Epoch: tp.Epoch}, 10, opts)
		want(t, fmt.Sprintf("Since 0 of app %q stream %q", p[0], p[1]), r, span(1, uint64(i+1)), false, history.NoGap)
	}
}

func testInvalid(t *testing.T, s history.Store) {
	ctx := context.Background()
	bad := map[string]history.Options{
		"size 0": {Size: 0, TTL: time.Hour}, "size -1": {Size: -1, TTL: time.Hour},
		"ttl 0": {Size: 10}, "ttl -1s": {Size: 10, TTL: -time.Second},
	}
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, history.ErrInvalid) {
			t.Fatalf("%s: error %v, want ErrInvalid", what, err)
		}
	}
	for name, o := range bad {
		_, err := s.Append(ctx, app, "s", entry(1), o)
		check("Append with "+name, err)
		_, err = s.Since(ctx, app, "s", history.Position{}, 10, o)
		check("Since with "+name, err)
		_, err = s.Top(ctx, app, "s", o)
		check("Top with "+name, err)
	}
	_, err := s.Append(ctx, app, "", entry(1), opts)
	check("Append to an empty stream", err)
	_, err = s.Since(ctx, app, "", history.Position{}, 10, opts)
	check("Since of an empty stream", err)
	_, err = s.Top(ctx, app, "", opts)
	check("Top of an empty stream", err)
	for _, limit := range []int{0, -1} {
		_, err = s.Since(ctx, app, "s", history.Position{}, limit, opts)
		check(fmt.Sprint("Since with limit ", limit), err)
	}
	// Nothing of the refused appends was stored.
	if p := top(t, s, app, "s", opts); p.Offset != 0 {
		t.Fatalf("Top after refused appends: %+v, want offset 0", p)
	}
}

func testCanceled(t *testing.T, s history.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Append(ctx, app, "s", entry(1), opts); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a canceled context: %v, want context.Canceled", err)
	}
	if _, err := s.Since(ctx, app, "s", history.Position{}, 10, opts); !errors.Is(err, context.Canceled) {
		t.Fatalf("Since with a canceled context: %v, want context.Canceled", err)
	}
	if _, err := s.Top(ctx, app, "s", opts); !errors.Is(err, context.Canceled) {
		t.Fatalf("Top with a canceled context: %v, want context.Canceled", err)
	}
}
