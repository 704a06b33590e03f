package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/pushd/pushd/internal/testredis"
	"github.com/pushd/pushd/pkg/hub"
)

// The tests of this file check that on a Redis Cluster a subscription is
// repaired connection by connection: a slot moving to another master, a
// master killed, a connection killed, a probe that does not come back on
// one connection — only the channels concerned are subscribed again, on
// the master owning them now, while the routing keys on the other
// masters keep reaching the node throughout, and the session (with every
// other connection) stays.

// repairRig is a holder on a cluster, holding one routing key on each
// master (users[i] on masters[i]), and two nodes sending to it: sender
// for the traffic to the keys that must not miss, prober for the sends
// that wait for a key to be counted again (so that the steady traffic is
// measured on a node that sends nothing to a dead master; that a node's
// sends to a dead master do not delay its others is
// TestClusterDeadMasterDoesNotDelayOtherSends).
type repairRig struct {
	cl           *testredis.Cluster
	sender       *node
	prober       *node
	holder       *node
	resubscribed atomic.Int64
	users        []string
	masters      []*testredis.Server
}

// victim returns the index of the first master that does not own the
// sender's reply channel (one a test may kill or pause without cutting
// the sender off its replies) and the users whose keys are on the others.
func (r *repairRig) victim() (int, []string) {
	replyMaster := r.cl.NodeFor(r.sender.replyChannel)
	victim := 0
	for r.masters[victim] == replyMaster {
		victim++
	}
	var others []string
	for i, u := range r.users {
		if i != victim {
			others = append(others, u)
		}
	}
	return victim, others
}

// startRepairRig starts the cluster and the nodes, with fast probes on
// the holder, and waits until the holder's keys are subscribed.
func startRepairRig(t *testing.T, probe func(*Config)) *repairRig {
	t.Helper()
	r := &repairRig{cl: testredis.StartCluster(t)}
	prefix := testPrefix(t)
	r.sender = startNodeURL(t, r.cl.URL(), prefix, "sender", 0)
	r.prober = startNodeURL(t, r.cl.URL(), prefix, "prober", 0)
	r.holder = startNodeURL(t, r.cl.URL(), prefix, "holder", 1, func(c *Config) {
		c.ProbeInterval = 200 * time.Millisecond
		c.ProbeTimeout = 500 * time.Millisecond
		c.OnResubscribe = func() { r.resubscribed.Add(1) }
		if probe != nil {
			probe(c)
		}
	})
	r.masters = r.cl.Masters()
	for _, m := range r.masters {
		for i := 0; ; i++ {
			user := fmt.Sprintf("%s-%d", m.Addr(), i)
			if r.cl.NodeFor(r.holder.channel("app", "u:"+user)) == m {
				r.users = append(r.users, user)
				break
			}
		}
	}
	keys := make([]string, len(r.users))
	for i, u := range r.users {
		keys[i] = "u:" + u
		r.holder.SetInterest("app", keys[i], true)
	}
	if err := r.holder.AwaitInterest(context.Background(), "app", keys); err != nil {
		t.Fatalf("AwaitInterest: %v", err)
	}
	for _, u := range r.users {
		waitFor(t, 10*time.Second, "a send to "+u+" counting the holder", func() bool { return r.send(u) == nil })
	}
	return r
}

// send delivers to user through the sender and reports why it did not
// count the holder exactly once.
func (r *repairRig) send(user string) error { return r.sendVia(r.sender, user) }

// sendVia is send through from.
func (r *repairRig) sendVia(from *node, user string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	n, err := from.Deliver(ctx, "app", hub.Target{UserIDs: []string{user}}, hub.Event{Name: "e", Data: user})
	if err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("send to %s counted %d, want 1", user, n)
	}
	return nil
}

// ssubscribes returns how many SSUBSCRIBE commands each master has run.
func (r *repairRig) ssubscribes(t *testing.T) map[*testredis.Server]int {
	t.Helper()
	calls := map[*testredis.Server]int{}
	for _, m := range r.masters {
		calls[m] = commandCalls(t, m.Client(), "ssubscribe")
	}
	return calls
}

// traffic sends to each of users every 5 ms until stop, and collects the
// sends that did not count the holder.
type traffic struct {
	stop   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	sent   int
	missed []string
}

func (r *repairRig) traffic(users ...string) *traffic {
	tr := &traffic{stop: make(chan struct{})}
	for _, u := range users {
		tr.wg.Go(func() {
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-tr.stop:
					return
				case <-tick.C:
				}
				err := r.send(u)
				tr.mu.Lock()
				tr.sent++
				if err != nil {
					tr.missed = append(tr.missed, err.Error())
				}
				tr.mu.Unlock()
			}
		})
	}
	return tr
}

// end stops the traffic and returns how many sends went and which missed.
func (tr *traffic) end() (int, []string) {
	close(tr.stop)
	tr.wg.Wait()
	return tr.sent, tr.missed
}

// untilCounted sends to user until a send counts the holder and returns
// how long that took from since.
func (r *repairRig) untilCounted(t *testing.T, user string, since time.Time) time.Duration {
	t.Helper()
	waitFor(t, 30*time.Second, "a send to "+user+" counting the holder again", func() bool { return r.sendVia(r.prober, user) == nil })
	return time.Since(since)
}

// checkRepairedOnly checks that the holder repaired connections without
// ending its session, and was told to resync.
func (r *repairRig) checkRepairedOnly(t *testing.T, moves uint64) Stats {
	t.Helper()
	waitFor(t, 10*time.Second, "OnResubscribe called", func() bool { return r.resubscribed.Load() >= 1 })
	st := r.holder.Stats()
	if st.ShardRepairs == 0 || st.Resubscribes != st.ShardRepairs {
		t.Errorf("holder %+v: want shard repairs only (Resubscribes == ShardRepairs > 0), no new session", st)
	}
	if moves > 0 && st.ShardMoves != moves {
		t.Errorf("holder moved %d channels, want %d", st.ShardMoves, moves)
	}
	return st
}

// userInSlot returns a user whose routing key's channel on the holder is
// in the hash slot slot.
func (r *repairRig) userInSlot(slot int) string {
	for i := 0; ; i++ {
		u := fmt.Sprintf("slot%d-%d", slot, i)
		if keySlot(r.holder.channel("app", "u:"+u)) == slot {
			return u
		}
	}
}

// numSub returns SHARDNUMSUB of channel on the master m.
func numSub(t *testing.T, m *testredis.Server, channel string) int64 {
	t.Helper()
	subs, err := m.Client().PubSubShardNumSub(context.Background(), channel).Result()
	if err != nil {
		t.Fatalf("SHARDNUMSUB on %s: %v", m.Addr(), err)
	}
	return subs[channel]
}

// TestClusterSlotMoved moves the slot of one of the holder's routing keys
// to another master (CLUSTER SETSLOT/MIGRATE, as redis-cli --cluster
// reshard does) while a sender sends to it and to the holder's key on the
// same master: the old master unsubscribes the moved channel, the holder
// subscribes that channel alone on its new master (one SSUBSCRIBE there,
// none on the others), the other key never misses a send, and the moved
// one is counted again; the recovery time is in the test output.
func TestClusterSlotMoved(t *testing.T) {
	r := startRepairRig(t, nil)
	moving := r.users[0]
	key := r.holder.channel("app", "u:"+moving)
	from := r.masters[0]
	// A second key of the holder on the same master, in another slot.
	var sibling string
	for i := 0; sibling == ""; i++ {
		u := fmt.Sprintf("sibling-%d", i)
		ch := r.holder.channel("app", "u:"+u)
		if r.cl.NodeFor(ch) == from && r.cl.SlotOf(ch) != r.cl.SlotOf(key) {
			sibling = u
		}
	}
	r.holder.SetInterest("app", "u:"+sibling, true)
	if err := r.holder.AwaitInterest(context.Background(), "app", []string{"u:" + sibling}); err != nil {
		t.Fatal(err)
	}
	to := r.masters[1]
	before := r.ssubscribes(t)
	steady := r.traffic(append([]string{sibling}, r.users[1:]...)...)

	start := time.Now()
	r.cl.MoveSlot(key, to)
	moved := time.Since(start)
	recovery := r.untilCounted(t, moving, start)
	sent, missed := steady.end()
	t.Logf("RECOVERY: sends to the moved key count the holder again %v after the slot move began (the move took %v); "+
		"%d sends to its other keys meanwhile, %d missed", recovery.Round(time.Millisecond), moved.Round(time.Millisecond), sent, len(missed))
	if len(missed) > 0 {
		t.Errorf("sends to keys whose slot did not move missed the holder: %v", missed)
	}
	r.checkRepairedOnly(t, 1)
	after := r.ssubscribes(t)
	for _, m := range r.masters {
		want := before[m]
		if m == to {
			want++ // the moved channel alone
		}
		if after[m] != want {
			t.Errorf("master %s ran %d SSUBSCRIBE during the move, want %d", m.Addr(), after[m]-before[m], want-before[m])
		}
	}
	if n := numSub(t, to, key); n != 1 {
		t.Errorf("SHARDNUMSUB %s on its new master = %d, want 1", key, n)
	}
	if n := numSub(t, from, r.holder.channel("app", "u:"+sibling)); n != 1 {
		t.Errorf("the sibling key's SHARDNUMSUB on the old master = %d, want 1", n)
	}
	for i := range 50 {
		for _, u := range append(r.users, sibling) {
			if err := r.send(u); err != nil {
				t.Fatalf("send %d after the move: %v", i, err)
			}
		}
	}
	if st := r.holder.Stats(); st.ProbeFailures != 0 {
		t.Errorf("holder %+v: a probe failed", st)
	}
}

// TestClusterMasterKilledRepairsOneShard kills (SIGKILL) the master of one
// of the holder's keys (not the master of the sender's reply channel):
// sends to the holder's keys on the other masters count it throughout the
// failover, no other master sees an SSUBSCRIBE, and the key of the killed
// master is counted again once its replica took over (time logged).
func TestClusterMasterKilledRepairsOneShard(t *testing.T) {
	r := startRepairRig(t, nil)
	victim, others := r.victim()
	var survivors []*testredis.Server
	for i := range r.masters {
		if i != victim {
			survivors = append(survivors, r.masters[i])
		}
	}
	before := r.ssubscribes(t)
	steady := r.traffic(others...)
	key := r.holder.channel("app", "u:"+r.users[victim])
	start := time.Now()
	killed := r.cl.KillMaster(key)
	promoted := r.cl.Failover(key)
	failover := time.Since(start)
	recovery := r.untilCounted(t, r.users[victim], start)
	sent, missed := steady.end()
	t.Logf("RECOVERY: sends to the killed master's key count the holder again %v after the SIGKILL (replica promoted after %v); "+
		"%d sends to its keys on the other masters meanwhile, %d missed", recovery.Round(time.Millisecond), failover.Round(time.Millisecond), sent, len(missed))
	if len(missed) > 0 {
		t.Errorf("sends to keys on masters that stayed missed the holder: %v", missed)
	}
	r.checkRepairedOnly(t, 0)
	for _, m := range survivors {
		if got := commandCalls(t, m.Client(), "ssubscribe"); got != before[m] {
			t.Errorf("surviving master %s ran %d SSUBSCRIBE, want none", m.Addr(), got-before[m])
		}
	}
	if promoted == killed {
		t.Fatalf("the killed master still owns %s", key)
	}
	if n := numSub(t, promoted, key); n != 1 {
		t.Errorf("SHARDNUMSUB %s on the promoted replica = %d, want 1", key, n)
	}
}

// TestClusterConnectionKilled kills the holder's sharded pub/sub
// connection to one master (CLIENT KILL): the holder subscribes that
// connection's channels again on the same master, the other connections
// stay (no SSUBSCRIBE on the other masters) and their keys never miss.
func TestClusterConnectionKilled(t *testing.T) {
	r := startRepairRig(t, nil)
	// A master with neither the sender's nor the prober's reply channel
	// (three masters, two channels).
	senderReply, proberReply := r.cl.NodeFor(r.sender.replyChannel), r.cl.NodeFor(r.prober.replyChannel)
	victim := 0
	for r.masters[victim] == senderReply || r.masters[victim] == proberReply {
		victim++
	}
	m := r.masters[victim]
	var others []string
	for i, u := range r.users {
		if i != victim {
			others = append(others, u)
		}
	}
	before := r.ssubscribes(t)
	steady := r.traffic(others...)
	start := time.Now()
	// The only pub/sub connection to m is the holder's (the sender's and
	// the prober's are to the masters of their reply channels).
	if n, err := m.Client().ClientKillByFilter(context.Background(), "TYPE", "pubsub").Result(); err != nil || n != 1 {
		t.Fatalf("CLIENT KILL TYPE pubsub on %s: %d, %v; want 1 connection", m.Addr(), n, err)
	}
	recovery := r.untilCounted(t, r.users[victim], start)
	sent, missed := steady.end()
	t.Logf("RECOVERY: sends count the holder again %v after its connection to one master was killed; %d sends to its other keys meanwhile, %d missed",
		recovery.Round(time.Millisecond), sent, len(missed))
	if len(missed) > 0 {
		t.Errorf("sends to keys on the other connections missed the holder: %v", missed)
	}
	r.checkRepairedOnly(t, 0)
	after := r.ssubscribes(t)
	for _, o := range r.masters {
		if o != m && after[o] != before[o] {
			t.Errorf("master %s ran %d SSUBSCRIBE, want none", o.Addr(), after[o]-before[o])
		}
	}
	if after[m] == before[m] {
		t.Errorf("master %s saw no SSUBSCRIBE after its connection was killed", m.Addr())
	}
}

// TestClusterProbeLostOnOneShard pauses the writes of one master (CLIENT
// PAUSE WRITE holds SPUBLISH, so the probe of the holder's connection
// there does not come back in time): that connection alone is taken for
// lost and subscribed again, the others stay.
func TestClusterProbeLostOnOneShard(t *testing.T) {
	r := startRepairRig(t, nil)
	replyMaster := r.cl.NodeFor(r.sender.replyChannel)
	holderReply := r.cl.NodeFor(r.holder.replyChannel)
	victim := -1
	for i, m := range r.masters {
		if m != replyMaster && m != holderReply {
			victim = i
		}
	}
	if victim < 0 {
		t.Skip("the sender's and the holder's reply channels are on different masters: no third one to pause")
	}
	m := r.masters[victim]
	before := r.ssubscribes(t)
	failures := r.holder.Stats().ProbeFailures
	if err := m.Client().Do(context.Background(), "CLIENT", "PAUSE", 1500, "WRITE").Err(); err != nil {
		t.Fatalf("CLIENT PAUSE: %v", err)
	}
	start := time.Now()
	waitFor(t, 10*time.Second, "a probe failure on the holder", func() bool { return r.holder.Stats().ProbeFailures > failures })
	recovery := r.untilCounted(t, r.users[victim], start)
	t.Logf("a master's writes paused for 1.5 s: the holder's probe there failed and sends count it again %v after the pause began", recovery.Round(time.Millisecond))
	r.checkRepairedOnly(t, 0)
	after := r.ssubscribes(t)
	for _, o := range r.masters {
		if o != m && after[o] != before[o] {
			t.Errorf("master %s ran %d SSUBSCRIBE, want none", o.Addr(), after[o]-before[o])
		}
	}
	for i, u := range r.users {
		if err := r.send(u); err != nil {
			t.Errorf("send to the key on master %d after the pause: %v", i, err)
		}
	}
}

// TestKeySlot checks the hash slot computation against CLUSTER KEYSLOT's
// known answers.
func TestKeySlot(t *testing.T) {
	for key, want := range map[string]int{
		"foo": 12182, "bar": 5061, "{user1000}.following": 3443, "{user1000}.followers": 3443,
		"foo{}{bar}": 8363, "foo{{bar}}zap": 4015, "foo{bar}{zap}": 5061, "": 0,
	} {
		if got := keySlot(key); got != want {
			t.Errorf("keySlot(%q) = %d, want %d", key, got, want)
		}
	}
	if slot, ok := movedSlot("MOVED 3999 127.0.0.1:6381"); !ok || slot != 3999 {
		t.Errorf("movedSlot = %d, %v; want 3999", slot, ok)
	}
	if _, ok := movedSlot("CROSSSLOT Keys in request don't hash to the same slot"); ok {
		t.Error("movedSlot took CROSSSLOT for MOVED")
	}
}

// TestClusterSubscribeToMovedSlot moves a slot none of the holder's
// channels is in, then has the holder take a routing key of that slot:
// its slot map is stale, so its SSUBSCRIBE goes to the old master, which
// answers -MOVED; the channel moves to the new master, AwaitInterest
// returns and sends count the holder.
func TestClusterSubscribeToMovedSlot(t *testing.T) {
	r := startRepairRig(t, nil)
	// A user the holder does not have yet, whose channel's slot is on
	// the first master.
	var user string
	for i := 0; user == ""; i++ {
		u := fmt.Sprintf("moved-%d", i)
		if r.cl.NodeFor(r.holder.channel("app", "u:"+u)) == r.masters[0] {
			user = u
		}
	}
	key := r.holder.channel("app", "u:"+user)
	to := r.masters[1]
	start := time.Now()
	r.cl.MoveSlot(key, to)
	r.holder.SetInterest("app", "u:"+user, true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.holder.AwaitInterest(ctx, "app", []string{"u:" + user}); err != nil {
		t.Fatalf("AwaitInterest of a key in the moved slot: %v (holder %+v)", err, r.holder.Stats())
	}
	took := r.untilCounted(t, user, start)
	st := r.holder.Stats()
	t.Logf("a key taken right after its slot moved: counted %v after the move (holder %+v)", took.Round(time.Millisecond), st)
	if n := numSub(t, to, key); n != 1 {
		t.Errorf("SHARDNUMSUB %s on the new master = %d, want 1", key, n)
	}
	if st.Resubscribes != st.ShardRepairs {
		t.Errorf("holder %+v: the session was made again", st)
	}
}

// TestClusterDeadMasterDoesNotDelayOtherSends kills the master of one of
// the holder's keys and, from the same sender node, keeps sending to that
// master's keys (that one and keys at the ends of its slot ranges) while
// it sends to the holder's keys on the other masters (and at the ends of
// their slot ranges), for the first second after the SIGKILL (before the
// replica can be promoted, ClusterNodeTimeout): every send to a healthy
// master counts the holder within 300 ms. The commands for the dead master
// must not hold up the sender's commands for the others (head-of-line
// blocking in a shared pipeline). A send counted but returning after more
// than 350 ms (its 300 ms ctx and some slack for a loaded machine) counts
// as failed.
func TestClusterDeadMasterDoesNotDelayOtherSends(t *testing.T) {
	r := startRepairRig(t, nil)
	victim, healthy := r.victim()
	key := r.holder.channel("app", "u:"+r.users[victim])
	dead := []string{r.users[victim]}
	// Keys at both ends of every master's slot ranges, as well: commands
	// whose slots are near each other are the likeliest to share a queue
	// (go-redis's autopipeliner splits its queues by slot range), so a
	// shared queue would hold up some healthy key whatever the machine.
	slots, err := r.cl.Client().ClusterSlots(context.Background()).Result()
	if err != nil {
		t.Fatalf("CLUSTER SLOTS: %v", err)
	}
	var edges []string
	for _, s := range slots {
		for _, slot := range []int{s.Start, s.End} {
			u := r.userInSlot(slot)
			if s.Nodes[0].Addr == r.masters[victim].Addr() {
				dead = append(dead, u)
			} else {
				healthy = append(healthy, u)
				edges = append(edges, "u:"+u)
				r.holder.SetInterest("app", "u:"+u, true)
			}
		}
	}
	if err := r.holder.AwaitInterest(context.Background(), "app", edges); err != nil {
		t.Fatalf("AwaitInterest: %v", err)
	}
	for _, u := range healthy {
		waitFor(t, 10*time.Second, "a send to "+u+" counting the holder", func() bool { return r.send(u) == nil })
	}
	window := testredis.ClusterNodeTimeout * 2 / 3

	r.cl.KillMaster(key)
	start := time.Now()
	stop := make(chan struct{})
	var deadSends, deadCounted atomic.Int64
	var wg sync.WaitGroup
	for _, u := range dead {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if r.send(u) == nil {
					deadCounted.Add(1)
				}
				deadSends.Add(1)
			}
		})
	}
	var mu sync.Mutex
	var sent int
	var slowest time.Duration
	var failed []string
	for _, u := range healthy {
		wg.Go(func() {
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for time.Since(start) < window {
				<-tick.C
				t0 := time.Now()
				err := r.send(u)
				took := time.Since(t0)
				mu.Lock()
				sent++
				slowest = max(slowest, took)
				if err == nil && took > 350*time.Millisecond {
					// Counted, but late: the send outlived its ctx.
					err = errors.New("counted late")
				}
				if err != nil {
					failed = append(failed, fmt.Sprintf("%v after %v", err, took.Round(time.Millisecond)))
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(window) // the length of the measurement, not a synchronisation
	close(stop)
	wg.Wait()
	t.Logf("HOL: %d sends to keys on healthy masters in the %v after the SIGKILL, %d not counted within 300 ms, slowest %v; "+
		"%d sends to the dead master's keys meanwhile (%d counted)",
		sent, window, len(failed), slowest.Round(time.Millisecond), deadSends.Load(), deadCounted.Load())
	if deadSends.Load() == 0 {
		t.Error("no send to the dead master's key was made")
	}
	if sent == 0 {
		t.Fatal("no send to the healthy masters' keys was made")
	}
	if len(failed) > 0 {
		n := min(len(failed), 5)
		t.Errorf("%d of %d sends to keys on healthy masters did not count the holder within 300 ms, e.g. %v", len(failed), sent, failed[:n])
	}
	r.cl.Failover(key)
}

// TestClusterProbeNamesDistinct checks that a new connection never gets
// the probe channel of another one, even when the name first found on its
// master is taken: as after a slot map reload between the two searches
// (a master back with its old slots, then the replica that took them
// over). Sharing one, the probe of the connection on the replica would be
// counted by the other's subscription and never find it lost.
func TestClusterProbeNamesDistinct(t *testing.T) {
	cl := testredis.StartCluster(t)
	tr, err := New(Config{URL: cl.URL(), Prefix: testPrefix(t), NodeID: "n", Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	cc, ok := tr.client.(*goredis.ClusterClient)
	if !ok {
		t.Fatalf("client %T, want a cluster client", tr.client)
	}
	ctx := context.Background()
	s := newShardedSub(tr, cc, reader{})
	addr := cl.Masters()[0].Addr()
	first, _, err := s.shardAt(ctx, addr)
	if err != nil {
		t.Fatalf("shardAt %s: %v", addr, err)
	}
	_ = first.ps.Close()
	// The same name taken by a connection on another address.
	delete(s.shards, addr)
	s.shards["stale"] = &shard{addr: "stale", probe: first.probe}
	sh, _, err := s.shardAt(ctx, addr)
	if err != nil {
		t.Fatalf("shardAt %s again: %v", addr, err)
	}
	defer sh.ps.Close()
	if sh.probe == first.probe {
		t.Errorf("probe channel %s shared by two connections", sh.probe)
	}
	if m, err := s.masterOf(ctx, sh.probe); err != nil || m != addr {
		t.Errorf("master of probe channel %s = %s, %v; want %s", sh.probe, m, err, addr)
	}
}
