package redisqos_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/pushd/pushd/internal/testredis"
	"github.com/pushd/pushd/pkg/qos"
)

// TestPendingBurstIsCoalesced reads the inboxes of 500 users at once, as
// a node does when another node's clients all come back: every read gets
// exactly its user's messages, and the reads share pipelines on at most
// two pooled connections at a time instead of taking one each (the pool
// allows 64). A SCRIPT FLUSH before the burst makes the pipelines fall
// back to sending the script itself.
func TestPendingBurstIsCoalesced(t *testing.T) {
	s := testredis.Start(t)
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), PoolSize: 64})
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	r := newRedisRepo(t, c, uniquePrefix())
	const users, each = 500, 3
	want := make(map[string][]string, users)
	for u := range users {
		id := fmt.Sprintf("u%d", u)
		for k := range each {
			m := userMsg(fmt.Sprintf("e%d", k), id)
			if err := r.Save(ctx, "app", m); err != nil {
				t.Fatal(err)
			}
			want[id] = append(want[id], m.ID)
		}
	}
	for _, flush := range []bool{false, true} {
		if flush {
			if err := c.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		errs := make(chan error, users)
		for id, ids := range want {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := r.Pending(ctx, "app", qos.Recipient{UserID: id}, "", 0)
				if err != nil {
					errs <- fmt.Errorf("%s: %w", id, err)
					return
				}
				if len(got) != len(ids) {
					errs <- fmt.Errorf("%s: %d messages, want %d", id, len(got), len(ids))
					return
				}
				for i, m := range got {
					if m.ID != ids[i] {
						errs <- fmt.Errorf("%s: message %d is %s, want %s", id, i, m.ID, ids[i])
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if n := c.PoolStats().TotalConns; n > 3 {
			t.Errorf("script flushed %v: %d pooled connections after the burst, want at most 3 (two flushes and the saves')", flush, n)
		}
	}
}
