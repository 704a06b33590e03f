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
	// lost is closed when the session must end: its connection's
	// reading ended (never on a Redis Cluster, where connections are
	// repaired one by one instead).
	lost() <-chan struct{}
	// troubled is signalled when a connection needs repair, repairedC
	// when what a repair subscribed is all confirmed by Redis (nil
	// channels without repairs).
	troubled() <-chan struct{}
	repairedC() <-chan struct{}
	// repair moves the channels of lost connections, and those Redis
	// dropped, to the masters owning their slots now, and reports whether
	// some are left for another attempt.
	repair(ctx context.Context) (again bool)
	// late handles the deadline of probe token and reports whether the
	// session goes on (the connections that did not echo it are
	// repaired) or ends.
	late(token string) bool
	// healthy reports whether the node's reply channel is subscribed.
	healthy() bool
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
		return newShardedSub(t, cc, rd)
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

func (s *plainSub) troubled() <-chan struct{}   { return nil }
func (s *plainSub) repairedC() <-chan struct{}  { return nil }
func (s *plainSub) repair(context.Context) bool { return false }
func (s *plainSub) late(string) bool            { return false }
func (s *plainSub) healthy() bool               { return true }

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
// command (routing keys rarely share a slot anyway).
//
// A connection is repaired on its own, without ending the session
// (repair.go): when its master fails, its probe does not come back or
// is not counted, its channels move to the masters that own them now;
// when Redis unsubscribes some of its channels (their slot moved to
// another master) or refuses one with -MOVED, only those move. The other
// connections, and so the other routing keys, stay as they are.
type shardedSub struct {
	t       *Transport
	cc      *goredis.ClusterClient
	rd      reader
	started bool
	shards  map[string]*shard // by master address; the session's goroutine only
	home    map[string]*shard // the connection each held channel was subscribed on; the session's goroutine only
	wg      sync.WaitGroup

	// mu guards what the readers change: the shards' channels, lost and
	// leaving flags, the channels without a connection and those a repair
	// subscribed again.
	mu sync.Mutex
	// homeless are held channels on no connection now, each with the
	// address of the master that gave it up because its slot moved (""
	// when its connection was lost): a repair waits until the slot map
	// names another master for it.
	homeless map[string]string
	// rehoming are channels a repair subscribed again, not yet confirmed
	// by Redis.
	rehoming map[string]struct{}
	// trouble is signalled when there is something to repair, repaired
	// when everything a repair subscribed is confirmed.
	trouble  chan struct{}
	repaired chan struct{}
	// repairing is set from the first trouble until the repaired signal.
	repairing bool
}

// shard is the sharded pub/sub connection to one master.
type shard struct {
	addr      string
	ps        *goredis.PubSub
	probe     string
	probed    bool        // probe subscribed
	reading   bool        // its reader started
	confirmed atomic.Bool // probe subscription confirmed by Redis
	drained   chan struct{}

	// Guarded by the shardedSub's mu.
	channels  map[string]struct{} // held channels subscribed on it (not the probe)
	leaving   map[string]int      // unsubscriptions asked for, not confirmed yet
	draining  bool
	lost      bool
	probedFor string // the last probe token published to it
	echoed    string // the last probe token back on it
}

// maxProbeNames bounds the search for a probe channel name on a master.
const maxProbeNames = 1 << 16

func newShardedSub(t *Transport, cc *goredis.ClusterClient, rd reader) *shardedSub {
	return &shardedSub{t: t, cc: cc, rd: rd, shards: make(map[string]*shard), home: make(map[string]*shard),
		homeless: make(map[string]string), rehoming: make(map[string]struct{}),
		trouble: make(chan struct{}, 1), repaired: make(chan struct{}, 1)}
}

// masterOf returns the address of the master owning channel's slot, as
// the client's slot map says now.
func (s *shardedSub) masterOf(ctx context.Context, channel string) (string, error) {
	master, err := s.cc.MasterForKey(ctx, channel)
	if err != nil {
		return "", fmt.Errorf("redis: master of %s: %w", channel, err)
	}
	return master.Options().Addr, nil
}

// shardAt returns the connection to the master at addr, making it when
// there is none yet (made reports that).
func (s *shardedSub) shardAt(ctx context.Context, addr string) (sh *shard, made bool, err error) {
	if sh := s.shards[addr]; sh != nil {
		return sh, false, nil
	}
	sh = &shard{addr: addr, ps: s.cc.SSubscribe(ctx), drained: make(chan struct{}),
		channels: make(map[string]struct{}), leaving: make(map[string]int)}
	// Every connection's probe channel is its own: the SPUBLISH of a
	// probe must count this connection, not another one subscribed to
	// the same channel. Two would share one when the slot map changed
	// between their searches (it reloads in the background): e.g. a
	// connection made on a master that came back claiming its old
	// slots, then one on the replica that took them over; the first,
	// on a replica by then, would still receive its echoes and have
	// them counted by the second's subscription, and never be repaired.
	taken := make(map[string]bool, len(s.shards))
	for _, other := range s.shards {
		taken[other.probe] = true
	}
	for i := 0; i < maxProbeNames && sh.probe == ""; i++ {
		name := s.t.probeChannel + ":{" + strconv.Itoa(i) + "}"
		if taken[name] {
			continue
		}
		m, err := s.masterOf(ctx, name)
		if err != nil {
			_ = sh.ps.Close()
			return nil, false, err
		}
		if m == addr {
			sh.probe = name
		}
	}
	if sh.probe == "" {
		_ = sh.ps.Close()
		return nil, false, fmt.Errorf("redis: no probe channel name on master %s", addr)
	}
	s.shards[addr] = sh
	return sh, true, nil
}

// read starts the reader of sh.
func (s *shardedSub) read(sh *shard) {
	sh.reading = true
	s.wg.Go(func() {
		s.t.read(sh.ps, readConn{probe: sh.probe, drained: sh.drained, shard: sh, sub: s}, s.rd)
	})
}

// place subscribes held channel ch on the connection to the master at
// addr, which owns its slot now. A connection made after start gets its
// probe channel after its first key, and its reader after that (reading
// a PubSub without channels would connect it to a random node). A
// failure takes the connection for lost: the next repair moves its
// channels. Every change of ch's state is made under s.mu at once, so
// that a channel being moved is always homeless, rehoming or on a
// connection, and the repaired signal cannot come early.
func (s *shardedSub) place(ctx context.Context, ch, addr string) error {
	sh, _, err := s.shardAt(ctx, addr)
	if err != nil {
		s.mu.Lock()
		s.homeless[ch] = ""
		delete(s.rehoming, ch)
		s.repairing = true
		s.mu.Unlock()
		s.signal(s.trouble)
		return err
	}
	s.home[ch] = sh
	s.mu.Lock()
	lost := sh.lost
	if lost {
		s.homeless[ch] = ""
		delete(s.rehoming, ch)
	} else {
		sh.channels[ch] = struct{}{}
	}
	s.mu.Unlock()
	if lost {
		return nil // the next repair places it
	}
	if err := sh.ps.SSubscribe(ctx, ch); err != nil {
		s.lose(sh, err)
		return err
	}
	if s.started && !sh.probed {
		if err := sh.subscribeProbe(ctx); err != nil {
			s.lose(sh, err)
			return err
		}
	}
	if s.started && !sh.reading {
		s.read(sh)
	}
	return nil
}

func (s *shardedSub) subscribe(ctx context.Context, channels []string) (int, error) {
	commands := 0
	for _, ch := range channels {
		addr, err := s.masterOf(ctx, ch)
		if err != nil {
			return commands, err
		}
		commands++
		if err := s.place(ctx, ch, addr); err != nil && !s.started {
			// Before start a failure ends the session (nothing is
			// established yet); after it the repair takes over.
			return commands, err
		}
	}
	return commands, nil
}

func (s *shardedSub) unsubscribe(ctx context.Context, channels []string) (int, error) {
	commands := 0
	for _, ch := range channels {
		sh := s.home[ch]
		delete(s.home, ch)
		s.mu.Lock()
		delete(s.homeless, ch)
		delete(s.rehoming, ch)
		held := false
		if sh != nil && !sh.lost {
			if _, held = sh.channels[ch]; held {
				delete(sh.channels, ch)
				sh.leaving[ch]++
			}
		}
		s.checkRepairedLocked()
		s.mu.Unlock()
		if !held {
			// On no connection (its master failed or its slot moved):
			// nothing to unsubscribe.
			continue
		}
		commands++
		if err := sh.ps.SUnsubscribe(ctx, ch); err != nil {
			s.lose(sh, err)
		}
	}
	return commands, nil
}

func (s *shardedSub) start(ctx context.Context) error {
	addr, err := s.masterOf(ctx, s.t.replyChannel)
	if err != nil {
		return err
	}
	if err := s.place(ctx, s.t.replyChannel, addr); err != nil {
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

// probe publishes token to every connection's probe channel, to each
// master on its own and all at once (one slow master must not hold the
// others' probes, as in one pipeline). Each SPUBLISH must count this
// node's connection once Redis confirmed its probe channel: a connection
// that still receives but is not counted (it is on a replica, e.g. on a
// master that was killed and came back claiming its slots, accepting
// subscriptions before it learnt that its replica took them over; the
// messages reach it through its new master) would make senders expect
// too few replies, so it is taken for lost, as is one whose SPUBLISH
// fails, and repaired. A probe channel not confirmed yet may not count:
// that probe is incomplete.
func (s *shardedSub) probe(ctx context.Context, token string) (int, bool, error) {
	type sent struct {
		sh        *shard
		confirmed bool
		n         int64
		err       error
	}
	cmds := make([]*sent, 0, len(s.shards))
	var wg sync.WaitGroup
	for _, sh := range s.shards {
		s.mu.Lock()
		skip := sh.lost || !sh.reading
		if !skip {
			sh.probedFor = token
		}
		s.mu.Unlock()
		if skip {
			continue
		}
		// confirmed before the SPUBLISH: it must count.
		c := &sent{sh: sh, confirmed: sh.confirmed.Load()}
		cmds = append(cmds, c)
		wg.Go(func() { c.n, c.err = s.cc.SPublish(ctx, sh.probe, token).Result() })
	}
	wg.Wait()
	echoes, complete := 0, true
	for _, c := range cmds {
		switch {
		case c.err != nil:
			s.t.stats.probeFailures.Add(1)
			s.lose(c.sh, fmt.Errorf("redis: publish probe: %w", c.err))
			complete = false
		case c.n >= 1:
			echoes++
		case c.confirmed:
			s.lose(c.sh, fmt.Errorf("%w: %s", errNotCounted, c.sh.probe))
			complete = false
		default:
			complete = false
		}
	}
	return echoes, complete, nil
}

func (s *shardedSub) lost() <-chan struct{} { return nil }

func (s *shardedSub) stop(clean bool) {
	if s.started && clean {
		for _, sh := range s.shards {
			s.mu.Lock()
			sh.draining = true
			lost := sh.lost
			s.mu.Unlock()
			if !lost && sh.reading {
				s.t.drain(func(ctx context.Context) error { return sh.ps.SUnsubscribe(ctx) }, sh.drained)
			}
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

// errNotCounted is why a connection is taken for lost when the master of
// its probe channel does not count this node's subscription.
var errNotCounted = errors.New("redis: the master does not count the subscription of probe channel")

// errSlotMoved is why channels leave their connection when Redis
// unsubscribed them, or refused them with -MOVED, while the node holds
// them.
var errSlotMoved = errors.New("redis: shard channel unsubscribed by the cluster")
