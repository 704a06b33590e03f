package redisqos

import (
	"context"
	"slices"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Reads of many connects at once (a node's clients coming back after
// another node died) are coalesced: concurrent Pending calls queue their
// script runs, and at most maxReadFlushes pipelines of up to maxReadBatch
// runs each are in flight. A burst of thousands of reads costs Redis a few
// round trips and one pooled connection each, instead of one round trip
// and a pool wait per read (where the waits past go-redis's pool timeout
// failed the replay).
const (
	maxReadBatch   = 256
	maxReadFlushes = 2
)

// readCall is one queued run of pendingScript.
type readCall struct {
	keys []string
	args []any
	res  []any
	err  error
	done chan struct{}
}

// readQueue holds the queued reads of a Store.
type readQueue struct {
	mu       sync.Mutex
	queue    []*readCall
	flushing int // flushes in flight, each run by one goroutine
}

// pending runs pendingScript for keys and args as part of a pipeline with
// the other reads queued meanwhile. It returns when the result is in, or
// with ctx's error when ctx ends first (the read still runs).
func (r *Store) pending(ctx context.Context, keys []string, args []any) ([]any, error) {
	c := &readCall{keys: keys, args: args, done: make(chan struct{})}
	q := &r.reads
	q.mu.Lock()
	q.queue = append(q.queue, c)
	lead := q.flushing < maxReadFlushes
	if lead {
		q.flushing++
	}
	q.mu.Unlock()
	if lead {
		r.flushReads(c)
	}
	select {
	case <-c.done:
		return c.res, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// flushReads sends queued reads in pipelines until the queue is empty. A
// caller flushing for its own read (own) hands the rest of the queue to a
// new goroutine once its read is answered, so no caller waits for others'
// reads; that goroutine (own nil) flushes until the queue is empty.
func (r *Store) flushReads(own *readCall) {
	q := &r.reads
	for {
		q.mu.Lock()
		if len(q.queue) == 0 {
			q.flushing--
			q.mu.Unlock()
			return
		}
		if own != nil && isDone(own) {
			q.mu.Unlock()
			go r.flushReads(nil)
			return
		}
		n := min(len(q.queue), maxReadBatch)
		batch := slices.Clone(q.queue[:n])
		q.queue = slices.Delete(q.queue, 0, n)
		q.mu.Unlock()
		r.runReads(batch)
	}
}

func isDone(c *readCall) bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// runReads runs batch in one pipeline by the script's hash; runs the
// server does not have the script for (after a restart or SCRIPT FLUSH)
// are sent again with the script's source. Each call is answered.
func (r *Store) runReads(batch []*readCall) {
	// The reads belong to callers with different contexts: none of them
	// may cancel the others'. go-redis bounds the round trip itself.
	ctx := context.Background()
	cmds := make([]*redis.Cmd, len(batch))
	_, _ = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range batch {
			cmds[i] = pendingScript.EvalSha(ctx, p, c.keys, c.args...)
		}
		return nil
	})
	var again []int
	for i, cmd := range cmds {
		if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		_, _ = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, i := range again {
				cmds[i] = pendingScript.Eval(ctx, p, batch[i].keys, batch[i].args...)
			}
			return nil
		})
	}
	for i, c := range batch {
		c.res, c.err = cmds[i].Slice()
		close(c.done)
	}
}
