package hubwire

import (
	"encoding/binary"

	"github.com/pushd/pushd/pkg/hub"
)

// AppendString appends s, prefixed by its length as a uvarint.
func AppendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// AppendIDs appends the five id lists of t (users, access tokens, tenants,
// channels, connections), each a count and its strings. t.All and
// t.Listening are left to the caller's flags.
func AppendIDs(b []byte, t *hub.Target) []byte {
	for _, ids := range [...][]string{t.UserIDs, t.AccessTokens, t.TenantIDs, t.Channels, t.ConnectionIDs} {
		b = binary.AppendUvarint(b, uint64(len(ids)))
		for _, id := range ids {
			b = AppendString(b, id)
		}
	}
	return b
}

// AppendEvent appends ev's name, id and data and, when withStreams, its
// stream positions.
func AppendEvent(b []byte, ev *hub.Event, withStreams bool) []byte {
	b = AppendString(b, ev.Name)
	b = AppendString(b, ev.ID)
	b = AppendString(b, ev.Data)
	if withStreams {
		b = binary.AppendUvarint(b, uint64(len(ev.Streams)))
		for _, sp := range ev.Streams {
			b = AppendString(b, sp.Stream)
			b = binary.AppendUvarint(b, sp.Offset)
			b = AppendString(b, sp.Epoch)
		}
	}
	return b
}

// EventSize is about how many bytes AppendEvent adds for ev, without its
// streams: enough to size a buffer.
func EventSize(ev *hub.Event) int {
	return len(ev.Name) + len(ev.ID) + len(ev.Data) + 3*binary.MaxVarintLen32
}

// Reader consumes a message. After the first error every read returns the
// zero value and Bad is set, so a decoder checks once at the end.
type Reader struct {
	s string
	// Bad is set by the first read past the end or of a malformed number.
	Bad bool
}

// NewReader reads msg.
func NewReader(msg string) Reader { return Reader{s: msg} }

// Len is the number of bytes left.
func (r *Reader) Len() int { return len(r.s) }

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if len(r.s) == 0 {
		r.Bad = true
		return 0
	}
	c := r.s[0]
	r.s = r.s[1:]
	return c
}

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 {
	var x uint64
	for shift := 0; shift < 64; shift += 7 {
		if len(r.s) == 0 {
			break
		}
		c := r.s[0]
		r.s = r.s[1:]
		x |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return x
		}
	}
	r.Bad = true
	return 0
}

// Varint reads a signed (zig-zag) varint.
func (r *Reader) Varint() int64 {
	u := r.Uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

// String reads a length-prefixed string; it shares the message's memory.
func (r *Reader) String() string {
	n := r.Uvarint()
	if r.Bad || n > uint64(len(r.s)) {
		r.Bad = true
		return ""
	}
	s := r.s[:n]
	r.s = r.s[n:]
	return s
}

// IDs reads the five id lists AppendIDs wrote into t.
func (r *Reader) IDs(t *hub.Target) {
	for _, ids := range [...]*[]string{&t.UserIDs, &t.AccessTokens, &t.TenantIDs, &t.Channels, &t.ConnectionIDs} {
		n := r.Uvarint()
		if n > uint64(len(r.s)) { // every id takes at least a byte
			r.Bad = true
			return
		}
		if n > 0 {
			*ids = make([]string, n)
			for i := range *ids {
				(*ids)[i] = r.String()
			}
		}
	}
}

// Event reads what AppendEvent wrote with the same withStreams.
func (r *Reader) Event(withStreams bool) hub.Event {
	ev := hub.Event{Name: r.String(), ID: r.String(), Data: r.String()}
	if withStreams {
		n := r.Uvarint()
		if n > uint64(len(r.s)) { // every position takes at least three bytes
			r.Bad = true
			return ev
		}
		ev.Streams = make([]hub.StreamPos, n)
		for i := range ev.Streams {
			ev.Streams[i] = hub.StreamPos{Stream: r.String(), Offset: r.Uvarint(), Epoch: r.String()}
		}
	}
	return ev
}
