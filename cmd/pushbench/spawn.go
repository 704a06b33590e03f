package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// server is a process started by the tool: a pushd node (url is its base
// URL) or redis-server (url is a redis:// URL).
type server struct {
	cmd     *exec.Cmd
	url     string
	logPath string
	exited  chan struct{}
	waitErr error
}

// spawnServer starts the pushd binary at path in demo mode on a free
// loopback port and waits until /healthz answers, at most cfg.Timeout.
func spawnServer(ctx context.Context, cfg Config, node int) (*server, error) {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	env := []string{
		"PUSHD_LISTEN=" + addr,
		"PUSHD_API_KEY=" + cfg.Key,
		fmt.Sprintf("PUSHD_NODE_ID=pushbench-%d", node),
		"PUSHD_LOG_LEVEL=warn",
		// The run has closed its connections before the stop: no need to
		// spread their closing over the default drain window.
		"PUSHD_SHUTDOWN_DRAIN_WINDOW=500ms",
	}
	hc := &http.Client{Timeout: time.Second}
	healthy := func() bool {
		resp, err := hc.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	s, err := startProcess(ctx, cfg, "pushd", cfg.Spawn, cfg.SpawnArgs, append(env, cfg.SpawnEnv...), healthy)
	if err != nil {
		return nil, err
	}
	s.url = "http://" + addr
	return s, nil
}

// staticPeersEnv returns the environment that clusters n spawned nodes
// (ids pushbench-1 … pushbench-n, as spawnServer names them) over the
// nacos transport with a static peer list: the settings common to all,
// and per node its peer API's address.
func staticPeersEnv(n int) (common []string, perNode [][]string, err error) {
	var peers []string
	for i := 1; i <= n; i++ {
		addr, err := freeLoopbackAddr()
		if err != nil {
			return nil, nil, err
		}
		peers = append(peers, fmt.Sprintf("pushbench-%d@%s", i, addr))
		perNode = append(perNode, []string{"PUSHD_CLUSTER_PEER_LISTEN=" + addr, "PUSHD_CLUSTER_ADVERTISE_ADDR=" + addr})
	}
	common = []string{
		"PUSHD_CLUSTER_TRANSPORT=nacos",
		"PUSHD_CLUSTER_SECRET=pushbench-peer-secret",
		"PUSHD_CLUSTER_PEERS=" + strings.Join(peers, ","),
	}
	return common, perNode, nil
}

// spawnRedis starts a private redis-server (binary cfg.SpawnRedis) on a
// free loopback port, without persistence, and waits until it answers
// PING. Its url is a redis:// URL.
func spawnRedis(ctx context.Context, cfg Config) (*server, error) {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(addr)
	args := []string{"--bind", host, "--port", port, "--save", "", "--appendonly", "no", "--protected-mode", "no"}
	pong := func() bool {
		nc, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(time.Second))
		if _, err := nc.Write([]byte("PING\r\n")); err != nil {
			return false
		}
		var b [7]byte
		n, _ := io.ReadFull(nc, b[:])
		return string(b[:n]) == "+PONG\r\n"
	}
	s, err := startProcess(ctx, cfg, "redis", cfg.SpawnRedis, args, nil, pong)
	if err != nil {
		return nil, err
	}
	s.url = "redis://" + addr + "/0"
	return s, nil
}

// startProcess starts path with args and extra environment, its output in
// a log file, and polls ready until it holds, at most cfg.Timeout.
func startProcess(ctx context.Context, cfg Config, name, path string, args, env []string, ready func() bool) (*server, error) {
	logFile, err := os.CreateTemp(cfg.SpawnLogDir, "pushbench-"+name+"-*.log")
	if err != nil {
		return nil, fmt.Errorf("spawn: log file: %w", err)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	endWithParent(cmd)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	s := &server{cmd: cmd, logPath: logFile.Name(), exited: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Linux sends the parent-death signal when the thread that started
		// the child ends, not the process: this goroutine keeps its thread
		// (never unlocked) until the child has exited.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		s.waitErr = cmd.Wait()
		_ = logFile.Close()
		close(s.exited)
	}()
	if err := <-started; err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("spawn %s: %w", path, err)
	}
	deadline := time.Now().Add(cfg.Timeout)
	for !ready() {
		select {
		case <-s.exited:
			return nil, fmt.Errorf("spawn: %s exited (%v); log %s: %s", name, s.waitErr, s.logPath, s.logTail())
		case <-ctx.Done():
			s.stop(5 * time.Second)
			return nil, fmt.Errorf("spawn: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop(5 * time.Second)
			return nil, fmt.Errorf("spawn: %s not ready after %v; log %s: %s", name, cfg.Timeout, s.logPath, s.logTail())
		}
	}
	return s, nil
}

// stop sends SIGTERM, waits up to grace, then kills the process.
func (s *server) stop(grace time.Duration) {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(grace):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

func (s *server) logTail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("spawn: free port: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("spawn: free port: %w", err)
	}
	return addr, nil
}
