package redis_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/await"
	"github.com/pushd/pushd/internal/testredis"
	"github.com/pushd/pushd/pkg/auth"
	"github.com/pushd/pushd/pkg/hub"
	redistransport "github.com/pushd/pushd/pkg/transport/redis"
	"github.com/pushd/pushd/pkg/web"
)

// TestBackendSender: a backend that runs no SSE server sends into the
// cluster (what the seed called DistributedConnectionService) through a hub
// without connections on the same transport. Here one pushd node holds
// user 42's browser connection and the backend, another process in real
// life, reaches it through Redis.
func TestBackendSender(t *testing.T) {
	url := testredis.StartAny(t).URL()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const prefix = "sender"

	// The pushd node holding the connection.
	nodeTr, err := redistransport.New(redistransport.Config{URL: url, Prefix: prefix, NodeID: "pod-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer nodeTr.Close()
	node, err := hub.New(hub.Config{App: "demo", NodeID: "pod-1", Transport: nodeTr})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = nodeTr.Run(ctx, node) }()
	sse, err := web.New(web.Config{Hub: node, Path: "/sse/demo", Auth: auth.Demo{}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sse)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/sse/demo/connect?userId=42")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	stream := bufio.NewReader(resp.Body)

	// The backend: a hub with no connections, on the same transport.
	backendTr, err := redistransport.New(redistransport.Config{URL: url, Prefix: prefix, NodeID: "billing-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer backendTr.Close()
	backend, err := hub.New(hub.Config{App: "demo", NodeID: "billing-1", Transport: backendTr})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = backendTr.Run(ctx, backend) }()

	// Until both have subscribed, the user is not routable yet.
	await.Until(t, 10*time.Second, func() error {
		n, err := backend.SendByUserID(ctx, "42", "invoice", map[string]int{"total": 99})
		if n != 1 {
			return fmt.Errorf("backend send to user 42: delivered %d, %v", n, err)
		}
		return nil
	})
	for {
		line, err := stream.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended before the invoice: %v", err)
		}
		if strings.HasPrefix(line, "data:") && strings.Contains(line, `"total"`) {
			if line != `data:{"total":99}`+"\n" {
				t.Fatalf("invoice frame data %q", line)
			}
			return
		}
	}
}
