package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
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
	// the client, when it has none, and always on a Redis Cluster).
	pub publisher
	// sharded is set on a Redis Cluster: every channel is a shard channel
	// (SSUBSCRIBE, SPUBLISH).
	sharded bool
	log     zerolog.Logger

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

// publisher publishes one message (a go-redis client, autopipeliner or
// pipeline).
type publisher interface {
	Publish(ctx context.Context, channel string, message any) *goredis.IntCmd
	SPublish(ctx context.Context, channel string, message any) *goredis.IntCmd
}

// publishOn publishes message to channel with p: PUBLISH, or SPUBLISH on a
// Redis Cluster, where it reaches the subscribers on the master owning the
// channel's slot and counts exactly them.
func (t *Transport) publishOn(ctx context.Context, p publisher, channel string, message any) *goredis.IntCmd {
	if t.sharded {
		return p.SPublish(ctx, channel, message)
	}
	return p.Publish(ctx, channel, message)
}

// counters are the Transport's statistics, reported by Stats.
type counters struct {
	subscribeCommands   atomic.Uint64
	unsubscribeCommands atomic.Uint64
	subscribed          atomic.Int64
	resubscribes        atomic.Uint64
	probeFailures       atomic.Uint64
	probes              atomic.Uint64
	droppedRequests     atomic.Uint64
	shardRepairs        atomic.Uint64
	shardMoves          atomic.Uint64
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
	// Probes counts probes that came back on every connection of the
	// subscription (one connection, or one per Redis Cluster master).
	Probes uint64
	// DroppedRequests counts requests dropped because the queue was full.
	DroppedRequests uint64
	// ShardRepairs counts, on a Redis Cluster, the repairs of single
	// connections of a subscription that kept the session (a master
	// failed, a slot moved, a probe did not come back on one connection),
	// each completed when Redis confirmed every channel it moved; each is
	// also counted in Resubscribes. ShardMoves counts the channels those
	// repairs subscribed again.
	ShardRepairs uint64
	ShardMoves   uint64
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
		client, err := redisurl.NewUniversalClient(cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("%w: URL: %w", ErrConfig, err)
		}
		t.client = client
		t.ownsClient = true
	}
	_, t.sharded = t.client.(*goredis.ClusterClient)
	if t.sharded && strings.ContainsAny(cfg.NodeID, "{}") {
		// They would make the hash tag of the node's probe channels,
		// which must land on every master.
		if t.ownsClient {
			_ = t.client.Close()
		}
		return nil, fmt.Errorf("%w: NodeID %q: on a Redis Cluster it may not contain { or }", ErrConfig, cfg.NodeID)
	}
	t.pub = t.client
	// No autopipeliner on a Redis Cluster: its pipelines wait for every
	// master they span, so the commands for a master that is down (until
	// its replica is promoted) held up this node's sends to the healthy
	// ones for seconds, past their deadline. The ClusterClient sends each
	// SPUBLISH on a connection to its own master.
	if !t.sharded {
		if ap, err := fullDuplexPipeliner(t.client); err == nil {
			t.pub = ap
		} else {
			t.log.Warn().Err(err).Msg("no autopipelining: every PUBLISH is its own round trip")
		}
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

// fullDuplexPipeliner is client's autopipeliner in full-duplex mode: the
// PUBLISH commands of concurrent senders are written as they come, on one
// connection, while the answers to earlier ones are read. The half-duplex
// default writes one pipeline per round trip, so a send that arrives
// while one is in flight waits for its answer first — up to a round trip
// more per send (1 ms one way to Redis: publish-to-delivery p50 4.3 against
// 2.6 ms) — and on loopback it cost more CPU in all: the sender more, Redis
// less (docs/performance.md). A client of another kind (a ring) gets its
// own default.
func fullDuplexPipeliner(client goredis.UniversalClient) (*goredis.AutoPipeliner, error) {
	c, ok := client.(*goredis.Client)
	if !ok {
		return client.AutoPipeline()
	}
	opts := goredis.DefaultBlockingAutoPipelineOptions()
	opts.FullDuplex = true
	return c.AutoPipelineWithOptions(opts)
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

// Ready reports whether this node can take part in the cluster: Redis
// answers PING and the node's subscription is established. For /readyz.
func (t *Transport) Ready(ctx context.Context) error {
	if t.isClosed() {
		return ErrClosed
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
		Probes:              t.stats.probes.Load(),
		DroppedRequests:     t.stats.droppedRequests.Load(),
		ShardRepairs:        t.stats.shardRepairs.Load(),
		ShardMoves:          t.stats.shardMoves.Load(),
	}
}

// isClosed reports whether Close was called.
func (t *Transport) isClosed() bool {
	select {
	case <-t.closed:
		return true
	default:
		return false
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

// ownConnIdle is how long an ownConn keeps a connection unused; after
// that the next command takes one from the pool, which checks it.
const ownConnIdle = time.Second

// ownConn is a connection of the client's pool held by one user (the
// replier): commands on it skip the pool's checkout, which costs a
// health-check syscall each. On a client that cannot hold one (a Redis
// Cluster, a ring) the client itself is used. A connection that failed,
// or was not used for ownConnIdle, is let go; the next command takes a
// new one.
type ownConn struct {
	client goredis.UniversalClient
	conn   *goredis.Conn
	used   time.Time
	closed bool
}

// publisher returns what to publish with at now.
func (o *ownConn) publisher(now time.Time) publisher {
	if o.conn != nil && now.Sub(o.used) > ownConnIdle {
		o.release()
	}
	o.used = now
	if o.conn != nil {
		return o.conn
	}
	c, ok := o.client.(*goredis.Client)
	if !ok || o.closed {
		return o.client
	}
	o.conn = c.Conn()
	return o.conn
}

// done takes the result of the command sent with publisher: an error
// other than Redis's own answer lets a held connection go, and then
// done reports true.
func (o *ownConn) done(err error) bool {
	if err == nil || o.conn == nil {
		return false
	}
	var rerr goredis.Error
	if errors.As(err, &rerr) {
		return false
	}
	o.release()
	return true
}

// release gives the connection back to the client's pool.
func (o *ownConn) release() {
	_ = o.conn.Close()
	o.conn = nil
}

// close releases the connection; later commands use the client.
func (o *ownConn) close() {
	o.closed = true
	if o.conn != nil {
		o.release()
	}
}
