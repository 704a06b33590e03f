package main

import (
	"context"
	"io"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/testredis"
)

// TestMain lets the test binary serve as a worker or as the delaying
// proxy: the coordinator re-executes its own executable (workers.go,
// delay.go).
func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		os.Exit(workerMain(os.Stdin, os.Stdout))
	}
	if spec := os.Getenv(delayProxyEnv); spec != "" {
		os.Exit(delayProxyMain(spec, os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// Two workers hold 150 connections each against the fake server: the
// coordinator's counts are the same as in one process.
func TestWorkersAgainstFakeServer(t *testing.T) {
	f := &fakeServer{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := fakeConfig(srv.URL)
	cfg.Conns, cfg.Users, cfg.Tenants, cfg.Workers = 300, 41, 7, 2
	cfg.SpawnLogDir = t.TempDir()
	rep, err := run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("report not OK: %v", rep.Problems())
	}
	if rep.Workers != 2 || rep.Connect.Connected != 300 {
		t.Fatalf("workers %d, connected %d", rep.Workers, rep.Connect.Connected)
	}
	for _, p := range rep.Phases {
		want := expectedDeliveries(p.Mode, 300, 41, 7, 40)
		if p.Expected != want || p.Delivered != want || p.MessagesComplete != 40 || p.APIDelivered != want {
			t.Errorf("%s: want %d deliveries, got %+v", p.Mode, want, p)
		}
		if p.Latency.Count != p.Delivered || p.Completion.Count != 40 {
			t.Errorf("%s: %d latency samples for %d deliveries, %d completions", p.Mode, p.Latency.Count, p.Delivered, p.Completion.Count)
		}
		if p.ToolCPUSecs <= 0 {
			t.Errorf("%s: tool CPU %v (the workers' is counted)", p.Mode, p.ToolCPUSecs)
		}
	}
}

// Losses, duplicates and misrouted deliveries seen by the workers reach
// the coordinator's report.
func TestWorkersDetectFaults(t *testing.T) {
	f := &fakeServer{dropEvery: 97, dupEvery: 89, misrouteEvery: 7}
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := fakeConfig(srv.URL)
	cfg.Conns, cfg.Workers = 300, 2
	cfg.Modes = []string{modeUser, modeTenant}
	cfg.Timeout = 2 * time.Second
	cfg.SpawnLogDir = t.TempDir()
	rep, err := run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var lost, dup, mis int64
	for _, p := range rep.Phases {
		lost += p.Lost
		dup += p.Duplicated
		mis += p.Misrouted
	}
	if lost != f.dropped.Load() || dup != f.duplicated.Load() || mis != f.misrouted.Load() || lost == 0 || dup == 0 || mis == 0 {
		t.Fatalf("detected lost/dup/misrouted %d/%d/%d, injected %d/%d/%d",
			lost, dup, mis, f.dropped.Load(), f.duplicated.Load(), f.misrouted.Load())
	}
	if rep.OK() {
		t.Fatal("faults not detected")
	}
}

// The scale run in small: three pushd nodes on a Redis Cluster, two
// workers holding 150 connections each, per-phase message counts and
// rates, the single-node run first; zero loss, PUBLISH calls counted.
func TestWorkersOnRedisCluster(t *testing.T) {
	redis := testredis.Binary(t)
	rep := smallRun(t, func(c *Config) {
		c.SpawnNodes = 3
		c.SpawnRedisCluster = redis
		c.Workers = 2
		c.Users = 151 // most users on two nodes
		c.Modes = []string{modeBroadcast, modeUser}
		c.ModeMessages = []int{30, 30}
		c.ModeRates = []float64{0, 200}
		c.Single = true
	})
	checkPhases(t, rep, modeBroadcast, modeUser)
	var names []string
	for _, p := range rep.Procs {
		names = append(names, p.Name)
	}
	if got := strings.Join(names, ","); got != "node1,node2,node3,redis1,redis2,redis3,redis4,redis5,redis6" {
		t.Fatalf("procs %s", got)
	}
	if rep.Single == nil || !rep.Single.OK() || rep.Single.Conns != 100 || len(rep.Single.Phases) != 2 {
		t.Fatalf("single-node run missing or failed: %+v", rep.Single)
	}
	user := rep.Phases[1]
	if user.NodesPerSend < 1.5 || user.NodesPerSend > 2 || user.RedisPublishes < user.Sent {
		t.Errorf("user sends: %.2f nodes per send, %d publishes for %d sends", user.NodesPerSend, user.RedisPublishes, user.Sent)
	}
	if b := rep.Phases[0]; b.NodesPerSend != 3 {
		t.Errorf("broadcast: %.2f nodes per send, want 3", b.NodesPerSend)
	}
}

func TestScaleFlags(t *testing.T) {
	cfg, _, err := parseFlags([]string{"-nodes", "http://127.0.0.1:1", "-mode", "broadcast,user", "-workers", "5",
		"-mode-messages", "10,20000", "-mode-rates", "0.2,1000", "-single", "-spawn-redis-cluster", "/x/redis-server"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Workers != 5 || !cfg.Single || cfg.SpawnRedisCluster != "/x/redis-server" {
		t.Fatalf("parsed %+v", cfg)
	}
	cfg.Messages, cfg.Rate = 7, 3
	for id, want := range map[int][2]float64{1: {10, 0.2}, 2: {20000, 1000}, 3: {7, 3}} {
		if m, r := cfg.phaseLimits(id); m != int(want[0]) || r != want[1] {
			t.Errorf("phase %d: %d sends at %v/s, want %v", id, m, r, want)
		}
	}
	if _, _, err := parseFlags([]string{"-mode-rates", "fast"}, io.Discard); err == nil {
		t.Error("-mode-rates fast accepted")
	}
}

func TestCommandCalls(t *testing.T) {
	info := "# Commandstats\r\ncmdstat_ping:calls=3,usec=1\r\ncmdstat_spublish:calls=42,usec=99,usec_per_call=2.3\r\ncmdstat_publish:calls=5,usec=1\r\n"
	if got := commandCalls(info, "spublish") + commandCalls(info, "publish"); got != 47 {
		t.Fatalf("calls %d, want 47", got)
	}
	if got := commandCalls(info, "subscribe"); got != 0 {
		t.Fatalf("subscribe calls %d, want 0", got)
	}
}
