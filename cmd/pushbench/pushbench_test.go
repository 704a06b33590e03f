package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/testredis"
)

// builds holds one *build per package path, made once per test binary.
var builds sync.Map

type build struct {
	once sync.Once
	path string
	err  string
}

// buildTool builds the package at pkg (relative to the module, e.g.
// "cmd/pushd") once per test binary into a temporary directory and returns
// the binary's path.
func buildTool(t *testing.T, pkg string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(pkg, &build{})
	b := v.(*build)
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "pushbench-test-")
		if err != nil {
			b.err = err.Error()
			return
		}
		b.path = filepath.Join(dir, filepath.Base(pkg))
		goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(goTool); err != nil {
			goTool = "go"
		}
		cmd := exec.Command(goTool, "build", "-o", b.path, "github.com/pushd/pushd/"+pkg)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = "go build ./" + pkg + ": " + err.Error() + "\n" + string(out)
		}
	})
	if b.err != "" {
		t.Fatal(b.err)
	}
	return b.path
}

// buildPushd builds ./cmd/pushd (see buildTool).
func buildPushd(t *testing.T) string {
	t.Helper()
	return buildTool(t, "cmd/pushd")
}

func smallRun(t *testing.T, modify func(*Config)) Report {
	t.Helper()
	cfg := Config{
		Spawn:       buildPushd(t),
		Conns:       300,
		Users:       40,
		Tenants:     7,
		Messages:    30,
		Publishers:  4,
		Timeout:     30 * time.Second,
		Settle:      -1,
		Payload:     64,
		SpawnLogDir: t.TempDir(),
	}
	var log strings.Builder
	cfg.Log = &log
	if modify != nil {
		modify(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := run(ctx, cfg)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	var table strings.Builder
	rep.WriteTable(&table)
	t.Logf("report:\n%s", table.String())
	return rep
}

// expectedDeliveries is how many deliveries messages 0..msgs-1 of mode
// must make with conns connections of users/tenants.
func expectedDeliveries(mode string, conns, users, tenants, msgs int) int64 {
	var n int64
	for seq := range msgs {
		for i := range conns {
			switch {
			case mode == modeBroadcast,
				mode == modeUser && i%users == seq%users,
				mode == modeTenant && i%tenants == seq%tenants:
				n++
			}
		}
	}
	return n
}

func checkPhases(t *testing.T, rep Report, modes ...string) {
	t.Helper()
	if !rep.OK() {
		t.Fatalf("run not OK: %v", rep.Problems())
	}
	if rep.Connect.Connected != int64(rep.Conns) {
		t.Fatalf("connected %d of %d", rep.Connect.Connected, rep.Conns)
	}
	if len(rep.Phases) != len(modes) {
		t.Fatalf("%d phases, want %d", len(rep.Phases), len(modes))
	}
	for i, p := range rep.Phases {
		want := expectedDeliveries(modes[i], rep.Conns, rep.Users, rep.Tenants, int(p.Sent))
		if p.Mode != modes[i] || p.Sent != 30 || p.Expected != want || p.Delivered != want ||
			p.APIDelivered != want || p.Lost != 0 || p.unexpectedDuplicates() != 0 || p.Misrouted != 0 ||
			p.MessagesComplete != p.Sent || p.MessagesIncomplete != 0 {
			t.Errorf("phase %s: want %d deliveries of 30 sends, got %+v", modes[i], want, p)
		}
	}
}

func TestSmallRunAgainstPushd(t *testing.T) {
	rep := smallRun(t, nil)
	checkPhases(t, rep, modeBroadcast, modeUser, modeTenant)
	if !rep.Memory.Measured || rep.Memory.IdleRSSKB <= 0 {
		t.Errorf("server memory not read: %+v", rep.Memory)
	}
}

func TestSmallQoSRunAgainstPushd(t *testing.T) {
	for _, ack := range []bool{false, true} {
		t.Run(map[bool]string{false: "flushed", true: "acked"}[ack], func(t *testing.T) {
			rep := smallRun(t, func(c *Config) {
				c.QoS = true
				c.Ack = ack
			})
			checkPhases(t, rep, modeBroadcast, modeUser, modeTenant)
			if ack && rep.Conn.Acked == 0 {
				t.Errorf("nothing acknowledged")
			}
		})
	}
}

// startRedis runs a private redis-server for the test (internal/testredis,
// which fails or skips a test without redis-server).
func startRedis(t *testing.T) string {
	t.Helper()
	return testredis.Start(t).URL()
}

// Two pushd nodes clustered over Redis: connections and sends are spread
// over both, so most deliveries cross nodes, and the API's delivered counts
// are cluster-wide.
func TestSmallClusterRunAgainstPushd(t *testing.T) {
	redisURL := startRedis(t)
	for _, qos := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "qos-acked"}[qos], func(t *testing.T) {
			rep := smallRun(t, func(c *Config) {
				c.SpawnNodes = 2
				c.SpawnEnv = []string{
					"PUSHD_CLUSTER_TRANSPORT=redis",
					"PUSHD_CLUSTER_REDIS_URL=" + redisURL,
					"PUSHD_CLUSTER_PREFIX=pb" + newRunID(),
					"PUSHD_QOS_REPOSITORY=redis",
					"PUSHD_QOS_REDIS_URL=" + redisURL,
					"PUSHD_QOS_PREFIX=pb" + newRunID(),
				}
				c.QoS = qos
				c.Ack = qos
			})
			if len(rep.Nodes) != 2 || len(rep.PIDs) != 2 {
				t.Fatalf("nodes %v pids %v", rep.Nodes, rep.PIDs)
			}
			checkPhases(t, rep, modeBroadcast, modeUser, modeTenant)
		})
	}
}

// The two-node scenario: connections on node 1, every send through node 2,
// on a redis-server pushbench starts itself; the CPU of both nodes and of
// redis-server is reported apart, and every phase is compared with the
// floor run first.
func TestCrossNodeRunWithFloor(t *testing.T) {
	redis := testredis.Binary(t)
	floor := buildTool(t, "test/load/refserver")
	rep := smallRun(t, func(c *Config) {
		c.SpawnNodes = 2
		c.SpawnRedis = redis
		c.ConnNodes, c.APINodes = []int{1}, []int{2}
		c.Floor = floor
	})
	checkPhases(t, rep, modeBroadcast, modeUser, modeTenant)
	var names []string
	for _, p := range rep.Procs {
		names = append(names, p.Name)
	}
	if strings.Join(names, ",") != "node1,node2,redis" {
		t.Fatalf("procs %v, want node1, node2 and redis", rep.Procs)
	}
	if rep.Floor == nil || len(rep.Floor.Phases) != 3 || !rep.Floor.OK() {
		t.Fatalf("floor run missing or failed: %+v", rep.Floor)
	}
	for _, p := range rep.Phases {
		// (30 sends take less CPU than the 10 ms ticks it is counted in:
		// only the shape is checked.) Node 2 holds no connection, so the
		// cluster-wide counts checkPhases saw crossed from node 1.
		if len(p.Procs) != 3 {
			t.Fatalf("phase %s: CPU of %d processes", p.Mode, len(p.Procs))
		}
	}
	for _, f := range rep.Floor.Phases {
		if f.Delivered != f.Expected || f.Lost != 0 {
			t.Errorf("floor phase %s: %d of %d delivered", f.Mode, f.Delivered, f.Expected)
		}
	}
}

// The same two-node scenario on the nacos transport with a static peer
// list (-spawn-peers): node 2 holds no connection, so every delivered count
// crossed from node 1 over a peer call.
func TestCrossNodeRunOnStaticPeers(t *testing.T) {
	rep := smallRun(t, func(c *Config) {
		c.SpawnNodes = 2
		c.SpawnPeers = true
		c.ConnNodes, c.APINodes = []int{1}, []int{2}
	})
	checkPhases(t, rep, modeBroadcast, modeUser, modeTenant)
	if len(rep.Procs) != 2 {
		t.Fatalf("procs %v, want node1 and node2", rep.Procs)
	}
}
