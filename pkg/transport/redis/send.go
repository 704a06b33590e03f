package redis

import (
	"context"
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

	expected, err := t.publish(ctx, app, keys, payload)
	if err != nil {
		if expected == 0 {
			return nil, fmt.Errorf("redis: publish: %w", err)
		}
		t.log.Warn().Err(err).Str("app", app).Msg("publish partly failed")
	}
	if ctxBound {
		c.wait(ctx, time.Time{}, expected, t.closed) // ctx ends at its deadline: no timer of our own
	} else {
		c.wait(ctx, deadline, expected, t.closed)
	}
	return c, nil
}

// publish sends payload to the channel of each key and returns the number
// of subscribers Redis reported in total.
func (t *Transport) publish(ctx context.Context, app string, keys []string, payload []byte) (int, error) {
	if len(keys) == 1 {
		n, err := t.publishOn(ctx, t.pub, t.channel(app, keys[0]), payload).Result()
		return int(n), err
	}
	cmds := make([]*goredis.IntCmd, len(keys))
	_, err := t.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, key := range keys {
			cmds[i] = t.publishOn(ctx, p, t.channel(app, key), payload)
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
