// Package hub owns pushd's connections: the sharded registry and its
// indices (user, access token, tenant, channel, client), one bounded queue
// and one writer per connection, the SSE encoder, addressing and fan-out,
// the per-client and per-user connection caps and the other limits,
// connect/disconnect/listener hooks, QoS integration through a
// qos.Repository, and cluster routing through a Transport. A Hub serves one
// app; a Mux routes transport requests to the hubs of several apps.
//
// # Concurrency
//
// Every method of Hub is safe for concurrent use. A send encodes its event
// once and appends the shared bytes to the queue of each matching
// connection without waiting for any socket: a connection whose queue is
// full is closed as a slow consumer instead.
//
// Each connection has exactly one writer at a time: the goroutine that
// found its queue non-empty and marked it scheduled, until that writer
// finds the queue empty again. Which goroutine that is depends on how the
// stream is served:
//
//   - Direct path (HTTP/2, a ResponseWriter that cannot be hijacked,
//     Config.Writers -1): the goroutine of the HTTP request, blocked in
//     ServeStream until the stream ends.
//   - Hijacked HTTP/1.x streams: a small pool of writer goroutines shared
//     by all connections (Config.Writers), so an idle connection costs no
//     goroutine.
//   - Inline: a fan-out (a send, a delivery from another node, the
//     heartbeat sweep) that made at most four hijacked connections ready
//     writes them itself, on its own goroutine, instead of waking pool
//     workers. Only plain (not TLS) sockets on Linux qualify, written with
//     one non-blocking send; a TLS socket, a socket that does not take all the
//     bytes at once and the end of a stream (which runs the disconnect
//     hooks) are left to the pool.
//
// A pool writer never waits on one socket for long: what a full socket
// does not take is kept with the connection and retried, and a connection
// that takes nothing for longer than Config.WriteTimeout is closed.
//
// # Lifecycle
//
// New builds a hub; Run performs its periodic work (heartbeats,
// connection lifetimes and credential expiry, QoS redelivery) until its
// context ends; Shutdown closes every connection and refuses new ones.
// Drain closes connections spread over a window so that clients reconnect
// elsewhere without a storm.
//
// # Limits
//
// Everything a browser can grow is bounded (see Config for the defaults).
// Connect refuses a user whose credential has expired (ErrTokenExpired),
// more listeners than MaxListeners (ErrTooManyListeners), names that are
// empty, longer than MaxNameLength or hold CR, LF or NUL (ErrInvalidName),
// and any connection beyond MaxConnections on the node
// (ErrTooManyConnections). ChangeListeners keeps the same bounds. A new
// connection beyond MaxConnectionsPerClient (same user, tenant and client
// id; the domain only with ClientCapByDomain) or MaxConnectionsPerUser
// (same user id and tenant, or access token) is accepted and the oldest of
// its group are closed — on this node at once, on the others after a
// survey of the owner's connections. A connection ends at the earlier of
// its lifetime (the client's keepaliveTime, at most MaxKeepalive) and its
// user's User.ExpiresAt, the latter with connect-close reason
// token-expired. Ack takes at most MaxAckIDs ids and passes each to the
// repository once.
//
// # QoS and listeners
//
// A client that acknowledges is sent every QoS message of its recipient
// and the message stays stored until it acknowledges. For a client that
// cannot, writing a message counts as delivery, so it is written only if
// the client listens to its event: a client that named listeners (at
// connect or later) gets the events it names; one that never named any is
// taken to handle every event. Messages it does not listen to stay stored
// for a connection that does, or until their TTL.
//
// # Files
//
//   - hub.go: Hub, New, Connect, registration, Run, Shutdown, Drain, Mux
//   - caps.go: the per-client and per-user connection caps, here and
//     across nodes
//   - config.go, errors.go, event.go, target.go, user.go, reason.go: the
//     types a caller builds or inspects
//   - conn.go: a connection's identity, its queue (enqueue, offer) and close
//   - info.go: the telemetry types (ClientInfo, ConnectionInfo, Snapshot)
//   - send.go: Publish, the Send helpers, HandleDeliver, local fan-out
//   - frame.go: the SSE encoder
//   - stream.go: ServeStream, hijacking and the direct path
//   - writer.go: the writer pool, the fan-out waker, stalled sockets and
//     the writer side of Conn (take, buffers, written); rawwrite_*.go and
//     peek_*.go the per-platform socket calls
//   - registry.go: the sharded connection map and indices
//   - qos.go: QoS storage, replay, redelivery and acknowledgement
//   - query.go: cluster-wide and local queries (connections, users, stats,
//     nodes)
//   - command.go: cluster-wide commands (disconnect, duration, listeners,
//     ack)
//   - survey.go: the survey operations, Request, Reply and HandleSurvey
//   - transport.go: the Transport and Handler interfaces and the optional
//     capabilities (QuickDeliverer, Interest, InterestWaiter, Readier, Closer)
package hub
