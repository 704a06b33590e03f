package hubwire

import (
	"reflect"
	"testing"

	"github.com/pushd/pushd/pkg/hub"
)

func TestRoundTrip(t *testing.T) {
	tgt := hub.Target{UserIDs: []string{"u1", "ü2"}, AccessTokens: []string{"tok"}, TenantIDs: []string{"t"},
		Channels: []string{"c1", ""}, ConnectionIDs: []string{"x"}}
	ev := hub.Event{Name: "e", ID: "q1", Data: "line1\nline2\x00é",
		Streams: []hub.StreamPos{{Stream: "c:news", Offset: 1 << 40, Epoch: "e1"}, {Stream: "u:42", Offset: 7}}}
	b := AppendIDs(nil, &tgt)
	b = AppendEvent(b, &ev, true)
	b = AppendEvent(b, &ev, false)
	b = AppendString(b, "tail")
	r := NewReader(string(b))
	var got hub.Target
	r.IDs(&got)
	withStreams, without := r.Event(true), r.Event(false)
	tail := r.String()
	if r.Bad || r.Len() != 0 {
		t.Fatalf("bad=%v, %d bytes left", r.Bad, r.Len())
	}
	if !reflect.DeepEqual(got, tgt) {
		t.Fatalf("target: got %+v, want %+v", got, tgt)
	}
	if !reflect.DeepEqual(withStreams, ev) {
		t.Fatalf("event: got %+v, want %+v", withStreams, ev)
	}
	if want := (hub.Event{Name: ev.Name, ID: ev.ID, Data: ev.Data}); !reflect.DeepEqual(without, want) {
		t.Fatalf("event without streams: got %+v, want %+v", without, want)
	}
	if tail != "tail" {
		t.Fatalf("tail %q", tail)
	}
}

// TestTruncated cuts a message at every length: the reader must mark it
// bad, never panic or read past the end.
func TestTruncated(t *testing.T) {
	tgt := hub.Target{UserIDs: []string{"u1"}, Channels: []string{"news"}}
	ev := hub.Event{Name: "e", Data: "data", Streams: []hub.StreamPos{{Stream: "c:news", Offset: 300, Epoch: "x"}}}
	b := AppendEvent(AppendIDs(nil, &tgt), &ev, true)
	for n := range len(b) {
		r := NewReader(string(b[:n]))
		var got hub.Target
		r.IDs(&got)
		r.Event(true)
		if !r.Bad {
			t.Fatalf("cut at %d of %d: not marked bad", n, len(b))
		}
	}
	// A count larger than what is left is refused before any allocation.
	r := NewReader("\xff\xff\xff\xff\x0f")
	var got hub.Target
	if r.IDs(&got); !r.Bad || got.UserIDs != nil {
		t.Fatalf("huge count: bad=%v, users %d", r.Bad, len(got.UserIDs))
	}
}
