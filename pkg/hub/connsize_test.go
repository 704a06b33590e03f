package hub

import (
	"maps"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// TestConnRecordSize keeps the record of an open connection within the
// 640-byte size class on 64-bit platforms: the next class is 704 bytes,
// 64 more per connection (docs/performance.md, idle memory). An object
// over 512 bytes that holds pointers takes an 8-byte header in front of
// it, so the struct has 632. A new field may need a place among the
// small ones, or a class more said there.
func TestConnRecordSize(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("sizes are for 64-bit platforms")
	}
	if got := unsafe.Sizeof(Conn{}); got > 640-8 {
		t.Errorf("Conn is %d bytes, with its header over the 640-byte size class", got)
	}
	// And a connection's resumable state within the 48-byte class (its
	// lock, positions and kept id).
	if got := unsafe.Sizeof(resumeState{}); got > 48 {
		t.Errorf("resumeState is %d bytes, over the 48-byte size class", got)
	}
}

// TestPackParams: a connection's parameters, kept as one string, come back
// as the map given, whatever bytes names and values hold.
func TestPackParams(t *testing.T) {
	for _, m := range []map[string]string{
		nil,
		{"clientId": "c1"},
		{"": "", "a": "", "b\x00c": "d\x00", "long": strings.Repeat("v", 300), "ä": "ü\x80\xff"},
	} {
		got := unpackParams(packParams(m))
		if !maps.Equal(got, m) || (m == nil) != (got == nil) {
			t.Errorf("packParams(%q) came back as %q", m, got)
		}
	}
	if p := packParams(map[string]string{"b": "2", "a": "1"}); p != packParams(map[string]string{"a": "1", "b": "2"}) || p != "\x01a\x011\x01b\x012" {
		t.Errorf("packParams: %q, want the names in order", p)
	}
}

// TestConnRecordViews: what the record keeps packed (parameters, times)
// reads back as given through Info and Snapshot.
func TestConnRecordViews(t *testing.T) {
	h := newTestHub(t, Config{Writers: -1})
	params := map[string]string{"clientId": "c1", "screen": "1x1"}
	before := time.Now()
	c := mustConnect(t, h, ConnectRequest{User: User{ID: "u"}, Info: ClientInfo{ClientID: "c1", Params: params},
		Keepalive: time.Hour})
	if got := c.Info().Params; !maps.Equal(got, params) {
		t.Errorf("Info().Params = %q, want %q", got, params)
	}
	ci := c.Snapshot()
	if !maps.Equal(ci.Params, params) || ci.ClientID != "c1" {
		t.Errorf("snapshot parameters %q, client %q", ci.Params, ci.ClientID)
	}
	if created := c.CreatedAt(); created.Before(before.Truncate(time.Nanosecond)) || created.After(time.Now()) ||
		ci.CreateTime != created.UnixMilli() {
		t.Errorf("created %v (%d ms), connected after %v", created, ci.CreateTime, before)
	}
	if ci.Timeout != time.Hour.Milliseconds() || ci.ExpireTime != ci.CreateTime+ci.Timeout {
		t.Errorf("expires at %d after %d ms, created %d", ci.ExpireTime, ci.Timeout, ci.CreateTime)
	}
	unlimited := newTestHub(t, Config{Writers: -1, Keepalive: -1})
	if none := mustConnect(t, unlimited, ConnectRequest{User: User{ID: "v"}}).Snapshot(); none.Params != nil ||
		none.ExpireTime != 0 || none.Timeout != 0 {
		t.Errorf("unlimited connection without parameters: %+v", none)
	}
	// A token valid for centuries: its expiry is kept, and not taken as past.
	far := time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	c = mustConnect(t, unlimited, ConnectRequest{User: User{ID: "w", ExpiresAt: far}})
	unlimited.sweep(time.Now(), false, 0)
	if ci := c.Snapshot(); ci.ExpireTime != far.UnixMilli() || c.Closed() {
		t.Errorf("token expiring in 3000: expires at %d, closed %v", ci.ExpireTime, c.Closed())
	}
}
