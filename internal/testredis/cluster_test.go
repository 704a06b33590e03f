package testredis_test

import (
	"context"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/await"
	"github.com/pushd/pushd/internal/testredis"
)

// TestStartCluster: a cluster of three masters and three replicas serves
// keys on every master; the master of a killed key's slot is replaced by
// its replica, which still holds the key, and the killed node comes back.
func TestStartCluster(t *testing.T) {
	c := testredis.StartCluster(t)
	if got := len(c.Masters()); got != 3 {
		t.Fatalf("%d masters, want 3", got)
	}
	ctx := context.Background()
	cc := c.Client()
	seen := map[string]bool{}
	for _, key := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		if err := cc.Set(ctx, key, key, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", key, err)
		}
		seen[c.NodeFor(key).Addr()] = true
	}
	if len(seen) != 3 {
		t.Fatalf("keys on %d masters, want 3", len(seen))
	}
	// WAIT makes the write reach the replica before its master dies.
	if n, err := c.NodeFor("a").Client().Wait(ctx, 1, time.Second).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT: %d, %v; want 1 replica", n, err)
	}

	killed := c.KillMaster("a")
	start := time.Now()
	now := c.Failover("a")
	t.Logf("failover took %v", time.Since(start))
	if now == killed {
		t.Fatal("the killed node still serves the key")
	}
	// The client's slot map still names the killed master until reloaded.
	cc.ReloadState(ctx)
	await.Until(t, 5*time.Second, func() error {
		v, err := cc.Get(ctx, "a").Result()
		if err == nil && v != "a" {
			t.Fatalf("GET a after failover: %q", v)
		}
		return err
	})
	killed.Start()
	if got := len(c.Masters()); got != 3 {
		t.Fatalf("%d masters after the failover, want 3", got)
	}
}
