// Package nacos is the cluster Transport that reaches the other pushd nodes
// over HTTP. Every node serves a small peer API on its own port; peers are
// found through a Discovery: a static list (Static, config
// `cluster.peers`), or Nacos (package nacos/registry: each node registers
// its peer address as an ephemeral instance of service "pushd-{app}").
//
// # Fan-out and routing
//
// Deliver and Survey send the request to the known peers of the app that
// may hold a matching connection (see Routing by interest), in parallel,
// and merge what comes back: delivered counts are
// summed, survey replies are collected with the answering node's id. The
// whole call is bounded by ctx's deadline (Config.Timeout when ctx has
// none); peers that are unreachable, fail, answer late or answer with a bad
// signature are skipped. Delivery between nodes is at-most-once; the QoS
// repository provides at-least-once.
//
// # Peer links
//
// A node sends its requests to a peer over one held TCP connection, its
// link to that peer (link.go): it starts as a signed HTTP request to
// PathLink that the peer answers with a signed 101, and then carries binary
// frames, the requests one way and their replies the other. Requests that
// are sent while a frame is being written go out together in the next one,
// by whichever caller finds the connection free (no goroutine in between);
// the peer serves a small delivery on the link's reading goroutine (the
// hub's quick path) and writes the replies to one frame's requests
// together, and serves anything else on a goroutine of its own (at most 256
// per link). The first call to a peer dials its link, and the calls made
// meanwhile wait for that one dial. A peer that answers PathLink with 404 (a
// version before links, or Config.PerRequestHTTP) gets one HTTP request per
// call (PathDeliver, PathSurvey), and is asked again a minute later. A link
// that breaks is dialed again by the next call; one from which nothing was
// read while a call waited until its deadline is closed as dead. Peers that
// serve links still serve the per-request paths.
//
// # Routing by interest
//
// The Transport is a hub.Interest and hub.InterestWaiter (interest.go):
// each node tells every peer, over its link to that peer, the routing keys
// its hubs hold (hub.RoutingKeys: the whole set when the link opens, then
// the changes, batched while the last ones wait for their answers), and a
// sender skips a peer whose whole set it has and that holds none of a
// target's keys (a target with All has KeyAll, which every hub holds; a
// survey without a target goes to all). AwaitInterest returns once every
// peer this node has a link to answered the changes made so far, so a
// connection's connect-finish, which the hub holds back for it, comes after
// its keys are known everywhere. A peer whose keys a node does not know —
// its link to the node is not open yet or broke (the view of it is dropped
// with the link, and a new link starts a new one), or its handler never
// reported keys (not a hub), or it serves no links — is sent everything.
// Run keeps a link open to every peer of Config.Apps (checked every second
// and whenever a peer links to this node), so that the peers learn this
// node's keys before it sends them anything.
//
// Each frame carries an HMAC-SHA256 over its sequence number in its
// direction and its body, under a key derived from the secret, the
// handshake's nonce, both node ids and the direction: a frame injected into
// the connection, replayed, reordered, cut or taken from another link or
// the other direction fails it, and the peer closes the link. The
// handshake is checked like any peer request (signature, timestamp,
// nonce, addressed to this node), so a captured handshake cannot be
// replayed. Frames are at most MaxBodyBytes; a request larger than that
// fails alone.
//
// # Peer authentication
//
// HTTP requests (and the handshakes of links) carry the sender's node id,
// the receiver's node id, a timestamp (Unix ms), a random nonce, the body's SHA-256 and an HMAC-SHA256 signature
// (shared Config.Secret) over those, the method, the path and the body's
// length. The receiver checks the headers before it reads any of the body:
// a request without Content-Length is refused with 411, one longer than
// MaxBodyBytes with 413, and with 401 a missing or wrong signature or a
// timestamp outside the replay window or before this node started (minus
// Config.ClockSkew, default 0); only then is the body read, up to its
// signed length, and refused with 401 unless it matches the signed hash,
// and last a nonce seen within the window is refused with 401. The nonces
// live in memory; the start check is what keeps a request captured before
// a restart from being replayed after it. Replies are signed too (bound to
// the request's nonce), so an address that made its way into the registry
// cannot forge answers. No credential is ever published in the registry.
// HMAC gives authenticity and integrity, not confidentiality: the peer API
// is plain HTTP and belongs on a private network; whoever can write to the
// registry can make nodes send events to an address of their choice, so
// protect Nacos with its own auth.
//
// # Lifecycle and concurrency
//
// New binds the peer listener (Addr reports it; a request arriving before
// Run waits in the accept queue); Run serves it with a hub.Handler,
// registers this node for Config.Apps and, when its ctx ends, shuts the
// server down (closing the links it accepted, which net/http does not
// track) and withdraws the registrations. Ready (for /readyz) is nil
// while the peer API is served and the Discovery is connected. Deliver and Survey
// are safe for concurrent use and work before, during and after Run (after
// Run the last known peer list is used). Close is idempotent and releases
// everything, including the Discovery, which the Transport owns, and this
// node's links.
//
// # Files
//
// transport.go the Transport (New, Run, Deliver, Survey, the fan-out and
// the per-request HTTP calls); server.go the peer API's HTTP side; auth.go
// the request and reply signatures; link.go the link's framing and frame
// signatures; linkwire.go the requests and replies inside frames;
// linkclient.go this node's links to its peers; linkserver.go the links
// it accepts; interest.go the routing keys sent and learned over them;
// discovery.go the peer lists; config.go the configuration.
//
// # Nacos
//
// The Nacos-backed Discovery is package nacos/registry, so that this package
// does not link nacos-sdk-go (about +17 MB of binary, and the SDK's
// Prometheus collectors in the default registry) where a static peer list
// is enough; its tests run the real SDK against an in-process Nacos server
// (registry/nacostest). pkg/hub never imports either.
package nacos
