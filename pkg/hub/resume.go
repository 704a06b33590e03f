package hub

import (
	"cmp"
	"encoding/base64"
	"encoding/binary"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
)

// A connection in resumable streams gets event ids that carry its position
// in each of them, so that the Last-Event-ID of its reconnect, sent to any
// node, says what it saw: "p." and the URL-safe base64 of, per stream in
// name order, the FNV-32a hash of the stream's name (4 bytes), the hash of
// its epoch (4 bytes) and the offset (an unsigned varint). A stream costs
// 9–18 bytes, 12–24 characters; at most maxIDStreams streams are written
// (those after, in name order, resume as "unknown"), so an id stays under
// 1 KB. Hashes, not names, keep ids short and channel names private; two
// streams of a connection whose names collide (one chance in about four
// billion per pair) both resume as unknown.
const (
	positionsPrefix = "p."
	maxIDStreams    = 40
)

// resumeState is a connection's positions in its resumable streams. The
// writer advances them as it writes stream events; joins and leaves add
// and remove streams.
type resumeState struct {
	mu  sync.Mutex
	pos []StreamPos // by Stream
}

func byStream(a StreamPos, name string) int { return cmp.Compare(a.Stream, name) }

// advance moves the positions of the streams of an event written to the
// connection, and reports whether the connection has any position.
func (r *resumeState) advance(streams []StreamPos) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, sp := range streams {
		if i, ok := slices.BinarySearchFunc(r.pos, sp.Stream, byStream); ok {
			if cur := &r.pos[i]; cur.Epoch != sp.Epoch || sp.Offset > cur.Offset {
				cur.Offset, cur.Epoch = sp.Offset, sp.Epoch
			}
		}
	}
	return len(r.pos) > 0
}

// set replaces the positions (the connect's).
func (r *resumeState) set(pos []StreamPos) {
	slices.SortFunc(pos, func(a, b StreamPos) int { return cmp.Compare(a.Stream, b.Stream) })
	r.mu.Lock()
	r.pos = pos
	r.mu.Unlock()
}

// track adds the position of a stream joined, or removes one left (sp with
// only Stream set and join false).
func (r *resumeState) track(sp StreamPos, join bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i, ok := slices.BinarySearchFunc(r.pos, sp.Stream, byStream)
	switch {
	case join && !ok:
		r.pos = slices.Insert(r.pos, i, sp)
	case !join && ok:
		r.pos = slices.Delete(r.pos, i, i+1)
	}
}

// positions returns a copy of the positions.
func (r *resumeState) positions() []StreamPos {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.pos)
}

// appendID appends the positions id to b.
func (r *resumeState) appendID(b []byte) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return appendPositionsID(b, r.pos)
}

// appendPositionsID encodes pos (sorted by stream) as an event id.
func appendPositionsID(b []byte, pos []StreamPos) []byte {
	var raw [maxIDStreams * (8 + binary.MaxVarintLen64)]byte
	n := 0
	for _, sp := range pos[:min(len(pos), maxIDStreams)] {
		binary.BigEndian.PutUint32(raw[n:], hash32(sp.Stream))
		binary.BigEndian.PutUint32(raw[n+4:], hash32(sp.Epoch))
		n += 8 + binary.PutUvarint(raw[n+8:], sp.Offset)
	}
	b = append(b, positionsPrefix...)
	return base64.RawURLEncoding.AppendEncode(b, raw[:n])
}

// idPosition is a stream's position as an event id gives it.
type idPosition struct {
	epoch  uint32 // hash of the epoch
	offset uint64
}

// decodePositionsID reads an id of appendPositionsID, keyed by the hash of
// the stream's name; ok is false for any other id (a QoS id, a counter,
// garbage).
func decodePositionsID(id string) (map[uint32]idPosition, bool) {
	rest, ok := strings.CutPrefix(id, positionsPrefix)
	if !ok || len(rest) > base64.RawURLEncoding.EncodedLen(maxIDStreams*(8+binary.MaxVarintLen64)) {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return nil, false
	}
	out := make(map[uint32]idPosition)
	collided := map[uint32]bool{}
	for len(raw) > 0 {
		if len(raw) < 9 {
			return nil, false
		}
		name, epoch := binary.BigEndian.Uint32(raw), binary.BigEndian.Uint32(raw[4:])
		off, k := binary.Uvarint(raw[8:])
		if k <= 0 {
			return nil, false
		}
		if _, dup := out[name]; dup || collided[name] {
			collided[name] = true // colliding names: neither resumes exactly
			delete(out, name)
		} else {
			out[name] = idPosition{epoch: epoch, offset: off}
		}
		raw = raw[8+k:]
	}
	return out, true
}

func hash32(s string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(s))
	return h.Sum32()
}
