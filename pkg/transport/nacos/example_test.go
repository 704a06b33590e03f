package nacos_test

import (
	"context"
	"fmt"

	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/transport/nacos"
)

// printHandler stands in for a *hub.Hub: it pretends to hold one matching
// connection.
type printHandler struct{ node string }

func (h printHandler) HandleDeliver(_ context.Context, app string, _ hub.Target, ev hub.Event) int {
	fmt.Printf("%s: deliver %q to app %s\n", h.node, ev.Name, app)
	return 1
}

func (h printHandler) HandleSurvey(context.Context, string, hub.Request) (hub.Reply, error) {
	return hub.Reply{Count: 1}, nil
}

// Two nodes with a static peer list; n1 sends, n2's hub delivers.
func Example() {
	peers, _ := nacos.NewStatic() // filled in below, once the ports are known
	newNode := func(id string) *nacos.Transport {
		tr, err := nacos.New(nacos.Config{
			NodeID:        id,
			Apps:          []string{"demo"},
			Discovery:     peers,
			Secret:        "a-shared-cluster-secret",
			Listen:        "127.0.0.1:0",
			AdvertiseAddr: "127.0.0.1",
		})
		if err != nil {
			panic(err)
		}
		return tr
	}
	n1, n2 := newNode("n1"), newNode("n2")
	defer n1.Close()
	defer n2.Close()
	_ = peers.SetPeers(n1.Self(), n2.Self()) // every node may list itself

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The listener is bound by New: a request arriving before Run waits
	// in the accept queue until Run serves it.
	go n2.Run(ctx, printHandler{node: "n2"})

	n, err := n1.Deliver(ctx, "demo", hub.Target{UserIDs: []string{"42"}}, hub.Event{Name: "news", Data: "hello"})
	fmt.Println(n, err)
	// Output:
	// n2: deliver "news" to app demo
	// 1 <nil>
}
