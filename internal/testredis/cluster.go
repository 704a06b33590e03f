package testredis

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterNodeTimeout is the cluster-node-timeout StartCluster gives its
// nodes: how long a master must be unreachable before its replica takes
// over. Short, so that failover tests wait about a second and a half, yet
// long enough that a busy 2-core machine does not fail masters over by
// mistake. An extra "--cluster-node-timeout" argument overrides it.
const ClusterNodeTimeout = 1500 * time.Millisecond

// clusterReadyTimeout bounds how long StartCluster waits for the cluster
// to form, and Failover for a replica to take over.
const clusterReadyTimeout = 30 * time.Second

// Cluster is a private Redis Cluster: three masters, each with one
// replica, every node a redis-server of this package on its own port,
// cluster bus port and directory.
type Cluster struct {
	tb    testing.TB
	nodes []*Server
}

// StartCluster runs a Redis Cluster of six private redis-server processes
// without persistence (extra arguments such as "--appendonly", "yes" are
// given to every node), made with redis-cli --cluster create
// --cluster-replicas 1, and returns once every node says cluster_state:ok,
// all 16384 slots are served and every replica is in sync with its master.
// Every node stops when the test ends. Without redis-server or redis-cli it
// fails or skips the test (see Binary).
func StartCluster(tb testing.TB, extra ...string) *Cluster {
	tb.Helper()
	Require(tb, "a Redis Cluster")
	cli := requireCLI(tb)
	start := time.Now()
	c := &Cluster{tb: tb}
	for range 6 {
		c.nodes = append(c.nodes, launch(tb, func(s *Server) ([]string, error) {
			bus := freePort(tb)
			return append([]string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
				"--save", "", "--appendonly", "no", "--dir", s.dir,
				"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(bus),
				"--cluster-config-file", filepath.Join(s.dir, "nodes.conf"),
				"--cluster-node-timeout", strconv.FormatInt(ClusterNodeTimeout.Milliseconds(), 10),
				// A replica's first sync starts at once, not after 5 s.
				"--repl-diskless-sync-delay", "0"},
				extra...), nil
		}))
	}
	args := []string{"--cluster", "create"}
	args = append(args, c.Addrs()...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	if err := c.waitFormed(); err != nil {
		tb.Fatalf("testredis: cluster not ready after %v: %v", clusterReadyTimeout, err)
	}
	tb.Logf("testredis: Redis Cluster on %s ready in %v", strings.Join(c.Addrs(), " "), time.Since(start).Round(time.Millisecond))
	return c
}

// requireCLI returns the path of redis-cli, failing or skipping the test
// as Require does when it is not installed.
func requireCLI(tb testing.TB) string {
	tb.Helper()
	path, err := exec.LookPath("redis-cli")
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		tb.Fatalf("redis-cli is not installed and CI is set (scripts/test.sh installs it): %v", err)
	}
	tb.Skipf("needs redis-cli (to make a Redis Cluster), which is not installed (scripts/test.sh installs it; CI=1 makes this a failure): %v", err)
	return ""
}

// Nodes returns the six nodes in the order they were given to redis-cli,
// which made the first three masters (roles change after a failover).
func (c *Cluster) Nodes() []*Server { return c.nodes }

// Addrs returns host:port of every node.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// URL is the cluster's redis:// URL in pushd's form: the first node, the
// others as addr= seeds, cluster=1.
func (c *Cluster) URL() string {
	var b strings.Builder
	b.WriteString("redis://" + c.nodes[0].Addr() + "/0?cluster=1")
	for _, n := range c.nodes[1:] {
		b.WriteString("&addr=" + n.Addr())
	}
	return b.String()
}

// Client returns a cluster client of every node, closed when the test
// ends.
func (c *Cluster) Client() *redis.ClusterClient {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	c.tb.Cleanup(func() { _ = cc.Close() })
	return cc
}

// node returns the node listening on addr, or nil.
func (c *Cluster) node(addr string) *Server {
	for _, n := range c.nodes {
		if n.Addr() == addr {
			return n
		}
	}
	return nil
}

// NodeFor returns the master that serves key's hash slot now, asked of a
// running node.
func (c *Cluster) NodeFor(key string) *Server {
	c.tb.Helper()
	slot := c.slotOf(key)
	slots, err := c.slots()
	if err != nil {
		c.tb.Fatalf("testredis: CLUSTER SLOTS: %v", err)
	}
	for _, r := range slots {
		if slot >= r.Start && slot <= r.End && len(r.Nodes) > 0 {
			if n := c.node(r.Nodes[0].Addr); n != nil {
				return n
			}
		}
	}
	c.tb.Fatalf("testredis: no node serves slot %d of key %q", slot, key)
	return nil
}

// Masters returns the nodes that are masters now, as a running node sees
// them.
func (c *Cluster) Masters() []*Server {
	c.tb.Helper()
	slots, err := c.slots()
	if err != nil {
		c.tb.Fatalf("testredis: CLUSTER SLOTS: %v", err)
	}
	var masters []*Server
	for _, r := range slots {
		if len(r.Nodes) == 0 {
			continue
		}
		if n := c.node(r.Nodes[0].Addr); n != nil && !contains(masters, n) {
			masters = append(masters, n)
		}
	}
	return masters
}

func contains(list []*Server, s *Server) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// KillMaster kills the master serving key's slot with SIGKILL and returns
// it; its replica takes over after ClusterNodeTimeout (Failover waits for
// that). Start on the returned server brings it back, as a replica.
func (c *Cluster) KillMaster(key string) *Server {
	c.tb.Helper()
	m := c.NodeFor(key)
	m.Kill()
	return m
}

// Failover waits until a running node serves key's slot and the cluster is
// whole again (cluster_state:ok on every running node, all slots served)
// and returns that node, failing the test after 30 s.
func (c *Cluster) Failover(key string) *Server {
	c.tb.Helper()
	slot := c.slotOf(key)
	deadline := time.Now().Add(clusterReadyTimeout)
	for {
		err := c.checkRunning(slot)
		if err == nil {
			return c.NodeFor(key)
		}
		if time.Now().After(deadline) {
			c.tb.Fatalf("testredis: no failover of slot %d within %v: %v", slot, clusterReadyTimeout, err)
		}
		time.Sleep(20 * time.Millisecond) // polling the nodes' view of the cluster
	}
}

// checkRunning reports why the running nodes do not all agree that the
// cluster is ok with a running master on slot.
func (c *Cluster) checkRunning(slot int) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, n := range c.running() {
		if err := clusterOK(ctx, n); err != nil {
			return err
		}
		addr, err := slotOwner(ctx, n, slot)
		if err != nil {
			return err
		}
		if owner := c.node(addr); owner == nil || !owner.alive() {
			return fmt.Errorf("%s: slot %d still on %s, which is down", n.Addr(), slot, addr)
		}
	}
	return nil
}

// slotOf returns key's hash slot, as CLUSTER KEYSLOT on a running node
// tells it.
func (c *Cluster) slotOf(key string) int {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error = errors.New("no node is running")
	for _, n := range c.running() {
		var slot int64
		slot, err = withNode(n, func(r *redis.Client) (int64, error) {
			return r.ClusterKeySlot(ctx, key).Result()
		})
		if err == nil {
			return int(slot)
		}
	}
	c.tb.Fatalf("testredis: CLUSTER KEYSLOT %q: %v", key, err)
	return 0
}

// running returns the nodes whose process runs.
func (c *Cluster) running() []*Server {
	var up []*Server
	for _, n := range c.nodes {
		if n.alive() {
			up = append(up, n)
		}
	}
	return up
}

// slots returns CLUSTER SLOTS as the first running node answers it.
func (c *Cluster) slots() ([]redis.ClusterSlot, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error = errors.New("no node is running")
	for _, n := range c.running() {
		var slots []redis.ClusterSlot
		slots, err = withNode(n, func(r *redis.Client) ([]redis.ClusterSlot, error) {
			return r.ClusterSlots(ctx).Result()
		})
		if err == nil {
			return slots, nil
		}
	}
	return nil, err
}

// waitFormed waits until every node says the cluster is ok with all slots
// served, knows all six nodes, and every replica is in sync.
func (c *Cluster) waitFormed() error {
	deadline := time.Now().Add(clusterReadyTimeout)
	for {
		err := c.checkFormed()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond) // polling the nodes while they gossip
	}
}

func (c *Cluster) checkFormed() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, n := range c.nodes {
		if err := clusterOK(ctx, n); err != nil {
			return err
		}
		info, err := withNode(n, func(r *redis.Client) (string, error) {
			return r.Info(ctx, "replication").Result()
		})
		if err != nil {
			return fmt.Errorf("%s: INFO: %w", n.Addr(), err)
		}
		role := infoField(info, "role")
		switch {
		case role == "slave" && infoField(info, "master_link_status") != "up":
			return fmt.Errorf("%s: replica not in sync yet", n.Addr())
		case role == "master" && infoField(info, "connected_slaves") != "1":
			return fmt.Errorf("%s: master with %s replicas", n.Addr(), infoField(info, "connected_slaves"))
		}
	}
	return nil
}

// clusterOK reports why n does not see a whole cluster of six nodes.
func clusterOK(ctx context.Context, n *Server) error {
	info, err := withNode(n, func(r *redis.Client) (string, error) {
		return r.ClusterInfo(ctx).Result()
	})
	if err != nil {
		return fmt.Errorf("%s: CLUSTER INFO: %w", n.Addr(), err)
	}
	for field, want := range map[string]string{"cluster_state": "ok",
		"cluster_slots_assigned": "16384", "cluster_slots_ok": "16384", "cluster_known_nodes": "6"} {
		if got := infoField(info, field); got != want {
			return fmt.Errorf("%s: %s:%s, want %s", n.Addr(), field, got, want)
		}
	}
	return nil
}

// slotOwner returns the address of the master n says serves slot.
func slotOwner(ctx context.Context, n *Server, slot int) (string, error) {
	slots, err := withNode(n, func(r *redis.Client) ([]redis.ClusterSlot, error) {
		return r.ClusterSlots(ctx).Result()
	})
	if err != nil {
		return "", fmt.Errorf("%s: CLUSTER SLOTS: %w", n.Addr(), err)
	}
	for _, r := range slots {
		if slot >= r.Start && slot <= r.End && len(r.Nodes) > 0 {
			return r.Nodes[0].Addr, nil
		}
	}
	return "", fmt.Errorf("%s: slot %d unserved", n.Addr(), slot)
}

// withNode runs fn on a client of n alone, closed afterwards.
func withNode[T any](n *Server, fn func(*redis.Client) (T, error)) (T, error) {
	r := redis.NewClient(&redis.Options{Addr: n.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	defer r.Close()
	return fn(r)
}

// infoField returns the value of field in the text of INFO or CLUSTER
// INFO, "" when absent.
func infoField(info, field string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

// alive reports whether the server's process runs.
func (s *Server) alive() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// SlotOf returns key's hash slot (CLUSTER KEYSLOT on a running node).
func (c *Cluster) SlotOf(key string) int { return c.slotOf(key) }

// OtherMaster returns a master that does not serve key's slot now.
func (c *Cluster) OtherMaster(key string) *Server {
	c.tb.Helper()
	owner := c.NodeFor(key)
	for _, m := range c.Masters() {
		if m != owner {
			return m
		}
	}
	c.tb.Fatalf("testredis: no master other than %s", owner.Addr())
	return nil
}

// MoveSlot moves the hash slot of key to the master to, the way
// redis-cli --cluster reshard moves a slot: CLUSTER SETSLOT IMPORTING on
// to and MIGRATING on the owner, MIGRATE of the slot's keys, then SETSLOT
// NODE on to, on the owner (which then unsubscribes the slot's shard
// channels: Redis sends their subscribers SUNSUBSCRIBE) and on every other
// master. It returns the master that owned the slot, and fails the test
// when any step fails.
func (c *Cluster) MoveSlot(key string, to *Server) *Server {
	c.tb.Helper()
	from := c.NodeFor(key)
	if from == to {
		c.tb.Fatalf("testredis: MoveSlot: %s already serves the slot of %q", to.Addr(), key)
	}
	slot := c.slotOf(key)
	if err := c.moveSlot(slot, from, to); err != nil {
		c.tb.Fatalf("testredis: move slot %d from %s to %s: %v", slot, from.Addr(), to.Addr(), err)
	}
	return from
}

func (c *Cluster) moveSlot(slot int, from, to *Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	src, dst := from.Client(), to.Client()
	fromID, err := src.ClusterMyID(ctx).Result()
	if err != nil {
		return fmt.Errorf("CLUSTER MYID: %w", err)
	}
	toID, err := dst.ClusterMyID(ctx).Result()
	if err != nil {
		return fmt.Errorf("CLUSTER MYID: %w", err)
	}
	if err := dst.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", fromID).Err(); err != nil {
		return fmt.Errorf("SETSLOT IMPORTING: %w", err)
	}
	if err := src.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", toID).Err(); err != nil {
		return fmt.Errorf("SETSLOT MIGRATING: %w", err)
	}
	for {
		keys, err := src.ClusterGetKeysInSlot(ctx, slot, 100).Result()
		if err != nil {
			return fmt.Errorf("GETKEYSINSLOT: %w", err)
		}
		if len(keys) == 0 {
			break
		}
		args := []any{"MIGRATE", "127.0.0.1", to.Port(), "", 0, 5000, "REPLACE", "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		if err := src.Do(ctx, args...).Err(); err != nil {
			return fmt.Errorf("MIGRATE: %w", err)
		}
	}
	// The new owner first, then the old one, then every other master, as
	// redis-cli does.
	targets := []*Server{to, from}
	for _, m := range c.Masters() {
		if m != to && m != from {
			targets = append(targets, m)
		}
	}
	for _, m := range targets {
		if err := m.Client().Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", toID).Err(); err != nil {
			return fmt.Errorf("SETSLOT NODE on %s: %w", m.Addr(), err)
		}
	}
	return nil
}
