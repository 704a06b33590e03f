package test

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// redisServer is a private redis-server process started by a test.
type redisServer struct {
	t    testing.TB
	port int
	dir  string
	aof  bool
	cmd  *exec.Cmd
}

// startRedis starts a private redis-server on a free port, with AOF
// (appendfsync always) when aof is set.
func startRedis(t testing.TB, aof bool) *redisServer {
	t.Helper()
	r := &redisServer{t: t, port: freePort(t), dir: t.TempDir(), aof: aof}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *redisServer) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

func (r *redisServer) start() {
	r.t.Helper()
	args := []string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "", "--dir", r.dir}
	if r.aof {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	r.cmd = exec.Command("redis-server", args...)
	r.cmd.Stdout, r.cmd.Stderr = io.Discard, os.Stderr
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("redis-server: %v", err)
	}
	waitFor(r.t, 10*time.Second, func() error {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.port))
		if err != nil {
			return err
		}
		defer c.Close()
		_, _ = c.Write([]byte("PING\r\n"))
		buf := make([]byte, 16)
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != "+PONG\r\n" {
			return fmt.Errorf("redis not ready: %q %v", buf[:n], err)
		}
		return nil
	})
}

// kill stops redis-server at once (SIGKILL), as a crash would.
func (r *redisServer) kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

func (r *redisServer) stop() { r.kill() }

// restart kills and starts redis-server again on the same port and dir.
func (r *redisServer) restart() {
	r.kill()
	r.start()
}
