package test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/netsim"
	"github.com/pushd/pushd/internal/syncbuf"
)

// simNginx is nginx on a simulated host of its own, load-balancing the
// pushd nodes round-robin (no sticky sessions) with the SSE settings of
// startNginx, and telling in X-Upstream which node served a request.
type simNginx struct {
	host *netsim.Host
	url  string
	dir  string
	conf string
	pid  int // nginx's master (ip netns exec execs it)
}

// startSimNginx runs nginx on h, listening on h's port 80, proxying to
// backends, and waits until it answers from the client host.
func (c *simCluster) startSimNginx(t *testing.T, h *netsim.Host, backends ...*simNode) *simNginx {
	t.Helper()
	n := &simNginx{host: h, url: "http://" + h.Addr(80), dir: t.TempDir()}
	n.conf = filepath.Join(n.dir, "nginx.conf")
	if err := n.write(backends, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncbuf.Buffer{}
	cmd := h.Command(ctx, nginxPath(t), "-p", n.dir, "-c", n.conf, "-g", "daemon off;")
	cmd.Stdout, cmd.Stderr = out, out
	// Killing the master alone would leave its worker holding the output
	// pipe, and Wait waiting for it: the master is asked to stop (it
	// stops its worker), and Wait gives up on the pipe after WaitDelay.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	n.pid = cmd.Process.Pid
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
			t.Logf("nginx output:\n%s\nerror.log:\n%s", out.String(), log)
		}
	})
	waitFor(t, 10*time.Second, func() error {
		resp, err := c.api.Get(n.url + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	return n
}

// write writes the configuration: backends as upstreams, those in down
// marked down (taken out, as an ingress controller takes out a pod whose
// readiness probe fails).
func (n *simNginx) write(backends []*simNode, down map[*simNode]bool) error {
	var servers strings.Builder
	for _, b := range backends {
		mark := ""
		if down[b] {
			mark = " down"
		}
		fmt.Fprintf(&servers, "    server %s max_fails=0%s;\n", b.host.Addr(8080), mark)
	}
	conf := nginxConfig(n.dir, servers.String(), fmt.Sprintf("    listen %s;\n", n.host.Addr(80)))
	return os.WriteFile(n.conf, []byte(conf), 0o600)
}

// reload makes nginx read its configuration again (SIGHUP to the master).
func (n *simNginx) reload() error {
	return syscall.Kill(n.pid, syscall.SIGHUP)
}

// simBrowser is an EventSource on the client host behind nginx: it
// reconnects when its stream ends, after the retry: the server sent, with
// Last-Event-ID, and keeps every QoS id it received and the node (nginx's
// X-Upstream) of each of its connections.
type simBrowser struct {
	user string
	mu   sync.Mutex
	ids  map[string]int
	on   []string // X-Upstream of each connection, in order
}

// browse starts a browser of user on url (nginx), running until the test
// ends, and returns once its first connection has its connect-finish.
func (c *simCluster) browse(t *testing.T, base, user string) *simBrowser {
	t.Helper()
	b := &simBrowser{user: user, ids: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	first := make(chan struct{})
	go func() {
		defer close(done)
		var lastID string
		retry := time.Second
		for ctx.Err() == nil {
			lastID, retry = b.connect(ctx, c.streams, base+"/sse/demo/connect?ack=1&userId="+user, lastID, retry, first)
			select {
			case <-ctx.Done():
			case <-time.After(min(retry, 3*time.Second)):
			}
		}
	}()
	select {
	case <-first:
	case <-time.After(10 * time.Second):
		t.Fatalf("browser %s: no connect-finish through nginx within 10 s", user)
	}
	return b
}

// connect is one connection of the browser, until its stream ends; it
// returns the last event id and retry: seen.
func (b *simBrowser) connect(ctx context.Context, client *http.Client, url, lastID string, retry time.Duration, first chan struct{}) (string, time.Duration) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := client.Do(req)
	if err != nil {
		return lastID, retry
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return lastID, retry
	}
	b.mu.Lock()
	b.on = append(b.on, resp.Header.Get("X-Upstream"))
	b.mu.Unlock()
	r := bufio.NewReader(resp.Body)
	var event, id string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return lastID, retry
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if event == "connect-finish" {
				select {
				case <-first:
				default:
					close(first)
				}
			}
			if event == "msg" && id != "" {
				b.mu.Lock()
				b.ids[id]++
				b.mu.Unlock()
			}
			event, id = "", ""
		case strings.HasPrefix(line, "id:"):
			id = strings.TrimPrefix(line, "id:")
			lastID = id
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimPrefix(line, "event:")
		case strings.HasPrefix(line, "retry:"):
			if ms, err := strconv.Atoi(strings.TrimPrefix(line, "retry:")); err == nil {
				retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
}

// node returns the X-Upstream of the browser's latest connection, and
// how many it made.
func (b *simBrowser) node() (string, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.on) == 0 {
		return "", 0
	}
	return b.on[len(b.on)-1], len(b.on)
}

// missing returns the ids of want the browser did not receive.
func (b *simBrowser) missing(want map[string]bool) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var miss []string
	for id := range want {
		if b.ids[id] == 0 {
			miss = append(miss, id)
		}
	}
	return miss
}

// TestNetsimNginxNodeCutFromRedis puts nginx on a host of its own in
// front of nodes a and b, with browsers on the client host connecting
// through it (round-robin, so some land on a). Node a is cut off from
// Redis: its /readyz goes false, and a controller (the test, as an
// ingress controller does for a pod whose readiness probe fails) takes it
// out of nginx's upstreams; a sheds its streams with a retry: hint, the
// browsers reconnect through nginx and land on b, and every QoS message
// sent to them through nginx and answered 200 (stored) reaches them.
func TestNetsimNginxNodeCutFromRedis(t *testing.T) {
	requireTool(t, "nginx", "nginx on a simulated host in front of pushd")
	c := startSimCluster(t, simOptions{shedAfter: "2s", app: "reconnect_time: 500ms"})
	nh := c.net.AddHost("nginx")
	backends := []*simNode{c.a, c.b}
	ng := c.startSimNginx(t, nh, backends...)
	addrA, addrB := c.a.host.Addr(8080), c.b.host.Addr(8080)

	var browsers []*simBrowser
	onA := 0
	for i := range 6 {
		br := c.browse(t, ng.url, fmt.Sprint("user", i))
		browsers = append(browsers, br)
		if n, _ := br.node(); n == addrA {
			onA++
		}
	}
	if onA == 0 {
		t.Fatalf("no browser landed on a through nginx's round-robin")
	}
	for _, br := range browsers {
		user := br.user
		waitFor(t, 10*time.Second, func() error {
			if o := c.send(&simNode{name: "nginx", url: ng.url}, user, "hello", false); o.err != nil || o.code != http.StatusOK || o.delivered != 1 {
				return fmt.Errorf("a send to %s through nginx: %s", user, o)
			}
			return nil
		})
	}

	// The controller: a's readiness, as nginx's host sees it, decides
	// whether a is an upstream.
	fromNginx := nh.HTTPClient()
	fromNginx.Timeout = 3 * time.Second
	takenOut := make(chan time.Time, 1)
	ctlCtx, ctlStop := context.WithCancel(context.Background())
	defer ctlStop()
	go func() {
		for ctlCtx.Err() == nil {
			resp, err := fromNginx.Get(c.a.url + "/readyz")
			if err == nil {
				resp.Body.Close()
			}
			if err != nil || resp.StatusCode != http.StatusOK {
				if err := ng.write(backends, map[*simNode]bool{c.a: true}); err != nil {
					t.Errorf("nginx configuration: %v", err)
				}
				if err := ng.reload(); err != nil {
					t.Errorf("nginx reload: %v", err)
				}
				takenOut <- time.Now()
				return
			}
			time.Sleep(200 * time.Millisecond) // the readiness probe's period
		}
	}()

	cut := time.Now()
	c.net.Cut(c.a.host, c.redis)
	// QoS sends to every browser through nginx, as an application server
	// behind the same load balancer would make them.
	viaNginx := &simNode{name: "nginx", url: ng.url}
	var outcomes []sendOutcome
	var mu sync.Mutex
	stopSends := make(chan struct{})
	var wg sync.WaitGroup
	for _, br := range browsers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stopSends:
					return
				default:
				}
				o := c.send(viaNginx, br.user, fmt.Sprintf("%s-%d", br.user, i), true)
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
				time.Sleep(200 * time.Millisecond) // pacing the sends, not synchronisation
			}
		})
	}
	var out time.Time
	select {
	case out = <-takenOut:
	case <-time.After(20 * time.Second):
		t.Fatal("a's /readyz did not go false within 20 s of the cut")
	}
	t.Logf("a cut off from Redis: taken out of nginx's upstreams %v after the cut (its /readyz false)", out.Sub(cut).Round(time.Millisecond))
	waitFor(t, 30*time.Second, func() error {
		for _, br := range browsers {
			if n, conns := br.node(); n != addrB {
				return fmt.Errorf("browser %s on %s after %d connections, want b (%s)", br.user, n, conns, addrB)
			}
		}
		return nil
	})
	moved := time.Since(cut)
	time.Sleep(time.Second) // sends after every browser is on b
	close(stopSends)
	wg.Wait()
	stored := tally(t, "a cut off from Redis, sends through nginx", outcomes)
	if len(stored) == 0 {
		t.Fatal("no QoS send was answered 200 and stored")
	}
	perUser := map[string]map[string]bool{}
	for _, o := range outcomes {
		if o.code == http.StatusOK && o.stored {
			u := o.user
			if perUser[u] == nil {
				perUser[u] = map[string]bool{}
			}
			perUser[u][o.id] = true
		}
	}
	waitFor(t, 20*time.Second, func() error {
		for _, br := range browsers {
			if miss := br.missing(perUser[br.user]); len(miss) > 0 {
				return fmt.Errorf("browser %s: %d of %d QoS messages answered 200 and stored never arrived: %v", br.user, len(miss), len(perUser[br.user]), miss)
			}
		}
		return nil
	})
	all := time.Since(cut)
	reconnects := 0
	for _, br := range browsers {
		_, n := br.node()
		reconnects += n - 1
	}
	t.Logf("%d browsers through nginx (%d on a): all on b %v after the cut (%d reconnects), all %d QoS messages answered 200 on their browsers %v after the cut (%s)",
		len(browsers), onA, moved.Round(time.Millisecond), reconnects, len(stored), all.Round(time.Millisecond), c.latencyNote)
}
