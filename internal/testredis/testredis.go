package testredis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushd/pushd/internal/syncbuf"
)

// Server is one private redis-server.
type Server struct {
	tb   testing.TB
	port int
	dir  string
	args []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	out    *syncbuf.Buffer
}

// Binary returns the path of redis-server. When it is not installed the
// test fails if the environment variable CI is set (a CI run must not lose
// its real-Redis coverage) and is skipped otherwise, saying so (a
// contributor's machine without redis-server).
func Binary(tb testing.TB) string {
	tb.Helper()
	return Require(tb, "")
}

// Require is Binary for a test that cannot run on a stand-in such as
// miniredis: why, when not empty, says what it needs of the real server,
// and the skip message names it.
func Require(tb testing.TB, why string) string {
	tb.Helper()
	path, err := exec.LookPath("redis-server")
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		tb.Fatalf("redis-server is not installed and CI is set (scripts/test.sh installs it): %v", err)
	}
	need := "needs a real redis-server"
	if why != "" {
		need += " (" + why + ")"
	}
	tb.Skipf("%s, which is not installed (scripts/test.sh installs it; CI=1 makes this a failure): %v", need, err)
	return ""
}

// UseReal reports whether a test that can run on a stand-in should use a
// real redis-server instead: when one is installed, and when CI is set (a
// missing one then fails the test in Start rather than being replaced).
func UseReal() bool {
	if os.Getenv("CI") != "" {
		return true
	}
	_, err := exec.LookPath("redis-server")
	return err == nil
}

// Start runs redis-server without persistence (extra arguments such as
// "--appendonly", "yes" are appended) and stops it when the test ends.
// Without redis-server it fails or skips the test (see Binary).
func Start(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	return launch(tb, func(s *Server) ([]string, error) {
		return append([]string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", s.dir}, extra...), nil
	})
}

// StartSentinel runs a redis-server in sentinel mode that monitors master
// under name, alone (quorum 1), failing it over once it has not answered
// for 500 ms. Clients reach the master through it with a URL like
// "redis://" + sentinel.Addr() + "/0?master_name=" + name.
func StartSentinel(tb testing.TB, name string, master *Server) *Server {
	tb.Helper()
	return launch(tb, func(s *Server) ([]string, error) {
		conf := filepath.Join(s.dir, "sentinel.conf")
		text := fmt.Sprintf("port %[1]d\nbind 127.0.0.1\ndir %[2]s\n"+
			"sentinel monitor %[3]s 127.0.0.1 %[4]d 1\n"+
			"sentinel down-after-milliseconds %[3]s 500\n"+
			"sentinel failover-timeout %[3]s 2000\n", s.port, s.dir, name, master.port)
		return []string{conf, "--sentinel"}, os.WriteFile(conf, []byte(text), 0o600)
	})
}

// launch starts a server with the arguments args gives for its port and
// directory, trying other ports when another process answers on one, and
// stops it when the test ends.
func launch(tb testing.TB, args func(s *Server) ([]string, error)) *Server {
	tb.Helper()
	Binary(tb)
	s := &Server{tb: tb, dir: tb.TempDir()}
	for attempt := 0; ; attempt++ {
		s.port = freePort(tb)
		var err error
		if s.args, err = args(s); err != nil {
			tb.Fatalf("redis-server arguments: %v", err)
		}
		err = s.start()
		if err == nil {
			break
		}
		s.Kill()
		if attempt == 4 {
			tb.Fatalf("redis-server: %v\n%s", err, s.Output())
		}
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			select {
			case <-s.exited:
				tb.Logf("redis-server on port %d had exited; its output:\n%s", s.port, s.Output())
			default:
				tb.Logf("redis-server on port %d was still running", s.port)
			}
		}
		s.Kill()
	})
	return s
}

// freePort picks a free port below the kernel's ephemeral range, where
// other tests' client sockets do not land.
func freePort(tb testing.TB) int {
	for range 100 {
		port := 20000 + rand.IntN(12000)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			_ = ln.Close()
			return port
		}
	}
	tb.Fatal("testredis: no free port")
	return 0
}

// Addr is host:port of the server.
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// URL is the server's redis:// URL, database 0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Port is the server's port.
func (s *Server) Port() int { return s.port }

// Dir is the server's data directory.
func (s *Server) Dir() string { return s.dir }

var pidRe = regexp.MustCompile(`(?m)^process_id:(\d+)`)

// start runs the process and waits until it answers PING as itself.
func (s *Server) start() error {
	s.mu.Lock()
	s.out = new(syncbuf.Buffer)
	cmd := exec.Command("redis-server", s.args...)
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("redis-server on port %d exited", s.port)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		info, err := c.Info(ctx, "server").Result()
		cancel()
		if err == nil {
			// Another test's server could have taken the port first.
			if m := pidRe.FindStringSubmatch(info); m == nil || m[1] != strconv.Itoa(cmd.Process.Pid) {
				return fmt.Errorf("port %d answers for another redis-server", s.port)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on port %d not ready after 15s: %w", s.port, err)
		}
		time.Sleep(10 * time.Millisecond) // polling for the server to listen
	}
}

// Kill stops the server at once (SIGKILL, nothing saved on the way out)
// and waits until it is gone.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// Restart kills the server and starts it again on the same port and
// directory, as after a crash.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Kill()
	s.Start()
}

// Start starts a killed server again on the same port and directory.
func (s *Server) Start() {
	s.tb.Helper()
	if err := s.start(); err != nil {
		s.tb.Fatalf("restart redis-server: %v\n%s", err, s.Output())
	}
}

// Output is what the server printed.
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out == nil {
		return ""
	}
	return s.out.String()
}

// Client returns a client of the server, closed when the test ends.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	s.tb.Cleanup(func() { _ = c.Close() })
	return c
}
