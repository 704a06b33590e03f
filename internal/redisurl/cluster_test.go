package redisurl

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/pushd/pushd/internal/await"
	"github.com/pushd/pushd/internal/testredis"
)

// TestClusterURL: the URL of a real Redis Cluster gives a cluster client
// that reaches every master, and that finds a failed-over slot's new
// master by itself (ClusterStateReload) once its old master was killed.
func TestClusterURL(t *testing.T) {
	c := testredis.StartCluster(t)
	u, err := NewUniversalClient(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	cc, ok := u.(*goredis.ClusterClient)
	if !ok {
		t.Fatalf("client %T, want *redis.ClusterClient", u)
	}
	ctx := context.Background()
	keys := map[string]bool{} // the masters that got a key
	for i := 0; len(keys) < 3; i++ {
		if i == 100 {
			t.Fatalf("100 keys on %d masters, want 3", len(keys))
		}
		key := fmt.Sprint("k", i)
		if err := cc.Set(ctx, key, i, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", key, err)
		}
		keys[c.NodeFor(key).Addr()] = true
	}
	var masters atomic.Int32
	if err := cc.ForEachMaster(ctx, func(ctx context.Context, m *goredis.Client) error {
		masters.Add(1)
		return m.Ping(ctx).Err()
	}); err != nil || masters.Load() != 3 {
		t.Fatalf("PING every master: %d masters, %v; want 3", masters.Load(), err)
	}

	if err := c.NodeFor("k0").Client().Wait(ctx, 1, time.Second).Err(); err != nil {
		t.Fatalf("WAIT: %v", err)
	}
	c.KillMaster("k0")
	c.Failover("k0")
	start := time.Now()
	await.Until(t, 5*time.Second, func() error {
		v, err := cc.Get(ctx, "k0").Result()
		if err == nil && v != "0" {
			t.Fatalf("GET k0 after the failover: %q, want 0", v)
		}
		return err
	})
	t.Logf("the client reached the new master %v after the failover", time.Since(start))
}
