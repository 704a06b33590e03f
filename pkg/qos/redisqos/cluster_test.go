package redisqos_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/pushd/pushd/internal/testredis"
	"github.com/pushd/pushd/pkg/qos"
	"github.com/pushd/pushd/pkg/qos/qostest"
)

// TestConformanceCluster runs the suite on a real Redis Cluster. It passes
// because every key of an app carries the hash tag {app}: each script's
// keys, declared or built inside the script, are in one slot. Then
// OneShardPerApp shows what that costs.
func TestConformanceCluster(t *testing.T) {
	c := testredis.StartCluster(t).Client()
	t.Run("Suite", func(t *testing.T) {
		qostest.Run(t, func(t *testing.T) qos.Repository {
			return newRedisRepo(t, c, uniquePrefix())
		})
	})
	t.Run("OneShardPerApp", func(t *testing.T) { testOneShardPerApp(t, c) })
	t.Run("AppNameBraces", func(t *testing.T) { testAppNameBraces(t, c) })
}

// testAppNameBraces: the hash tag is the app name between the first { and
// the next }, so braces in an app name are harmless as long as that tag is
// not empty; an app name starting with } (which pushd's configuration
// allows) gives the empty tag {}, which Redis Cluster ignores, and its
// keys scatter over slots. That case is skipped while it fails, saying so.
func testAppNameBraces(t *testing.T, c *redis.ClusterClient) {
	r := newRedisRepo(t, c, uniquePrefix())
	ctx := context.Background()
	m := qos.Message{ID: "m1", Event: "e", Data: `{}`, UserIDs: []string{"u1"}, Channels: []string{"c1"}}
	for _, app := range []string{"{y}", "a}b", "a{b"} {
		if err := r.Save(ctx, app, m); err != nil {
			t.Fatalf("Save for app %q: %v", app, err)
		}
	}
	err := r.Save(ctx, "}x", m)
	if err != nil && strings.Contains(err.Error(), "CROSSSLOT") {
		t.Skipf("known: app %q makes the empty hash tag {} and Save fails on a cluster (%v); redisqos must encode the app in its tag (issue 16)", "}x", err)
	}
	if err != nil {
		t.Fatalf("Save for app %q: %v", "}x", err)
	}
}

// testOneShardPerApp: however many users an app has, all its inboxes and
// messages live in one slot, on one master, so a Redis Cluster spreads
// apps over its shards but not the users of one app.
func testOneShardPerApp(t *testing.T, c *redis.ClusterClient) {
	prefix := uniquePrefix()
	r := newRedisRepo(t, c, prefix)
	ctx := context.Background()
	for i := range 50 {
		m := qos.Message{ID: fmt.Sprintf("m%02d", i), Event: "e", Data: `{}`,
			UserIDs: []string{fmt.Sprint("u", i), fmt.Sprint("u", i+1)}, Channels: []string{fmt.Sprint("c", i%7)}}
		if err := r.Save(ctx, "demo", m); err != nil {
			t.Fatalf("Save %s: %v", m.ID, err)
		}
	}
	for i := range 50 {
		rc := qos.Recipient{UserID: fmt.Sprint("u", i), Channels: []string{fmt.Sprint("c", i%7)}}
		ms, err := r.Pending(ctx, "demo", rc, "", 0)
		if err != nil || len(ms) == 0 {
			t.Fatalf("Pending u%d: %d messages, %v", i, len(ms), err)
		}
		if _, err := r.Ack(ctx, "demo", rc, ms[0].ID); err != nil {
			t.Fatalf("Ack u%d: %v", i, err)
		}
	}

	var mu sync.Mutex
	holding := map[string]int{} // master → keys of the app
	if err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		keys, err := m.Keys(ctx, prefix+":*").Result()
		mu.Lock()
		defer mu.Unlock()
		if len(keys) > 0 {
			holding[m.Options().Addr] = len(keys)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(holding) != 1 {
		t.Fatalf("the app's keys are on %d masters (%v), want all on one", len(holding), holding)
	}
	t.Logf("all %v keys of the app on one master of 3", holding)
}
