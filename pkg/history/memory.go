package history

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// MemoryConfig configures NewMemory.
type MemoryConfig struct {
	// MaxStreams bounds the streams of all apps together; a stream made
	// beyond it evicts the oldest stream never appended to (one made by
	// Since or Top), else the least recently appended one. Zero means
	// DefaultMemoryMaxStreams.
	MaxStreams int
	// MaxBytes bounds the size of all streams together, counted as the
	// lengths of their strings plus a fixed overhead per entry and per
	// stream; beyond it streams are evicted in the same order as for
	// MaxStreams, never the one being used (so the store exceeds MaxBytes by at most
	// that stream). An entry larger than MaxBytes on its own is refused
	// with ErrInvalid. Zero means DefaultMemoryMaxBytes; -1 means no bound.
	MaxBytes int64
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// Defaults of a MemoryConfig.
const (
	DefaultMemoryMaxStreams       = 100000
	DefaultMemoryMaxBytes   int64 = 64 << 20
)

// Size accounting of MaxBytes: an entry costs its strings and
// memEntryOverhead, a stream its app and name and memStreamOverhead.
const (
	memEntryOverhead  = 96
	memStreamOverhead = 256
)

// Memory is the in-memory Store: bounded, and lost when the process ends
// (a new process starts new epochs, so positions of the old one get Gap
// EpochChanged).
//
// Every stream has a mutex of its own, held for the work of a call on it:
// calls on one stream never wait for work on another. A store-wide mutex
// guards only the index of streams, their order of last append and the
// byte count; a call holds it for a lookup and once more, when its
// stream's size changed, to count that (and evict, when it grew beyond
// MaxBytes), never while it holds a stream. It waits for nothing else, so
// it is Immediate: callers need not bound its calls with a deadline.
//
// A stream's epoch starts at its first use (Append, Since or Top); it is
// gone TTL after its last Append (or its start, if nothing was appended
// since), and its next use starts a new epoch. Entries older than TTL are
// dropped by the next call on their stream; streams gone are dropped by
// the next call that finds them first in the order of eviction (else when
// evicted).
type Memory struct {
	maxStreams int
	maxBytes   int64 // 0: no bound
	now        func() time.Time

	mu      sync.Mutex // guards streams, fresh, lru, bytes and memStream's index fields
	streams map[streamKey]*memStream
	fresh   streamList // streams never appended to, oldest first
	lru     streamList // streams appended to, least recently appended first
	bytes   int64

	evicted atomic.Uint64
}

// Interface guards.
var (
	_ Store     = (*Memory)(nil)
	_ Immediate = (*Memory)(nil)
)

type streamKey struct{ app, stream string }

type memStream struct {
	key   streamKey
	epoch string // set at creation, never changed

	// Guarded by Memory.mu.
	in         *streamList   // fresh or lru; nil once out of the store
	prev, next *memStream    // in in
	touched    time.Time     // last Append, or creation
	ttl        time.Duration // of that call
	counted    int64         // bytes counted in Memory.bytes

	mu      sync.Mutex // guards the fields below
	dead    bool       // out of the store: callers look it up again
	top     uint64
	entries []Entry // entries[head:] are kept: consecutive offsets, oldest first
	head    int
	oldest  time.Time // Time of entries[head], if any is kept: expire reads it here, not in a cold entry
	size    int64     // bytes of the kept entries and the stream
}

// MemoryStats is what a Memory holds and dropped.
type MemoryStats struct {
	Streams int    // streams held
	Bytes   int64  // bytes counted against MaxBytes
	Evicted uint64 // streams evicted to keep MaxStreams or MaxBytes so far
}

// NewMemory returns an empty in-memory store.
func NewMemory(cfg MemoryConfig) (*Memory, error) {
	if cfg.MaxStreams < 0 || cfg.MaxBytes < -1 {
		return nil, fmt.Errorf("history: memory config: negative bound")
	}
	m := &Memory{
		maxStreams: cmp.Or(cfg.MaxStreams, DefaultMemoryMaxStreams),
		maxBytes:   max(cmp.Or(cfg.MaxBytes, DefaultMemoryMaxBytes), 0),
		now:        cfg.Now,
		streams:    make(map[streamKey]*memStream),
	}
	if m.now == nil {
		m.now = time.Now
	}
	return m, nil
}

// Append adds e to the stream and returns its position.
func (m *Memory) Append(ctx context.Context, app, stream string, e Entry, o Options) (Position, error) {
	if err := ctx.Err(); err != nil {
		return Position{}, err
	}
	if err := Check(stream, o); err != nil {
		return Position{}, err
	}
	size := entrySize(&e)
	if m.maxBytes > 0 && size > m.maxBytes {
		return Position{}, fmt.Errorf("%w: entry of %d bytes, the store holds %d", ErrInvalid, size, m.maxBytes)
	}
	now := m.now()
	s := m.hold(streamKey{app, stream}, now, o, true)
	before := s.size
	s.expire(now, o.TTL)
	s.top++
	e.Offset, e.Time = s.top, now
	if s.head == len(s.entries) {
		s.oldest = now
	}
	s.entries = append(s.entries, e)
	s.size += size
	for len(s.entries)-s.head > o.Size {
		s.drop()
	}
	pos := Position{Offset: s.top, Epoch: s.epoch}
	delta := s.size - before
	s.mu.Unlock()
	m.account(s, now, delta)
	return pos, nil
}

// Since reads up to limit entries after p.
func (m *Memory) Since(ctx context.Context, app, stream string, p Position, limit int, o Options) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	if err := CheckSince(stream, limit, o); err != nil {
		return Result{}, err
	}
	now := m.now()
	s := m.hold(streamKey{app, stream}, now, o, false)
	before := s.size
	s.expire(now, o.TTL)
	top := Position{Offset: s.top, Epoch: s.epoch}
	kept := s.entries[s.head:]
	var out []Entry
	if len(kept) > 0 {
		from := max(Start(p, top), kept[0].Offset) - kept[0].Offset
		if from < uint64(len(kept)) {
			out = append(out, kept[from:][:min(uint64(limit)+1, uint64(len(kept))-from)]...)
		}
	}
	delta := s.size - before
	s.mu.Unlock()
	m.account(s, now, delta)
	return Page(p, top, out, limit, o), nil
}

// Top returns the stream's current position, starting its epoch if it has
// none.
func (m *Memory) Top(ctx context.Context, app, stream string, o Options) (Position, error) {
	if err := ctx.Err(); err != nil {
		return Position{}, err
	}
	if err := Check(stream, o); err != nil {
		return Position{}, err
	}
	s := m.hold(streamKey{app, stream}, m.now(), o, false)
	pos := Position{Offset: s.top, Epoch: s.epoch}
	s.mu.Unlock()
	return pos, nil
}

// Immediate returns true: Memory's calls wait only for each other's work
// in memory, never for I/O.
func (m *Memory) Immediate() bool { return true }

// Stats returns what m holds and dropped.
func (m *Memory) Stats() MemoryStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return MemoryStats{Streams: len(m.streams), Bytes: m.bytes, Evicted: m.evicted.Load()}
}

// hold returns the stream of key, made with a new epoch if there is none
// or it is gone, locked. appending marks it as appended to now.
func (m *Memory) hold(key streamKey, now time.Time, o Options, appending bool) *memStream {
	for {
		m.mu.Lock()
		s := m.streams[key]
		var victims []*memStream
		if s != nil && gone(s, now) {
			m.removeLocked(s)
			victims = append(victims, s) // calls about to use it look again
			s = nil
		}
		if s == nil {
			s = &memStream{key: key, epoch: NewEpoch(), touched: now, ttl: o.TTL,
				size: memStreamOverhead + int64(len(key.app)+len(key.stream))}
			l := &m.fresh
			if appending {
				l = &m.lru
			}
			l.pushBack(s)
			s.counted = s.size
			m.bytes += s.size
			m.streams[key] = s
		} else if appending {
			s.touched, s.ttl = now, o.TTL
			s.in.remove(s)
			m.lru.pushBack(s)
		}
		victims = append(victims, m.sweepLocked(now, s)...)
		m.mu.Unlock()
		kill(victims)
		s.mu.Lock()
		if !s.dead {
			return s
		}
		s.mu.Unlock() // evicted by another call a moment ago: look it up again
	}
}

// account counts a change of s's size and, when it grew the store beyond
// MaxBytes, evicts what the bound asks for (streams gone were swept by the
// hold a moment ago).
func (m *Memory) account(s *memStream, now time.Time, delta int64) {
	if delta == 0 {
		return
	}
	m.mu.Lock()
	if s.in != nil {
		s.counted += delta
		m.bytes += delta
	}
	var victims []*memStream
	if delta > 0 && m.maxBytes > 0 && m.bytes > m.maxBytes {
		victims = m.sweepLocked(now, s)
	}
	m.mu.Unlock()
	kill(victims)
}

// sweepLocked takes out of the store the streams that are gone and, while
// the store is over a bound, the others (evicted), never keep: first the
// streams never appended to, oldest first (so that reads of many new names
// do not evict history), then the others, least recently appended first;
// in each list it stops at the first stream that is neither. The streams
// taken out are returned, for kill. Called with mu held.
func (m *Memory) sweepLocked(now time.Time, keep *memStream) []*memStream {
	var out []*memStream
	for _, l := range [...]*streamList{&m.fresh, &m.lru} {
	sweep:
		for s := l.front; s != nil; {
			next := s.next
			if s != keep {
				switch {
				case gone(s, now):
				case len(m.streams) > m.maxStreams || (m.maxBytes > 0 && m.bytes > m.maxBytes):
					m.evicted.Add(1)
				default:
					break sweep
				}
				m.removeLocked(s)
				out = append(out, s)
			}
			s = next
		}
	}
	return out
}

// removeLocked takes s out of the store. Called with mu held.
func (m *Memory) removeLocked(s *memStream) {
	s.in.remove(s)
	delete(m.streams, s.key)
	m.bytes -= s.counted
}

// kill marks streams taken out of the store dead and frees their entries.
func kill(streams []*memStream) {
	for _, s := range streams {
		s.mu.Lock()
		s.dead, s.entries, s.head = true, nil, 0
		s.mu.Unlock()
	}
}

// gone reports whether s went TTL without appends. Called with mu held.
func gone(s *memStream, now time.Time) bool {
	return !now.Before(s.touched.Add(s.ttl))
}

// expire drops the entries older than ttl. Called with s.mu held.
func (s *memStream) expire(now time.Time, ttl time.Duration) {
	for s.head < len(s.entries) && !now.Before(s.oldest.Add(ttl)) {
		s.drop()
	}
}

// drop drops the oldest entry kept. Called with s.mu held.
func (s *memStream) drop() {
	s.size -= entrySize(&s.entries[s.head])
	s.entries[s.head] = Entry{}
	s.head++
	if s.head == len(s.entries) {
		s.entries, s.head = s.entries[:0], 0
		return
	}
	s.oldest = s.entries[s.head].Time
	if s.head >= 32 && s.head*2 >= len(s.entries) {
		n := copy(s.entries, s.entries[s.head:])
		clear(s.entries[n:])
		s.entries, s.head = s.entries[:n], 0
	}
}

// entrySize is what e counts against MaxBytes.
func entrySize(e *Entry) int64 {
	return int64(memEntryOverhead + len(e.Event) + len(e.Data) + len(e.ID))
}

// streamList is a list of streams linked through their prev and next, so
// that moving a stream needs no element of its own (container/list would
// allocate one per stream and reach the stream through an interface).
// Guarded by Memory.mu.
type streamList struct{ front, back *memStream }

// pushBack adds s, which is in no list, at the back.
func (l *streamList) pushBack(s *memStream) {
	s.in, s.prev, s.next = l, l.back, nil
	if l.back != nil {
		l.back.next = s
	} else {
		l.front = s
	}
	l.back = s
}

// remove takes s out of l, the list it is in.
func (l *streamList) remove(s *memStream) {
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		l.front = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else {
		l.back = s.prev
	}
	s.in, s.prev, s.next = nil, nil, nil
}
