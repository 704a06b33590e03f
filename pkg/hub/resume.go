package hub

import (
	"cmp"
	"encoding/base64"
	"encoding/binary"
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
	// maxIDAhead bounds the offsets above a stream's position that an id
	// carries (see streamState): those the connection already has, which
	// a resume does not show again.
	maxIDAhead = 4
	// maxIDBytes bounds the raw bytes of an id: per stream two hashes,
	// the offset, the count of offsets ahead and each of them.
	maxIDBytes = maxIDStreams * (8 + (2+maxIDAhead)*binary.MaxVarintLen64)
)

// maxAhead bounds the offsets a stream's position keeps above itself
// while it waits for a missing one.
const maxAhead = 32

// resumeState is a connection's positions in its resumable streams. The
// writer advances them as it writes stream events; joins and leaves add
// and remove streams.
type resumeState struct {
	mu  sync.Mutex
	pos []streamState // by Stream
	// id is pos's event id, kept once two events in a row moved no
	// position (broadcasts, say, to a connection in a user stream), so
	// that the next such events copy it instead of encoding it again:
	// idOnce after one such event (a connection that only ever had its
	// connect-finish keeps no copy), "" when pos may have changed since.
	// Events of the connection's streams move pos, so they encode theirs
	// and keep nothing.
	id string
}

// idOnce is resumeState.id after one event that moved no position.
const idOnce = "\x00"

// streamState is a stream's position: Offset is contiguous — the
// connection has every event of the stream up to it — and ahead holds the
// offsets above it already written, sorted. Events of two senders can
// reach a connection out of offset order (6 before 5); the position stays
// at 4 until 5 comes, so a drop in between resumes from 4 and replays 5
// (and 6 again) instead of skipping 5. An offset that never comes (a send
// this connection does not listen to) is given up once maxAhead offsets
// wait above it: its event was not for this connection.
type streamState struct {
	StreamPos
	ahead []uint64
}

func byStream(a streamState, name string) int { return cmp.Compare(a.Stream, name) }

// appendIDAfter moves the positions of the streams of an event written
// to the connection and appends the event's id, the positions after it.
// A connection without positions gets no id from it: ok is false and b is
// returned as it was.
func (r *resumeState) appendIDAfter(b []byte, streams []StreamPos) (_ []byte, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	moved := false
	for _, sp := range streams {
		if i, found := slices.BinarySearchFunc(r.pos, sp.Stream, byStream); found {
			r.pos[i].advance(sp)
			moved = true
		}
	}
	switch {
	case len(r.pos) == 0:
		return b, false
	case moved:
		r.id = ""
		return r.appendIDLocked(b), true
	case r.id == "":
		r.id = idOnce
		return r.appendIDLocked(b), true
	case r.id == idOnce:
		start := len(b)
		b = r.appendIDLocked(b)
		r.id = string(b[start:])
		return b, true
	}
	return append(b, r.id...), true
}

func (s *streamState) advance(sp StreamPos) {
	switch {
	case s.Epoch != sp.Epoch: // a new epoch: its history starts over
		s.Offset, s.Epoch, s.ahead = sp.Offset, sp.Epoch, nil
		return
	case sp.Offset <= s.Offset:
		return
	case sp.Offset == s.Offset+1:
		s.Offset++
	default:
		if i, found := slices.BinarySearch(s.ahead, sp.Offset); !found {
			s.ahead = slices.Insert(s.ahead, i, sp.Offset)
		}
		if len(s.ahead) <= maxAhead {
			return
		}
		s.Offset = s.ahead[0] // the missing ones were not for this connection
		s.ahead = s.ahead[1:]
	}
	for len(s.ahead) > 0 && s.ahead[0] <= s.Offset+1 {
		s.Offset = max(s.Offset, s.ahead[0])
		s.ahead = s.ahead[1:]
	}
	if len(s.ahead) == 0 {
		s.ahead = nil
	}
}

// set replaces the positions (the connect's).
func (r *resumeState) set(pos []StreamPos) {
	states := make([]streamState, len(pos))
	for i, sp := range pos {
		states[i] = streamState{StreamPos: sp}
	}
	slices.SortFunc(states, func(a, b streamState) int { return cmp.Compare(a.Stream, b.Stream) })
	r.mu.Lock()
	r.pos, r.id = states, ""
	r.mu.Unlock()
}

// track adds the position of a stream joined, or removes one left (sp with
// only Stream set and join false).
func (r *resumeState) track(sp StreamPos, join bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i, ok := slices.BinarySearchFunc(r.pos, sp.Stream, byStream)
	r.id = ""
	switch {
	case join && !ok:
		r.pos = slices.Insert(r.pos, i, streamState{StreamPos: sp})
	case !join && ok:
		r.pos = slices.Delete(r.pos, i, i+1)
	}
}

// positions returns a copy of the positions.
func (r *resumeState) positions() []StreamPos {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]StreamPos, len(r.pos))
	for i, s := range r.pos {
		out[i] = s.StreamPos
	}
	return out
}

// appendIDLocked appends the positions id to b. Called with mu held.
func (r *resumeState) appendIDLocked(b []byte) []byte {
	return encodePositions(b, len(r.pos), func(i int) (StreamPos, []uint64) { return r.pos[i].StreamPos, r.pos[i].ahead })
}

// appendPositionsID encodes pos (sorted by stream) as an event id.
func appendPositionsID(b []byte, pos []StreamPos) []byte {
	return encodePositions(b, len(pos), func(i int) (StreamPos, []uint64) { return pos[i], nil })
}

// encodePositions encodes n positions, at(0) … at(n-1), sorted by
// stream, as an event id, each with up to maxIDAhead of the offsets
// above it the connection has (as increments).
func encodePositions(b []byte, n int, at func(int) (StreamPos, []uint64)) []byte {
	var raw [maxIDBytes]byte
	w := 0
	for i := range min(n, maxIDStreams) {
		sp, ahead := at(i)
		ahead = ahead[:min(len(ahead), maxIDAhead)]
		binary.BigEndian.PutUint32(raw[w:], hash32(sp.Stream))
		binary.BigEndian.PutUint32(raw[w+4:], hash32(sp.Epoch))
		w += 8
		w += binary.PutUvarint(raw[w:], sp.Offset)
		w += binary.PutUvarint(raw[w:], uint64(len(ahead)))
		prev := sp.Offset
		for _, o := range ahead {
			w += binary.PutUvarint(raw[w:], o-prev)
			prev = o
		}
	}
	b = append(b, positionsPrefix...)
	return base64.RawURLEncoding.AppendEncode(b, raw[:w])
}

// idPosition is a stream's position as an event id gives it.
type idPosition struct {
	epoch  uint32   // hash of the epoch
	offset uint64   // the connection has every event up to it
	ahead  []uint64 // and these above it
}

// decodePositionsID reads an id of appendPositionsID, keyed by the hash of
// the stream's name; ok is false for any other id (a QoS id, a counter,
// garbage).
func decodePositionsID(id string) (map[uint32]idPosition, bool) {
	rest, ok := strings.CutPrefix(id, positionsPrefix)
	if !ok || len(rest) > base64.RawURLEncoding.EncodedLen(maxIDBytes) {
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
		p := idPosition{epoch: binary.BigEndian.Uint32(raw[4:])}
		name := binary.BigEndian.Uint32(raw)
		raw = raw[8:]
		var count uint64
		for i, v := range []*uint64{&p.offset, &count} {
			n, k := binary.Uvarint(raw)
			if k <= 0 || i == 1 && n > maxIDAhead {
				return nil, false
			}
			*v, raw = n, raw[k:]
		}
		prev := p.offset
		for range count {
			d, k := binary.Uvarint(raw)
			if k <= 0 || d == 0 {
				return nil, false
			}
			prev += d
			p.ahead, raw = append(p.ahead, prev), raw[k:]
		}
		if _, dup := out[name]; dup || collided[name] {
			collided[name] = true // colliding names: neither resumes exactly
			delete(out, name)
		} else {
			out[name] = p
		}
	}
	return out, true
}

// hash32 is the FNV-32a hash of s, computed in place: hash/fnv's would
// allocate its state and a copy of s, twice per stream of every event id.
func hash32(s string) uint32 {
	const offset32, prime32 = 2166136261, 16777619
	h := uint32(offset32)
	for i := range len(s) {
		h ^= uint32(s[i])
		h *= prime32
	}
	return h
}
