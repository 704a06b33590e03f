package test

import (
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	plainBinOnce sync.Once
	plainBin     string
)

// plainPushd builds pushd without the race detector, for measurements.
func plainPushd(t *testing.T) string {
	plainBinOnce.Do(func() {
		plainBin = filepath.Join(filepath.Dir(pushdBin), "pushd-plain")
		out, err := exec.Command("go", "build", "-o", plainBin, "../cmd/pushd").CombinedOutput()
		if err != nil {
			t.Fatalf("build: %v %s", err, out)
		}
	})
	return plainBin
}

var peerRequestsRe = regexp.MustCompile(`(?m)^pushd_cluster_requests_total\{app="demo"\} (\d+)`)

func peerRequests(t testing.TB, n *node) int {
	t.Helper()
	body := doOK(t, http.MethodGet, n.url+"/metrics", "", nil)
	m := peerRequestsRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no pushd_cluster_requests_total in /metrics")
	}
	v, _ := strconv.Atoi(m[1])
	return v
}

// TestClusterFigures measures, for 1, 2 and 4 nodes on each transport, how
// many messages cross between nodes per user-targeted send and the
// publish-to-delivery latency through the cluster (send on the last node,
// user on the first). It asserts that every send is delivered exactly
// once; the figures are logged (go test -run TestClusterFigures -v ./test/).
func TestClusterFigures(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement")
	}
	bin := plainPushd(t)
	const sends = 300
	for _, transport := range []string{"redis", "nacos"} {
		for _, size := range []int{1, 2, 4} {
			t.Run(fmt.Sprintf("%s/%d", transport, size), func(t *testing.T) {
				saved := pushdBin
				pushdBin = bin
				c := startClusterNodes(t, transport, size)
				pushdBin = saved
				first, last := c[0], c[len(c)-1]
				s := openStream(t, first.url+"/sse/demo/connect?userId=fig")
				s.frame()
				waitFor(t, 5*time.Second, func() error { // routable once subscribed
					if r := clusterSend(t, last.url, map[string]any{"userIds": []string{"fig"}}, "warm", "x"); r.Delivered != 1 {
						return fmt.Errorf("delivered %d", r.Delivered)
					}
					return nil
				})
				s.frame()
				before := 0
				for _, n := range c {
					before += peerRequests(t, n)
				}
				lat := make([]time.Duration, 0, sends)
				for i := range sends {
					start := time.Now()
					if r := clusterSend(t, last.url, map[string]any{"userIds": []string{"fig"}}, "m", strconv.Itoa(i)); r.Delivered != 1 {
						t.Fatalf("send %d delivered %d", i, r.Delivered)
					}
					if f := s.frame(); field(f, "data") != strconv.Itoa(i) {
						t.Fatalf("send %d: got %q", i, f)
					}
					lat = append(lat, time.Since(start))
				}
				after := 0
				for _, n := range c {
					after += peerRequests(t, n)
				}
				slices.Sort(lat)
				// Each request a node serves for another one is answered:
				// two messages cross per request.
				perSend := 2 * float64(after-before) / sends
				t.Logf("FIGURE transport=%s nodes=%d messages-between-nodes/send=%.2f p50=%s p99=%s max=%s",
					transport, size, perSend, lat[len(lat)/2].Round(10*time.Microsecond),
					lat[len(lat)*99/100].Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond))
			})
		}
	}
}

// startClusterNodes starts size nodes on transport without nginx.
func startClusterNodes(t *testing.T, transport string, size int) []*node {
	r := startRedis(t, false)
	peerPorts := make([]int, size)
	var peers []string
	for i := range peerPorts {
		peerPorts[i] = freePort(t)
		peers = append(peers, fmt.Sprintf("n%d@127.0.0.1:%d", i+1, peerPorts[i]))
	}
	var nodes []*node
	for i := range size {
		clusterCfg := fmt.Sprintf("{transport: redis, redis_url: %q}", r.URL())
		if transport == "nacos" {
			clusterCfg = fmt.Sprintf("{transport: nacos, secret: %q, peers: [%s], peer_listen: \"127.0.0.1:%d\"}",
				clusterSecret, strings.Join(peers, ", "), peerPorts[i])
		}
		nodes = append(nodes, startPushd(t, fmt.Sprintf("node_id: n%d\ncluster: %s\napps:\n  - {name: demo, auth: {mode: demo}, api_keys: [demo-key]}\n",
			i+1, clusterCfg), "PUSHD_LOG_LEVEL=warn"))
	}
	return nodes
}
