package historytest

import (
	"testing"
	"time"

	"github.com/pushd/pushd/internal/await"
	"github.com/pushd/pushd/pkg/history"
)

// shortTTL is the TTL of the expiry cases: they wait for it to pass.
const shortTTL = time.Second

func testTrimmed(t *testing.T, s history.Store) {
	o := history.Options{Size: 3, TTL: time.Hour}
	ps := appendN(t, s, app, "s", 5, o)
	e := ps[0].Epoch
	want(t, "Since 0", since(t, s, app, "s", history.Position{Epoch: e}, 10, o), span(3, 5), false, history.Trimmed)
	want(t, "Since 0, limit 2", since(t, s, app, "s", history.Position{Epoch: e}, 2, o), span(3, 4), true, history.Trimmed)
	want(t, "Since 1", since(t, s, app, "s", ps[0], 10, o), span(3, 5), false, history.Trimmed)
	want(t, "Since 2", since(t, s, app, "s", ps[1], 10, o), span(3, 5), false, history.NoGap)
	want(t, "Since 4", since(t, s, app, "s", ps[3], 10, o), span(5, 5), false, history.NoGap)
	want(t, "Since 5", since(t, s, app, "s", ps[4], 10, o), nil, false, history.NoGap)
}

// testExpired appends to a stream with a TTL of shortTTL, so that it stays,
// until its first entry is older than that: the entry is gone with Gap
// Expired, the epoch stays. Should the machine stall for longer than the
// TTL between appends, the stream starts a new epoch: the case then starts
// over in it.
func testExpired(t *testing.T, s history.Store) {
	o := history.Options{Size: 1000, TTL: shortTTL}
	var epoch string
	var r history.Result
	await.Until(t, 30*time.Second, func() error {
		p := appendOne(t, s, app, "s", entry(1), o)
		if p.Epoch != epoch {
			epoch = p.Epoch // the first append, or the stream was gone: start over
			if p.Offset != 1 {
				t.Fatalf("first append of an epoch: %+v, want offset 1", p)
			}
		}
		r = since(t, s, app, "s", history.Position{Epoch: epoch}, 1, o)
		if r.Gap != history.Expired {
			return errGap(r.Gap)
		}
		return nil
	})
	if len(r.Entries) == 1 && r.Entries[0].Offset == 1 {
		t.Fatalf("entry 1 served with Gap Expired: %+v", r.Entries[0])
	}
	if r.Top.Epoch != epoch {
		t.Fatalf("Top %+v, want epoch %q", r.Top, epoch)
	}
	// The newest entry is still there: read from the one before it.
	last := history.Position{Offset: r.Top.Offset - 1, Epoch: epoch}
	got := since(t, s, app, "s", last, 10, o)
	if got.Gap == history.NoGap && (len(got.Entries) != 1 || got.Entries[0].Offset != r.Top.Offset) {
		t.Fatalf("Since %+v without a gap: offsets %v, want %d", last, offsets(got.Entries), r.Top.Offset)
	}
}

// testStreamExpires lets a stream go shortTTL without appends: it is gone,
// and its next use starts a new epoch (Gap EpochChanged for the old one).
func testStreamExpires(t *testing.T, s history.Store) {
	o := history.Options{Size: 10, TTL: shortTTL}
	p := appendOne(t, s, app, "s", entry(1), o)
	var r history.Result
	await.Until(t, 30*time.Second, func() error {
		r = since(t, s, app, "s", p, 10, o)
		if r.Gap != history.EpochChanged {
			return errGap(r.Gap)
		}
		return nil
	})
	want(t, "Since in the old epoch", r, nil, false, history.EpochChanged)
	if r.Top.Offset != 0 || r.Top.Epoch == p.Epoch || r.Top.Epoch == "" {
		t.Fatalf("Top of the stream gone: %+v, want offset 0 in a new epoch", r.Top)
	}
	if q := appendOne(t, s, app, "s", entry(2), o); q.Offset != 1 || q.Epoch == p.Epoch {
		t.Fatalf("Append to the stream gone: %+v, want offset 1 in a new epoch", q)
	}
}

type errGap history.Gap

func (e errGap) Error() string { return "gap " + string(e) + " so far" }
