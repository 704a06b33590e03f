package hub

import "context"

// Transport connects the hubs of one app across nodes. The hub always
// serves its own connections first and uses the Transport only to reach the
// other nodes; a nil Transport means a single node.
//
// Delivery between nodes is at-most-once: a message lost on the way (a node
// restarting, a pub/sub connection dropping) is not retried by the
// transport. QoS sends get at-least-once from the qos.Repository instead.
type Transport interface {
	// Deliver writes ev to the connections matching t on every other node
	// and returns how many connections they wrote it to. Nodes that cannot
	// be reached are skipped (their count is missing, the error is nil).
	// An error with a count means part of the target could not be sent to
	// (the count is what the rest answered; a Redis Cluster master down,
	// say); with 0, that the transport could not send at all. It returns
	// by ctx's deadline with what was answered until then.
	Deliver(ctx context.Context, app string, t Target, ev Event) (int, error)
	// Survey asks every other node (or, when req.Target is set, only the
	// nodes that may hold matching connections) and returns their replies.
	// It returns by ctx's deadline with the replies that arrived.
	Survey(ctx context.Context, app string, req Request) ([]Reply, error)
	// Run serves requests from other nodes with h until ctx ends.
	Run(ctx context.Context, h Handler) error
}

// Handler answers requests that arrive from other nodes. A *Hub serves its
// own app; Mux serves several.
type Handler interface {
	// HandleDeliver writes ev to local connections of app matching t and
	// returns how many it was written to.
	HandleDeliver(ctx context.Context, app string, t Target, ev Event) int
	// HandleSurvey answers req for the local connections of app.
	HandleSurvey(ctx context.Context, app string, req Request) (Reply, error)
}

// QuickDeliverer is implemented by Handlers that can serve a small delivery
// without blocking. HandleDeliverQuick writes ev to the local connections
// of app matching t, as HandleDeliver does, when t matches at most a few of
// them, and returns ok; otherwise it does nothing and returns !ok, and the
// transport hands the request to a worker. A transport calls it on the
// goroutine that receives from the other nodes, saving that hand-off for
// the common send to one user or connection.
type QuickDeliverer interface {
	HandleDeliverQuick(app string, t Target, ev Event) (n int, ok bool)
}

// Interest is implemented by transports that route by key (see
// RoutingKeys). The hub reports every key it starts holding (on=true, its
// first connection for that key) and stops holding (on=false, its last).
// KeyAll is reported once when the hub starts. Calls are made with no hub
// lock held, may come from many goroutines, and must not block: batch them.
type Interest interface {
	SetInterest(app string, key string, on bool)
}

// InterestWaiter is implemented by Interest transports whose routes take
// effect after SetInterest returns. AwaitInterest returns once messages
// other nodes send to keys reach this node, or with an error when that
// cannot be confirmed (ctx ended, transport down).
type InterestWaiter interface {
	AwaitInterest(ctx context.Context, app string, keys []string) error
}

// Readier is implemented by transports that can tell whether this node
// takes part in the cluster (its peers or broker answer, its subscription
// or peer server is up). Ready returns nil when it does, else an error
// saying why; a daemon's readiness check (/readyz) calls it.
type Readier interface {
	Ready(ctx context.Context) error
}

// Closer is implemented by transports that hold connections or servers of
// their own. Close releases them and ends Run; it is called once the hubs
// using the transport have shut down, and must be safe to call twice.
type Closer interface {
	Close() error
}
