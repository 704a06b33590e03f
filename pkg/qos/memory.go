package qos

import (
	"container/heap"
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
	// DefaultTTL is the lifetime of a message saved without ExpiresAt.
	// Zero means DefaultTTL (24 h).
	DefaultTTL time.Duration
	// Logger receives warnings about evictions and notes about expiries.
	// The zero value logs nothing.
	Logger zerolog.Logger
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// Memory is the in-memory Repository: the default, bounded, lost when the
// process ends. All its methods take one mutex; expired messages are removed
// by whichever call comes next.
type Memory struct {
	maxPerRecipient int
	maxMessages     int
	ttl             time.Duration
	log             zerolog.Logger
	now             func() time.Time

	mu     sync.Mutex
	closed bool
	apps   map[string]*memApp
	byAge  *list.List // of *memMessage, oldest saved first
	expiry expiryHeap
	count  int

	stored, acked, expired, evicted atomic.Uint64
}

// Interface guards.
var (
	_ Repository    = (*Memory)(nil)
	_ StatsReporter = (*Memory)(nil)
)

type memApp struct {
	name    string
	msgs    map[string]*memMessage
	inboxes map[string]*memInbox
}

// memInbox holds messages ordered by id.
type memInbox struct {
	key    string
	direct bool
	items  []*memMessage
}

type memMessage struct {
	msg     Message
	app     *memApp
	inboxes int                 // inboxes still holding it
	acks    map[string]struct{} // ack keys of recipients of a broadcast message
	age     *list.Element
	heapIdx int
	removed bool
}

// NewMemory returns an empty in-memory repository.
func NewMemory(cfg MemoryConfig) (*Memory, error) {
	if cfg.MaxPerRecipient < 0 || cfg.MaxMessages < 0 || cfg.DefaultTTL < 0 {
		return nil, fmt.Errorf("qos: memory config: negative bound or ttl")
	}
	m := &Memory{
		maxPerRecipient: cfg.MaxPerRecipient,
		maxMessages:     cfg.MaxMessages,
		ttl:             cfg.DefaultTTL,
		log:             cfg.Logger.With().Str("component", "qos.memory").Logger(),
		now:             cfg.Now,
		apps:            make(map[string]*memApp),
		byAge:           list.New(),
	}
	if m.maxPerRecipient == 0 {
		m.maxPerRecipient = 1000
	}
	if m.maxMessages == 0 {
		m.maxMessages = 100000
	}
	if m.ttl == 0 {
		m.ttl = DefaultTTL
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
	msg, err := prepare(msg, now, m.ttl)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.expire(now)
	if !msg.ExpiresAt.After(now) {
		m.log.Debug().Str("app", app).Str("id", msg.ID).Msg("qos message expired before it was saved")
		return nil
	}
	a := m.apps[app]
	if a == nil {
		a = &memApp{name: app, msgs: make(map[string]*memMessage), inboxes: make(map[string]*memInbox)}
		m.apps[app] = a
	}
	if a.msgs[msg.ID] != nil {
		return nil
	}
	mm := &memMessage{msg: msg, app: a}
	if msg.broadcast() {
		mm.acks = make(map[string]struct{})
	}
	a.msgs[msg.ID] = mm
	mm.age = m.byAge.PushBack(mm)
	heap.Push(&m.expiry, mm)
	m.count++
	m.stored.Add(1)

	direct, bcast := msg.directInboxes(), msg.broadcastInboxes()
	for i, key := range slices.Concat(direct, bcast) {
		if mm.removed {
			break // older than everything in a full inbox: dropped at once
		}
		in := a.inboxes[key]
		if in == nil {
			in = &memInbox{key: key, direct: i < len(direct)}
			a.inboxes[key] = in
		}
		in.insert(mm)
		mm.inboxes++
		for len(in.items) > m.maxPerRecipient {
			old := in.items[0]
			in.removeAt(0)
			m.evicted.Add(1)
			m.log.Warn().Str("app", app).Str("id", old.msg.ID).Str("inbox", key).
				Int("max", m.maxPerRecipient).Msg("qos inbox full: oldest message dropped")
			if old.inboxes--; old.inboxes == 0 {
				m.remove(old)
			}
		}
	}
	for m.count > m.maxMessages {
		old := m.byAge.Front().Value.(*memMessage)
		m.evicted.Add(1)
		m.log.Warn().Str("app", old.app.name).Str("id", old.msg.ID).
			Int("max", m.maxMessages).Msg("qos store full: oldest message dropped")
		m.remove(old)
	}
	return nil
}

// Pending returns up to limit messages waiting for r, oldest first; a limit
// of zero or less means all of them.
func (m *Memory) Pending(ctx context.Context, app string, r Recipient, after string, limit int) ([]Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	m.expire(now)
	a := m.apps[app]
	if a == nil {
		return nil, nil
	}
	ackKey := r.ackKey()
	var found []*memMessage
	for _, key := range slices.Concat(r.directInboxes(), r.broadcastInboxes()) {
		in := a.inboxes[key]
		if in == nil {
			continue
		}
		n := 0
		for _, mm := range in.items[in.after(after):] {
			if limit > 0 && n == limit {
				break
			}
			if !mm.msg.ExpiresAt.After(now) {
				continue
			}
			if !in.direct {
				if _, acked := mm.acks[ackKey]; acked {
					continue
				}
			}
			if mm.msg.Listening && !r.listens(mm.msg.Event) {
				continue
			}
			found = append(found, mm)
			n++
		}
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
	return out, nil
}

// Ack records that r received ids. A message leaves r's direct inboxes (its
// user's and its access token's); a broadcast message that reaches r through
// its tenant, channel or "all" is marked as received by r's user id (or
// access token). Whether r still listens to the message's event does not
// matter. A message no inbox holds any more is deleted.
func (m *Memory) Ack(ctx context.Context, app string, r Recipient, ids ...string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, ErrClosed
	}
	m.expire(now)
	a := m.apps[app]
	if a == nil {
		return 0, nil
	}
	ackKey := r.ackKey()
	direct, bcast := r.directInboxes(), r.broadcastInboxes()
	n := 0
	for _, id := range uniqueIDs(ids) {
		mm := a.msgs[id]
		if mm == nil {
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
			for _, key := range bcast {
				if in := a.inboxes[key]; in != nil && in.contains(mm) {
					if _, dup := mm.acks[ackKey]; !dup {
						mm.acks[ackKey] = struct{}{}
						hit = true
					}
					break
				}
			}
		}
		if hit {
			n++
		}
		if mm.inboxes == 0 {
			m.remove(mm)
		}
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
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, 0, ErrClosed
	}
	m.expire(now)
	a := m.apps[app]
	if a == nil {
		return nil, 0, nil
	}
	matched := make([]*memMessage, 0, len(a.msgs))
	for _, mm := range a.msgs {
		if f.matches(&mm.msg) {
			matched = append(matched, mm)
		}
	}
	slices.SortFunc(matched, func(x, y *memMessage) int { return strings.Compare(x.msg.ID, y.msg.ID) })
	page := paginate(matched, offset, limit)
	out := make([]Message, len(page))
	for i, mm := range page {
		out[i] = cloneMessage(mm.msg)
	}
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
	m.byAge.Init()
	m.expiry = nil
	m.count = 0
	return nil
}

// expire removes the messages whose time is up. Called with mu held.
func (m *Memory) expire(now time.Time) {
	for len(m.expiry) > 0 && !m.expiry[0].msg.ExpiresAt.After(now) {
		mm := m.expiry[0]
		m.expired.Add(1)
		ev := m.log.Debug()
		if mm.inDirectInbox() {
			// Somebody never got it: worth a line at info.
			ev = m.log.Info()
		}
		ev.Str("app", mm.app.name).Str("id", mm.msg.ID).Str("event", mm.msg.Event).Msg("qos message expired")
		m.remove(mm)
	}
}

// remove deletes mm from its app, its inboxes and the age and expiry
// indices. Called with mu held.
func (m *Memory) remove(mm *memMessage) {
	a := mm.app
	for _, key := range slices.Concat(mm.msg.directInboxes(), mm.msg.broadcastInboxes()) {
		if in := a.inboxes[key]; in != nil && in.remove(mm) && in.len() == 0 {
			delete(a.inboxes, key)
		}
	}
	delete(a.msgs, mm.msg.ID)
	if len(a.msgs) == 0 {
		delete(m.apps, a.name)
	}
	m.byAge.Remove(mm.age)
	heap.Remove(&m.expiry, mm.heapIdx)
	m.count--
	mm.removed = true
}

// inDirectInbox reports whether a user or access token still waits for mm.
func (mm *memMessage) inDirectInbox() bool {
	for _, key := range mm.msg.directInboxes() {
		if in := mm.app.inboxes[key]; in != nil && in.contains(mm) {
			return true
		}
	}
	return false
}

func (in *memInbox) len() int { return len(in.items) }

// search returns the position of mm's id in the inbox and whether it is there.
func (in *memInbox) search(id string) (int, bool) {
	return slices.BinarySearchFunc(in.items, id, func(x *memMessage, id string) int {
		return strings.Compare(x.msg.ID, id)
	})
}

// after returns the position of the first message with an id greater than id.
func (in *memInbox) after(id string) int {
	if id == "" {
		return 0
	}
	i, found := in.search(id)
	if found {
		i++
	}
	return i
}

func (in *memInbox) insert(mm *memMessage) {
	if n := len(in.items); n == 0 || in.items[n-1].msg.ID < mm.msg.ID {
		in.items = append(in.items, mm) // the usual case: ids grow
		return
	}
	i, _ := in.search(mm.msg.ID)
	in.items = slices.Insert(in.items, i, mm)
}

func (in *memInbox) contains(mm *memMessage) bool {
	i, found := in.search(mm.msg.ID)
	return found && in.items[i] == mm
}

func (in *memInbox) remove(mm *memMessage) bool {
	i, found := in.search(mm.msg.ID)
	if !found || in.items[i] != mm {
		return false
	}
	in.removeAt(i)
	return true
}

func (in *memInbox) removeAt(i int) {
	in.items[i] = nil
	in.items = slices.Delete(in.items, i, i+1)
}

// expiryHeap orders messages by ExpiresAt, soonest first.
type expiryHeap []*memMessage

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].msg.ExpiresAt.Before(h[j].msg.ExpiresAt) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}
func (h *expiryHeap) Push(x any) {
	mm := x.(*memMessage)
	mm.heapIdx = len(*h)
	*h = append(*h, mm)
}
func (h *expiryHeap) Pop() any {
	old := *h
	mm := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	mm.heapIdx = -1
	return mm
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
