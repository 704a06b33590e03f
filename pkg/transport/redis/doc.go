// Package redis is the cluster hub.Transport over Redis pub/sub, with
// routing by key instead of broadcast.
//
// # Routing
//
// Every node subscribes one channel per routing key it holds
// ({Prefix}:{app}:{key}, key as hub.RoutingKeys gives it: "u:42", "k:tok",
// "t:acme", "c:news", "x:<connectionId>", "all"). The hub reports the keys
// through SetInterest; the changes are batched into few SUBSCRIBE and
// UNSUBSCRIBE commands.
//
// Deliver and Survey PUBLISH a request to the channel of each routing key of
// the target. PUBLISH returns how many subscribers received it, so the sender
// waits for exactly that many replies on its own channel
// {Prefix}:reply:{NodeID}, or until its deadline. A node that receives one
// request on several channels serves it once and answers the later arrivals
// with an empty "duplicate" reply; the sender's own subscriptions are
// counted and answered locally, without calling the handler. A node that is
// closed or unreachable is not counted by PUBLISH, so nobody waits for it.
// A target with more than MaxRoutedKeys keys is published once to the app's
// "all" channel instead, so a huge target costs one message per node.
//
// A node serves the deliveries arriving on one channel one after the other,
// in arrival order (so events sent to one user keep their order); different
// channels and surveys are served concurrently by a bounded worker pool.
//
// # Failure handling
//
// Delivery between nodes is at-most-once; QoS gives at-least-once. Run keeps
// the subscription alive: it publishes a probe to {Prefix}:probe:{NodeID}
// every ProbeInterval and tears the subscription down when the probe does not
// come back within ProbeTimeout (a pub/sub connection can go silent), then
// subscribes again with backoff, every held key in a few commands, and calls
// Config.OnResubscribe. A request the node cannot queue is dropped and its sender stops waiting at
// its deadline.
//
// # Redis Cluster
//
// With a cluster client (Config.URL with cluster=1, or a
// *goredis.ClusterClient as Config.Client) every channel is a shard
// channel: the node subscribes with SSUBSCRIBE and senders publish with
// SPUBLISH, which reaches the subscribers on the master owning the
// channel's slot and returns exactly their number, so the count of
// replies to wait for stays exact (PUBLISH on a cluster counts only the
// node it was sent to). Routing keys spread over the shards by their
// slots; a node keeps one sharded pub/sub connection per master that owns
// one of its channels (subscription.go), each with a probe channel of its
// own on that master, and probes all of them every ProbeInterval. A probe
// must come back on every connection and its SPUBLISH must count this
// node, so a subscription that landed on a replica (a master killed and
// started again accepts subscriptions before it learns that its replica
// took over) is found and made again.
//
// The subscription is repaired connection by connection, without ending
// the session (repair.go): a connection that fails (its master died),
// whose probe does not come back or is not counted, is closed and its
// channels are subscribed on the masters that own them now; channels
// Redis unsubscribes while the node holds them (their slot moved to
// another master: the old owner sends SUNSUBSCRIBE when CLUSTER SETSLOT
// gives the slot away), or refuses with -MOVED, move alone, once the
// client's reloaded slot map names their new master. The other
// connections, and the routing keys on them, stay as they are: no other
// master sees an SSUBSCRIBE, and their keys keep reaching the node
// throughout. A repair is retried with backoff (20 ms to 500 ms) until
// its channels are placed, for example until a failed master's replica
// is promoted; when Redis confirmed all of them, Config.OnResubscribe is
// called (messages sent to them meanwhile may be missing). While the
// node's reply channel is without a connection the node is not ready.
// Stats.ShardRepairs and ShardMoves count the repairs and the channels
// they moved. Routing to a moved slot comes back within about 200 ms of
// the move, to a killed master's keys about a second after the cluster
// promoted the replica (tests: repair_cluster_test.go). On a cluster a
// session ends only when its first subscription fails or Run stops; the
// reconnect backoff is at most 1 s there. The standalone and Sentinel
// path is unchanged (one connection, SUBSCRIBE and PUBLISH).
//
// A request for several routing keys is published with one pipeline per
// master (as the client's slot map names them), all at once, not one
// pipeline across masters: a master that is down (until its replica is
// promoted) fails only its own keys' SPUBLISH, at the call's deadline at
// the latest, and the keys on the other masters are counted and their
// replies waited for. Deliver and Survey then return what those reached
// with an error wrapping ErrPartial, and log the keys they missed at
// warn ("publish partly failed"); a call none of whose keys could be
// published returns only the error (0, no replies). A request for one
// key on a master that is down is such a call. (A standalone Redis takes
// or fails one pipeline whole: there a multi-key request stays one
// pipeline, one round trip.)
//
// # Replies and pipelining
//
// A node publishes its replies from one goroutine: the replies to one
// sender that are ready together (while the previous flush is in flight)
// go out as one message, so under load a send costs Redis about one
// PUBLISH instead of two. Requests to one channel go through the client's
// autopipeliner (go-redis AutoPipeline) in full-duplex mode: the PUBLISH
// commands of concurrent senders go out together on one connection as
// they come, while the answers to earlier ones are read, so no send waits
// for another's round trip (with a pipeline per round trip, every send
// arriving meanwhile would); not on a Redis Cluster, where
// such a pipeline waits for every master it spans and one master down
// would delay the sends to all (each SPUBLISH goes straight to its
// master there). The subscription is read and
// dispatched by one goroutine, without a channel in between.
//
// # Wire format
//
// A request is one binary message (wire.go): a format byte, flags, the
// unique id, the origin node, the reply channel, the app, how long the
// sender still waits, the target's id lists, and the event (name, id,
// data) or the survey request (op, JSON args), each string length-prefixed
// and sent as is. A reply message is a format byte, the node id and any
// number of replies (request id, duplicate flag, count, data, error).
//
// Versions before the binary format sent one JSON object per request and
// per reply. Every node still reads that JSON and answers a JSON request
// with one JSON reply, so an old node's sends reach new nodes with exact
// counts; an old node drops binary requests as undecodable, so while old
// nodes are left, new ones must publish JSON too (Config.LegacyWire),
// or the old nodes' connections are neither reached nor counted.
//
// # Concurrency
//
// All methods are safe for concurrent use. SetInterest never blocks. Run is
// called once; Deliver, Survey and Ready need it running (they return
// ErrNotReady until its first subscription is established and while it is
// down). Close stops Run and waits for it, so handlers must honour their ctx.
//
// # Files
//
// transport.go the Transport (New, SetInterest, AwaitInterest, Ready,
// Stats, Close); send.go the sending side (Deliver, Survey, publishing a
// request and collecting its replies); interest.go the set of channels the
// hub wants and Redis confirmed; run.go Run and its subscription sessions
// (subscribing, probing, backoff); subscription.go the pub/sub
// connections of a session (one, or one per cluster master); repair.go
// the repair of a cluster connection and its channels; receive.go what arrives on the
// subscription (replies, requests, the duplicate filter, calling the
// handler); pool.go the workers serving requests in order per channel;
// replies.go the batched replies; wire.go the wire format; config.go and
// errors.go the configuration and errors.
package redis
