// Package notify owns presence notifications to an app's backend in daemon
// mode — the seed's connect/disconnect listeners, for backends in any
// language. The hub's connect and disconnect hooks call Connected and
// Disconnected; Run POSTs the resulting events, signed, to the backend.
//
// # Events
//
//   - online: a user's first connection on this node opened.
//   - offline: the user's last connection on this node closed and Grace
//     passed without a new one. A connection opening within Grace cancels
//     the pending offline and nothing is sent, so tab switches and page
//     reloads do not make the user flap.
//   - connect / disconnect: every connection, when EveryConnection is set.
//   - join / leave: a connection joined or left Event.Channel, for the
//     channels the caller reports with ChannelChanged.
//
// Connections without a user id produce only connect/disconnect.
//
// # In a cluster
//
// Each node tracks its own connections. Without Config.Cluster, presence
// is per node: a user with tabs on two pushd nodes gets an online from
// each (the "node" field tells them apart). With a Cluster, just before an
// online or offline is sent the node asks the others for the user's
// connections and leaves the event to them when they speak for the user:
//
//   - online is sent only by the node holding the user's earliest open
//     connection (opened at the same millisecond: the smaller node id), so
//     a user whose tabs land on several nodes at once gets one online;
//   - offline is not sent while another node holds a connection of the
//     user; the node whose connection is the last to close sends it, after
//     its Grace.
//
// Such events are counted as Covered in Stats. When the cluster cannot
// answer, the node sends the event (per-node behaviour for that event). A
// user who moves to another node within Grace may be reported online twice
// without an offline between; backends should treat online and offline as
// states, ordered by "timestamp", not as toggles.
//
// # Wire format
//
// Each event is one POST to URL with Content-Type application/json and the
// body
//
//	{"id":"<unique, the same on every retry>","type":"online|offline|connect|disconnect",
//	 "app":"…","userId":"…","tenantId":"…","connectionId":"…","node":"…",
//	 "connections":N,"sessionDuration":<seconds, fractional>,"timestamp":<Unix ms of the event>}
//
// connections is the user's number of connections on this node after the
// event; for offline, connectionId, sessionDuration and timestamp are those
// of the last connection's close. Headers: X-Pushd-Event (the type),
// X-Pushd-Timestamp (Unix seconds of this attempt), X-Pushd-Content-Sha256
// (hex SHA-256 of the body) and, when a Secret is configured, X-Pushd-Nonce
// (fresh for every attempt) and X-Pushd-Signature: the scheme of package
// signature (its documentation has the recipe for other languages) over
// POST, the URL's path and query, the body hash, the timestamp and the
// nonce, with one extra line, the value of X-Pushd-Event. A captured
// request is thus refused on another URL, with another body or type, after
// the window (60 s by default) and, with a replay cache, a second time. Go
// backends call Verify with one signature.ReplayCache.
//
// A 2xx answer delivers the event. 408, 429, 5xx and network errors are
// retried up to MaxAttempts with exponential backoff and jitter; other
// answers give up at once. Events are sent one at a time in the order they
// happened, so an online is never overtaken by its offline; backends should
// still be idempotent on "id", since a timed-out attempt may have arrived.
//
// # Concurrency and bounds
//
// Connected and Disconnected never block on the network: they update the
// presence state under a mutex and append to a bounded queue. When the
// queue is full the oldest event is dropped and counted (Stats), and a
// warning is logged at the 1st, 2nd, 4th, 8th … drop. One goroutine, Run,
// sends. Events still queued when Run's context ends are not sent.
//
// # Files
//
// notify.go the configuration, the types and New; presence.go the
// presence state and the queue (Connected, Disconnected, the grace);
// send.go Run and the POSTs (cluster check, retries, signing); verify.go
// Verify for Go backends; clock.go the clock tests replace.
package notify
