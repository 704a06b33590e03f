package redis

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/pushd/pushd/pkg/hub"
)

// Reconnect backoff bounds.
const (
	backoffMin = 50 * time.Millisecond
	backoffMax = 5 * time.Second
)

// job is a received request waiting for a worker.
type job struct {
	env      envelope
	channel  string
	dup      bool
	deadline time.Time
}

// pool serves received requests with Config.Workers workers. A deliver
// request (and a repeated arrival) is queued to the worker its channel hashes
// to, so the events sent to one routing key are written in the order Redis
// delivered them; surveys go to a shared queue every worker takes from. At
// most Config.QueueSize deliveries and as many surveys wait.
type pool struct {
	seed    maphash.Seed
	ordered []*workerQueue
	shared  chan job
	queued  atomic.Int64 // jobs waiting in ordered queues
	limit   int64
	wg      sync.WaitGroup
	replies *replier
	// quick is the handler when it serves small deliveries without
	// blocking: the reading goroutine calls it itself (see tryQuick).
	quick hub.QuickDeliverer
}

// workerQueue is the ordered queue of one worker. jobs and spare are two
// buffers taking turns: the worker serves one while the other fills. busy
// is set while the worker serves a batch.
type workerQueue struct {
	mu     sync.Mutex
	jobs   []job
	spare  []job
	busy   bool
	closed bool
	notify chan struct{}
}

// startPool starts the workers serving with h until stop, and the
// replier publishing their replies.
func (t *Transport) startPool(ctx context.Context, h hub.Handler) *pool {
	p := &pool{
		seed:    maphash.MakeSeed(),
		ordered: make([]*workerQueue, t.cfg.Workers),
		shared:  make(chan job, t.cfg.QueueSize),
		limit:   int64(t.cfg.QueueSize),
		replies: t.startReplier(),
	}
	p.quick, _ = h.(hub.QuickDeliverer)
	for i := range p.ordered {
		q := &workerQueue{notify: make(chan struct{}, 1)}
		p.ordered[i] = q
		p.wg.Go(func() { p.work(ctx, t, h, q) })
	}
	return p
}

// work serves q in order, and shared surveys in between, until both are
// closed and empty.
func (p *pool) work(ctx context.Context, t *Transport, h hub.Handler, q *workerQueue) {
	shared := p.shared
	for {
		q.mu.Lock()
		batch, closed := q.jobs, q.closed
		q.jobs, q.spare = q.spare, nil
		q.busy = len(batch) > 0
		q.mu.Unlock()
		for _, j := range batch {
			t.serve(ctx, h, j, p.replies)
			p.queued.Add(-1)
		}
		if len(batch) > 0 {
			clear(batch) // let the served requests' memory go
			q.mu.Lock()
			q.spare = batch[:0]
			q.mu.Unlock()
			continue
		}
		if closed && shared == nil {
			return
		}
		select {
		case <-q.notify:
		case j, ok := <-shared:
			if !ok {
				shared = nil
				continue
			}
			t.serve(ctx, h, j, p.replies)
		}
	}
}

// submit queues j without blocking; false means the queue was full.
func (p *pool) submit(j job) bool {
	if !j.dup && j.env.Kind != kindDeliver {
		select {
		case p.shared <- j:
			return true
		default:
			return false
		}
	}
	if p.queued.Add(1) > p.limit {
		p.queued.Add(-1)
		return false
	}
	q := p.queueOf(j.channel)
	q.mu.Lock()
	q.jobs = append(q.jobs, j)
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return true
}

// queueOf is the ordered queue serving channel.
func (p *pool) queueOf(channel string) *workerQueue {
	return p.ordered[maphash.String(p.seed, channel)%uint64(len(p.ordered))]
}

// tryQuick serves a small delivery on the calling (reading) goroutine and
// queues its reply, when the handler can do it without blocking and the
// worker of its channel has nothing queued or in service, so that
// deliveries on one channel keep their order. Only the reading goroutine
// submits jobs, so the worker stays idle meanwhile. false: j is for a
// worker.
func (p *pool) tryQuick(t *Transport, j *job) bool {
	if p.quick == nil || j.dup || j.env.Kind != kindDeliver || j.env.Event == nil {
		return false
	}
	q := p.queueOf(j.channel)
	q.mu.Lock()
	idle := len(q.jobs) == 0 && !q.busy
	q.mu.Unlock()
	if !idle {
		return false
	}
	r, ok := t.handleQuick(p.quick, &j.env)
	if !ok {
		return false
	}
	r.NodeID = t.cfg.NodeID
	p.replies.add(j.env.ReplyTo, &replyEnvelope{ID: j.env.ID, Reply: r}, j.env.legacy, j.deadline)
	return true
}

// stop closes the queues, waits for the workers to finish what is queued
// and for the replier to publish their replies.
func (p *pool) stop() {
	defer p.replies.close()
	close(p.shared)
	for _, q := range p.ordered {
		q.mu.Lock()
		q.closed = true
		q.mu.Unlock()
		select {
		case q.notify <- struct{}{}:
		default:
		}
	}
	p.wg.Wait()
}

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
	select {
	case <-t.closed:
		t.mu.Unlock()
		return ErrClosed
	default:
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

	backoff := backoffMin
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
		backoff = min(backoff*2, backoffMax)
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
	ps := t.client.Subscribe(ctx)
	applied := make(map[string]struct{})
	echo := make(chan string, 8)
	readerDone := make(chan struct{})
	readerStarted := false
	drained := make(chan struct{})
	defer func() {
		t.ready.Store(false)
		t.stats.subscribed.Store(0)
		if readerStarted && ctx.Err() != nil {
			t.drain(ps, drained)
		}
		_ = ps.Close()
		if readerStarted {
			<-readerDone
		}
		t.interest.lost() // after the reader: no late confirmation of this session
	}()

	// The routing keys go first and the probe channel last: on one
	// connection Redis handles commands in order, so the first probe coming
	// back proves every key is subscribed.
	all := t.interest.snapshot()
	if err := t.subscribe(ctx, ps, all, applied); err != nil {
		return false, err
	}
	if err := ps.Subscribe(ctx, t.replyChannel, t.probeChannel); err != nil {
		return false, fmt.Errorf("redis: subscribe: %w", err)
	}
	readerStarted = true
	go func() {
		defer close(readerDone)
		t.read(ps, echo, drained, jobs)
	}()

	var (
		probeSeq      uint64
		probeToken    string
		probeDeadline <-chan time.Time
		flushC        <-chan time.Time
		flushTimer    *time.Timer
	)
	sendProbe := func() error {
		probeSeq++
		probeToken = t.idPrefix + "probe." + strconv.FormatUint(probeSeq, 10)
		pctx, cancel := context.WithTimeout(ctx, t.cfg.ProbeTimeout)
		defer cancel()
		if err := t.client.Publish(pctx, t.probeChannel, probeToken).Err(); err != nil {
			t.stats.probeFailures.Add(1)
			return fmt.Errorf("redis: publish probe: %w", err)
		}
		probeDeadline = time.After(t.cfg.ProbeTimeout)
		return nil
	}
	flush := func() error {
		if flushTimer != nil {
			flushTimer.Stop()
			flushTimer, flushC = nil, nil
		}
		sub, unsub := t.interest.diff(applied)
		if err := t.unsubscribe(ctx, ps, unsub, applied); err != nil {
			return err
		}
		return t.subscribe(ctx, ps, sub, applied)
	}
	defer func() {
		if flushTimer != nil {
			flushTimer.Stop()
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
		case <-readerDone:
			return established, errors.New("redis: subscription channel closed")
		case tok := <-echo:
			if tok != probeToken {
				continue
			}
			probeToken, probeDeadline = "", nil
			if !established {
				established = true
				t.ready.Store(true)
				if t.everReady.Swap(true) {
					t.resubscribed()
				}
				t.log.Info().Int("channels", len(applied)).Msg("subscribed")
			}
		case <-probeDeadline:
			t.stats.probeFailures.Add(1)
			return established, ErrProbeTimeout
		case <-ticker.C:
			switch {
			case probeToken == "":
				if err := sendProbe(); err != nil {
					return established, err
				}
			case !established:
				// The first probe can be published before Redis has run
				// the SUBSCRIBE that came before it on the other
				// connection, and be lost: try again, keeping the
				// original deadline.
				deadline := probeDeadline
				if err := sendProbe(); err != nil {
					return established, err
				}
				probeDeadline = deadline
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

// drain unsubscribes every channel of ps on a clean stop and waits (at most
// ProbeTimeout) until Redis confirms, so that when Close returns other nodes
// no longer count this one.
func (t *Transport) drain(ps *goredis.PubSub, drained <-chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), t.cfg.ProbeTimeout)
	defer cancel()
	if err := ps.Unsubscribe(ctx); err != nil {
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
func (t *Transport) subscribe(ctx context.Context, ps *goredis.PubSub, channels []string, applied map[string]struct{}) error {
	for chunk := range chunks(channels, t.cfg.BatchSize) {
		t.stats.subscribeCommands.Add(1)
		err := ps.Subscribe(ctx, chunk...)
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
func (t *Transport) unsubscribe(ctx context.Context, ps *goredis.PubSub, channels []string, applied map[string]struct{}) error {
	for chunk := range chunks(channels, t.cfg.BatchSize) {
		t.stats.unsubscribeCommands.Add(1)
		err := ps.Unsubscribe(ctx, chunk...)
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

// read receives from the subscription until ps is closed and dispatches
// each message in this goroutine: replies to their waiting calls, probe
// echoes to the session, requests to the workers. None of that blocks (a
// request finding its queue full is dropped), so reading from the socket
// and dispatching need no goroutine and channel in between. A receive
// error makes go-redis reconnect and subscribe again on the next call;
// repeated errors are spaced out.
func (t *Transport) read(ps *goredis.PubSub, echo chan<- string, drained chan<- struct{}, jobs *pool) {
	probeSubscriptions := 0
	failures := 0
	for {
		m, err := ps.Receive(context.Background())
		if errors.Is(err, goredis.ErrClosed) {
			return
		}
		if err != nil {
			if failures++; failures > 1 {
				time.Sleep(backoffMin)
			}
			continue
		}
		failures = 0
		switch m := m.(type) {
		case *goredis.Subscription:
			t.interest.confirmed(m.Channel, m.Kind == "subscribe")
			if m.Kind == "unsubscribe" && m.Count == 0 && drained != nil {
				close(drained)
				drained = nil
			}
			// go-redis reconnects by itself and subscribes every channel
			// again in one command; a second confirmation of the probe
			// channel shows that happened and messages may be missing.
			if m.Kind == "subscribe" && m.Channel == t.probeChannel {
				probeSubscriptions++
				if probeSubscriptions > 1 {
					t.resubscribed()
				}
			}
		case *goredis.Message:
			switch m.Channel {
			case t.replyChannel:
				t.handleReply(m.Payload)
			case t.probeChannel:
				select {
				case echo <- m.Payload:
				default:
				}
			default:
				t.handleRequest(m.Channel, m.Payload, jobs)
			}
		}
	}
}

// handleReply hands each reply of a message to the call waiting for it.
func (t *Transport) handleReply(payload string) {
	err := decodeReplies(payload, func(r *replyEnvelope) {
		t.callsMu.Lock()
		c := t.calls[r.ID]
		t.callsMu.Unlock()
		if c != nil {
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
		t.callsMu.Lock()
		c := t.calls[env.ID]
		t.callsMu.Unlock()
		if c != nil {
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
