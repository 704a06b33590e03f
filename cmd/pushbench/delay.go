package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/pushd/pushd/internal/delayproxy"
)

// delayProxyEnv makes a process of this executable the delaying proxy of
// -redis-delay: "TARGET DELAY" (host:port and a duration).
const delayProxyEnv = "PUSHBENCH_DELAY_PROXY"

// delayProxyMain serves the proxy of spec: it writes its address as one
// line to stdout and serves until stdin ends (its parent closed it or
// exited).
func delayProxyMain(spec string, stdin io.Reader, stdout io.Writer) int {
	target, delayText, ok := strings.Cut(spec, " ")
	delay, err := time.ParseDuration(delayText)
	if !ok || err != nil || delay <= 0 {
		fmt.Fprintf(os.Stderr, "pushbench: %s=%q: want TARGET DELAY\n", delayProxyEnv, spec)
		return 1
	}
	proxy, err := delayproxy.Listen("127.0.0.1:0", target, delay)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pushbench:", err)
		return 1
	}
	defer proxy.Close()
	if _, err := fmt.Fprintln(stdout, proxy.Addr()); err != nil {
		return 1
	}
	_, _ = io.Copy(io.Discard, stdin)
	return 0
}

// delayProxyProc is a proxy running in a process of its own.
type delayProxyProc struct {
	cmd   *exec.Cmd
	stdin io.Closer
	addr  string
}

// startDelayProxy starts a proxy to target that delays each direction by
// delay, in a process of its own: its timers fire on time however busy
// the tool's goroutines are (in the tool's process a due chunk waited
// for a free P).
func startDelayProxy(target string, delay time.Duration) (*delayProxyProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("delay proxy: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), delayProxyEnv+"="+target+" "+delay.String())
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("delay proxy: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("delay proxy: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("delay proxy: start %s: %w", exe, err)
	}
	p := &delayProxyProc{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if p.addr = strings.TrimSpace(line); err != nil || p.addr == "" {
		p.stop()
		return nil, fmt.Errorf("delay proxy: no address from the proxy process: %v", err)
	}
	return p, nil
}

// stop ends the proxy process and waits for it.
func (p *delayProxyProc) stop() {
	_ = p.stdin.Close()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}
