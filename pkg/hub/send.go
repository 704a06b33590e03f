package hub

import (
	"context"
	"fmt"
	"time"

	"github.com/pushd/pushd/pkg/qos"
)

// Result is the outcome of a Publish.
type Result struct {
	// Delivered counts the connections, cluster-wide, the event was
	// queued to.
	Delivered int `json:"delivered"`
	// Stored reports that the event was stored for at-least-once delivery.
	Stored bool `json:"stored"`
	// ID is the QoS message id, or empty.
	ID string `json:"id,omitempty"`
	// Positions are the event's positions in the resumable streams of its
	// target (a non-QoS send to channels or users with history).
	Positions []StreamPos `json:"positions,omitempty"`
}

// PublishOption adjusts one Publish call.
//
// It takes and returns the options by value: a pointer handed to an
// unknown function would move every Publish call's options to the heap.
type PublishOption func(publishOptions) publishOptions

type publishOptions struct {
	qos bool
	ttl time.Duration
}

// WithQoS stores the event until its recipients acknowledge it (at least
// once delivery), for ttl (0: Config.QoSTTL).
func WithQoS(ttl time.Duration) PublishOption {
	return func(o publishOptions) publishOptions {
		o.qos, o.ttl = true, ttl
		return o
	}
}

// Publish sends ev to the connections matching t on every node. With
// WithQoS the event gets a QoS message id (unless ev.ID already holds one
// from qos.NewID) and is first stored in the repository (the call fails with
// an error wrapping ErrStore if that fails, and nothing is sent), then
// delivered. Unreachable nodes are skipped: their connections are not
// counted.
func (h *Hub) Publish(ctx context.Context, t Target, ev Event, opts ...PublishOption) (Result, error) {
	if h.closing.Load() {
		return Result{}, ErrClosed
	}
	if t.IsZero() {
		return Result{}, ErrNoTarget
	}
	var o publishOptions
	for _, opt := range opts {
		o = opt(o)
	}
	var res Result
	if o.qos {
		if h.cfg.Repository == nil {
			return Result{}, ErrQoSDisabled
		}
		if ev.ID == "" {
			ev.ID = qos.NewID()
		}
		if err := h.validate(ev); err != nil {
			return Result{}, err
		}
		if err := h.store(ctx, t, ev, o.ttl); err != nil {
			return Result{}, err
		}
		res.Stored, res.ID = true, ev.ID
	} else if err := h.validate(ev); err != nil {
		return Result{}, err
	} else if err := h.appendHistory(ctx, t, &ev); err != nil {
		return Result{}, err
	} else {
		res.Positions = ev.Streams
	}
	f := encodeEvent(ev)
	if o.qos {
		f.qosID = ev.ID
	}
	h.counts.sends.Add(1)
	res.Delivered = h.deliverLocal(t, f)
	if h.cfg.Transport != nil {
		start := time.Now()
		n, err := h.cfg.Transport.Deliver(ctx, h.cfg.App, t, ev)
		h.observeCluster("deliver", start, err)
		if err != nil {
			h.log.Warn().Err(err).Str("event", ev.Name).Msg("cluster deliver failed")
		}
		res.Delivered += n
	}
	return res, nil
}

// validate checks ev (Event.Validate) and the length of its name against
// Config.MaxNameLength.
func (h *Hub) validate(ev Event) error {
	if err := ev.Validate(); err != nil {
		return err
	}
	if limit := h.cfg.MaxNameLength; limit > 0 && len(ev.Name) > limit {
		return fmt.Errorf("%w: %w: event name longer than %d bytes", ErrInvalidEvent, ErrInvalidName, limit)
	}
	return nil
}

// Send publishes ev to t without QoS and returns how many connections,
// cluster-wide, it was queued to.
func (h *Hub) Send(ctx context.Context, t Target, ev Event) (int, error) {
	res, err := h.Publish(ctx, t, ev)
	return res.Delivered, err
}

func (h *Hub) sendData(ctx context.Context, t Target, name string, data any) (int, error) {
	ev, err := NewEvent(name, data)
	if err != nil {
		return 0, err
	}
	return h.Send(ctx, t, ev)
}

// SendAll sends an event to every connection of the app.
func (h *Hub) SendAll(ctx context.Context, name string, data any) (int, error) {
	return h.sendData(ctx, Target{All: true}, name, data)
}

// SendByUserID sends an event to every connection of the user.
func (h *Hub) SendByUserID(ctx context.Context, userID, name string, data any) (int, error) {
	return h.sendData(ctx, Target{UserIDs: []string{userID}}, name, data)
}

// SendByAccessToken sends an event to every connection of the access token.
func (h *Hub) SendByAccessToken(ctx context.Context, token, name string, data any) (int, error) {
	return h.sendData(ctx, Target{AccessTokens: []string{token}}, name, data)
}

// SendByTenantID sends an event to every connection of the tenant.
func (h *Hub) SendByTenantID(ctx context.Context, tenantID, name string, data any) (int, error) {
	return h.sendData(ctx, Target{TenantIDs: []string{tenantID}}, name, data)
}

// SendByChannel sends an event to every connection of the channel.
func (h *Hub) SendByChannel(ctx context.Context, channel, name string, data any) (int, error) {
	return h.sendData(ctx, Target{Channels: []string{channel}}, name, data)
}

// SendByConnectionID sends an event to one connection, wherever it is.
func (h *Hub) SendByConnectionID(ctx context.Context, connID, name string, data any) (int, error) {
	return h.sendData(ctx, Target{ConnectionIDs: []string{connID}}, name, data)
}

// HandleDeliver implements Handler: it writes ev to the local connections
// of t. A QoS event (one with an id from a QoS send) keeps its id.
func (h *Hub) HandleDeliver(_ context.Context, app string, t Target, ev Event) int {
	if app != h.cfg.App || ev.Validate() != nil {
		return 0
	}
	h.counts.peer.Add(1)
	f := encodeEvent(ev)
	if ev.ID != "" && len(ev.Streams) == 0 && h.cfg.Repository != nil {
		f.qosID = ev.ID
	}
	return h.deliverLocal(t, f)
}

// quickLimit is the most local connections HandleDeliverQuick serves.
const quickLimit = 8

// HandleDeliverQuick implements QuickDeliverer: it serves targets that
// match at most quickLimit local connections (counted per key, so a
// connection under two keys counts twice) and never All. Writing never
// blocks: a socket that does not take a frame at once is left to the pool.
func (h *Hub) HandleDeliverQuick(app string, t Target, ev Event) (int, bool) {
	if t.All {
		return 0, false
	}
	n := len(t.ConnectionIDs)
	for _, keys := range [...]struct {
		ix   *index
		keys []string
	}{{&h.byUser, t.UserIDs}, {&h.byToken, t.AccessTokens}, {&h.byTenant, t.TenantIDs}, {&h.byChannel, t.Channels}} {
		for _, key := range keys.keys {
			if n += keys.ix.size(key); n > quickLimit {
				return 0, false
			}
		}
	}
	if n > quickLimit {
		return 0, false
	}
	return h.HandleDeliver(context.Background(), app, t, ev), true
}

// deliverLocal queues f to the local connections matching t, each once,
// and returns how many accepted it. Pool writers are woken once per send,
// not once per connection.
func (h *Hub) deliverLocal(t Target, f *frame) (n int) {
	w := h.newWaker()
	defer func() {
		w.flush()
		h.counts.deliveries.Add(uint64(n))
	}()
	if t.All {
		h.conns.each(func(c *Conn) {
			if w.offer(c, f, t.Listening) {
				n++
			}
		})
		return n
	}
	var seen map[*Conn]struct{}
	if len(t.ConnectionIDs)+len(t.UserIDs)+len(t.AccessTokens)+len(t.TenantIDs)+len(t.Channels) > 1 {
		// A connection may be under several of the keys: each once.
		seen = make(map[*Conn]struct{})
	}
	visit := func(c *Conn) {
		if seen != nil {
			if _, dup := seen[c]; dup {
				return
			}
			seen[c] = struct{}{}
		}
		if w.offer(c, f, t.Listening) {
			n++
		}
	}
	for _, id := range t.ConnectionIDs {
		if c := h.conns.get(id); c != nil {
			visit(c)
		}
	}
	for _, key := range t.UserIDs {
		h.byUser.each(key, visit)
	}
	for _, key := range t.AccessTokens {
		h.byToken.each(key, visit)
	}
	for _, key := range t.TenantIDs {
		h.byTenant.each(key, visit)
	}
	for _, key := range t.Channels {
		h.byChannel.each(key, visit)
	}
	return n
}

// matchingLocal returns the local connections matching t (ignoring
// Listening).
func (h *Hub) matchingLocal(t Target) []*Conn {
	var out []*Conn
	seen := make(map[*Conn]struct{})
	add := func(c *Conn) {
		if _, dup := seen[c]; !dup {
			seen[c] = struct{}{}
			out = append(out, c)
		}
	}
	if t.All {
		h.conns.each(add)
		return out
	}
	for _, id := range t.ConnectionIDs {
		if c := h.conns.get(id); c != nil {
			add(c)
		}
	}
	for _, pair := range []struct {
		ix   *index
		keys []string
	}{{&h.byUser, t.UserIDs}, {&h.byToken, t.AccessTokens}, {&h.byTenant, t.TenantIDs}, {&h.byChannel, t.Channels}} {
		for _, key := range pair.keys {
			pair.ix.each(key, add)
		}
	}
	return out
}

func errStore(op string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrStore, op, err)
}

// Messages lists one page of the app's stored QoS messages matching f and
// the number of all matching messages.
func (h *Hub) Messages(ctx context.Context, f qos.Filter, offset, limit int) ([]qos.Message, int, error) {
	if h.cfg.Repository == nil {
		return nil, 0, ErrQoSDisabled
	}
	list, total, err := h.cfg.Repository.List(ctx, h.cfg.App, f, offset, limit)
	if err != nil {
		return nil, 0, errStore("list", err)
	}
	return list, total, nil
}
