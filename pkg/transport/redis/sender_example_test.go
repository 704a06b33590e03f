package redis_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/pushd/pushd/pkg/auth"
	"github.com/pushd/pushd/pkg/hub"
	redistransport "github.com/pushd/pushd/pkg/transport/redis"
	"github.com/pushd/pushd/pkg/web"
)

// A backend that runs no SSE server sends into the cluster (what the seed
// called DistributedConnectionService): a hub without connections on the
// same transport. Here one pushd node holds user 42's browser connection
// and the backend, another process in real life, reaches it through the
// Redis on 127.0.0.1:6379.
func Example_backendSender() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prefix := fmt.Sprintf("example%d", time.Now().UnixNano())

	// The pushd node holding the connection.
	nodeTr, _ := redistransport.New(redistransport.Config{URL: "redis://127.0.0.1:6379/0", Prefix: prefix, NodeID: "pod-1"})
	defer nodeTr.Close()
	node, _ := hub.New(hub.Config{App: "demo", NodeID: "pod-1", Transport: nodeTr})
	go func() { _ = nodeTr.Run(ctx, node) }()
	sse, _ := web.New(web.Config{Hub: node, Path: "/sse/demo", Auth: auth.Demo{}})
	srv := httptest.NewServer(sse)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/sse/demo/connect?userId=42")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	stream := bufio.NewReader(resp.Body)

	// The backend: a hub with no connections, on the same transport.
	backendTr, _ := redistransport.New(redistransport.Config{URL: "redis://127.0.0.1:6379/0", Prefix: prefix, NodeID: "billing-1"})
	defer backendTr.Close()
	backend, _ := hub.New(hub.Config{App: "demo", NodeID: "billing-1", Transport: backendTr})
	go func() { _ = backendTr.Run(ctx, backend) }()

	var n int
	for deadline := time.Now().Add(5 * time.Second); n == 0 && time.Now().Before(deadline); {
		// Until both have subscribed, the user is not routable yet.
		n, _ = backend.SendByUserID(ctx, "42", "invoice", map[string]int{"total": 99})
	}
	fmt.Println("delivered to", n, "connection")
	for {
		line, err := stream.ReadString('\n')
		if err != nil {
			return
		}
		if strings.HasPrefix(line, "data:{\"total\"") {
			fmt.Print(line)
			return
		}
	}
	// Output:
	// delivered to 1 connection
	// data:{"total":99}
}
