package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// server is a pushd process started by the tool.
type server struct {
	cmd     *exec.Cmd
	url     string
	logPath string
	exited  chan struct{}
	waitErr error
}

// spawnServer starts the pushd binary at path in demo mode on a free
// loopback port and waits until /healthz answers, at most timeout.
func spawnServer(ctx context.Context, cfg Config, node int) (*server, error) {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	logFile, err := os.CreateTemp(cfg.SpawnLogDir, "pushbench-pushd-*.log")
	if err != nil {
		return nil, fmt.Errorf("spawn: log file: %w", err)
	}
	cmd := exec.Command(cfg.Spawn, cfg.SpawnArgs...)
	cmd.Env = append(os.Environ(),
		"PUSHD_LISTEN="+addr,
		"PUSHD_API_KEY="+cfg.Key,
		fmt.Sprintf("PUSHD_NODE_ID=pushbench-%d", node),
		"PUSHD_LOG_LEVEL=warn",
		// The run has closed its connections before the stop: no need to
		// spread their closing over the default drain window.
		"PUSHD_SHUTDOWN_DRAIN_WINDOW=500ms",
	)
	cmd.Env = append(cmd.Env, cfg.SpawnEnv...)
	endWithParent(cmd)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	s := &server{cmd: cmd, url: "http://" + addr, logPath: logFile.Name(), exited: make(chan struct{})}
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
		return nil, fmt.Errorf("spawn %s: %w", cfg.Spawn, err)
	}
	deadline := time.Now().Add(cfg.Timeout)
	hc := &http.Client{Timeout: time.Second}
	for {
		resp, err := hc.Get(s.url + "/healthz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("spawn: pushd exited (%v); log %s: %s", s.waitErr, s.logPath, s.logTail())
		case <-ctx.Done():
			s.stop(5 * time.Second)
			return nil, fmt.Errorf("spawn: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop(5 * time.Second)
			return nil, fmt.Errorf("spawn: pushd not healthy after %v; log %s: %s", cfg.Timeout, s.logPath, s.logTail())
		}
	}
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
