package registry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/await"
	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/transport/nacos"
	"github.com/pushd/pushd/pkg/transport/nacos/registry/nacostest"
)

const testGroup = "pushd-test"

// startFakeNacos starts the in-process Nacos gRPC fake for one test.
func startFakeNacos(t *testing.T) *nacostest.Server {
	t.Helper()
	srv, err := nacostest.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// sdkDir is a temp dir for the SDK's log and cache files. Not t.TempDir:
// the SDK writes cache files from its own goroutines, which CloseClient does
// not wait for, so the removal is retried and its failure tolerated.
func sdkDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pushd-nacos-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; i < 20 && os.RemoveAll(dir) != nil; i++ {
			time.Sleep(50 * time.Millisecond)
		}
	})
	return dir
}

// newNacos creates a Nacos discovery against srv, its SDK files in a temp
// dir, closed at the end of the test.
func newNacos(t *testing.T, srv *nacostest.Server) *Nacos {
	t.Helper()
	n, err := New(Config{
		Servers: []string{srv.ClientAddr()},
		Group:   testGroup,
		Dir:     sdkDir(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	await.True(t, 10*time.Second, "nacos client connected", func() bool { return n.Ready(context.Background()) == nil })
	return n
}

func peerIDs(t *testing.T, d nacos.Discovery, app string) []string {
	t.Helper()
	peers, err := d.Peers(context.Background(), app)
	if err != nil {
		t.Fatalf("Peers: %v", err)
	}
	ids := []string{}
	for _, p := range peers {
		ids = append(ids, p.NodeID)
	}
	return ids
}

func waitPeers(t *testing.T, d nacos.Discovery, app string, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	var got []string
	await.True(t, 10*time.Second, fmt.Sprintf("peers of %s = %v", app, want), func() bool {
		got = peerIDs(t, d, app)
		return reflect.DeepEqual(got, want)
	})
}

func TestNacosRegistersEphemeralInstance(t *testing.T) {
	srv := startFakeNacos(t)
	dir := sdkDir(t)
	n, err := New(Config{Servers: []string{"nacos://" + srv.ClientAddr()}, Group: testGroup, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	await.True(t, 10*time.Second, "connected", func() bool { return n.Ready(context.Background()) == nil })

	self := nacos.Peer{NodeID: "n1", Addr: "127.0.0.1:7001", Version: "1.2.3"}
	if err := n.Register(context.Background(), "demo", self); err != nil {
		t.Fatalf("Register: %v", err)
	}
	ins := srv.Instances("public", testGroup, "pushd-demo")
	if len(ins) != 1 {
		t.Fatalf("instances = %+v", ins)
	}
	in := ins[0]
	if !in.Ephemeral || !in.Enable || !in.Healthy || in.Weight != 1 || in.Ip != "127.0.0.1" || in.Port != 7001 || in.ClusterName != "DEFAULT" {
		t.Fatalf("instance = %+v", in)
	}
	wantMeta := map[string]string{MetaNodeID: "n1", MetaVersion: "1.2.3", MetaProto: "v1"}
	if !reflect.DeepEqual(in.Metadata, wantMeta) {
		t.Fatalf("metadata = %v, want exactly %v (nothing secret)", in.Metadata, wantMeta)
	}
	// Registering subscribed too: the node sees itself.
	waitPeers(t, n, "demo", "n1")
	if got, _ := n.Peers(context.Background(), "demo"); got[0] != self {
		t.Fatalf("peer = %+v, want %+v", got[0], self)
	}

	// The SDK's files went to Dir, not next to the binary or into the
	// working directory.
	if _, err := os.Stat(filepath.Join(dir, "cache")); err != nil {
		t.Errorf("no SDK cache in Dir: %v", err)
	}
	wd, _ := os.Getwd()
	for _, p := range []string{"log", "cache"} {
		if _, err := os.Stat(filepath.Join(wd, p)); err == nil {
			t.Errorf("SDK wrote %s into the working directory", p)
		}
	}

	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	await.True(t, 5*time.Second, "instance removed on Close", func() bool {
		return len(srv.Instances("public", testGroup, "pushd-demo")) == 0
	})
	if err := n.Register(context.Background(), "demo", self); !errors.Is(err, ErrClosed) {
		t.Fatalf("Register after Close = %v", err)
	}
	// Peers still answers (with the last list the server pushed: the
	// deregistration emptied it).
	if _, err := n.Peers(context.Background(), "demo"); err != nil {
		t.Fatalf("Peers after Close = %v", err)
	}
}

func TestNacosPushesMembershipChanges(t *testing.T) {
	srv := startFakeNacos(t)
	a, b, c := newNacos(t, srv), newNacos(t, srv), newNacos(t, srv)
	ctx := context.Background()

	if err := a.Register(ctx, "demo", nacos.Peer{NodeID: "a", Addr: "127.0.0.1:7001"}); err != nil {
		t.Fatal(err)
	}
	waitPeers(t, a, "demo", "a")
	if err := b.Register(ctx, "demo", nacos.Peer{NodeID: "b", Addr: "127.0.0.1:7002"}); err != nil {
		t.Fatal(err)
	}
	waitPeers(t, a, "demo", "a", "b")
	// A watcher that never registers (a backend that only sends).
	waitPeers(t, c, "demo", "a", "b")
	// Another app is another service.
	waitPeers(t, c, "other")

	// b leaves cleanly: deregistered.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	waitPeers(t, a, "demo", "a")
	waitPeers(t, c, "demo", "a")

	// a's connection ends without deregistering: the server drops its
	// ephemeral instance and pushes the now empty list.
	a.client.CloseClient()
	waitPeers(t, c, "demo")
	if srv.Acks() == 0 || srv.Acks() > srv.Pushes() {
		t.Fatalf("pushes %d, acks %d: the SDK should acknowledge pushes", srv.Pushes(), srv.Acks())
	}
}

// TestNacosCallbackOutOfOrder: the SDK calls the subscription callback from
// several goroutines, so a call carrying an older list can come last (the
// conformance suite's NodeDeath case once waited 15 s on a node that saw 2
// of 3 peers while Nacos held 3). That late, stale call must not replace
// the newer list.
func TestNacosCallbackOutOfOrder(t *testing.T) {
	srv := startFakeNacos(t)
	a, b := newNacos(t, srv), newNacos(t, srv)
	ctx := context.Background()
	if err := a.Register(ctx, "demo", nacos.Peer{NodeID: "a", Addr: "127.0.0.1:7001"}); err != nil {
		t.Fatal(err)
	}
	waitPeers(t, b, "demo", "a")
	stale := srv.Instances("public", testGroup, "pushd-demo")
	if err := b.Register(ctx, "demo", nacos.Peer{NodeID: "b", Addr: "127.0.0.1:7002"}); err != nil {
		t.Fatal(err)
	}
	waitPeers(t, b, "demo", "a", "b")

	b.mu.Lock()
	w := b.watches["demo"]
	b.mu.Unlock()
	w.param.SubscribeCallback(stale, nil) // the older list, delivered last
	if got := peerIDs(t, b, "demo"); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Fatalf("after a late callback with the older list, b sees %v, want [a b]", got)
	}
}

func TestNacosTransportsDiscoverEachOther(t *testing.T) {
	srv := startFakeNacos(t)
	d1, d2 := newNacos(t, srv), newNacos(t, srv)
	n1, _ := runTransport(t, nacos.Config{NodeID: "n1", Apps: []string{"demo"}, Discovery: d1}, countHandler(2))
	n2, stop2 := runTransport(t, nacos.Config{NodeID: "n2", Apps: []string{"demo"}, Discovery: d2}, countHandler(3))
	waitReady(t, n1)
	waitReady(t, n2)
	waitPeers(t, d1, "demo", "n1", "n2")
	waitPeers(t, d2, "demo", "n1", "n2")

	got, err := n1.Deliver(context.Background(), "demo", hub.Target{All: true}, hub.Event{Name: "e", Data: "x"})
	if err != nil || got != 3 {
		t.Fatalf("n1 Deliver = %d, %v; want 3", got, err)
	}
	replies, err := n2.Survey(context.Background(), "demo", hub.Request{Op: hub.OpStats})
	if err != nil || len(replies) != 1 || replies[0].NodeID != "n1" || replies[0].Count != 2 {
		t.Fatalf("n2 Survey = %+v, %v", replies, err)
	}

	// n2 stops: its Run withdraws the registration, n1 stops seeing it.
	stop2()
	waitPeers(t, d1, "demo", "n1")
	got, err = n1.Deliver(context.Background(), "demo", hub.Target{All: true}, hub.Event{Name: "e", Data: "x"})
	if err != nil || got != 0 {
		t.Fatalf("Deliver after n2 left = %d, %v; want 0", got, err)
	}
}

func TestNacosReadyFollowsConnection(t *testing.T) {
	srv := startFakeNacos(t)
	n := newNacos(t, srv)
	if err := n.Ready(context.Background()); err != nil {
		t.Fatalf("Ready = %v", err)
	}
	srv.Close()
	await.True(t, 10*time.Second, "not ready after the server went away", func() bool {
		return errors.Is(n.Ready(context.Background()), ErrNotConnected)
	})
}

func TestParseNacosServer(t *testing.T) {
	for in, want := range map[string][3]any{
		"10.0.0.1:8848":                   {"10.0.0.1", uint64(8848), uint64(0)},
		"http://nacos.local:8848":         {"nacos.local", uint64(8848), uint64(0)},
		"[fd00::1]:8848?grpc_port=19848":  {"fd00::1", uint64(8848), uint64(19848)},
		"nacos://127.0.0.1:1?grpc_port=2": {"127.0.0.1", uint64(1), uint64(2)},
	} {
		sc, err := parseNacosServer(in)
		if err != nil || sc.IpAddr != want[0] || sc.Port != want[1] || sc.GrpcPort != want[2] {
			t.Errorf("%s → %+v, %v", in, sc, err)
		}
	}
	for _, bad := range []string{"nacos", "host:", "host:0", "host:99999", "host:1?grpc_port=x"} {
		if _, err := parseNacosServer(bad); !errors.Is(err, nacos.ErrConfig) {
			t.Errorf("%s: err = %v", bad, err)
		}
	}
	if _, err := New(Config{}); !errors.Is(err, nacos.ErrConfig) {
		t.Errorf("New without servers: %v", err)
	}
}

func TestNacosDownDoesNotBlockSends(t *testing.T) {
	srv := startFakeNacos(t)
	clientAddr := srv.ClientAddr()
	srv.Close() // nothing listens there any more

	d, err := New(Config{Servers: []string{clientAddr}, Group: testGroup, Dir: sdkDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	tr, _ := runTransport(t, nacos.Config{NodeID: "n1", Apps: []string{"demo"}, Discovery: d, Timeout: 500 * time.Millisecond}, countHandler(0))
	await.True(t, 5*time.Second, "peer api serving", func() bool {
		return !errors.Is(tr.Ready(context.Background()), nacos.ErrNotServing)
	})
	if err := tr.Ready(context.Background()); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Ready with Nacos down = %v, want ErrNotConnected", err)
	}
	// A send to an app with no subscription yet waits at most for the
	// subscribe request to fail (RequestTimeout, 3 s), far below the
	// caller's deadline: with Nacos down it finds no peers and says so.
	for _, app := range []string{"demo", "other-app"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		start := time.Now()
		got, err := tr.Deliver(ctx, app, hub.Target{All: true}, hub.Event{Name: "e"})
		took := time.Since(start)
		cancel()
		t.Logf("Deliver to %s with Nacos down: %d, %v after %v", app, got, err, took)
		if got != 0 || err != nil || took > 10*time.Second {
			t.Fatalf("Deliver to %s with Nacos down = %d, %v after %v; want 0 and nil well before the 30 s deadline", app, got, err, took)
		}
	}
}
