package redis_test

import (
	"context"
	"fmt"
	"time"

	"github.com/pushd/pushd/pkg/hub"
	redistransport "github.com/pushd/pushd/pkg/transport/redis"
)

// localHub stands in for a *hub.Hub (or hub.Mux) serving this node.
type localHub struct{}

func (localHub) HandleDeliver(ctx context.Context, app string, t hub.Target, ev hub.Event) int {
	return 0 // write ev to the local connections matching t, return how many
}

func (localHub) HandleSurvey(ctx context.Context, app string, req hub.Request) (hub.Reply, error) {
	return hub.Reply{}, nil
}

// The wiring of one node: the hub reports the routing keys it holds, Run
// serves the other nodes, and Deliver reaches the nodes holding a user.
func Example() {
	tr, err := redistransport.New(redistransport.Config{
		URL:           "redis://127.0.0.1:6379/0",
		NodeID:        "node-1",
		OnResubscribe: func() { /* re-read QoS inboxes: messages may have been lost */ },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tr.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = tr.Run(ctx, localHub{}) }()

	// The hub does this as its first connection of user 42 arrives.
	tr.SetInterest("demo", hub.KeyAll, true)
	tr.SetInterest("demo", hub.KeyUserPrefix+"42", true)

	// Another node's hub sends to user 7 after serving its own connections.
	sendCtx, cancelSend := context.WithTimeout(ctx, time.Second)
	defer cancelSend()
	n, err := tr.Deliver(sendCtx, "demo", hub.Target{UserIDs: []string{"7"}}, hub.Event{Name: "greeting", Data: "hello"})
	fmt.Println(n, err)
}
