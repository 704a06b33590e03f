package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// redisClusterNodeTimeout is the cluster-node-timeout of a spawned Redis
// Cluster: long, so that a machine busy with the run does not fail a
// master over by mistake.
const redisClusterNodeTimeout = "15000"

// redisCluster is a Redis Cluster the tool started: three masters with a
// replica each.
type redisCluster struct {
	nodes []*server
	addrs []string
	url   string // pushd's form: redis://first/0?cluster=1&addr=…
	dir   string
}

// spawnRedisCluster starts six redis-servers (binary
// cfg.SpawnRedisCluster) with cluster-enabled on free loopback ports,
// without persistence, joins them with redis-cli --cluster create
// --cluster-replicas 1 (redis-cli next to the binary, else on PATH) and
// waits until every node says cluster_state:ok with all slots served. The
// returned cluster is non-nil once a node was started, so that the caller
// can stop it.
func spawnRedisCluster(ctx context.Context, cfg Config) (*redisCluster, error) {
	cli := filepath.Join(filepath.Dir(cfg.SpawnRedisCluster), "redis-cli")
	if _, err := os.Stat(cli); err != nil {
		if cli, err = exec.LookPath("redis-cli"); err != nil {
			return nil, fmt.Errorf("spawn redis cluster: redis-cli: %w", err)
		}
	}
	dir, err := os.MkdirTemp(cfg.SpawnLogDir, "pushbench-redis-cluster-")
	if err != nil {
		return nil, fmt.Errorf("spawn redis cluster: %w", err)
	}
	rc := &redisCluster{dir: dir}
	for k := range 6 {
		addr, err := freeLoopbackAddr()
		if err != nil {
			return rc, err
		}
		bus, err := freeLoopbackAddr()
		if err != nil {
			return rc, err
		}
		host, port, _ := net.SplitHostPort(addr)
		_, busPort, _ := net.SplitHostPort(bus)
		nodeDir := filepath.Join(dir, port)
		if err := os.Mkdir(nodeDir, 0o755); err != nil {
			return rc, fmt.Errorf("spawn redis cluster: %w", err)
		}
		args := []string{"--bind", host, "--port", port, "--save", "", "--appendonly", "no", "--protected-mode", "no",
			"--dir", nodeDir, "--cluster-enabled", "yes", "--cluster-port", busPort,
			"--cluster-config-file", filepath.Join(nodeDir, "nodes.conf"),
			"--cluster-node-timeout", redisClusterNodeTimeout, "--repl-diskless-sync-delay", "0"}
		ping := func() bool { v, err := redisCommand(addr, "PING"); return err == nil && v == "PONG" }
		srv, err := startProcess(ctx, cfg, fmt.Sprintf("redis%d", k+1), cfg.SpawnRedisCluster, args, nil, ping)
		if err != nil {
			return rc, err
		}
		rc.nodes = append(rc.nodes, srv)
		rc.addrs = append(rc.addrs, addr)
	}
	args := append([]string{"--cluster", "create"}, rc.addrs...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		return rc, fmt.Errorf("spawn redis cluster: redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(max(cfg.Timeout, 30*time.Second))
	for !rc.formed() {
		if time.Now().After(deadline) {
			return rc, fmt.Errorf("spawn redis cluster: not formed after %v", max(cfg.Timeout, 30*time.Second))
		}
		sleepCtx(ctx, 100*time.Millisecond)
		if ctx.Err() != nil {
			return rc, ctx.Err()
		}
	}
	rc.url = "redis://" + rc.addrs[0] + "/0?cluster=1"
	for _, a := range rc.addrs[1:] {
		rc.url += "&addr=" + a
	}
	return rc, nil
}

// formed reports whether every node serves all slots with cluster_state:ok
// and every replica is in sync with its master.
func (rc *redisCluster) formed() bool {
	for _, a := range rc.addrs {
		ci, err := redisCommand(a, "CLUSTER", "INFO")
		if err != nil || !strings.Contains(ci, "cluster_state:ok") || !strings.Contains(ci, "cluster_slots_ok:16384") {
			return false
		}
		repl, err := redisCommand(a, "INFO", "replication")
		if err != nil || (strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up")) {
			return false
		}
	}
	return true
}

// stop ends every node and removes the cluster's directory.
func (rc *redisCluster) stop() {
	for _, s := range rc.nodes {
		s.stop(10 * time.Second)
	}
	_ = os.RemoveAll(rc.dir)
}
