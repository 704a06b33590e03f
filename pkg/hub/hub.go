package hub

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"sort"
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
	pool      *writerPool

	hooksMu          sync.RWMutex
	onConnect        []func(*Conn)
	onDisconnect     []func(*Conn, DisconnectReason)
	onListenerChange []func(ListenerChange)

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
	h.conns.init()
	for _, ix := range []*index{&h.byUser, &h.byToken, &h.byTenant, &h.byChannel, &h.byClient} {
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

// newConnID returns 128 random bits, URL-safe.
func newConnID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Connect registers a new connection and queues its connect-finish frame.
// The caller must then either stream it with ServeStream or close it with
// Disconnect; until then events for it wait in its queue.
func (h *Hub) Connect(ctx context.Context, req ConnectRequest) (*Conn, error) {
	if h.closing.Load() || h.draining.Load() {
		return nil, ErrClosed
	}
	now := time.Now()
	c := &Conn{
		hub:       h,
		id:        newConnID(),
		user:      req.User,
		info:      req.Info,
		channel:   req.Channel,
		created:   now,
		canAck:    req.CanAck,
		lastEvent: req.LastEventID,
		session:   req.SessionDuration,
		listeners: make(map[string]struct{}, len(req.Listeners)),
	}
	for _, l := range req.Listeners {
		if l != "" {
			c.listeners[l] = struct{}{}
		}
	}
	if life := h.lifetime(req.Keepalive); life > 0 {
		c.expires = now.Add(life)
	}
	if req.Info.ClientID != "" {
		c.capKey = req.User.ID + "\x00" + req.Info.ClientID + "\x00" + req.Info.RequestDomain + "\x00" + req.User.TenantID
	}
	c.queue = append(c.queue, encodeConnectFinish(c, h))
	h.register(c)
	h.awaitRoutes(ctx, c)
	h.enforceClientCap(ctx, c)
	return c, nil
}

// awaitRoutes waits, bounded by RouteTimeout, until the transport routes
// c's keys to this node.
func (h *Hub) awaitRoutes(ctx context.Context, c *Conn) {
	w, ok := h.interest.(InterestWaiter)
	if !ok {
		return
	}
	keys := []string{KeyConnPrefix + c.id}
	h.indexKeys(c, func(_ *index, key, prefix string) {
		if prefix != "" {
			keys = append(keys, prefix+key)
		}
	})
	ctx, cancel := context.WithTimeout(ctx, h.cfg.RouteTimeout)
	defer cancel()
	if err := w.AwaitInterest(ctx, h.cfg.App, keys); err != nil {
		h.log.Debug().Err(err).Str("conn", c.id).Msg("routes to the connection not confirmed, serving it anyway")
	}
}

// lifetime resolves a connection's lifetime from the client's wish and the
// app's override; 0 means unlimited.
func (h *Hub) lifetime(client time.Duration) time.Duration {
	switch {
	case h.cfg.Keepalive < 0:
		return 0
	case h.cfg.Keepalive > 0:
		return h.cfg.Keepalive
	case client == 0:
		return defaultClientKeepalive
	case client < 0:
		return 0
	}
	return client
}

// indexKeys lists the indices and keys c is registered under, with the
// routing key prefix of each.
func (h *Hub) indexKeys(c *Conn, fn func(ix *index, key, prefix string)) {
	if c.user.ID != "" {
		fn(&h.byUser, c.user.ID, KeyUserPrefix)
	}
	if c.user.AccessToken != "" {
		fn(&h.byToken, c.user.AccessToken, KeyTokenPrefix)
	}
	if c.user.TenantID != "" {
		fn(&h.byTenant, c.user.TenantID, KeyTenantPrefix)
	}
	if c.channel != "" {
		fn(&h.byChannel, c.channel, KeyChanPrefix)
	}
	if c.capKey != "" {
		fn(&h.byClient, c.capKey, "")
	}
}

func (h *Hub) register(c *Conn) {
	h.conns.add(c)
	h.indexKeys(c, func(ix *index, key, prefix string) {
		if ix.add(key, c) && prefix != "" && h.interest != nil {
			h.interest.SetInterest(h.cfg.App, prefix+key, true)
		}
	})
	if h.interest != nil {
		h.interest.SetInterest(h.cfg.App, KeyConnPrefix+c.id, true)
	}
}

// unregister removes an ended connection and runs the disconnect hooks.
func (h *Hub) unregister(c *Conn) {
	if h.conns.get(c.id) != c {
		return
	}
	h.conns.remove(c)
	h.indexKeys(c, func(ix *index, key, prefix string) {
		if ix.remove(key, c) && prefix != "" && h.interest != nil {
			h.interest.SetInterest(h.cfg.App, prefix+key, false)
		}
	})
	if h.interest != nil {
		h.interest.SetInterest(h.cfg.App, KeyConnPrefix+c.id, false)
	}
	reason := c.Reason()
	h.log.Debug().Str("conn", c.id).Str("user", c.user.ID).Str("reason", reason.String()).Msg("disconnected")
	h.hooksMu.RLock()
	hooks := h.onDisconnect
	h.hooksMu.RUnlock()
	for _, fn := range hooks {
		fn(c, reason)
	}
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
	h.deliverPendingDuration(c)
	if h.cfg.Repository != nil {
		go h.replay(context.Background(), c)
	}
}

// enforceClientCap closes the oldest connections of c's browser profile
// beyond the cap, here at once and on other nodes asynchronously.
func (h *Hub) enforceClientCap(ctx context.Context, c *Conn) {
	limit := h.cfg.MaxConnectionsPerClient
	if limit < 0 || c.capKey == "" {
		return
	}
	group := h.byClient.list(c.capKey)
	if len(group) > limit {
		sort.Slice(group, func(i, j int) bool { return olderThan(group[i], group[j]) })
		for _, old := range group[:len(group)-limit] {
			if old != c {
				old.close(ReasonClientLimit)
			}
		}
	}
	if h.cfg.Transport != nil && c.user.ID != "" {
		go h.enforceClientCapCluster(c)
	}
}

func olderThan(a, b *Conn) bool {
	if !a.created.Equal(b.created) {
		return a.created.Before(b.created)
	}
	return a.id < b.id
}

// enforceClientCapCluster applies the cap across nodes: it lists the
// profile's connections everywhere and closes the oldest beyond the cap.
func (h *Hub) enforceClientCapCluster(c *Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.SurveyTimeout)
	defer cancel()
	all, err := h.Connections(ctx, ConnectionQuery{UserID: c.user.ID, ClientID: c.info.ClientID})
	if err != nil {
		return
	}
	var group []ConnectionInfo
	for _, ci := range all {
		if ci.RequestDomain == c.info.RequestDomain && ci.AccessTenantID == c.user.TenantID {
			group = append(group, ci)
		}
	}
	limit := h.cfg.MaxConnectionsPerClient
	if len(group) <= limit {
		return
	}
	sort.Slice(group, func(i, j int) bool {
		if group[i].CreateTime != group[j].CreateTime {
			return group[i].CreateTime < group[j].CreateTime
		}
		return group[i].ID < group[j].ID
	})
	var victims []string
	for _, ci := range group[:len(group)-limit] {
		if ci.ID != c.id {
			victims = append(victims, ci.ID)
		}
	}
	if len(victims) > 0 {
		_, _ = h.Disconnect(ctx, Target{ConnectionIDs: victims}, ReasonClientLimit)
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
		if !c.expires.IsZero() && now.After(c.expires) {
			c.close(ReasonExpired)
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
			return fmt.Errorf("hub: drain: %w", ctx.Err())
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
