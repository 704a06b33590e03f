package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"
)

// subscription is the subscribing side of one session: a single pub/sub
// connection (standalone Redis, Sentinel), or on a Redis Cluster one
// sharded pub/sub connection per master that owns a slot of the node's
// channels.
type subscription interface {
	// subscribe subscribes channels (at most Config.BatchSize) and returns
	// how many commands it sent.
	subscribe(ctx context.Context, channels []string) (commands int, err error)
	// unsubscribe unsubscribes channels (at most Config.BatchSize) and
	// returns how many commands it sent.
	unsubscribe(ctx context.Context, channels []string) (commands int, err error)
	// start subscribes the node's reply and probe channels, after every
	// routing key subscribed so far, and starts reading.
	start(ctx context.Context) error
	// probe publishes token to every probe channel and returns how many
	// echoes come back when every connection receives, and whether it
	// reached every connection (false while a connection's probe channel
	// is not confirmed by Redis yet).
	probe(ctx context.Context, token string) (echoes int, complete bool, err error)
	// lost is closed when a connection's reading ended.
	lost() <-chan struct{}
	// stop unsubscribes everything and waits for Redis to confirm when
	// clean (and reading started), closes the connections and waits for
	// their readers.
	stop(clean bool)
}

// reader is where a subscription's readers hand what they receive.
type reader struct {
	echo            chan<- string
	probeSubscribed chan<- struct{}
	jobs            *pool
}

// newSubscription returns the subscription of a session: sharded pub/sub
// on a cluster client, classic pub/sub otherwise.
func (t *Transport) newSubscription(ctx context.Context, rd reader) subscription {
	if cc, ok := t.client.(*goredis.ClusterClient); ok {
		return &shardedSub{t: t, cc: cc, rd: rd, shards: make(map[string]*shard), done: make(chan struct{})}
	}
	return &plainSub{t: t, ps: t.client.Subscribe(ctx), rd: rd, readerDone: make(chan struct{}), drained: make(chan struct{})}
}

// plainSub is the one pub/sub connection of a standalone or Sentinel
// client. The routing keys go first and the probe channel last: on one
// connection Redis handles commands in order, so the first probe coming
// back proves every key is subscribed.
type plainSub struct {
	t          *Transport
	ps         *goredis.PubSub
	rd         reader
	started    bool
	readerDone chan struct{}
	drained    chan struct{}
}

func (s *plainSub) subscribe(ctx context.Context, channels []string) (int, error) {
	return 1, s.ps.Subscribe(ctx, channels...)
}

func (s *plainSub) unsubscribe(ctx context.Context, channels []string) (int, error) {
	return 1, s.ps.Unsubscribe(ctx, channels...)
}

func (s *plainSub) start(ctx context.Context) error {
	if err := s.ps.Subscribe(ctx, s.t.replyChannel, s.t.probeChannel); err != nil {
		return fmt.Errorf("redis: subscribe: %w", err)
	}
	s.started = true
	go func() {
		defer close(s.readerDone)
		s.t.read(s.ps, readConn{probe: s.t.probeChannel, drained: s.drained}, s.rd)
	}()
	return nil
}

func (s *plainSub) probe(ctx context.Context, token string) (int, bool, error) {
	return 1, true, s.t.client.Publish(ctx, s.t.probeChannel, token).Err()
}

func (s *plainSub) lost() <-chan struct{} { return s.readerDone }

func (s *plainSub) stop(clean bool) {
	if s.started && clean {
		s.t.drain(func(ctx context.Context) error { return s.ps.Unsubscribe(ctx) }, s.drained)
	}
	_ = s.ps.Close()
	if s.started {
		<-s.readerDone
	}
}

// shardedSub is a session on a Redis Cluster: sharded pub/sub, one
// connection per master owning a slot of the node's channels (go-redis
// connects a cluster PubSub to the owner of its first channel's slot).
// Every connection has a probe channel of its own, a name whose slot that
// master owns, subscribed after its first routing keys, so the first
// probe coming back on every connection proves every key is subscribed.
// SSUBSCRIBE takes channels of one slot only, so each channel is its own
// command (routing keys rarely share a slot anyway). A connection that
// fails, or that Redis unsubscribes from a channel the node did not give
// up (its slot moved to another master), ends the session: the next one
// asks the cluster where the slots are now.
type shardedSub struct {
	t       *Transport
	cc      *goredis.ClusterClient
	rd      reader
	started bool
	shards  map[string]*shard // by master address
	done    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

// shard is the sharded pub/sub connection to one master.
type shard struct {
	ps        *goredis.PubSub
	probe     string
	probed    bool        // probe subscribed
	confirmed atomic.Bool // probe subscription confirmed by Redis
	drained   chan struct{}
	// leaving counts the unsubscriptions the node asked for and Redis has
	// not confirmed yet, per channel; draining is set by stop.
	mu       sync.Mutex
	leaving  map[string]int
	draining bool
}

// maxProbeNames bounds the search for a probe channel name on a master.
const maxProbeNames = 1 << 16

// shardOf returns the connection to the master owning channel's slot,
// making it when there is none yet and create is set (else nil).
func (s *shardedSub) shardOf(ctx context.Context, channel string, create bool) (*shard, error) {
	master, err := s.cc.MasterForKey(ctx, channel)
	if err != nil {
		return nil, fmt.Errorf("redis: master of %s: %w", channel, err)
	}
	addr := master.Options().Addr
	if sh := s.shards[addr]; sh != nil || !create {
		return sh, nil
	}
	sh := &shard{ps: s.cc.SSubscribe(ctx), drained: make(chan struct{}), leaving: make(map[string]int)}
	for i := 0; i < maxProbeNames && sh.probe == ""; i++ {
		name := s.t.probeChannel + ":{" + strconv.Itoa(i) + "}"
		m, err := s.cc.MasterForKey(ctx, name)
		if err != nil {
			_ = sh.ps.Close()
			return nil, fmt.Errorf("redis: master of %s: %w", name, err)
		}
		if m.Options().Addr == addr {
			sh.probe = name
		}
	}
	if sh.probe == "" {
		_ = sh.ps.Close()
		return nil, fmt.Errorf("redis: no probe channel name on master %s", addr)
	}
	s.shards[addr] = sh
	return sh, nil
}

// read starts the reader of sh.
func (s *shardedSub) read(sh *shard) {
	s.wg.Go(func() {
		defer s.once.Do(func() { close(s.done) })
		s.t.read(sh.ps, readConn{probe: sh.probe, drained: sh.drained, shard: sh}, s.rd)
	})
}

func (s *shardedSub) subscribe(ctx context.Context, channels []string) (int, error) {
	commands := 0
	for _, ch := range channels {
		sh, err := s.shardOf(ctx, ch, true)
		if err != nil {
			return commands, err
		}
		commands++
		if err := sh.ps.SSubscribe(ctx, ch); err != nil {
			return commands, err
		}
		if s.started && !sh.probed {
			// A connection made after start: its probe channel after
			// its first key, and its reader after that (reading a
			// PubSub without channels would connect it to a random
			// node).
			if err := sh.subscribeProbe(ctx); err != nil {
				return commands, err
			}
			s.read(sh)
		}
	}
	return commands, nil
}

func (s *shardedSub) unsubscribe(ctx context.Context, channels []string) (int, error) {
	commands := 0
	for _, ch := range channels {
		sh, err := s.shardOf(ctx, ch, false)
		if err != nil {
			return commands, err
		}
		if sh == nil {
			// Its slot's master has no connection of this session: the
			// slot moved, and Redis unsubscribed it (which ends the
			// session).
			continue
		}
		sh.mu.Lock()
		sh.leaving[ch]++
		sh.mu.Unlock()
		commands++
		if err := sh.ps.SUnsubscribe(ctx, ch); err != nil {
			return commands, err
		}
	}
	return commands, nil
}

func (s *shardedSub) start(ctx context.Context) error {
	reply, err := s.shardOf(ctx, s.t.replyChannel, true)
	if err != nil {
		return err
	}
	if err := reply.ps.SSubscribe(ctx, s.t.replyChannel); err != nil {
		return fmt.Errorf("redis: subscribe: %w", err)
	}
	for _, sh := range s.shards {
		if err := sh.subscribeProbe(ctx); err != nil {
			return err
		}
	}
	s.started = true
	for _, sh := range s.shards {
		s.read(sh)
	}
	return nil
}

// probe publishes token to every connection's probe channel in one
// pipeline. Each SPUBLISH must count this node's connection once Redis
// confirmed its probe channel: a connection that still receives but is
// not counted (it is on a replica, e.g. on a master that was killed and
// came back claiming its slots, accepting subscriptions before it learnt
// that its replica took them over; the messages reach it through its new
// master) would make senders expect too few replies, so it ends the
// session. A probe channel not confirmed yet may not count: that probe is
// incomplete.
func (s *shardedSub) probe(ctx context.Context, token string) (int, bool, error) {
	type sent struct {
		sh        *shard
		confirmed bool
		cmd       *goredis.IntCmd
	}
	cmds := make([]sent, 0, len(s.shards))
	_, err := s.cc.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, sh := range s.shards {
			// confirmed before the SPUBLISH: it must count.
			cmds = append(cmds, sent{sh, sh.confirmed.Load(), p.SPublish(ctx, sh.probe, token)})
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	echoes, complete := 0, true
	for _, c := range cmds {
		switch {
		case c.cmd.Val() >= 1:
			echoes++
		case c.confirmed:
			return 0, false, fmt.Errorf("%w: %s", errNotCounted, c.sh.probe)
		default:
			complete = false
		}
	}
	return echoes, complete, nil
}

func (s *shardedSub) lost() <-chan struct{} { return s.done }

func (s *shardedSub) stop(clean bool) {
	if s.started && clean {
		for _, sh := range s.shards {
			sh.mu.Lock()
			sh.draining = true
			sh.mu.Unlock()
			s.t.drain(func(ctx context.Context) error { return sh.ps.SUnsubscribe(ctx) }, sh.drained)
		}
	}
	for _, sh := range s.shards {
		_ = sh.ps.Close()
	}
	s.wg.Wait()
	if !clean {
		// A master may have failed over or a slot moved: the next
		// session asks the cluster where the slots are.
		s.cc.ReloadState(context.Background())
	}
}

// subscribeProbe subscribes sh's probe channel.
func (sh *shard) subscribeProbe(ctx context.Context) error {
	sh.probed = true
	if err := sh.ps.SSubscribe(ctx, sh.probe); err != nil {
		return fmt.Errorf("redis: subscribe: %w", err)
	}
	return nil
}

// errNotCounted is why a session ends when the master of a probe channel
// does not count this node's subscription.
var errNotCounted = errors.New("redis: the master does not count the subscription of probe channel")

// errSlotMoved is why a sharded connection's reading ends when Redis
// unsubscribed a channel the node still holds.
var errSlotMoved = errors.New("redis: shard channel unsubscribed by the cluster")

// unsolicited reports whether Redis unsubscribed ch on sh without the node
// asking (its slot moved away), and counts a confirmation the node asked
// for.
func (sh *shard) unsolicited(ch string) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.draining {
		return false
	}
	n, ok := sh.leaving[ch]
	if !ok {
		return true
	}
	if n <= 1 {
		delete(sh.leaving, ch)
	} else {
		sh.leaving[ch] = n - 1
	}
	return false
}
