package hub

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Hub holds the connections of one app on this node and delivers events
// to them, locally and, through its Transport, cluster-wide.
type Hub struct {
	cfg       Config
	log       zerolog.Logger
	interest  Interest // cfg.Transport as Interest, or nil
	conns     connMap
	byUser    index
	byToken   index
	byTenant  index
	byChannel index
	byClient  index
	byOwner   index // ownerKey → connections, for MaxConnectionsPerUser
	pool      *writerPool

	historyImmediate bool // cfg.History is history.Immediate: appends need no deadline

	hooksMu          sync.RWMutex
	onConnect        []func(*Conn)
	onDisconnect     []func(*Conn, DisconnectReason)
	onListenerChange []func(ListenerChange)
	onChannelChange  []func(ChannelChange)

	durMu   sync.Mutex
	pending map[string]int64 // routing key → sse-set-duration waiting for its next connection

	acks   ackRetry
	qos    QoSStats
	counts struct{ sends, deliveries, slow, peer atomic.Uint64 }

	closing  atomic.Bool // Shutdown: nothing new is accepted
	draining atomic.Bool // Drain: no new connections, sends still served
	closed   chan struct{}
	closeMu  sync.Mutex
	streams  sync.WaitGroup
}

// ListenerChange tells a listener-change hook what changed.
type ListenerChange struct {
	Conn   *Conn
	Added  bool // false: removed
	Before []string
	After  []string
}

// ChannelChange tells a channel-change hook that a connection joined or
// left a channel: at connect, with Subscribe or ChangeChannels, and when it
// ends.
type ChannelChange struct {
	Conn    *Conn
	Channel string
	Joined  bool // false: left
}

// New builds a hub from cfg.
func New(cfg Config) (*Hub, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	h := &Hub{
		cfg:     cfg,
		log:     cfg.Logger.With().Str("component", "hub").Str("app", cfg.App).Logger(),
		pending: make(map[string]int64),
		closed:  make(chan struct{}),
	}
	h.historyImmediate = isImmediate(cfg.History)
	h.conns.init()
	for _, ix := range []*index{&h.byUser, &h.byToken, &h.byTenant, &h.byChannel, &h.byClient, &h.byOwner} {
		ix.init()
	}
	if in, ok := cfg.Transport.(Interest); ok {
		h.interest = in
		in.SetInterest(cfg.App, KeyAll, true)
	}
	if cfg.Writers >= 0 {
		n := cfg.Writers
		if n == 0 {
			n = 4 * numCPU()
		}
		h.pool = newWriterPool(h, n)
	}
	return h, nil
}

// App returns the name of the hub's app.
func (h *Hub) App() string { return h.cfg.App }

// NodeID returns this node's id.
func (h *Hub) NodeID() string { return h.cfg.NodeID }

// Clustered reports whether the hub has a Transport.
func (h *Hub) Clustered() bool { return h.cfg.Transport != nil }

// QoSEnabled reports whether the hub has a QoS repository.
func (h *Hub) QoSEnabled() bool { return h.cfg.Repository != nil }

// OnConnect registers fn to run for every connection once its stream
// started (after connect-finish was queued). Hooks run synchronously:
// they must not block.
func (h *Hub) OnConnect(fn func(*Conn)) {
	h.hooksMu.Lock()
	h.onConnect = append(h.onConnect, fn)
	h.hooksMu.Unlock()
}

// OnDisconnect registers fn to run for every connection that ended, with
// its final session duration in place. Hooks must not block.
func (h *Hub) OnDisconnect(fn func(*Conn, DisconnectReason)) {
	h.hooksMu.Lock()
	h.onDisconnect = append(h.onDisconnect, fn)
	h.hooksMu.Unlock()
}

// OnListenerChange registers fn to run when a connection's listener set
// changes. Hooks must not block.
func (h *Hub) OnListenerChange(fn func(ListenerChange)) {
	h.hooksMu.Lock()
	h.onListenerChange = append(h.onListenerChange, fn)
	h.hooksMu.Unlock()
}

// OnChannelChange registers fn to run for every channel a connection joins
// or leaves. Hooks must not block.
func (h *Hub) OnChannelChange(fn func(ChannelChange)) {
	h.hooksMu.Lock()
	h.onChannelChange = append(h.onChannelChange, fn)
	h.hooksMu.Unlock()
}

// channelChanged runs the channel-change hooks for c's channels joined
// and left.
func (h *Hub) channelChanged(c *Conn, joined, left []string) {
	h.hooksMu.RLock()
	hooks := h.onChannelChange
	h.hooksMu.RUnlock()
	for _, fn := range hooks {
		for _, ch := range joined {
			fn(ChannelChange{Conn: c, Channel: ch, Joined: true})
		}
		for _, ch := range left {
			fn(ChannelChange{Conn: c, Channel: ch})
		}
	}
}

// newConnID returns 128 random bits, URL-safe.
func newConnID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Connect registers a new connection and queues its connect-finish frame.
// The caller must then either stream it with ServeStream or close it with
// Disconnect; until then events for it wait in its queue.
//
// It fails with ErrTokenExpired for a user whose credential has expired,
// ErrTooManyListeners or ErrInvalidName for listeners beyond
// Config.MaxListeners or names it refuses, and ErrTooManyConnections when
// the node holds Config.MaxConnections connections. A connection beyond
// the per-client or per-user cap is accepted and the oldest of its group
// are closed.
func (h *Hub) Connect(ctx context.Context, req ConnectRequest) (*Conn, error) {
	if h.closing.Load() || h.draining.Load() {
		return nil, ErrClosed
	}
	now := time.Now()
	if exp := req.User.ExpiresAt; !exp.IsZero() && !now.Before(exp) {
		return nil, ErrTokenExpired
	}
	if err := h.checkListeners(req.Listeners); err != nil {
		return nil, err
	}
	channels, err := h.checkChannels(req.Channels)
	if err != nil {
		return nil, err
	}
	if limit := h.cfg.MaxConnections; limit > 0 && h.conns.count() >= limit {
		return nil, ErrTooManyConnections
	}
	c := &Conn{
		hub:       h,
		id:        newConnID(),
		user:      req.User,
		info:      req.Info,
		params:    packParams(req.Info.Params),
		channels:  channels,
		created:   now.UnixNano(),
		canAck:    req.CanAck,
		lastEvent: req.LastEventID,
		session:   req.SessionDuration,
	}
	c.info.Params = nil                 // kept in params
	c.addListenersLocked(req.Listeners) // c is not shared yet
	c.named = len(c.listeners) > 0
	if at, why := h.expiry(now, req); !at.IsZero() {
		c.expires, c.expiry = at.UnixMilli(), why
	}
	c.queue = append(c.queue, encodeConnectFinish(c, h))
	if h.cfg.History != nil {
		c.resume = &resumeState{}
	}
	h.register(c)
	h.awaitRoutes(ctx, c, h.routingKeysOf(c))
	if c.resume != nil {
		h.applyResume(c, h.planResume(ctx, c, req.LastEventID))
	}
	h.enforceCaps(c)
	return c, nil
}

// checkListeners refuses more listener names than Config.MaxListeners and
// names checkName refuses.
func (h *Hub) checkListeners(names []string) error {
	if limit := h.cfg.MaxListeners; limit > 0 && len(names) > limit {
		return fmt.Errorf("%w: %d names, at most %d", ErrTooManyListeners, len(names), limit)
	}
	for _, n := range names {
		if err := h.checkName(n); err != nil {
			return err
		}
	}
	return nil
}

// checkName refuses a listener name that is empty, longer than
// Config.MaxNameLength or holds CR, LF or NUL (which would break framing
// wherever the name is written).
func (h *Hub) checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty name", ErrInvalidName)
	case h.cfg.MaxNameLength > 0 && len(name) > h.cfg.MaxNameLength:
		return fmt.Errorf("%w: name longer than %d bytes", ErrInvalidName, h.cfg.MaxNameLength)
	case strings.ContainsAny(name, "\r\n\x00"):
		return fmt.Errorf("%w: name contains CR, LF or NUL", ErrInvalidName)
	}
	return nil
}

// awaitRoutes waits, bounded by RouteTimeout, until the transport routes
// keys to this node.
func (h *Hub) awaitRoutes(ctx context.Context, c *Conn, keys []string) {
	w, ok := h.interest.(InterestWaiter)
	if !ok || len(keys) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.RouteTimeout)
	defer cancel()
	if err := w.AwaitInterest(ctx, h.cfg.App, keys); err != nil {
		h.log.Debug().Err(err).Str("conn", c.id).Msg("routes to the connection not confirmed, serving it anyway")
	}
}

// lifetime resolves a connection's lifetime from the client's wish (0: not
// given, negative: unlimited), bounded by MaxKeepalive, and the app's
// override; 0 means unlimited.
func (h *Hub) lifetime(client time.Duration) time.Duration {
	switch {
	case h.cfg.Keepalive < 0:
		return 0
	case h.cfg.Keepalive > 0:
		return h.cfg.Keepalive
	case client == 0:
		client = defaultClientKeepalive
	}
	if limit := h.cfg.MaxKeepalive; limit > 0 && (client < 0 || client > limit) {
		return limit
	}
	return max(client, 0)
}

// expiry returns when a connection opened now for req ends by itself, and
// why: at the end of its lifetime (ReasonExpired) or when its user's
// credential expires (ReasonTokenExpired), whichever comes first. The zero
// time means never.
func (h *Hub) expiry(now time.Time, req ConnectRequest) (time.Time, DisconnectReason) {
	var at time.Time
	if life := h.lifetime(req.Keepalive); life > 0 {
		at = now.Add(life)
	}
	if exp := req.User.ExpiresAt; !exp.IsZero() && (at.IsZero() || exp.Before(at)) {
		return exp, ReasonTokenExpired
	}
	return at, ReasonExpired
}

// started runs when a connection's writer is attached: connect hooks,
// pending set-duration values and the QoS inbox.
func (h *Hub) started(c *Conn) {
	h.log.Debug().Str("conn", c.id).Str("user", c.user.ID).Msg("connected")
	h.hooksMu.RLock()
	hooks := h.onConnect
	h.hooksMu.RUnlock()
	for _, fn := range hooks {
		fn(c)
	}
	h.channelChanged(c, c.Channels(), nil)
	h.deliverPendingDuration(c)
	if h.cfg.Repository != nil {
		go h.replay(context.Background(), c)
	}
}

// Run performs the hub's periodic work until ctx ends or the hub shuts
// down: heartbeats, connection lifetimes, QoS redelivery and ack retries.
func (h *Hub) Run(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastBeat time.Time
	sweeps := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-h.closed:
			return nil
		case <-h.acks.wake():
			h.retryAcks(ctx)
		case now := <-tick.C:
			beat := h.cfg.Heartbeat > 0 && now.Sub(lastBeat) >= h.cfg.Heartbeat
			if beat {
				lastBeat = now
			}
			sweeps++
			h.sweep(now, beat, sweeps)
			h.retryAcks(ctx)
		}
	}
}

// peerCheckTicks spreads the check for browsers that went away over this
// many sweeps (seconds): it costs a system call per socket.
const peerCheckTicks = 5

// sweep closes expired connections and those whose browser went away,
// sends heartbeats when beat is set and redelivers unacknowledged QoS
// messages.
func (h *Hub) sweep(now time.Time, beat bool, tick int) {
	var redeliver []*Conn
	w := h.newWaker()
	h.conns.eachShard(func(shard int, c *Conn) {
		if c.expires != 0 && now.UnixMilli() > c.expires {
			c.close(c.expiry)
			return
		}
		if beat {
			w.offer(c, heartbeatFrame, false)
		}
		// Each hijacked socket is looked at every peerCheckTicks ticks.
		if shard%peerCheckTicks == tick%peerCheckTicks {
			if nc := c.socket(); nc != nil && peerClosed(nc) {
				c.close(ReasonClientGone)
				return
			}
		}
		if h.cfg.RedeliverAfter > 0 && c.canAck && c.hasOverdue(now, h.cfg.RedeliverAfter) {
			redeliver = append(redeliver, c)
		}
	})
	w.flush()
	for _, c := range redeliver {
		go h.redeliverOverdue(context.Background(), c, now)
	}
}

// Shutdown refuses new connections, closes every connection (the clients
// reconnect elsewhere) and waits for their streams to end or ctx. It is
// idempotent.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.closeMu.Lock()
	if !h.closing.Swap(true) {
		close(h.closed)
	}
	h.closeMu.Unlock()
	h.conns.each(func(c *Conn) { c.close(ReasonShutdown) })
	done := make(chan struct{})
	go func() {
		h.streams.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("hub: shutdown: %w", ctx.Err())
	}
	if h.pool != nil {
		h.pool.stop()
	}
	return nil
}

// Drain refuses new connections and closes the existing ones spread evenly
// over window, each after a retry: hint with a random delay, so clients
// reconnect to other nodes without a storm. It returns when all are closed
// or ctx ends.
func (h *Hub) Drain(ctx context.Context, window time.Duration) error {
	h.draining.Store(true)
	return h.Shed(ctx, window)
}

// Shed closes the existing connections like Drain, each after a retry:
// hint, spread over window, but keeps accepting new ones: a node that lost
// a dependency (Redis) hands its browsers to the nodes that have it.
func (h *Hub) Shed(ctx context.Context, window time.Duration) error {
	var conns []*Conn
	h.conns.each(func(c *Conn) { conns = append(conns, c) })
	if len(conns) == 0 {
		return nil
	}
	step := window / time.Duration(len(conns))
	t := time.NewTimer(0)
	defer t.Stop()
	for i, c := range conns {
		select {
		case <-ctx.Done():
			return fmt.Errorf("hub: shed: %w", ctx.Err())
		case <-t.C:
		}
		c.enqueue(encodeRetry(int64(jitter(h.cfg.ReconnectTime)/time.Millisecond)), false)
		c.close(ReasonShutdown)
		if i < len(conns)-1 {
			t.Reset(step)
		}
	}
	return nil
}

// Mux routes requests from other nodes to the hub of their app. Its zero
// value is empty and ready.
type Mux struct {
	mu   sync.RWMutex
	hubs map[string]*Hub
}

// Add registers h under its app name.
func (m *Mux) Add(h *Hub) {
	m.mu.Lock()
	if m.hubs == nil {
		m.hubs = make(map[string]*Hub)
	}
	m.hubs[h.cfg.App] = h
	m.mu.Unlock()
}

func (m *Mux) hub(app string) *Hub {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.hubs[app]
}

// HandleDeliver implements Handler.
func (m *Mux) HandleDeliver(ctx context.Context, app string, t Target, ev Event) int {
	if h := m.hub(app); h != nil {
		return h.HandleDeliver(ctx, app, t, ev)
	}
	return 0
}

// HandleDeliverQuick implements QuickDeliverer for the hub of app; an
// unknown app is served at once, with 0.
func (m *Mux) HandleDeliverQuick(app string, t Target, ev Event) (int, bool) {
	if h := m.hub(app); h != nil {
		return h.HandleDeliverQuick(app, t, ev)
	}
	return 0, true
}

// HandleSurvey implements Handler.
func (m *Mux) HandleSurvey(ctx context.Context, app string, req Request) (Reply, error) {
	if h := m.hub(app); h != nil {
		return h.HandleSurvey(ctx, app, req)
	}
	return Reply{}, fmt.Errorf("hub: unknown app %q", app)
}

var (
	_ Handler = (*Hub)(nil)
	_ Handler = (*Mux)(nil)
)
