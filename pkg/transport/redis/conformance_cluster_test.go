package redis

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/pushd/pushd/internal/testredis"
	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/hub/hubtest"
)

// TestConformanceCluster runs the hub.Transport suite on a real Redis
// Cluster of 3 masters and 3 replicas (sharded pub/sub), shared by the
// subtests, each with a channel prefix of its own. The Resubscribe
// subtest gets a cluster of its own, whose Restart kills (SIGKILL) the
// master owning the first node's reply channel and waits until its
// replica took over: restarting the shared cluster would disturb the
// parallel subtests. (TestClusterMasterKilled also brings the killed
// master back.)
func TestConformanceCluster(t *testing.T) {
	shared := testredis.StartCluster(t)
	hubtest.Run(t, func(t *testing.T, apps []string, nodeIDs []string) hubtest.Cluster {
		prefix := testPrefix(t)
		cl := shared
		var c hubtest.Cluster
		if strings.HasSuffix(t.Name(), "/Resubscribe") {
			cl = testredis.StartCluster(t)
			key := prefix + ":reply:" + nodeIDs[0]
			c.Restart = func() {
				cl.KillMaster(key)
				cl.Failover(key)
			}
		}
		for _, id := range nodeIDs {
			tr, err := New(Config{URL: cl.URL(), Prefix: prefix, NodeID: id, Logger: testLogger(t)})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if !tr.sharded {
				t.Fatalf("a cluster URL gave a transport without sharded pub/sub")
			}
			t.Cleanup(func() {
				if err := tr.Close(); err != nil {
					t.Errorf("Close %s: %v", id, err)
				}
			})
			c.Nodes = append(c.Nodes, hubtest.Node{Transport: tr})
		}
		return c
	})
}

// TestClusterSpreadsChannels checks that a node's routing keys land on
// several masters and that a send counts the nodes on each exactly.
func TestClusterSpreadsChannels(t *testing.T) {
	cl := testredis.StartCluster(t)
	prefix := testPrefix(t)
	a := startNodeURL(t, cl.URL(), prefix, "a", 0)
	fastProbes := func(c *Config) { c.ProbeInterval = 50 * time.Millisecond }
	b := startNodeURL(t, cl.URL(), prefix, "b", 2, fastProbes)
	c := startNodeURL(t, cl.URL(), prefix, "c", 3, fastProbes)
	ctx := context.Background()
	masters := make(map[string]bool)
	var users []string
	for i := range 12 {
		user := string(rune('a'+i)) + "user"
		users = append(users, user)
		masters[cl.NodeFor(b.channel("app", "u:"+user)).Addr()] = true
		b.SetInterest("app", "u:"+user, true)
		c.SetInterest("app", "u:"+user, true)
	}
	if len(masters) < 2 {
		t.Fatalf("12 keys on %d master(s), want them spread", len(masters))
	}
	keys := make([]string, len(users))
	for i, u := range users {
		keys[i] = "u:" + u
	}
	for _, n := range []*node{b, c} {
		if err := n.AwaitInterest(ctx, "app", keys); err != nil {
			t.Fatalf("AwaitInterest %s: %v", n.cfg.NodeID, err)
		}
	}
	for _, u := range users {
		n, err := a.Deliver(ctx, "app", hub.Target{UserIDs: []string{u}}, hub.Event{Name: "e", Data: "1"})
		if err != nil || n != 5 {
			t.Fatalf("Deliver to %s = %d, %v; want 5 (2 on b + 3 on c)", u, n, err)
		}
	}
	// Several keys in one send (a pipeline over several masters): each
	// node counted once.
	n, err := a.Deliver(ctx, "app", hub.Target{UserIDs: users}, hub.Event{Name: "e", Data: "2"})
	if err != nil || n != 5 {
		t.Fatalf("Deliver to %d users = %d, %v; want 5", len(users), n, err)
	}
	if got := a.Stats().Subscribed; got != 0 {
		t.Errorf("a holds no keys but has %d subscribed", got)
	}
	// The connections to masters made after the start (b and c began with
	// the reply channel's only) were probed without a false alarm.
	for _, n := range []*node{b, c} {
		since := n.Stats().Probes
		waitFor(t, 10*time.Second, n.cfg.NodeID+" probing every connection twice more", func() bool {
			return n.Stats().Probes >= since+2
		})
	}
	for _, n := range []*node{a, b, c} {
		if st := n.Stats(); st.Resubscribes != 0 || st.ProbeFailures != 0 {
			t.Errorf("%s: %+v, want no resubscription and no probe failure", n.cfg.NodeID, st)
		}
	}
}

// TestClusterMasterKilled kills (SIGKILL) the master owning a node's
// routing key while another node sends to it, and checks that routing
// recovers once the replica took over: sends reach the node again. The
// recovery time, from the kill to the first send counted again, is in the
// test output.
func TestClusterMasterKilled(t *testing.T) {
	cl := testredis.StartCluster(t)
	prefix := testPrefix(t)
	resubscribed := make(chan struct{}, 16)
	sender := startNodeURL(t, cl.URL(), prefix, "sender", 0)
	holder := startNodeURL(t, cl.URL(), prefix, "holder", 1, func(c *Config) {
		c.ProbeInterval = 200 * time.Millisecond
		c.ProbeTimeout = 500 * time.Millisecond
		c.OnResubscribe = func() { resubscribed <- struct{}{} }
	})
	ctx := context.Background()
	holder.SetInterest("app", "u:42", true)
	if err := holder.AwaitInterest(ctx, "app", []string{"u:42"}); err != nil {
		t.Fatalf("AwaitInterest: %v", err)
	}
	target := hub.Target{UserIDs: []string{"42"}}
	send := func() (int, error) {
		sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		return sender.Deliver(sctx, "app", target, hub.Event{Name: "e", Data: "1"})
	}
	waitFor(t, 10*time.Second, "a send counting the holder", func() bool {
		n, err := send()
		return err == nil && n == 1
	})
	before := holder.h.deliveries.Load()

	key := holder.channel("app", "u:42")
	type result struct {
		recovery     time.Duration
		failed, lost int
	}
	recovered := make(chan result, 1)
	stop := make(chan struct{})
	defer close(stop)
	killed := cl.KillMaster(key)
	start := time.Now()
	go func() { // the traffic: a send every 5 ms until one is counted
		var r result
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			n, err := send()
			switch {
			case err == nil && n == 1:
				r.recovery = time.Since(start)
				recovered <- r
				return
			case err != nil:
				r.failed++
			default:
				r.lost++
			}
		}
	}()
	newMaster := cl.Failover(key)
	failover := time.Since(start)
	var r result
	select {
	case r = <-recovered:
	case <-time.After(60 * time.Second):
		t.Fatalf("no send reached the holder within 60 s of the kill of %s", killed.Addr())
	}
	t.Logf("RECOVERY: sends reach the holder again %v after SIGKILL of the master of its key (replica promoted and cluster ok after %v; %d sends failed, %d counted nobody meanwhile; cluster-node-timeout %v)",
		r.recovery.Round(time.Millisecond), failover.Round(time.Millisecond), r.failed, r.lost, testredis.ClusterNodeTimeout)
	if newMaster == killed {
		t.Fatalf("the killed master %s still owns %s", killed.Addr(), key)
	}
	if got := holder.h.deliveries.Load(); got <= before {
		t.Errorf("holder served %d deliveries after the kill, want more than %d", got, before)
	}
	select { // called in a goroutine of its own
	case <-resubscribed:
	case <-time.After(10 * time.Second):
		t.Errorf("OnResubscribe not called after the failover")
	}
	// The subscription is on the new master now.
	nodeClient := goredis.NewClient(&goredis.Options{Addr: newMaster.Addr()})
	defer nodeClient.Close()
	subs, err := nodeClient.PubSubShardNumSub(ctx, key).Result()
	if err != nil || subs[key] != 1 {
		t.Errorf("SHARDNUMSUB %s on %s = %v, %v; want 1", key, newMaster.Addr(), subs, err)
	}

	// The killed master comes back, claiming its old slots until it learns
	// that its replica took them: a node that subscribed on it meanwhile
	// is not counted by the new master, which its probe notices. Every
	// send is counted again, and stays so.
	killed.Start()
	back := time.Now()
	awaitReplica(t, killed)
	waitFor(t, 30*time.Second, "the holder subscribed on the new master", func() bool {
		subs, err := nodeClient.PubSubShardNumSub(ctx, key).Result()
		return err == nil && subs[key] == 1
	})
	waitFor(t, 30*time.Second, "a send counting the holder", func() bool {
		n, err := send()
		return err == nil && n == 1
	})
	t.Logf("RECOVERY: sends counted again %v after the killed master was started again", time.Since(back).Round(time.Millisecond))
	for i := range 20 {
		if n, err := send(); err != nil || n != 1 {
			t.Fatalf("send %d after the old master came back = %d, %v; want 1", i, n, err)
		}
	}
}

// awaitReplica waits until s, a master killed and started again, says it
// is a replica (it comes back claiming its old slots until the cluster
// tells it that its replica took them over).
func awaitReplica(tb testing.TB, s *testredis.Server) {
	tb.Helper()
	c := s.Client()
	waitFor(tb, 30*time.Second, s.Addr()+" back as a replica", func() bool {
		info, err := c.Info(context.Background(), "replication").Result()
		return err == nil && strings.Contains(info, "role:slave")
	})
}

// TestClusterOldMasterBack kills the master owning a node's routing key
// and starts it again as soon as its replica took over, while the nodes
// are still resubscribing: the old master comes back claiming its slots
// for a moment, and a node that subscribes on it then is not counted by
// the new master. The node's probe notices; the test checks that the
// subscription ends up on the new master and sends count the node again,
// and logs how long that took.
func TestClusterOldMasterBack(t *testing.T) {
	cl := testredis.StartCluster(t)
	prefix := testPrefix(t)
	sender := startNodeURL(t, cl.URL(), prefix, "sender", 0)
	holder := startNodeURL(t, cl.URL(), prefix, "holder", 1)
	ctx := context.Background()
	holder.SetInterest("app", "u:42", true)
	if err := holder.AwaitInterest(ctx, "app", []string{"u:42"}); err != nil {
		t.Fatalf("AwaitInterest: %v", err)
	}
	key := holder.channel("app", "u:42")
	killed := cl.KillMaster(key)
	newMaster := cl.Failover(key)
	killed.Start()
	back := time.Now()
	awaitReplica(t, killed)
	nc := goredis.NewClient(&goredis.Options{Addr: newMaster.Addr()})
	defer nc.Close()
	waitFor(t, 30*time.Second, "the holder subscribed on the new master", func() bool {
		subs, err := nc.PubSubShardNumSub(ctx, key).Result()
		return err == nil && subs[key] == 1
	})
	waitFor(t, 30*time.Second, "a send counting the holder", func() bool {
		n, err := sender.Deliver(ctx, "app", hub.Target{UserIDs: []string{"42"}}, hub.Event{Name: "e", Data: "1"})
		return err == nil && n == 1
	})
	t.Logf("RECOVERY: sends counted again %v after the old master came back during the resubscription (holder %+v)",
		time.Since(back).Round(time.Millisecond), holder.Stats())
}

// TestClusterNodeIDWithBraces checks that New refuses, on a Redis Cluster,
// a node id that would set the hash tag of the node's probe channels.
func TestClusterNodeIDWithBraces(t *testing.T) {
	_, err := New(Config{URL: "redis://127.0.0.1:1/0?cluster=1", NodeID: "n{1}"})
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("New with NodeID n{1} on a cluster URL: %v, want ErrConfig", err)
	}
	tr, err := New(Config{URL: "redis://127.0.0.1:1/0", NodeID: "n{1}"})
	if err != nil {
		t.Fatalf("New with NodeID n{1} on a standalone URL: %v", err)
	}
	if err := tr.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}
