package nacos

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/pushd/pushd/internal/hubwire"
	"github.com/pushd/pushd/pkg/hub"
)

func TestLinkEntriesRoundTrip(t *testing.T) {
	reqs := []linkRequest{
		{id: 1, app: "demo", timeoutMS: 1500, deliver: true,
			target: hub.Target{All: true, UserIDs: []string{"u1", "ü2"}, Channels: []string{"c", ""}, Listening: true},
			event:  hub.Event{Name: "e", ID: "q1", Data: "line1\nline2\x00é", Streams: []hub.StreamPos{{Stream: "u:42", Offset: 1 << 40, Epoch: "x"}}}},
		{id: 1 << 50, app: "hr", deliver: true, target: hub.Target{ConnectionIDs: []string{"c1"}}, event: hub.Event{Name: "e"}},
		{id: 3, app: "demo", target: hub.Target{TenantIDs: []string{"t"}},
			request: hub.Request{Op: hub.OpListeners, Target: hub.Target{TenantIDs: []string{"t"}}, Args: json.RawMessage(`{"add":["x"]}`)}},
		{id: 4, app: "demo", request: hub.Request{Op: hub.OpStats}},
	}
	var b []byte
	for i := range reqs {
		b = appendRequest(b, &reqs[i])
	}
	rd := hubwire.NewReader(string(b))
	for i, want := range reqs {
		got, err := readRequest(&rd)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("request %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
	if rd.Len() != 0 {
		t.Fatalf("%d bytes left", rd.Len())
	}

	reps := []hub.Reply{{Count: 3}, {Count: -1, Data: json.RawMessage(`[1,2]`), Error: "boom"}, {}}
	b = b[:0]
	for i := range reps {
		b = appendLinkReply(b, uint64(i+7), &reps[i])
	}
	rd = hubwire.NewReader(string(b))
	for i, want := range reps {
		id, got, err := readLinkReply(&rd)
		if err != nil || id != uint64(i+7) || !reflect.DeepEqual(got, want) {
			t.Fatalf("reply %d: %d %+v %v, want %+v", i, id, got, err, want)
		}
	}
}

// FuzzLinkEntries decodes arbitrary frame bodies: never a panic, and what
// decodes encodes to the same bytes.
func FuzzLinkEntries(f *testing.F) {
	f.Add(appendRequest(nil, &linkRequest{id: 9, app: "demo", deliver: true, target: hub.Target{UserIDs: []string{"42"}}, event: hub.Event{Name: "e", Data: "d"}}))
	f.Add(appendLinkReply(nil, 9, &hub.Reply{Count: 2, Data: json.RawMessage(`{}`)}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, body []byte) {
		rd := hubwire.NewReader(string(body))
		if req, err := readRequest(&rd); err == nil && body[0]&^byte(entryDeliver|entryAll|entryListening|entryStreams) == 0 {
			again := hubwire.NewReader(string(appendRequest(nil, &req)))
			if back, err := readRequest(&again); err != nil || !reflect.DeepEqual(back, req) {
				t.Fatalf("re-encoded request differs: %+v, %v", back, err)
			}
		}
		rd = hubwire.NewReader(string(body))
		_, _, _ = readLinkReply(&rd)
	})
}
