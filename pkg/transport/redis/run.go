package redis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/pushd/pushd/pkg/hub"
)

// Reconnect backoff bounds. On a Redis Cluster the longest wait is
// clusterBackoffMax: a session there ends only when its first
// subscription fails (later a failing master costs a repair of its
// connection, repair.go), and the next one finds the promoted replica as
// soon as the slot map is reloaded, so it retries sooner.
const (
	backoffMin        = 50 * time.Millisecond
	backoffMax        = 5 * time.Second
	clusterBackoffMax = time.Second
)

// Run subscribes this node's channels and serves requests from other nodes
// with h until ctx ends or Close is called; then it returns nil. Requests
// are served concurrently by Config.Workers workers.
//
// When the subscription is lost (Redis restarted, connection dropped, or the
// periodic probe did not come back) Run tears it down, waits with backoff,
// subscribes every held key again and calls Config.OnResubscribe.
func (t *Transport) Run(ctx context.Context, h hub.Handler) error {
	if h == nil {
		return fmt.Errorf("redis: Run: nil handler")
	}
	t.mu.Lock()
	if t.isClosed() {
		t.mu.Unlock()
		return ErrClosed
	}
	if t.running {
		t.mu.Unlock()
		return ErrRunning
	}
	t.running = true
	done := make(chan struct{})
	t.runDone = done
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		t.running = false
		t.mu.Unlock()
		close(done)
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-t.closed:
			cancel()
		case <-ctx.Done():
		}
	}()

	jobs := t.startPool(ctx, h)
	defer jobs.stop()

	backoff, longest := backoffMin, backoffMax
	if t.sharded {
		longest = clusterBackoffMax
	}
	for {
		established, err := t.session(ctx, jobs)
		if ctx.Err() != nil {
			return nil
		}
		if established {
			backoff = backoffMin
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		t.log.Warn().Err(err).Dur("retry_in", wait).Msg("subscription lost")
		backoff = min(backoff*2, longest)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
	}
}

// session is one subscription: it subscribes every wanted channel, then
// applies interest changes and probes until ctx ends or the subscription is
// found lost. established reports whether its first probe came back.
func (t *Transport) session(ctx context.Context, jobs *pool) (established bool, err error) {
	applied := make(map[string]struct{})
	echo := make(chan string, 64)
	probeSubscribed := make(chan struct{}, 1)
	sub := t.newSubscription(ctx, reader{echo: echo, probeSubscribed: probeSubscribed, jobs: jobs})
	defer func() {
		t.ready.Store(false)
		t.stats.subscribed.Store(0)
		sub.stop(ctx.Err() != nil)
		t.interest.lost() // after the readers: no late confirmation of this session
	}()

	// The routing keys go first and the probe channels last (see
	// plainSub and shardedSub): the first probe coming back on every
	// connection proves every key is subscribed.
	all := t.interest.snapshot()
	if err := t.subscribe(ctx, sub, all, applied); err != nil {
		return false, err
	}
	if err := sub.start(ctx); err != nil {
		return false, err
	}

	var (
		probeSeq      uint64
		probeToken    string
		probeEchoes   int  // echoes of probeToken still to come
		probeComplete bool // probeToken went to every connection
		probeDeadline <-chan time.Time
		flushC        <-chan time.Time
		flushTimer    *time.Timer
	)
	sendProbe := func() error {
		probeSeq++
		probeToken = t.idPrefix + "probe." + strconv.FormatUint(probeSeq, 10)
		pctx, cancel := context.WithTimeout(ctx, t.cfg.ProbeTimeout)
		defer cancel()
		n, complete, err := sub.probe(pctx, probeToken)
		if err != nil {
			t.stats.probeFailures.Add(1)
			return fmt.Errorf("redis: publish probe: %w", err)
		}
		probeEchoes, probeComplete = n, complete
		probeDeadline = time.After(t.cfg.ProbeTimeout)
		if n == 0 {
			// No connection's probe channel confirmed yet: the first
			// confirmation (or the next tick) probes again.
			probeToken, probeDeadline = "", nil
		}
		return nil
	}
	// retryProbe publishes a new first probe under the first one's
	// deadline: the first is lost when it was published before Redis ran
	// the SUBSCRIBE that came before it on the other connection.
	retryProbe := func() error {
		deadline := probeDeadline
		err := sendProbe()
		probeDeadline = deadline
		return err
	}
	flush := func() error {
		if flushTimer != nil {
			flushTimer.Stop()
			flushTimer, flushC = nil, nil
		}
		on, off := t.interest.diff(applied)
		if err := t.unsubscribe(ctx, sub, off, applied); err != nil {
			return err
		}
		return t.subscribe(ctx, sub, on, applied)
	}
	// Repairs of single connections (Redis Cluster): an attempt that
	// leaves channels without a connection is retried with backoff.
	var (
		repairTimer   *time.Timer
		repairC       <-chan time.Time
		repairBackoff = repairBackoffMin
	)
	repair := func() {
		if repairTimer != nil {
			repairTimer.Stop()
			repairTimer, repairC = nil, nil
		}
		if sub.repair(ctx) {
			repairTimer = time.NewTimer(repairBackoff)
			repairC = repairTimer.C
			repairBackoff = min(repairBackoff*2, repairBackoffMax)
		} else {
			repairBackoff = repairBackoffMin
		}
		if established {
			t.ready.Store(sub.healthy())
		}
	}
	defer func() {
		if flushTimer != nil {
			flushTimer.Stop()
		}
		if repairTimer != nil {
			repairTimer.Stop()
		}
	}()

	if err := sendProbe(); err != nil {
		return false, err
	}
	ticker := time.NewTicker(t.cfg.ProbeInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return established, nil
		case <-sub.lost():
			return established, errors.New("redis: subscription channel closed")
		case tok := <-echo:
			if tok != probeToken {
				continue
			}
			if probeEchoes--; probeEchoes > 0 {
				continue
			}
			probeToken, probeDeadline = "", nil
			if probeComplete {
				t.stats.probes.Add(1)
			}
			if !established && !probeComplete {
				// A connection's probe channel was not confirmed yet: its
				// confirmation (or the next tick) probes again.
				continue
			}
			if !established {
				established = true
				t.ready.Store(sub.healthy())
				if t.everReady.Swap(true) {
					t.resubscribed()
				}
				t.log.Info().Int("channels", len(applied)).Msg("subscribed")
			}
		case <-probeSubscribed:
			// Redis has run the SUBSCRIBE: a probe published now comes
			// back.
			switch {
			case !established && probeToken != "":
				if err := retryProbe(); err != nil {
					return established, err
				}
			case !established:
				if err := sendProbe(); err != nil {
					return established, err
				}
			}
		case <-probeDeadline:
			if sub.late(probeToken) {
				// The connections that did not echo it are repaired.
				probeToken, probeDeadline = "", nil
				continue
			}
			t.stats.probeFailures.Add(1)
			return established, ErrProbeTimeout
		case <-sub.troubled():
			if repairC == nil { // else the next attempt is due soon
				repair()
			}
		case <-repairC:
			repairTimer, repairC = nil, nil
			repair()
		case <-sub.repairedC():
			t.stats.shardRepairs.Add(1)
			if established {
				t.ready.Store(sub.healthy())
				t.log.Info().Int("channels", len(applied)).Msg("shard subscriptions repaired")
				t.resubscribed()
			}
		case <-ticker.C:
			switch {
			case probeToken == "":
				if err := sendProbe(); err != nil {
					return established, err
				}
			case !established:
				if err := retryProbe(); err != nil {
					return established, err
				}
			}
		case <-t.interest.wake:
			if t.interest.pending() >= t.cfg.BatchSize {
				if err := flush(); err != nil {
					return established, err
				}
			} else if flushTimer == nil {
				flushTimer = time.NewTimer(t.cfg.FlushInterval)
				flushC = flushTimer.C
			}
		case <-flushC:
			if err := flush(); err != nil {
				return established, err
			}
		}
	}
}

// drain unsubscribes every channel of a connection with unsubscribeAll on
// a clean stop and waits (at most ProbeTimeout) until Redis confirms, so
// that when Close returns other nodes no longer count this one.
func (t *Transport) drain(unsubscribeAll func(context.Context) error, drained <-chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), t.cfg.ProbeTimeout)
	defer cancel()
	if err := unsubscribeAll(ctx); err != nil {
		return
	}
	select {
	case <-drained:
	case <-ctx.Done():
		t.log.Warn().Msg("unsubscribe not confirmed before close")
	}
}

// subscribe subscribes channels in commands of at most BatchSize channels
// and records them in applied.
func (t *Transport) subscribe(ctx context.Context, sub subscription, channels []string, applied map[string]struct{}) error {
	for chunk := range chunks(channels, t.cfg.BatchSize) {
		n, err := sub.subscribe(ctx, chunk)
		t.stats.subscribeCommands.Add(uint64(n))
		for _, ch := range chunk {
			applied[ch] = struct{}{}
		}
		t.stats.subscribed.Store(int64(len(applied)))
		if err != nil {
			return fmt.Errorf("redis: subscribe: %w", err)
		}
	}
	return nil
}

// unsubscribe unsubscribes channels in commands of at most BatchSize
// channels and removes them from applied.
func (t *Transport) unsubscribe(ctx context.Context, sub subscription, channels []string, applied map[string]struct{}) error {
	for chunk := range chunks(channels, t.cfg.BatchSize) {
		n, err := sub.unsubscribe(ctx, chunk)
		t.stats.unsubscribeCommands.Add(uint64(n))
		for _, ch := range chunk {
			delete(applied, ch)
		}
		t.stats.subscribed.Store(int64(len(applied)))
		if err != nil {
			return fmt.Errorf("redis: unsubscribe: %w", err)
		}
	}
	return nil
}

// chunks yields non-empty slices of at most n items of s.
func chunks(s []string, n int) func(yield func([]string) bool) {
	return func(yield func([]string) bool) {
		for len(s) > 0 {
			k := min(n, len(s))
			if !yield(s[:k]) {
				return
			}
			s = s[k:]
		}
	}
}

// resubscribed counts a re-established subscription and calls the hook.
func (t *Transport) resubscribed() {
	t.stats.resubscribes.Add(1)
	t.log.Info().Msg("resubscribed")
	if f := t.cfg.OnResubscribe; f != nil {
		go f()
	}
}
