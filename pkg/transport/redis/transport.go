package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/pushd/pushd/internal/redisurl"
	"github.com/pushd/pushd/pkg/hub"
)

// Interface guards.
var (
	_ hub.Transport = (*Transport)(nil)
	_ hub.Interest  = (*Transport)(nil)
)

// Transport is a hub.Transport over Redis pub/sub with routing by key. Create
// it with New, start Run, report held keys with SetInterest, and Close it.
type Transport struct {
	cfg        Config
	client     goredis.UniversalClient
	ownsClient bool
	// pub publishes single requests: the client's autopipeliner, which
	// writes the PUBLISH commands of concurrent calls as one pipeline (or
	// the client, when it has none).
	pub publisher
	log zerolog.Logger

	// idPrefix starts every request id of this instance ("<random hex>.").
	idPrefix     string
	seq          atomic.Uint64
	replyChannel string
	probeChannel string

	interest interestSet
	dedup    dedupCache

	callsMu sync.Mutex
	calls   map[string]*call

	// ready is true while a session is established (its first probe came
	// back); everReady remembers that one was, so later ones are
	// resubscriptions.
	ready     atomic.Bool
	everReady atomic.Bool

	mu       sync.Mutex // guards running, runDone
	running  bool
	runDone  chan struct{}
	closed   chan struct{}
	closeErr error
	once     sync.Once

	stats counters
}

// publisher publishes one message (a go-redis client or autopipeliner).
type publisher interface {
	Publish(ctx context.Context, channel string, message any) *goredis.IntCmd
}

// counters are the Transport's statistics, reported by Stats.
type counters struct {
	subscribeCommands   atomic.Uint64
	unsubscribeCommands atomic.Uint64
	subscribed          atomic.Int64
	resubscribes        atomic.Uint64
	probeFailures       atomic.Uint64
	droppedRequests     atomic.Uint64
}

// Stats are counters of a Transport since New.
type Stats struct {
	// SubscribeCommands and UnsubscribeCommands count the commands sent to
	// Redis for routing keys (each carries up to Config.BatchSize channels).
	SubscribeCommands   uint64
	UnsubscribeCommands uint64
	// Subscribed is the number of routing key channels subscribed now.
	Subscribed int
	// Resubscribes counts subscriptions re-established after a loss.
	Resubscribes uint64
	// ProbeFailures counts probes that did not come back.
	ProbeFailures uint64
	// DroppedRequests counts requests dropped because the queue was full.
	DroppedRequests uint64
}

// New validates cfg and returns a Transport. It does not contact Redis: Run
// subscribes, Ready checks.
func New(cfg Config) (*Transport, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	t := &Transport{
		cfg:          cfg,
		client:       cfg.Client,
		log:          cfg.Logger.With().Str("component", "transport.redis").Logger(),
		replyChannel: cfg.Prefix + ":reply:" + cfg.NodeID,
		probeChannel: cfg.Prefix + ":probe:" + cfg.NodeID,
		calls:        make(map[string]*call),
		closed:       make(chan struct{}),
	}
	if t.client == nil {
		client, err := redisurl.NewClient(cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("%w: URL: %w", ErrConfig, err)
		}
		t.client = client
		t.ownsClient = true
	}
	t.pub = t.client
	if ap, err := t.client.AutoPipeline(); err == nil {
		t.pub = ap
	} else {
		t.log.Warn().Err(err).Msg("no autopipelining: every PUBLISH is its own round trip")
	}
	var random [6]byte
	if _, err := rand.Read(random[:]); err != nil {
		return nil, fmt.Errorf("redis: random instance id: %w", err)
	}
	t.idPrefix = hex.EncodeToString(random[:]) + "."
	t.interest.init()
	t.dedup.init(max(cfg.Timeout, 10*time.Second))
	return t, nil
}

// channel names the pub/sub channel of a routing key of app.
func (t *Transport) channel(app, key string) string {
	return t.cfg.Prefix + ":" + app + ":" + key
}

// SetInterest records that this node starts (on) or stops holding routing
// key of app. It never blocks: changes are collected and sent to Redis in
// batches by Run; a key switched on and off within one batch costs nothing.
// Calls made before Run are applied when Run subscribes.
func (t *Transport) SetInterest(app, key string, on bool) {
	if app == "" || key == "" {
		return
	}
	n := t.interest.set(t.channel(app, key), on)
	if n == 1 || n%t.cfg.BatchSize == 0 {
		select {
		case t.interest.wake <- struct{}{}:
		default:
		}
	}
}

// AwaitInterest waits until Redis has confirmed this node's subscription
// to the channel of each of keys switched on with SetInterest, so that
// messages other nodes publish for them from then on reach this node; or
// until ctx ends, returning its error. Keys not held return at once. While
// the subscription is not established it returns ErrNotReady without
// waiting: nothing reaches this node then.
func (t *Transport) AwaitInterest(ctx context.Context, app string, keys []string) error {
	if !t.ready.Load() {
		return ErrNotReady
	}
	for _, key := range keys {
		w := t.interest.await(t.channel(app, key))
		if w == nil {
			continue
		}
		select {
		case <-w:
		case <-ctx.Done():
			return fmt.Errorf("redis: await subscription of %s: %w", key, ctx.Err())
		}
	}
	return nil
}

// Deliver publishes ev to the channel of every routing key of target and
// returns the sum of the counts the nodes holding them answered. It waits
// for exactly as many answers as Redis reports subscribers, until ctx's
// deadline (Config.Timeout when ctx has none). A node reached on several
// channels serves the request once. This node's own subscriptions are
// answered with 0 (the hub serves local connections itself).
//
// A target with more than Config.MaxRoutedKeys routing keys is published
// once to the app's KeyAll channel instead. Events sent to one routing key
// are written on the receiving node in the order Redis delivered them.
//
// At-most-once between nodes: a message lost in Redis is not retried. It
// returns ErrNotReady without sending while the subscription is down.
func (t *Transport) Deliver(ctx context.Context, app string, target hub.Target, ev hub.Event) (int, error) {
	if target.IsZero() {
		return 0, nil
	}
	env := envelope{Kind: kindDeliver, App: app, Target: target, Event: &ev}
	c, err := t.roundTrip(ctx, app, hub.RoutingKeys(target), &env)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count, nil
}

// Survey publishes req to the app's KeyAll channel (req.Target zero) or to
// the channels of the target's routing keys, and returns the replies of the
// other nodes, each with its NodeID, that arrived by ctx's deadline
// (Config.Timeout when ctx has none).
func (t *Transport) Survey(ctx context.Context, app string, req hub.Request) ([]hub.Reply, error) {
	keys := []string{hub.KeyAll}
	if !req.Target.IsZero() {
		keys = hub.RoutingKeys(req.Target)
	}
	env := envelope{Kind: kindSurvey, App: app, Target: req.Target, Request: &req}
	c, err := t.roundTrip(ctx, app, keys, &env)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.replies, nil
}

// roundTrip publishes env to the channels of keys and collects the replies.
func (t *Transport) roundTrip(ctx context.Context, app string, keys []string, env *envelope) (*call, error) {
	select {
	case <-t.closed:
		return nil, ErrClosed
	default:
	}
	if !t.ready.Load() {
		return nil, ErrNotReady
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.cfg.Timeout)
		defer cancel()
	}
	if t.cfg.MaxRoutedKeys >= 0 && len(keys) > t.cfg.MaxRoutedKeys {
		keys = []string{hub.KeyAll}
	}
	deadline, _ := ctx.Deadline()
	env.ID = t.idPrefix + strconv.FormatUint(t.seq.Add(1), 36)
	env.Origin = t.cfg.NodeID
	env.ReplyTo = t.replyChannel
	env.Multi = len(keys) > 1
	env.TimeoutMS = max(1, time.Until(deadline).Milliseconds())
	payload, err := env.encode(t.cfg.LegacyWire)
	if err != nil {
		return nil, err
	}

	c := &call{notify: make(chan struct{}, 1)}
	t.callsMu.Lock()
	t.calls[env.ID] = c
	t.callsMu.Unlock()
	defer func() {
		t.callsMu.Lock()
		delete(t.calls, env.ID)
		t.callsMu.Unlock()
	}()

	expected, err := t.publish(ctx, app, keys, payload)
	if err != nil {
		if expected == 0 {
			return nil, fmt.Errorf("redis: publish: %w", err)
		}
		t.log.Warn().Err(err).Str("app", app).Msg("publish partly failed")
	}
	c.wait(ctx, expected, t.closed)
	return c, nil
}

// publish sends payload to the channel of each key and returns the number
// of subscribers Redis reported in total.
func (t *Transport) publish(ctx context.Context, app string, keys []string, payload []byte) (int, error) {
	if len(keys) == 1 {
		n, err := t.pub.Publish(ctx, t.channel(app, keys[0]), payload).Result()
		return int(n), err
	}
	cmds := make([]*goredis.IntCmd, len(keys))
	_, err := t.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, key := range keys {
			cmds[i] = p.Publish(ctx, t.channel(app, key), payload)
		}
		return nil
	})
	total := 0
	for _, cmd := range cmds {
		if cmd.Err() == nil {
			total += int(cmd.Val())
		}
	}
	return total, err
}

// Ready reports whether this node can take part in the cluster: Redis
// answers PING and the node's subscription is established. For /readyz.
func (t *Transport) Ready(ctx context.Context) error {
	select {
	case <-t.closed:
		return ErrClosed
	default:
	}
	if err := t.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: ping: %w", err)
	}
	if !t.ready.Load() {
		return ErrNotReady
	}
	return nil
}

// Stats returns the Transport's counters.
func (t *Transport) Stats() Stats {
	return Stats{
		SubscribeCommands:   t.stats.subscribeCommands.Load(),
		UnsubscribeCommands: t.stats.unsubscribeCommands.Load(),
		Subscribed:          int(t.stats.subscribed.Load()),
		Resubscribes:        t.stats.resubscribes.Load(),
		ProbeFailures:       t.stats.probeFailures.Load(),
		DroppedRequests:     t.stats.droppedRequests.Load(),
	}
}

// Close stops Run (and waits for it to return, so the node's subscription is
// gone from Redis when Close returns: other nodes stop counting it), ends
// waiting Deliver and Survey calls with what arrived, and closes the client
// if the Transport created it from Config.URL. It is idempotent. Handlers
// must honour their ctx, or Close waits for them.
func (t *Transport) Close() error {
	t.once.Do(func() {
		t.mu.Lock()
		close(t.closed)
		running, done := t.running, t.runDone
		t.mu.Unlock()
		if running {
			<-done
		}
		if t.ownsClient {
			t.closeErr = t.client.Close()
		}
	})
	return t.closeErr
}

// call collects the replies to one request.
type call struct {
	mu       sync.Mutex
	received int
	count    int
	replies  []hub.Reply
	notify   chan struct{}
}

// add records one reply. Replies from this node itself and to repeated
// arrivals only count as received.
func (c *call) add(r *replyEnvelope, counted bool) {
	c.mu.Lock()
	c.received++
	if counted && !r.Dup {
		c.count += r.Count
		c.replies = append(c.replies, r.Reply)
	}
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// wait returns when expected replies arrived, ctx ends or closed is closed.
func (c *call) wait(ctx context.Context, expected int, closed <-chan struct{}) {
	for {
		c.mu.Lock()
		done := c.received >= expected
		c.mu.Unlock()
		if done {
			return
		}
		select {
		case <-c.notify:
		case <-ctx.Done():
			return
		case <-closed:
			return
		}
	}
}

// interestSet is the set of channels the hub wants subscribed, the
// channels changed since the last flush, and the channels Redis confirmed
// subscribed on the current session, with whoever waits for one.
type interestSet struct {
	mu      sync.Mutex
	want    map[string]struct{}
	dirty   map[string]struct{}
	live    map[string]struct{}
	waiters map[string][]chan struct{}
	wake    chan struct{}
}

func (s *interestSet) init() {
	s.want = make(map[string]struct{})
	s.dirty = make(map[string]struct{})
	s.live = make(map[string]struct{})
	s.waiters = make(map[string][]chan struct{})
	s.wake = make(chan struct{}, 1)
}

// set records a change and returns the number of pending changes. A
// channel no longer wanted releases its waiters: there is nothing to wait
// for.
func (s *interestSet) set(ch string, on bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.want[ch] = struct{}{}
	} else {
		delete(s.want, ch)
		s.releaseLocked(ch)
	}
	s.dirty[ch] = struct{}{}
	return len(s.dirty)
}

// confirmed records Redis's confirmation that ch was subscribed (on) or
// unsubscribed on the current session.
func (s *interestSet) confirmed(ch string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !on {
		delete(s.live, ch)
		return
	}
	s.live[ch] = struct{}{}
	s.releaseLocked(ch)
}

// lost forgets every confirmation: the session carrying them ended.
func (s *interestSet) lost() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.live)
}

func (s *interestSet) releaseLocked(ch string) {
	for _, w := range s.waiters[ch] {
		close(w)
	}
	delete(s.waiters, ch)
}

// await returns a channel closed once ch is confirmed subscribed (or no
// longer wanted), or nil when it already is.
func (s *interestSet) await(ch string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, live := s.live[ch]
	_, want := s.want[ch]
	if live || !want {
		return nil
	}
	w := make(chan struct{})
	s.waiters[ch] = append(s.waiters[ch], w)
	return w
}

// pending returns the number of changes not flushed yet.
func (s *interestSet) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.dirty)
}

// snapshot returns every wanted channel and forgets pending changes (a new
// subscription starts from the whole set).
func (s *interestSet) snapshot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	all := make([]string, 0, len(s.want))
	for ch := range s.want {
		all = append(all, ch)
	}
	clear(s.dirty)
	return all
}

// diff returns the channels to subscribe and unsubscribe to bring applied
// to the wanted set, and forgets the pending changes.
func (s *interestSet) diff(applied map[string]struct{}) (sub, unsub []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.dirty {
		_, want := s.want[ch]
		_, have := applied[ch]
		switch {
		case want && !have:
			sub = append(sub, ch)
		case !want && have:
			unsub = append(unsub, ch)
		}
	}
	clear(s.dirty)
	return sub, unsub
}

// dedupCache remembers the ids of requests that may arrive more than once,
// for between one and two ttl periods (two generations of maps).
type dedupCache struct {
	mu      sync.Mutex
	ttl     time.Duration
	rotated time.Time
	cur     map[string]struct{}
	prev    map[string]struct{}
}

func (d *dedupCache) init(ttl time.Duration) {
	d.ttl = ttl
	d.rotated = time.Now()
	d.cur = make(map[string]struct{})
	d.prev = make(map[string]struct{})
}

// seen reports whether id was seen before, and remembers it.
func (d *dedupCache) seen(id string, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if now.Sub(d.rotated) > d.ttl {
		d.prev, d.cur = d.cur, make(map[string]struct{})
		d.rotated = now
	}
	if _, ok := d.cur[id]; ok {
		return true
	}
	if _, ok := d.prev[id]; ok {
		return true
	}
	d.cur[id] = struct{}{}
	return false
}
