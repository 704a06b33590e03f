package redis

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushd/pushd/pkg/hub"
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
