package historytest

import (
	"slices"
	"strings"
	"testing"

	"github.com/pushd/pushd/pkg/history"
)

func testSinceMiddleAndTop(t *testing.T, s history.Store) {
	ps := appendN(t, s, app, "s", 5, opts)
	want(t, "Since 2", since(t, s, app, "s", ps[1], 10, opts), span(3, 5), false, history.NoGap)
	want(t, "Since 4", since(t, s, app, "s", ps[3], 10, opts), span(5, 5), false, history.NoGap)
	r := since(t, s, app, "s", ps[4], 10, opts)
	want(t, "Since the top", r, nil, false, history.NoGap)
	wantPos(t, "Since the top: Top", r.Top, ps[4])
}

func testPaging(t *testing.T, s history.Store) {
	ps := appendN(t, s, app, "s", 7, opts)
	p := history.Position{Epoch: ps[0].Epoch}
	var got []uint64
	pages := 0
	for {
		r := since(t, s, app, "s", p, 3, opts)
		pages++
		if len(r.Entries) == 0 || len(r.Entries) > 3 {
			t.Fatalf("page %d: %d entries, want 1 to 3", pages, len(r.Entries))
		}
		got = append(got, offsets(r.Entries)...)
		if !r.More {
			break
		}
		p = history.Position{Offset: r.Entries[len(r.Entries)-1].Offset, Epoch: r.Top.Epoch}
		if pages > 3 {
			t.Fatalf("more than 3 pages of 3 for 7 entries: %v so far", got)
		}
	}
	if pages != 3 {
		t.Fatalf("%d pages of 3 for 7 entries, want 3", pages)
	}
	if !slices.Equal(got, span(1, 7)) {
		t.Fatalf("pages of 3: offsets %v, want 1 to 7", got)
	}
	want(t, "limit 7 of 7", since(t, s, app, "s", history.Position{Epoch: ps[0].Epoch}, 7, opts), span(1, 7), false, history.NoGap)
	want(t, "limit 6 of 7", since(t, s, app, "s", history.Position{Epoch: ps[0].Epoch}, 6, opts), span(1, 6), true, history.NoGap)
	want(t, "limit 1 after 6", since(t, s, app, "s", ps[5], 1, opts), span(7, 7), false, history.NoGap)
}

func testEpochChanged(t *testing.T, s history.Store) {
	ps := appendN(t, s, app, "s", 3, opts)
	other := "zz" + ps[0].Epoch[2:]
	if other == ps[0].Epoch {
		other = "yy" + ps[0].Epoch[2:]
	}
	r := since(t, s, app, "s", history.Position{Offset: 2, Epoch: other}, 10, opts)
	want(t, "Since 2 of a foreign epoch", r, span(1, 3), false, history.EpochChanged)
	wantPos(t, "Since of a foreign epoch: Top", r.Top, ps[2])
	want(t, "Since 0 of the empty epoch", since(t, s, app, "s", history.Position{}, 10, opts), span(1, 3), false, history.EpochChanged)
	want(t, "Since 0 of a foreign epoch, limit 2", since(t, s, app, "s", history.Position{Epoch: other}, 2, opts), span(1, 2), true, history.EpochChanged)
	want(t, "Since beyond the top", since(t, s, app, "s", history.Position{Offset: 4, Epoch: ps[0].Epoch}, 10, opts), span(1, 3), false, history.EpochChanged)

	small := history.Options{Size: 2, TTL: opts.TTL}
	appendN(t, s, app, "small", 3, small)
	want(t, "Since a foreign epoch of a trimmed stream", since(t, s, app, "small", history.Position{Epoch: other}, 10, small), span(2, 3), false, history.EpochChanged)
}

func testTopCreatesEpoch(t *testing.T, s history.Store) {
	p := top(t, s, app, "s", opts)
	if p.Offset != 0 || p.Epoch == "" || len(p.Epoch) > history.EpochLen {
		t.Fatalf("Top of a new stream: %+v, want offset 0 and an epoch of 1 to %d characters", p, history.EpochLen)
	}
	if strings.Trim(p.Epoch, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		t.Fatalf("epoch %q is not URL-safe", p.Epoch)
	}
	wantPos(t, "Top again", top(t, s, app, "s", opts), p)
	r := since(t, s, app, "s", p, 10, opts)
	want(t, "Since the top of an empty stream", r, nil, false, history.NoGap)
	wantPos(t, "Since of an empty stream: Top", r.Top, p)
	wantPos(t, "first Append", appendOne(t, s, app, "s", entry(1), opts), history.Position{Offset: 1, Epoch: p.Epoch})
	want(t, "Since the position Top gave", since(t, s, app, "s", p, 10, opts), span(1, 1), false, history.NoGap)
	wantPos(t, "Top after Append", top(t, s, app, "s", opts), history.Position{Offset: 1, Epoch: p.Epoch})
	if q := top(t, s, app, "other", opts); q.Epoch == p.Epoch {
		t.Fatalf("two streams got the same epoch %q", q.Epoch)
	}
}

func testSinceCreatesEpoch(t *testing.T, s history.Store) {
	r := since(t, s, app, "s", history.Position{Offset: 5, Epoch: "stale"}, 10, opts)
	want(t, "Since of a new stream", r, nil, false, history.EpochChanged)
	if r.Top.Offset != 0 || r.Top.Epoch == "" || r.Top.Epoch == "stale" {
		t.Fatalf("Since of a new stream: Top %+v, want offset 0 in a new epoch", r.Top)
	}
	wantPos(t, "Top after Since", top(t, s, app, "s", opts), r.Top)
	wantPos(t, "first Append", appendOne(t, s, app, "s", entry(1), opts), history.Position{Offset: 1, Epoch: r.Top.Epoch})
}
