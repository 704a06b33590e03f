package qos

import (
	"cmp"
	"container/list"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// MemoryConfig configures NewMemory.
type MemoryConfig struct {
	// MaxPerRecipient bounds every inbox (one per user, access token,
	// tenant, channel, and "all" per app); saving into a full inbox drops its
	// oldest entry, counted and logged. Zero means 1000.
	MaxPerRecipient int
	// MaxMessages bounds the messages of all apps together; saving into a
	// full store drops the oldest message, counted and logged. Zero means
	// 100000.
	MaxMessages int
	// MaxBytes bounds the size of the messages of all apps together, as
	// the lengths of their strings plus a fixed overhead per message and
	// per inbox entry; saving into a full store drops the oldest messages,
	// counted and logged as for MaxMessages, and a message larger than
	// MaxBytes on its own is refused with ErrInvalidMessage. Zero means
	// DefaultMemoryMaxBytes (64 MiB); -1 means no bound.
	MaxBytes int64
	// DefaultTTL is the lifetime of a message saved without ExpiresAt.
	// Zero means DefaultTTL (24 h).
	DefaultTTL time.Duration
	// Logger receives warnings about evictions and notes about expiries.
	// The zero value logs nothing.
	Logger zerolog.Logger
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// DefaultMemoryMaxBytes is the MaxBytes of a MemoryConfig that sets none.
const DefaultMemoryMaxBytes = 64 << 20

// Memory is the in-memory Repository: the default, bounded, lost when the
// process ends.
//
// Every app has a mutex of its own, held for the whole work of one call in
// that app: one app's calls never wait for the work of another app's. A
// store-wide mutex guards only what the bounds and expiries need across
// apps (the order of age and of expiry, the count and the bytes); a call
// holds it for a few steps per message it stores or deletes, never across
// the per-id work of an Ack or the scan of a Pending or List, and never
// while it waits for an app. A message another app's call expires or evicts is
// taken out of the indices at once and unlinked from its app's inboxes by
// the next call that holds that app (or at once if the app is free);
// until then its app's calls ignore it. Expired messages are removed by
// whichever call comes next.
type Memory struct {
	maxPerRecipient int
	maxMessages     int
	maxBytes        int64 // 0: no bound
	ttl             time.Duration
	log             zerolog.Logger
	now             func() time.Time
	// ackHook, set by tests, runs in Ack while the app is held, before the
	// per-id work.
	ackHook func(app string)

	mu     sync.Mutex // the store-wide mutex: the fields below and memMessage's index fields
	closed bool
	apps   map[string]*memApp
	byAge  *list.List // of *memMessage, oldest saved first
	expiry expiryHeap
	count  int
	bytes  int64

	stored, acked, expired, evicted atomic.Uint64
}

// Interface guards.
var (
	_ Repository    = (*Memory)(nil)
	_ StatsReporter = (*Memory)(nil)
)

type memApp struct {
	name string

	mu      sync.Mutex // msgs, inboxes, tenanted and memMessage's app fields
	msgs    map[string]*memMessage
	inboxes map[string]*memInbox
	// tenanted: a call showed that the app has tenants, so a tenant-less
	// user's acknowledgement is recorded instead of emptying its user id's
	// inbox (see Recipient.TenantlessUser).
	tenanted bool

	// retired are messages the store took out of its indices (expired or
	// evicted) while another call held mu: the next holder unlinks them.
	retiredMu sync.Mutex
	retired   []*memMessage
}

// States of a memMessage. A message leaves the live state once, for one
// reason, so that it is counted once: deleted by a call of its app (no
// inbox holds it any more), or expired or evicted by the store.
const (
	stateLive uint32 = iota
	stateDeleted
	stateExpired
	stateEvicted
)

type memMessage struct {
	msg  Message
	app  *memApp
	size int64

	// Guarded by app.mu.
	inboxes int                 // inboxes still holding it
	acks    map[string]struct{} // ack keys of recipients whose acknowledgement is recorded
	linked  bool                // in app.msgs and its inboxes

	// Guarded by Memory.mu.
	age     *list.Element // nil once out of the indices
	heapIdx int

	// state leaves stateLive by CompareAndSwap. An expired or evicted
	// message stays linked until its app's next call unlinks it; the app's
	// calls ignore it meanwhile.
	state atomic.Uint32
}

// NewMemory returns an empty in-memory repository.
func NewMemory(cfg MemoryConfig) (*Memory, error) {
	if cfg.MaxPerRecipient < 0 || cfg.MaxMessages < 0 || cfg.MaxBytes < -1 || cfg.DefaultTTL < 0 {
		return nil, fmt.Errorf("qos: memory config: negative bound or ttl")
	}
	m := &Memory{
		maxPerRecipient: cmp.Or(cfg.MaxPerRecipient, 1000),
		maxMessages:     cmp.Or(cfg.MaxMessages, 100000),
		maxBytes:        max(cmp.Or(cfg.MaxBytes, DefaultMemoryMaxBytes), 0),
		ttl:             cmp.Or(cfg.DefaultTTL, DefaultTTL),
		log:             cfg.Logger.With().Str("component", "qos.memory").Logger(),
		now:             cfg.Now,
		apps:            make(map[string]*memApp),
		byAge:           list.New(),
	}
	if m.now == nil {
		m.now = time.Now
	}
	return m, nil
}

// Save stores msg for app. Saving an id that is stored already does
// nothing; a message whose ExpiresAt has passed is not stored.
func (m *Memory) Save(ctx context.Context, app string, msg Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := m.now()
	msg, err := Prepare(msg, now, m.ttl)
	if err != nil {
		return err
	}
	size := messageSize(&msg)
	if m.maxBytes > 0 && size > m.maxBytes {
		return fmt.Errorf("%w: message %s takes %d bytes, the store holds %d", ErrInvalidMessage, msg.ID, size, m.maxBytes)
	}
	a, err := m.enter(app, now, true)
	if err != nil {
		return err
	}
	if !msg.ExpiresAt.After(now) {
		m.log.Debug().Str("app", app).Str("id", msg.ID).Msg("qos message expired before it was saved")
		return nil
	}
	m.lockApp(a)
	defer m.unlockApp(a)
	if msg.ShowsTenants() {
		a.tenanted = true
	}
	if old := a.msgs[msg.ID]; old != nil {
		if old.state.Load() == stateLive {
			return nil
		}
		a.unlink(old) // expired or evicted a moment ago: the id is free
	}
	mm := &memMessage{msg: msg, app: a, size: size, linked: true, heapIdx: -1}
	if msg.recordsAcks() {
		mm.acks = make(map[string]struct{})
	}
	a.msgs[msg.ID] = mm
	var dropped []*memMessage
	for _, key := range msg.Inboxes() {
		if !mm.linked {
			break // older than everything in a full inbox: dropped at once
		}
		in := a.inboxes[key]
		if in == nil {
			in = &memInbox{}
			a.inboxes[key] = in
		}
		in.insert(mm)
		mm.inboxes++
		for len(in.items) > m.maxPerRecipient {
			old := in.items[0]
			in.removeAt(0)
			old.inboxes--
			live := old.state.Load() == stateLive
			if old.inboxes == 0 {
				live = old.state.CompareAndSwap(stateLive, stateDeleted)
				a.unlink(old)
				dropped = append(dropped, old)
			}
			if live {
				m.evicted.Add(1)
				m.log.Warn().Str("app", app).Str("id", old.msg.ID).Str("inbox", key).
					Int("max", m.maxPerRecipient).Msg("qos inbox full: oldest message dropped")
			}
		}
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	for _, d := range dropped {
		m.unindexLocked(d)
	}
	if mm.linked {
		m.indexLocked(mm)
	}
	victims := m.evictLocked()
	m.mu.Unlock()
	m.stored.Add(1)
	m.retire(victims)
	return nil
}

// Pending returns up to limit messages waiting for r, oldest first; a limit
// of zero or less means all of them.
func (m *Memory) Pending(ctx context.Context, app string, r Recipient, after string, limit int) ([]Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := m.now()
	a, err := m.enter(app, now, r.ShowsTenants())
	if a == nil || err != nil {
		return nil, err
	}
	ackKey := r.AckKey()
	// A tenant-less user's own inbox is read as a shared one whether or not
	// the app has tenants: without tenants its acknowledgements take the
	// message out of it, so none is recorded there.
	direct, shared := splitInboxes(r, true)
	m.lockApp(a)
	if r.ShowsTenants() {
		a.tenanted = true
	}
	var found []*memMessage
	for _, key := range direct {
		found = a.inboxes[key].pending(found, now, r, "", after, limit)
	}
	for _, key := range shared {
		found = a.inboxes[key].pending(found, now, r, ackKey, after, limit)
	}
	slices.SortFunc(found, func(x, y *memMessage) int { return strings.Compare(x.msg.ID, y.msg.ID) })
	found = slices.CompactFunc(found, func(x, y *memMessage) bool { return x == y })
	if limit > 0 && len(found) > limit {
		found = found[:limit]
	}
	out := make([]Message, len(found))
	for i, mm := range found {
		out[i] = cloneMessage(mm.msg)
	}
	m.unlockApp(a)
	return out, nil
}

// Ack records that r received ids. A message leaves r's direct inboxes (its
// access token's and, for a user without tenant in an app that never had
// tenants, its user id's); for a message r reads through a shared inbox
// (its user id's when r has a tenant or the app has tenants, its tenant's,
// its channel's, "all") r's acknowledgement is recorded under r's ack key. Whether r still listens to the message's
// event does not matter. A message no inbox holds any more is deleted.
//
// Only the app's mutex is held for the per-id work; the store-wide one is
// taken once afterwards to take the deleted messages out of the indices.
func (m *Memory) Ack(ctx context.Context, app string, r Recipient, ids ...string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	ids, err := PrepareAck(ids)
	if err != nil {
		return 0, err
	}
	now := m.now()
	a, err := m.enter(app, now, r.ShowsTenants())
	if a == nil || err != nil {
		return 0, err
	}
	ackKey := r.AckKey()
	n := 0
	var gone []*memMessage
	m.lockApp(a)
	if r.ShowsTenants() {
		a.tenanted = true
	}
	direct, shared := splitInboxes(r, a.tenanted)
	if m.ackHook != nil {
		m.ackHook(app)
	}
	for _, id := range ids {
		mm := a.msgs[id]
		if mm == nil || mm.state.Load() != stateLive {
			continue
		}
		hit := false
		for _, key := range direct {
			if in := a.inboxes[key]; in != nil && in.remove(mm) {
				hit = true
				if in.len() == 0 {
					delete(a.inboxes, key)
				}
				mm.inboxes--
			}
		}
		if mm.acks != nil {
			for _, key := range shared {
				if in := a.inboxes[key]; in != nil && in.contains(mm) {
					if _, dup := mm.acks[ackKey]; !dup {
						mm.acks[ackKey] = struct{}{}
						hit = true
					}
					break
				}
			}
		}
		if mm.inboxes == 0 {
			if !mm.state.CompareAndSwap(stateLive, stateDeleted) {
				hit = false // expired or evicted while we were at it
			}
			a.unlink(mm)
			gone = append(gone, mm)
		}
		if hit {
			n++
		}
	}
	m.unlockApp(a)
	if len(gone) > 0 {
		m.mu.Lock()
		if !m.closed {
			for _, mm := range gone {
				m.unindexLocked(mm)
			}
		}
		m.mu.Unlock()
	}
	m.acked.Add(uint64(n))
	return n, nil
}

// List returns one page of app's messages matching f, oldest first, and
// how many match; a limit of zero or less means all from offset on.
func (m *Memory) List(ctx context.Context, app string, f Filter, offset, limit int) ([]Message, int, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	now := m.now()
	a, err := m.enter(app, now, false)
	if a == nil || err != nil {
		return nil, 0, err
	}
	m.lockApp(a)
	matched := make([]*memMessage, 0, len(a.msgs))
	for _, mm := range a.msgs {
		if mm.state.Load() == stateLive && f.Matches(&mm.msg) {
			matched = append(matched, mm)
		}
	}
	slices.SortFunc(matched, func(x, y *memMessage) int { return strings.Compare(x.msg.ID, y.msg.ID) })
	page := paginate(matched, offset, limit)
	out := make([]Message, len(page))
	for i, mm := range page {
		out[i] = cloneMessage(mm.msg)
	}
	m.unlockApp(a)
	return out, len(matched), nil
}

// Stats returns what this repository counted so far.
func (m *Memory) Stats() Stats {
	return Stats{
		Stored:  m.stored.Load(),
		Acked:   m.acked.Load(),
		Expired: m.expired.Load(),
		Evicted: m.evicted.Load(),
	}
}

// Close drops every message. It is idempotent; later calls of other
// methods return ErrClosed.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.apps = nil
	m.byAge = list.New() // elements still held by calls in flight belong to the old list
	m.expiry = nil
	m.count = 0
	m.bytes = 0
	return nil
}

// enter starts a call in app: it fails if m is closed, removes what expired
// by now, and returns the app's state, made if create is set (nil if the
// app never stored anything and create is not set).
func (m *Memory) enter(app string, now time.Time, create bool) (*memApp, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	expired := m.expireLocked(now)
	a := m.apps[app]
	if a == nil && create {
		a = &memApp{name: app, msgs: make(map[string]*memMessage), inboxes: make(map[string]*memInbox)}
		m.apps[app] = a
	}
	m.mu.Unlock()
	m.retire(expired)
	return a, nil
}

// splitInboxes returns r's direct and shared inboxes in an app that has
// tenants (tenanted) or not: a tenant-less user's own inbox, the last of
// its direct ones, is shared in an app with tenants.
func splitInboxes(r Recipient, tenanted bool) (direct, shared []string) {
	direct, shared = r.DirectInboxes(), r.SharedInboxes()
	if tenanted && r.TenantlessUser() {
		last := len(direct) - 1
		shared = append([]string{direct[last]}, shared...)
		direct = direct[:last]
	}
	return direct, shared
}

// paginate returns the page of items starting at offset with at most limit
// entries (all when limit <= 0).
func paginate[T any](items []T, offset, limit int) []T {
	offset = max(offset, 0)
	if offset >= len(items) {
		return nil
	}
	items = items[offset:]
	if limit > 0 && len(items) > limit {
		items = items[:limit]
	}
	return items
}
