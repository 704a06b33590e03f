package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/testredis"
	"github.com/pushd/pushd/pkg/transport/nacos/registry/nacostest"
)

// cluster is three pushd nodes sharing a Redis (QoS store, and transport
// when it is redis) behind nginx.
type cluster struct {
	nodes []*node
	redis *testredis.Server
	lb    *nginxServer
}

const clusterSecret = "cluster-secret-for-tests-0123456789"

func startCluster(t *testing.T, transport string, size int) *cluster {
	t.Helper()
	c := &cluster{redis: startRedis(t, false)}
	peerPorts := make([]int, size)
	for i := range peerPorts {
		peerPorts[i] = freePort(t)
	}
	var peers []string
	for i, p := range peerPorts {
		peers = append(peers, fmt.Sprintf("n%d@127.0.0.1:%d", i+1, p))
	}
	var addrs []string
	for i := range size {
		var clusterCfg string
		switch transport {
		case "redis":
			clusterCfg = fmt.Sprintf("{transport: redis, redis_url: %q, timeout: 2s}", c.redis.URL())
		case "nacos", "nacos-http":
			clusterCfg = fmt.Sprintf("{transport: nacos, secret: %q, peers: [%s], peer_listen: \"127.0.0.1:%d\", timeout: 2s, per_request_http: %v}",
				clusterSecret, strings.Join(peers, ", "), peerPorts[i], transport == "nacos-http")
		}
		n := startPushd(t, fmt.Sprintf(`
node_id: n%d
cluster: %s
admin: {token: admin-secret}
qos: {repository: redis, redis_url: %q}
apps:
  - name: demo
    auth: {mode: demo}
    api_keys: [demo-key]
    enable_json_endpoints: true
`, i+1, clusterCfg, c.redis.URL()))
		c.nodes = append(c.nodes, n)
		addrs = append(addrs, n.addr)
	}
	c.lb = startNginx(t, addrs...)
	return c
}

type sendResult struct {
	Delivered int
	Stored    bool
	ID        string
}

func clusterSend(t testing.TB, base string, to map[string]any, event, data string) sendResult {
	t.Helper()
	code, body := apiCall(t, base, http.MethodPost, "send", map[string]any{"to": to, "event": event, "data": data})
	var res sendResult
	if code != 200 || json.Unmarshal([]byte(body), &res) != nil {
		t.Fatalf("send via %s: %d %s", base, code, body)
	}
	return res
}

func userIDs(t testing.TB, base string) []string {
	t.Helper()
	code, body := apiCall(t, base, http.MethodGet, "users", nil)
	var page struct{ List []struct{ ID string } }
	if err := json.Unmarshal([]byte(body), &page); code != http.StatusOK || err != nil {
		t.Fatalf("users: %d %s (%v)", code, body, err)
	}
	var ids []string
	for _, u := range page.List {
		ids = append(ids, u.ID)
	}
	sort.Strings(ids)
	return ids
}

func TestClusterRedis(t *testing.T) { testCluster(t, "redis") }

func TestClusterNacosStaticPeers(t *testing.T) { testCluster(t, "nacos") }

// TestClusterNacosPerRequestHTTP runs the same with cluster.per_request_http:
// one HTTP request per peer call, as builds before the peer links.
func TestClusterNacosPerRequestHTTP(t *testing.T) { testCluster(t, "nacos-http") }

// testCluster runs three real pushd nodes behind a real nginx on one
// transport and checks routing, merged queries, .do calls on the wrong
// node, a node killed with SIGKILL and a Redis restart.
func testCluster(t *testing.T, transport string) {
	c := startCluster(t, transport, 3)
	a, b, cn := c.nodes[0], c.nodes[1], c.nodes[2]

	// Once a browser has its connect-finish, a send from any node reaches
	// it: no retry, for every one of these users.
	var early []string
	var earlyStreams []*stream
	for i := range 20 {
		user := fmt.Sprintf("early%d", i)
		early = append(early, user)
		s := openStream(t, a.url+"/sse/demo/connect?userId="+user)
		earlyStreams = append(earlyStreams, s)
		s.frame()
		if got := clusterSend(t, cn.url, map[string]any{"userIds": []string{user}}, "hello", "at once"); got.Delivered != 1 {
			t.Fatalf("send via C to %s on A right after connect-finish: delivered %d, want 1", user, got.Delivered)
		}
		if f := s.frame(); field(f, "data") != "at once" {
			t.Fatalf("%s got %q", user, f)
		}
	}
	// Disconnected by the server while their streams are open (a stream the
	// browser closed may be gone already, which would make the count racy).
	if code, body := apiCall(t, cn.url, http.MethodPost, "disconnect", map[string]any{"userIds": early}); code != 200 || !strings.Contains(body, `"disconnected":20`) {
		t.Fatalf("disconnect the early users: %d %s", code, body)
	}
	for _, s := range earlyStreams {
		s.close()
	}

	alice := openStream(t, a.url+"/sse/demo/connect?userId=alice&tenantId=acme")
	aliceID := field(alice.frame(), "id")
	if got := clusterSend(t, cn.url, map[string]any{"userIds": []string{"alice"}}, "hello", "from C"); got.Delivered != 1 {
		t.Fatalf("send via C to alice on A: delivered %d, want 1", got.Delivered)
	}
	if f := alice.frame(); field(f, "event") != "hello" || field(f, "data") != "from C" {
		t.Fatalf("alice got %q", f)
	}

	bob := openStream(t, c.lb.http1+"/sse/demo/connect?userId=bob&tenantId=acme")
	bob.frame()
	carol := openStreamWith(t, h2Client, c.lb.http2+"/sse/demo/connect?userId=carol&tenantId=other")
	carol.frame()
	if carol.resp.ProtoMajor != 2 {
		t.Errorf("carol's stream over nginx is HTTP/%d, want 2", carol.resp.ProtoMajor)
	}
	dave := openStream(t, b.url+"/sse/demo/connect?userId=dave&tenantId=acme")
	dave.frame()

	if got := clusterSend(t, c.lb.http1, map[string]any{"all": true}, "all", "everyone"); got.Delivered != 4 {
		t.Errorf("send to all through nginx: delivered %d, want 4", got.Delivered)
	}
	for _, s := range []*stream{alice, bob, carol, dave} {
		if f := s.frame(); field(f, "data") != "everyone" {
			t.Errorf("broadcast frame %q", f)
		}
	}
	if got := clusterSend(t, b.url, map[string]any{"tenantIds": []string{"acme"}, "userIds": []string{"alice"}}, "t", "acme"); got.Delivered != 3 {
		t.Errorf("send to tenant acme + alice: delivered %d, want 3 (alice once)", got.Delivered)
	}
	for _, s := range []*stream{alice, bob, dave} {
		if f := s.frame(); field(f, "data") != "acme" {
			t.Errorf("tenant frame %q", f)
		}
	}
	if got := userIDs(t, cn.url); !slices.Equal(got, []string{"alice", "bob", "carol", "dave"}) {
		t.Errorf("cluster users via C = %v", got)
	}
	var conns struct {
		Total int
		List  []struct{ ServerID string }
	}
	apiJSON(t, b.url, http.MethodGet, "connections", nil, &conns)
	nodesSeen := map[string]bool{}
	for _, ci := range conns.List {
		nodesSeen[ci.ServerID] = true
	}
	if conns.Total != 4 || !nodesSeen["n1"] || !nodesSeen["n2"] {
		t.Errorf("cluster connections via B: %d from %v", conns.Total, nodesSeen)
	}
	// A page costs the page: each node sends at most pageNum·pageSize, the
	// total still counts all.
	var page struct {
		Total int
		List  []struct{ ID string }
	}
	apiJSON(t, b.url, http.MethodGet, "connections?pageNum=2&pageSize=3", nil, &page)
	if page.Total != 4 || len(page.List) != 1 {
		t.Errorf("connections page 2 of 3 via B: %+v", page)
	}
	// users.json shows the caller's tenant only (issue 10 #12): acme has
	// alice, bob and dave, carol is in another tenant.
	body := doOK(t, http.MethodGet, cn.url+"/sse/demo/connect/users.json?userId=x&tenantId=acme", "", nil)
	if !strings.Contains(body, `"total":3`) || strings.Contains(body, "carol") {
		t.Errorf("users.json via C: %s", body)
	}

	// The admin page's data, asked of C, covers the whole cluster.
	code, body := do(t, http.MethodGet, cn.url+"/admin/api/overview", "", nil, "Authorization", "Bearer admin-secret")
	var ov struct {
		Node string
		Apps []struct {
			Nodes                        []struct{ NodeID string }
			UsersTotal, ConnectionsTotal int
			Partial                      string
		}
	}
	if code != 200 || json.Unmarshal([]byte(body), &ov) != nil || len(ov.Apps) != 1 {
		t.Fatalf("admin overview via C: %d %s", code, body)
	}
	var nodeIDs []string
	for _, n := range ov.Apps[0].Nodes {
		nodeIDs = append(nodeIDs, n.NodeID)
	}
	if app := ov.Apps[0]; ov.Node != "n3" || !slices.Equal(nodeIDs, []string{"n3", "n1", "n2"}) ||
		app.UsersTotal != 4 || app.ConnectionsTotal != 4 || app.Partial != "" {
		t.Errorf("admin overview via C: node %s, nodes %v, %+v", ov.Node, nodeIDs, app)
	}

	// C's metrics time its calls to the other nodes.
	metrics := doOK(t, http.MethodGet, cn.url+"/metrics", "", nil)
	for _, op := range []string{"deliver", "node", "users"} {
		want := `pushd_cluster_call_seconds_count{app="demo",op="` + op + `"} `
		i := strings.Index(metrics, want)
		if i < 0 || strings.HasPrefix(metrics[i+len(want):], "0\n") {
			t.Errorf("C's /metrics does not count %s calls", op)
		}
	}
	if transport == "redis" && !strings.Contains(metrics, "pushd_cluster_redis_subscribed_channels ") {
		t.Error("C's /metrics lacks the Redis subscription gauge")
	}

	// Browser calls for alice's connection (on A) landing on B and C.
	code, body = do(t, http.MethodPost, b.url+"/sse/demo/connect/addListener.do?userId=alice&tenantId=acme", "application/json",
		strings.NewReader(`{"connectionId":"`+aliceID+`","listener":["late"]}`))
	if code != 200 || !strings.Contains(body, `"listener":["late"]`) {
		t.Errorf("addListener.do on B for a connection on A: %d %s", code, body)
	}
	code, body = do(t, http.MethodPost, cn.url+"/sse/demo/connect/message/ping.do?userId=alice&tenantId=acme&connectionId="+aliceID,
		"application/json", strings.NewReader(`{"n":1}`))
	if code != 200 {
		t.Errorf("message.do on C for a connection on A: %d %s", code, body)
	}
	if f := alice.frame(); field(f, "event") != "server-ack" {
		t.Errorf("echo of message.do did not reach alice on A: %q", f)
	}
	code, body = do(t, http.MethodPost, cn.url+"/sse/demo/connect/addListener.do?userId=mallory", "application/json",
		strings.NewReader(`{"connectionId":"`+aliceID+`","listener":["evil"]}`))
	if code != 404 {
		t.Errorf("another user's connection on another node: %d %s", code, body)
	}

	// Kill B with SIGKILL: the others keep answering with correct counts.
	_ = b.cmd.Process.Kill()
	_ = b.wait()
	b.cmd = nil
	start := time.Now()
	got := clusterSend(t, a.url, map[string]any{"all": true}, "after", "kill")
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("send with a dead node took %s", took)
	}
	// dave was on B; bob and carol came through nginx, each to the node
	// its stream names: alice plus whoever of them was not on B.
	want := 1
	for _, s := range []*stream{bob, carol} {
		switch id := s.resp.Header.Get("X-Sse-Server-Id"); id {
		case "n1", "n3":
			want++
		case "n2":
		default:
			t.Fatalf("a stream through nginx names node %q", id)
		}
	}
	if got.Delivered != want {
		t.Errorf("send to all after killing B: delivered %d, want %d", got.Delivered, want)
	}
	if f := alice.frame(); field(f, "data") != "kill" {
		t.Errorf("alice after kill got %q", f)
	}
	if ids := userIDs(t, cn.url); slices.Contains(ids, "dave") {
		t.Errorf("dead node's user still listed: %v", ids)
	}

	// Restart redis-server: delivery resumes.
	c.redis.Restart()
	waitFor(t, 20*time.Second, func() error {
		res := clusterSend(t, cn.url, map[string]any{"userIds": []string{"alice"}}, "resumed", strconv.Itoa(int(time.Now().UnixNano())))
		if res.Delivered != 1 {
			return fmt.Errorf("delivered %d after redis restart", res.Delivered)
		}
		return nil
	})
	for {
		if f := alice.frame(); field(f, "event") == "resumed" {
			break
		}
	}
}

// TestClusterNacosServers runs two pushd processes whose peers come from
// cluster.nacos.servers: an in-process Nacos (nacostest, the real SDK's
// gRPC protocol) in this test process. The nodes find each other through
// it, a send reaches a user on the other node, and a killed node's user
// leaves the merged user list once its registration is gone.
func TestClusterNacosServers(t *testing.T) {
	srv, err := nacostest.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	var nodes []*node
	for i := 1; i <= 2; i++ {
		port := freePort(t)
		nodes = append(nodes, startPushd(t, fmt.Sprintf(`
node_id: n%[1]d
cluster:
  transport: nacos
  secret: %[2]q
  peer_listen: "127.0.0.1:%[3]d"
  advertise_addr: "127.0.0.1:%[3]d"
  timeout: 2s
  nacos: {servers: [%[4]q], dir: %[5]q}
apps:
  - name: demo
    auth: {mode: demo}
    api_keys: [demo-key]
`, i, clusterSecret, port, srv.ClientAddr(), t.TempDir())))
	}
	a, b := nodes[0], nodes[1]
	onB := openStream(t, b.url+"/sse/demo/connect?userId=nb")
	onB.frame()
	waitFor(t, 20*time.Second, func() error { // A learns B from Nacos
		if got := clusterSend(t, a.url, map[string]any{"userIds": []string{"nb"}}, "found", "x"); got.Delivered != 1 {
			return fmt.Errorf("send via A to nb on B: delivered %d (Nacos has %d connections)", got.Delivered, srv.Connections())
		}
		return nil
	})
	for {
		if f := onB.frame(); field(f, "event") == "found" {
			break
		}
	}
	onA := openStream(t, a.url+"/sse/demo/connect?userId=na")
	onA.frame()
	if ids := userIDs(t, b.url); !slices.Equal(ids, []string{"na", "nb"}) {
		t.Errorf("users via B = %v, want both nodes' users", ids)
	}

	_ = b.cmd.Process.Kill()
	_ = b.wait()
	b.cmd = nil
	waitFor(t, 20*time.Second, func() error { // Nacos drops B's instance and tells A
		if ids := userIDs(t, a.url); !slices.Equal(ids, []string{"na"}) {
			return fmt.Errorf("users via A after killing B = %v", ids)
		}
		return nil
	})
	if got := clusterSend(t, a.url, map[string]any{"all": true}, "after", "kill"); got.Delivered != 1 {
		t.Errorf("send to all after killing B: delivered %d, want 1", got.Delivered)
	}
}
