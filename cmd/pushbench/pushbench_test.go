package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	pushdOnce sync.Once
	pushdPath string
	pushdErr  string
)

// buildPushd builds ./cmd/pushd once per test binary into a temporary
// directory and returns the binary's path.
func buildPushd(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("../pushd"); os.IsNotExist(err) {
		t.Skip("cmd/pushd does not exist yet")
	}
	pushdOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pushbench-test-")
		if err != nil {
			pushdErr = err.Error()
			return
		}
		pushdPath = filepath.Join(dir, "pushd")
		goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(goTool); err != nil {
			goTool = "go"
		}
		cmd := exec.Command(goTool, "build", "-o", pushdPath, "github.com/pushd/pushd/cmd/pushd")
		if out, err := cmd.CombinedOutput(); err != nil {
			pushdErr = "go build ./cmd/pushd: " + err.Error() + "\n" + string(out)
		}
	})
	if pushdErr != "" {
		t.Fatal(pushdErr)
	}
	return pushdPath
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

// startRedis runs a private redis-server on a free port for the test.
func startRedis(t *testing.T) string {
	t.Helper()
	bin := "/usr/bin/redis-server"
	if _, err := os.Stat(bin); err != nil {
		t.Skip("no redis-server")
	}
	addr, err := freeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(addr, ":")
	dir := t.TempDir()
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return "redis://" + addr + "/0"
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not start: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
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
