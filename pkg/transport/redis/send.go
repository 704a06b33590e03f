package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/pushd/pushd/pkg/hub"
)

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
//
// When the request could be published to the channels of some routing
// keys but not of others (on a Redis Cluster, a master down until its
// replica is promoted), it returns the count of the nodes reached through
// the others, after waiting for their replies, with an error wrapping
// ErrPartial; when it could be published to none, 0 and the error.
func (t *Transport) Deliver(ctx context.Context, app string, target hub.Target, ev hub.Event) (int, error) {
	if target.IsZero() {
		return 0, nil
	}
	env := envelope{Kind: kindDeliver, App: app, Target: target, Event: &ev}
	c, err := t.roundTrip(ctx, app, hub.RoutingKeys(target), &env)
	if c == nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count, err
}

// Survey publishes req to the app's KeyAll channel (req.Target zero) or to
// the channels of the target's routing keys, and returns the replies of the
// other nodes, each with its NodeID, that arrived by ctx's deadline
// (Config.Timeout when ctx has none). A request published to the channels
// of only some of the target's routing keys returns the replies of the
// nodes reached with an error wrapping ErrPartial, as Deliver does.
func (t *Transport) Survey(ctx context.Context, app string, req hub.Request) ([]hub.Reply, error) {
	keys := []string{hub.KeyAll}
	if !req.Target.IsZero() {
		keys = hub.RoutingKeys(req.Target)
	}
	env := envelope{Kind: kindSurvey, App: app, Target: req.Target, Request: &req}
	c, err := t.roundTrip(ctx, app, keys, &env)
	if c == nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.replies, err
}

// roundTrip publishes env to the channels of keys and collects the
// replies. When some keys could be published to and others not, it
// returns the call with an error wrapping ErrPartial; when none could,
// no call and the error.
func (t *Transport) roundTrip(ctx context.Context, app string, keys []string, env *envelope) (*call, error) {
	if t.isClosed() {
		return nil, ErrClosed
	}
	if !t.ready.Load() {
		return nil, ErrNotReady
	}
	deadline, ctxBound := ctx.Deadline()
	if !ctxBound {
		deadline = time.Now().Add(t.cfg.Timeout)
	}
	if t.cfg.MaxRoutedKeys >= 0 && len(keys) > t.cfg.MaxRoutedKeys {
		keys = []string{hub.KeyAll}
	}
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

	pctx := ctx
	if t.sharded && !ctxBound {
		// The cluster client retries a master that is down (1.3 s on a
		// closed port here, longer where dials time out): not past the
		// call's deadline.
		var cancel context.CancelFunc
		pctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	expected, err := t.publish(pctx, app, keys, payload)
	if err != nil && !errors.Is(err, ErrPartial) {
		return nil, fmt.Errorf("redis: publish: %w", err)
	}
	if ctxBound {
		c.wait(ctx, time.Time{}, expected, t.closed) // ctx ends at its deadline: no timer of our own
	} else {
		c.wait(ctx, deadline, expected, t.closed)
	}
	return c, err
}

// publish sends payload to the channel of each key and returns the number
// of subscribers Redis reported for the channels it reached. When it
// reached some but not all, it logs the keys it missed and returns an
// error wrapping ErrPartial; when it reached none, 0 and the first error.
func (t *Transport) publish(ctx context.Context, app string, keys []string, payload []byte) (int, error) {
	if len(keys) == 1 {
		n, err := t.publishOn(ctx, t.pub, t.channel(app, keys[0]), payload).Result()
		return int(n), err
	}
	cmds := make([]*goredis.IntCmd, len(keys))
	if cc, ok := t.client.(*goredis.ClusterClient); ok {
		publishSharded(ctx, cc, t.channels(app, keys), payload, cmds)
	} else {
		// One pipeline, one round trip: a standalone (or Sentinel's)
		// Redis takes it or fails it whole.
		_, _ = t.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, key := range keys {
				cmds[i] = t.publishOn(ctx, p, t.channel(app, key), payload)
			}
			return nil
		})
	}
	total := 0
	var failed []string
	var first error
	for i, cmd := range cmds {
		if err := cmd.Err(); err != nil {
			if first == nil {
				first = err
			}
			failed = append(failed, keys[i])
			continue
		}
		total += int(cmd.Val())
	}
	switch {
	case len(failed) == 0:
		return total, nil
	case len(failed) == len(keys):
		return 0, first
	}
	t.log.Warn().Err(first).Str("app", app).Int("failed", len(failed)).Int("keys", len(keys)).
		Strs("failed_keys", failed[:min(len(failed), maxLoggedKeys)]).Msg("publish partly failed")
	return total, fmt.Errorf("%w: %d of %d routing keys failed: %w", ErrPartial, len(failed), len(keys), first)
}

// maxLoggedKeys is how many of the routing keys a publish missed its log
// names.
const maxLoggedKeys = 10

// channels returns the channel of each of app's keys.
func (t *Transport) channels(app string, keys []string) []string {
	chans := make([]string, len(keys))
	for i, key := range keys {
		chans[i] = t.channel(app, key)
	}
	return chans
}

// publishSharded publishes payload to chans on a Redis Cluster and sets
// cmds[i] to the SPUBLISH of chans[i]: one pipeline per master, as the
// client's slot map names them, all at once. A pipeline spanning masters
// would set the error of one that is down (its ctx's end, after the
// client's retries) on the commands of all, discarding the counts of
// those that answered.
func publishSharded(ctx context.Context, cc *goredis.ClusterClient, chans []string, payload []byte, cmds []*goredis.IntCmd) {
	byMaster := make(map[*goredis.Client][]int)
	for i, ch := range chans {
		m, err := cc.MasterForKey(ctx, ch)
		if err != nil {
			cmds[i] = goredis.NewIntResult(0, err)
			continue
		}
		byMaster[m] = append(byMaster[m], i)
	}
	send := func(idx []int) {
		if len(idx) == 1 {
			cmds[idx[0]] = cc.SPublish(ctx, chans[idx[0]], payload)
			return
		}
		_, _ = cc.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for _, i := range idx {
				cmds[i] = p.SPublish(ctx, chans[i], payload)
			}
			return nil
		})
	}
	var wg sync.WaitGroup
	left := len(byMaster)
	for _, idx := range byMaster {
		if left--; left == 0 {
			send(idx) // the last master's on this goroutine
		} else {
			wg.Go(func() { send(idx) })
		}
	}
	wg.Wait()
}

// callOf returns the call waiting for the replies to request id, or nil.
func (t *Transport) callOf(id string) *call {
	t.callsMu.Lock()
	defer t.callsMu.Unlock()
	return t.calls[id]
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

// wait returns when expected replies arrived, ctx ends, deadline (unless
// zero) passes or closed is closed. The timer for the deadline is taken
// only when the replies are not all there yet, from a pool. (With a ctx
// that has a deadline of its own, callers pass none: a timer for the same
// instant could fire first, and the caller would see its ctx not yet done.)
func (c *call) wait(ctx context.Context, deadline time.Time, expected int, closed <-chan struct{}) {
	var timer *time.Timer
	var expired <-chan time.Time // nil: no deadline of our own
	defer func() {
		if timer != nil {
			timer.Stop()
			timers.Put(timer)
		}
	}()
	for {
		c.mu.Lock()
		done := c.received >= expected
		c.mu.Unlock()
		if done {
			return
		}
		if timer == nil && !deadline.IsZero() {
			d := time.Until(deadline)
			if d <= 0 {
				return
			}
			if v := timers.Get(); v != nil {
				timer = v.(*time.Timer)
				timer.Reset(d)
			} else {
				timer = time.NewTimer(d)
			}
			expired = timer.C
		}
		select {
		case <-c.notify:
		case <-expired:
			return
		case <-ctx.Done():
			return
		case <-closed:
			return
		}
	}
}

// timers are stopped timers for call.wait. (Since Go 1.23 a stopped
// timer's channel holds no stale value, so Reset makes it as good as new.)
var timers sync.Pool
