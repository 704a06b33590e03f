package channels

import (
	"context"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
)

// answers keeps what a slow source answered, per key, each answer for its
// own time, in a bounded LRU, and lets concurrent lookups of one key share
// one load. (Entries carry their deadline on now's clock, rather than
// living in an expirable.LRU, so that different answers keep for different
// times, tests control the clock, and no goroutine runs per cache.)
type answers[V any] struct {
	lru     *lru.Cache[string, answer[V]]
	calls   singleflight.Group // one load per key at a time
	now     func() time.Time
	waiting atomic.Int32 // lookups waiting on a load; for tests
}

type answer[V any] struct {
	val     V
	expires time.Time
}

// newAnswers returns a cache of at most size answers.
func newAnswers[V any](size int, now func() time.Time) (*answers[V], error) {
	c, err := lru.New[string, answer[V]](size)
	if err != nil {
		return nil, err
	}
	return &answers[V]{lru: c, now: now}, nil
}

// get returns the live answer for key, or loads it. load's answer is kept
// for the time load returns with it (≤ 0: not kept); a failed load is not
// kept. The load outlives the cancellation of the lookup that started it,
// so the lookups sharing it are not failed by someone else's hang-up; a
// lookup whose ctx ends returns ctx's error.
func (a *answers[V]) get(ctx context.Context, key string, load func(context.Context) (V, time.Duration, error)) (V, error) {
	if e, ok := a.lru.Get(key); ok && a.now().Before(e.expires) {
		return e.val, nil
	}
	done := a.calls.DoChan(key, func() (any, error) {
		// Read the cache again: a lookup that missed it may get here just
		// after another load stored its answer and ended. Only loads store,
		// one per key at a time, so removing an expired entry here cannot
		// drop a newer one.
		if e, ok := a.lru.Peek(key); ok {
			if a.now().Before(e.expires) {
				return e.val, nil
			}
			a.lru.Remove(key)
		}
		v, keep, err := load(context.WithoutCancel(ctx))
		if err == nil && keep > 0 {
			a.lru.Add(key, answer[V]{val: v, expires: a.now().Add(keep)})
		}
		return v, err
	})
	a.waiting.Add(1)
	defer a.waiting.Add(-1)
	select {
	case res := <-done:
		v, _ := res.Val.(V)
		return v, res.Err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}
