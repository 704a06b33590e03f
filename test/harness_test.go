package test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/await"
	"github.com/pushd/pushd/internal/syncbuf"
)

// requireTool skips t when the program argv0 is not installed, saying
// that what goes untested, or fails it when CI is set: scripts/test.sh
// installs every tool the suite uses, so a CI run cannot lose a case
// quietly.
func requireTool(t testing.TB, argv0, what string) {
	t.Helper()
	if _, err := exec.LookPath(argv0); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed and CI is set (scripts/test.sh installs it): %s is not tested", argv0, what)
		}
		t.Skipf("%s is not installed (scripts/test.sh installs it; CI=1 makes this a failure): %s is not tested", argv0, what)
	}
}

// pushdBin is the pushd binary built once for all tests of this package.
var pushdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pushd-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pushdBin = filepath.Join(dir, "pushd")
	build := exec.Command("go", "build", "-race", "-o", pushdBin, "../cmd/pushd")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build pushd:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a TCP port nobody listens on right now, below Linux's
// ephemeral range (32768–60999): a port the kernel handed out for :0 is
// also what it hands out as the source port of outgoing connections, and
// under load (pushbench, cluster tests) one of those took a port between
// this check and pushd's listen.
func freePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		port := 20000 + rand.IntN(12000)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		ln.Close()
		return port
	}
	t.Fatal("no free port between 20000 and 32000")
	return 0
}

// node is a pushd process started by a test.
type node struct {
	t    testing.TB
	url  string
	addr string
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	args []string
	env  []string
	// client asks readyz; default http.DefaultClient (TLS nodes set theirs).
	client *http.Client
	// exited is closed when the process has ended; waitErr is then its
	// exit status.
	exited  chan struct{}
	waitErr error
}

// startPushd runs pushd with the YAML config (the embedded demo when
// empty) and extra environment, and waits until it is ready.
func startPushd(t testing.TB, config string, env ...string) *node {
	t.Helper()
	var args []string
	if config != "" {
		f := filepath.Join(t.TempDir(), "pushd.yaml")
		if err := os.WriteFile(f, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		args = []string{"--config", f}
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	n := &node{t: t, url: "http://" + addr, addr: addr, args: args,
		env: append([]string{"PUSHD_LISTEN=" + addr, "PUSHD_LOG_LEVEL=debug"}, env...)}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *node) start() {
	n.t.Helper()
	n.out = &syncbuf.Buffer{}
	n.cmd = exec.Command(pushdBin, n.args...)
	n.cmd.Env = append(os.Environ(), n.env...)
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		n.waitErr = cmd.Wait()
		close(exited)
	}(n.cmd, n.exited)
	waitFor(n.t, 20*time.Second, func() error {
		select {
		case <-n.exited:
			n.t.Fatalf("pushd exited before it was ready (%v): %s", n.waitErr, n.out.String())
		default:
		}
		client := n.client
		if client == nil {
			client = http.DefaultClient
		}
		resp, err := client.Get(n.url + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	})
}

func (n *node) stop() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	_ = n.cmd.Process.Kill()
	_ = n.wait()
	if n.t.Failed() {
		n.t.Logf("pushd %s output:\n%s", n.addr, n.out.String())
	}
	n.cmd = nil
}

// wait waits for the process to end and returns its exit status.
func (n *node) wait() error {
	<-n.exited
	return n.waitErr
}

// waitFor polls fn until it returns nil or the deadline passes.
func waitFor(t testing.TB, d time.Duration, fn func() error) {
	t.Helper()
	await.Until(t, d, fn)
}

// stream is an SSE response read frame by frame.
type stream struct {
	t    testing.TB
	resp *http.Response
	r    *bufio.Reader
	stop context.CancelFunc
}

// openStream GETs url as an EventSource would.
func openStream(t testing.TB, url string, header ...string) *stream {
	t.Helper()
	return openStreamWith(t, http.DefaultClient, url, header...)
}

// openStreamWith is openStream through client.
func openStreamWith(t testing.TB, client *http.Client, url string, header ...string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	s := &stream{t: t, resp: resp, r: bufio.NewReader(resp.Body), stop: cancel}
	t.Cleanup(s.close)
	return s
}

func (s *stream) close() {
	s.stop()
	_ = s.resp.Body.Close()
}

// frame reads the next frame (up to a blank line), skipping heartbeat
// comments, and returns its raw text including the final blank line.
func (s *stream) frame() string {
	s.t.Helper()
	type result struct {
		text string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		var b strings.Builder
		for {
			line, err := s.r.ReadString('\n')
			if err != nil {
				ch <- result{b.String(), err}
				return
			}
			if line == ":\n" && b.Len() == 0 {
				continue
			}
			b.WriteString(line)
			if line == "\n" {
				if text := b.String(); strings.HasPrefix(text, "id:") && strings.Count(text, "\n") == 2 {
					// A bare id (resumable streams' positions): a browser
					// dispatches nothing for it either.
					b.Reset()
					continue
				}
				ch <- result{b.String(), nil}
				return
			}
		}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			s.t.Fatalf("stream ended (%v) after %q", r.err, r.text)
		}
		return r.text
	case <-time.After(10 * time.Second):
		s.t.Fatal("no frame within 10s")
	}
	return ""
}

// ended reports whether the stream reaches EOF within d.
func (s *stream) ended(d time.Duration) bool {
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, s.r)
		done <- err
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// field returns the value of the first line "name:value" of a frame.
func field(frame, name string) string {
	for _, line := range strings.Split(frame, "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return v
		}
	}
	return ""
}
