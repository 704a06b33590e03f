package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/pushd/pushd/pkg/hub"
)

// readConn is one pub/sub connection a reader serves: its probe channel,
// what to close when Redis confirms it unsubscribed everything, and on a
// Redis Cluster its shard and subscription (nil otherwise).
type readConn struct {
	probe   string
	drained chan<- struct{}
	shard   *shard
	sub     *shardedSub
}

// read receives from the subscription until ps is closed and dispatches
// each message in this goroutine: replies to their waiting calls, probe
// echoes and the confirmation of the probe channel to the session,
// requests to the workers. None of that blocks (a
// request finding its queue full is dropped), so reading from the socket
// and dispatching need no goroutine and channel in between. A receive
// error makes go-redis reconnect and subscribe again on the next call;
// repeated errors are spaced out. On a sharded connection a receive
// error ends the reading instead and takes the connection for lost (go-redis
// would subscribe every channel again in one SSUBSCRIBE, which a
// cluster refuses for channels of several slots), except for -MOVED,
// and Redis unsubscribing a channel the node did not give up moves that
// channel: the session repairs both (repair.go).
func (t *Transport) read(ps *goredis.PubSub, rc readConn, rd reader) {
	probeSubscriptions := 0
	failures := 0
	drained := rc.drained
	for {
		m, err := ps.Receive(context.Background())
		if errors.Is(err, goredis.ErrClosed) {
			return
		}
		if err != nil {
			if rc.shard != nil {
				if errors.Is(err, net.ErrClosed) {
					return // the session closed the connection
				}
				var rerr goredis.Error
				if errors.As(err, &rerr) {
					if _, moved := movedSlot(rerr.Error()); moved {
						rc.sub.refused(rc.shard, rerr)
						continue
					}
				}
				rc.sub.lose(rc.shard, err)
				return
			}
			if failures++; failures > 1 {
				time.Sleep(backoffMin)
			}
			continue
		}
		failures = 0
		switch m := m.(type) {
		case *goredis.Subscription:
			subscribed := m.Kind == "subscribe" || m.Kind == "ssubscribe"
			unsubscribed := m.Kind == "unsubscribe" || m.Kind == "sunsubscribe"
			t.interest.confirmed(m.Channel, subscribed)
			if unsubscribed && m.Count == 0 && drained != nil && (rc.shard == nil || rc.sub.isDraining(rc.shard)) {
				close(drained)
				drained = nil
			}
			if rc.shard != nil && m.Channel != "" {
				switch {
				case unsubscribed:
					rc.sub.dropped(rc.shard, m.Channel)
				case subscribed:
					rc.sub.subscribed(rc.shard, m.Channel)
				}
			}
			// go-redis reconnects by itself and subscribes every channel
			// again in one command; a second confirmation of the probe
			// channel shows that happened and messages may be missing.
			if subscribed && m.Channel == rc.probe {
				if rc.shard != nil {
					rc.shard.confirmed.Store(true)
				}
				probeSubscriptions++
				if probeSubscriptions > 1 {
					t.resubscribed()
				}
				select {
				case rd.probeSubscribed <- struct{}{}:
				default:
				}
			}
		case *goredis.Message:
			switch m.Channel {
			case t.replyChannel:
				t.handleReply(m.Payload)
			case rc.probe:
				if rc.shard != nil {
					rc.sub.echo(rc.shard, m.Payload)
				}
				select {
				case rd.echo <- m.Payload:
				default:
				}
			default:
				t.handleRequest(m.Channel, m.Payload, rd.jobs)
			}
		}
	}
}

// handleReply hands each reply of a message to the call waiting for it.
func (t *Transport) handleReply(payload string) {
	err := decodeReplies(payload, func(r *replyEnvelope) {
		if c := t.callOf(r.ID); c != nil {
			c.add(r, true)
		}
	})
	if err != nil {
		t.log.Warn().Err(err).Msg("undecodable reply")
	}
}

// handleRequest answers this node's own requests at once with nothing and
// queues the others for a worker.
func (t *Transport) handleRequest(channel, payload string, jobs *pool) {
	env, err := decodeEnvelope(payload)
	if err != nil {
		t.log.Warn().Err(err).Str("channel", channel).Msg("undecodable request")
		return
	}
	if strings.HasPrefix(env.ID, t.idPrefix) {
		if c := t.callOf(env.ID); c != nil {
			c.add(&replyEnvelope{ID: env.ID}, false)
		}
		return
	}
	now := time.Now()
	j := job{env: env, channel: channel, deadline: now.Add(t.cfg.Timeout)}
	if env.TimeoutMS > 0 {
		j.deadline = now.Add(time.Duration(env.TimeoutMS) * time.Millisecond)
	}
	if env.Multi {
		j.dup = t.dedup.seen(env.ID, now)
	}
	if jobs.tryQuick(t, &j) {
		return
	}
	if !jobs.submit(j) {
		t.stats.droppedRequests.Add(1)
		t.log.Warn().Str("origin", env.Origin).Str("app", env.App).Msg("request queue full, request dropped")
	}
}

// serve runs one request with h and queues the reply to out.
func (t *Transport) serve(ctx context.Context, h hub.Handler, j job, out *replier) {
	if !time.Now().Before(j.deadline) {
		return // the sender stopped waiting
	}
	rep := replyEnvelope{ID: j.env.ID, Dup: j.dup}
	if !j.dup {
		hctx, cancel := context.WithDeadline(ctx, j.deadline)
		rep.Reply = t.handle(hctx, h, &j.env)
		cancel()
	}
	rep.NodeID = t.cfg.NodeID
	out.add(j.env.ReplyTo, &rep, j.env.legacy, j.deadline)
}

// handleQuick calls h.HandleDeliverQuick for env; a panic becomes an
// error reply, as in handle.
func (t *Transport) handleQuick(h hub.QuickDeliverer, env *envelope) (rep hub.Reply, ok bool) {
	defer func() {
		if p := recover(); p != nil {
			t.log.Error().Interface("panic", p).Str("app", env.App).Msg("handler panicked")
			rep, ok = hub.Reply{Error: fmt.Sprintf("redis: handler panicked: %v", p)}, true
		}
	}()
	n, ok := h.HandleDeliverQuick(env.App, env.Target, *env.Event)
	return hub.Reply{Count: n}, ok
}

// handle calls the handler for env; a panic becomes an error reply.
func (t *Transport) handle(ctx context.Context, h hub.Handler, env *envelope) (rep hub.Reply) {
	defer func() {
		if p := recover(); p != nil {
			t.log.Error().Interface("panic", p).Str("app", env.App).Str("kind", env.Kind).Msg("handler panicked")
			rep = hub.Reply{Error: fmt.Sprintf("redis: handler panicked: %v", p)}
		}
	}()
	switch {
	case env.Kind == kindDeliver && env.Event != nil:
		return hub.Reply{Count: h.HandleDeliver(ctx, env.App, env.Target, *env.Event)}
	case env.Kind == kindSurvey && env.Request != nil:
		r, err := h.HandleSurvey(ctx, env.App, *env.Request)
		if err != nil {
			r.Error = err.Error()
		}
		return r
	default:
		return hub.Reply{Error: "redis: malformed request of kind " + strconv.Quote(env.Kind)}
	}
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
