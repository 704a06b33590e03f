// Package nacos is the cluster Transport that reaches the other pushd nodes
// over HTTP. Every node serves a small peer API on its own port; peers are
// found through a Discovery: Nacos (each node registers its peer address as
// an ephemeral instance of service "pushd-{app}") or a static list.
//
// # Fan-out
//
// Deliver and Survey send the request to every known peer of the app except
// this node, in parallel, and merge what comes back: delivered counts are
// summed, survey replies are collected with the answering node's id. The
// whole call is bounded by ctx's deadline (Config.Timeout when ctx has
// none); peers that are unreachable, fail, answer late or answer with a bad
// signature are skipped. Delivery between nodes is at-most-once; the QoS
// repository provides at-least-once.
//
// # Peer authentication
//
// Requests carry the sender's node id, the receiver's node id, a timestamp,
// a random nonce and an HMAC-SHA256 signature (shared Config.Secret) over
// those, the method, the path and a SHA-256 of the body. The receiver
// rejects with 401, before its handler runs, a missing or wrong signature, a
// timestamp outside the replay window and a nonce it has seen within the
// window. Replies are signed too (bound to the request's nonce), so an
// address that made its way into the registry cannot forge answers. No
// credential is ever published in the registry. HMAC gives authenticity and
// integrity, not confidentiality: the peer API is plain HTTP and belongs on a
// private network; whoever can write to the registry can make nodes send
// events to an address of their choice, so protect Nacos with its own auth.
//
// # Lifecycle and concurrency
//
// New binds the peer listener (Addr reports it); Run serves it with a
// hub.Handler, registers this node for Config.Apps and, when its ctx ends,
// shuts the server down and withdraws the registrations. Deliver and Survey
// are safe for concurrent use and work before, during and after Run (after
// Run the last known peer list is used). Close is idempotent and releases
// everything, including the Discovery, which the Transport owns.
//
// The Nacos discovery links nacos-sdk-go (about 30 MB of binary); pkg/hub
// never imports this package.
package nacos
