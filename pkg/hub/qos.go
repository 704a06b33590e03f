package hub

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushd/pushd/pkg/qos"
)

// QoSCounters are the hub's QoS figures since start (the repository keeps
// its own: stored, acked, expired, evicted).
type QoSCounters struct {
	Stored      uint64 `json:"stored"`
	Redelivered uint64 `json:"redelivered"`
	Acked       uint64 `json:"acked"`
	AckRetries  uint64 `json:"ackRetries"`
	AckDropped  uint64 `json:"ackDropped"`
}

// QoSStats holds the hub's QoS counters.
type QoSStats struct {
	stored, redelivered, acked, ackRetries, ackDropped atomic.Uint64
}

// Counters are the hub's figures since start, for metrics.
type Counters struct {
	// Sends counts the sends published from this node.
	Sends uint64 `json:"sends"`
	// Deliveries counts the events queued to this node's connections.
	Deliveries uint64 `json:"deliveries"`
	// SlowDisconnects counts connections closed as slow consumers.
	SlowDisconnects uint64 `json:"slowDisconnects"`
	// PeerRequests counts the requests of other nodes this hub served
	// (HandleDeliver and HandleSurvey): the messages that crossed to it.
	PeerRequests uint64      `json:"peerRequests"`
	QoS          QoSCounters `json:"qos"`
}

// Counters returns the hub's counters.
func (h *Hub) Counters() Counters {
	return Counters{
		Sends:           h.counts.sends.Load(),
		Deliveries:      h.counts.deliveries.Load(),
		SlowDisconnects: h.counts.slow.Load(),
		PeerRequests:    h.counts.peer.Load(),
		QoS:             h.qosCounters(),
	}
}

func (h *Hub) qosCounters() QoSCounters {
	return QoSCounters{
		Stored:      h.qos.stored.Load(),
		Redelivered: h.qos.redelivered.Load(),
		Acked:       h.qos.acked.Load(),
		AckRetries:  h.qos.ackRetries.Load(),
		AckDropped:  h.qos.ackDropped.Load(),
	}
}

// replayPage is how many stored messages are read at once on connect.
const replayPage = 500

// maxPendingAcks bounds the acknowledgements kept for retry while the
// repository is unreachable.
const maxPendingAcks = 100000

// recipient is c's identity for the repository.
func (c *Conn) recipient() qos.Recipient {
	return qos.Recipient{
		UserID:      c.user.ID,
		AccessToken: c.user.AccessToken,
		TenantID:    c.user.TenantID,
		Channels:    c.Channels(),
		Listeners:   c.Listeners(),
	}
}

// store saves a QoS event for the recipients of t.
func (h *Hub) store(ctx context.Context, t Target, ev Event, ttl time.Duration) error {
	if !t.All && !anyID(t.UserIDs) && !anyID(t.AccessTokens) && !anyID(t.TenantIDs) && !anyID(t.Channels) {
		return fmt.Errorf("%w: a qos send needs user ids, access tokens, tenant ids, channels or all", ErrNoTarget)
	}
	if ttl <= 0 {
		ttl = h.cfg.QoSTTL
	}
	now := time.Now()
	m := qos.Message{
		ID: ev.ID, Event: ev.Name, Data: ev.Data,
		UserIDs: t.UserIDs, AccessTokens: t.AccessTokens, TenantIDs: t.TenantIDs, Channels: t.Channels,
		All: t.All, Listening: t.Listening, CreatedAt: now, ExpiresAt: now.Add(ttl),
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.StoreTimeout)
	defer cancel()
	if err := h.cfg.Repository.Save(ctx, h.cfg.App, m); err != nil {
		if errors.Is(err, qos.ErrInvalidMessage) { // the caller's input, not the store
			return fmt.Errorf("%w: %w", ErrInvalidEvent, err)
		}
		return errStore("save", err)
	}
	h.qos.stored.Add(1)
	return nil
}

// replay queues the messages stored for c's recipient, after its
// connect-finish, skipping those up to the client's last seen id.
func (h *Hub) replay(ctx context.Context, c *Conn) {
	r := c.recipient()
	if r.UserID == "" && r.AccessToken == "" {
		return
	}
	// A client that acknowledges gets everything it has not acknowledged:
	// ids of different senders do not arrive in id order, so skipping up
	// to its Last-Event-ID could skip an older message it never saw. For a
	// client that cannot acknowledge, the id is the best hint there is.
	after := ""
	if !c.canAck && looksLikeQoSID(c.lastEvent) {
		after = c.lastEvent
	}
	for {
		msgs, err := h.cfg.Repository.Pending(ctx, h.cfg.App, r, after, replayPage)
		if err != nil {
			h.log.Warn().Err(err).Str("conn", c.id).Msg("qos replay failed")
			return
		}
		for _, m := range msgs {
			// A client that cannot acknowledge is not given messages it
			// does not listen to (see Conn.offer): they stay stored.
			if c.enqueue(encodeResend(Event{Name: m.Event, ID: m.ID, Data: m.Data}), false) {
				h.qos.redelivered.Add(1)
			} else if c.Closed() {
				return
			}
			after = m.ID
		}
		if len(msgs) < replayPage {
			return
		}
	}
}

// hasOverdue reports whether c has a QoS message unacknowledged for longer
// than after.
func (c *Conn) hasOverdue(now time.Time, after time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, sent := range c.unacked {
		if now.Sub(sent) >= after {
			return true
		}
	}
	return false
}

// redeliverOverdue sends again the messages c has not acknowledged in
// time and forgets those that are no longer pending.
func (h *Hub) redeliverOverdue(ctx context.Context, c *Conn, now time.Time) {
	overdue := make(map[string]bool)
	c.mu.Lock()
	for id, sent := range c.unacked {
		if now.Sub(sent) >= h.cfg.RedeliverAfter {
			overdue[id] = true
		}
	}
	c.mu.Unlock()
	msgs, err := h.cfg.Repository.Pending(ctx, h.cfg.App, c.recipient(), "", maxPendingAcks)
	if err != nil {
		h.log.Warn().Err(err).Str("conn", c.id).Msg("qos redelivery failed")
		return
	}
	for _, m := range msgs {
		if overdue[m.ID] {
			delete(overdue, m.ID)
			if c.enqueue(encodeResend(Event{Name: m.Event, ID: m.ID, Data: m.Data}), false) {
				h.qos.redelivered.Add(1)
			}
		}
	}
	c.mu.Lock()
	for id := range overdue {
		delete(c.unacked, id)
	}
	c.mu.Unlock()
}

// pendingAck is an acknowledgement waiting to reach the repository.
type pendingAck struct {
	r   qos.Recipient
	ids []string
}

// ackRetry queues acknowledgements for the Run loop: those of clients that
// cannot acknowledge (made once a message was written) and those that
// failed while the repository was unreachable.
type ackRetry struct {
	mu      sync.Mutex
	pending []pendingAck
	count   int
	signal  chan struct{}
	once    sync.Once
}

func (a *ackRetry) wake() chan struct{} {
	a.once.Do(func() { a.signal = make(chan struct{}, 1) })
	return a.signal
}

// push queues p; with signal it wakes the Run loop at once, otherwise p
// waits for the next tick (a retry after a failure).
func (a *ackRetry) push(p pendingAck, signal bool) bool {
	a.mu.Lock()
	if a.count+len(p.ids) > maxPendingAcks {
		a.mu.Unlock()
		return false
	}
	a.pending = append(a.pending, p)
	a.count += len(p.ids)
	a.mu.Unlock()
	if signal {
		select {
		case a.wake() <- struct{}{}:
		default:
		}
	}
	return true
}

func (a *ackRetry) takeAll() []pendingAck {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.pending
	a.pending, a.count = nil, 0
	return out
}

// ackWritten acknowledges, for a client that cannot, the QoS messages just
// written to it.
func (h *Hub) ackWritten(c *Conn, ids []string) {
	r := c.recipient()
	// One flush may have written more than a store takes in one Ack (a
	// queue longer than MaxAckIDs): queue it in chunks the store accepts.
	for chunk := range slices.Chunk(ids, MaxAckIDs) {
		if !h.acks.push(pendingAck{r: r, ids: chunk}, true) {
			h.qos.ackDropped.Add(uint64(len(chunk)))
		}
	}
}

// retryAcks sends the queued acknowledgements; failures stay queued.
func (h *Hub) retryAcks(ctx context.Context) {
	if h.cfg.Repository == nil {
		return
	}
	for _, p := range h.acks.takeAll() {
		n, err := h.cfg.Repository.Ack(ctx, h.cfg.App, p.r, p.ids...)
		if err != nil {
			h.qos.ackRetries.Add(1)
			if !h.acks.push(p, false) {
				h.qos.ackDropped.Add(uint64(len(p.ids)))
			}
			h.log.Warn().Err(err).Int("ids", len(p.ids)).Msg("qos ack failed; will retry")
		}
		h.qos.acked.Add(uint64(n))
	}
}

// ackLocal acknowledges ids for local connection c, each once. A
// repository failure queues the acknowledgement for retry, so it is not
// lost.
func (h *Hub) ackLocal(ctx context.Context, c *Conn, ids []string) int {
	ids = uniqueIDs(ids)
	if len(ids) == 0 {
		return 0
	}
	c.mu.Lock()
	for _, id := range ids {
		delete(c.unacked, id)
	}
	c.mu.Unlock()
	r := c.recipient()
	n, err := h.cfg.Repository.Ack(ctx, h.cfg.App, r, ids...)
	if err != nil {
		h.log.Warn().Err(err).Str("conn", c.id).Msg("qos ack failed; will retry")
		if !h.acks.push(pendingAck{r: r, ids: ids}, false) {
			h.qos.ackDropped.Add(uint64(len(ids)))
		}
		return 0
	}
	h.qos.acked.Add(uint64(n))
	return n
}

// uniqueIDs returns ids without empty ones and repeats, in their order, in
// linear time; ids is not changed.
func uniqueIDs(ids []string) []string {
	seen := make(map[string]struct{}, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if _, dup := seen[id]; !dup && id != "" {
			seen[id] = struct{}{}
			out = append(out, id)
		}
	}
	return out
}

// ReplayAll re-reads the QoS inbox of every local connection, e.g. after
// the transport lost messages while resubscribing. Duplicates are dropped
// by clients.
func (h *Hub) ReplayAll(ctx context.Context) {
	if h.cfg.Repository == nil {
		return
	}
	var conns []*Conn
	h.conns.each(func(c *Conn) { conns = append(conns, c) })
	for _, c := range conns {
		h.replay(ctx, c)
	}
}

// looksLikeQoSID tells a QoS message id (see qos.NewID: "q" and 23 more
// characters) from the other ids a browser may echo as Last-Event-ID:
// connection ids and per-connection counters.
func looksLikeQoSID(id string) bool {
	return len(id) == 24 && id[0] == 'q'
}
