// Package hub owns pushd's connections: the sharded registry and its
// indices (user, access token, tenant, channel, client), one bounded queue
// and one writer per connection, the SSE encoder, addressing and fan-out,
// the per-client connection cap, connect/disconnect/listener hooks, QoS
// integration through a qos.Repository, and cluster routing through a
// Transport. A Hub serves one app; a Mux routes transport requests to the
// hubs of several apps.
//
// # Concurrency
//
// Every method of Hub is safe for concurrent use. A send encodes its event
// once and appends the shared bytes to the queue of each matching
// connection without waiting for any socket: a connection whose queue is
// full is closed as a slow consumer instead. Each connection has exactly
// one writer: the goroutine of its HTTP request, or — for HTTP/1.x streams
// that can be hijacked — a small pool of writer goroutines shared by all
// connections, so an idle connection costs no goroutine.
//
// # Lifecycle
//
// New builds a hub; Run performs its periodic work (heartbeats,
// connection lifetimes, QoS redelivery) until its context ends; Shutdown
// closes every connection and refuses new ones. Drain closes connections
// spread over a window so that clients reconnect elsewhere without a storm.
package hub
