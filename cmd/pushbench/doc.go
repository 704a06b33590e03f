// Command pushbench is the load tool for pushd. It opens many SSE connections
// to one or several pushd nodes, publishes through the server API and reports
// how the servers coped: connection setup rate, server memory per idle
// connection, deliveries per second, server CPU per delivery and per send,
// publish-to-delivery latency, and — per message — whether every expected
// recipient got it exactly once (lost, duplicated and misrouted deliveries).
//
// # Usage
//
//	pushbench -spawn ./pushd -conns 10000 -users 1000 -tenants 10 -mode all -messages 200 -rate 500
//	pushbench -nodes http://127.0.0.1:8080,http://127.0.0.1:8081 -pids 1234,1235 -conns 2000 -json out.json
//	pushbench -spawn ./pushd -spawn-nodes 2 -spawn-env PUSHD_CLUSTER_TRANSPORT=redis,PUSHD_CLUSTER_REDIS_URL=redis://127.0.0.1:6379/0 -qos -ack
//	pushbench -spawn ./pushd -conns 19000 -mode none -rss-steps 1000,5000,10000   (idle memory only)
//	pushbench -spawn ./pushd -spawn-nodes 2 -spawn-redis redis-server -conn-nodes 1 -api-nodes 2 -floor ./refserver \
//	    -conns 5000 -users 5000 -mode user -messages 10000 -publishers 16   (cross-node sends)
//	pushbench -spawn ./pushd -spawn-nodes 2 -spawn-peers -conn-nodes 1 -api-nodes 2 \
//	    -conns 5000 -users 5000 -mode user -messages 10000 -publishers 16   (the same over peer calls)
//	pushbench -spawn ./pushd -spawn-nodes 3 -spawn-redis redis-server -reconnect -conns 19000 -users 19000
//	    (mass reconnect: node 1 killed, 5 QoS messages per user replayed on nodes 2 and 3)
//	pushbench -spawn ./pushd -spawn-nodes 3 -spawn-redis redis-server -flap -conns 500 -channels 50 -duration 60s
//	    (flap: connections reset every ~5 s, back ~2 s later on a random node with Last-Event-ID;
//	    history in Redis, then without history)
//	pushbench -spawn ./pushd -spawn-redis redis-server -history redis -channels 100 -channel-prefixes h.,nh. \
//	    -conns 1000 -mode channel:h.,channel:nh. -messages 15000   (channel sends with and without history)
//	pushbench -spawn ./pushd -spawn-nodes 5 -spawn-redis-cluster redis-server -workers 5 -single \
//	    -conns 95000 -users 47501 -mode broadcast,user -mode-messages 10,20000 -mode-rates 0.2,1000
//	    (scale: 5 nodes × 19 000 connections on a Redis Cluster, held by 5 worker processes;
//	    the same phases on one node first, CPU per delivery compared with it)
//
// Connection i belongs to user u{i%users} and tenant t{i%tenants} (demo
// authentication query parameters) and is held by node i%len(nodes), or by
// the -conn-nodes round-robin; messages are published on the -api-nodes
// round-robin (default all). -spawn-redis starts a private redis-server and
// clusters the spawned nodes over it; the CPU of every node and of that
// redis-server is reported apart per phase, with their sum per send.
// -reconnect runs the mass-reconnect scenario instead of the phases
// (reconnect.go): every connection on node 1, -backlog QoS messages per
// user stored, node 1 killed with SIGKILL, every connection back on the
// others round robin after sse.js's backoff; it reports when all were
// back and replayed, loss, duplicates, 503s, and each process's CPU and
// RSS a second at a time.
// -flap runs the flap scenario instead (flap.go): subscribers in a channel
// and their user stream, dropped and resumed with Last-Event-ID on a
// random node while events flow, once per -flap-history setting; it
// reports delivery per subscriber, duplicates, order violations and the
// time to catch up. -channels puts every connection in channels (mode
// channel sends to them) and -history runs the spawned pushd on a
// generated configuration with or without history (histcfg.go).
// -workers N spreads the connections over N worker processes of the tool
// (workers.go: it re-executes itself; a process may hold only as many
// descriptors as RLIMIT_NOFILE allows), which stream their receipt counts
// and latency samples back, so loss, duplicates, misrouting and the
// latency quantiles are judged over all of them as in one process.
// -spawn-redis-cluster starts a Redis Cluster of six redis-servers instead
// of one (sharded pub/sub). -spawn-peers clusters the spawned nodes over
// the nacos transport with a static peer list instead (each node's peer
// API on a free loopback port; no Redis, no Nacos server). -single runs the same phases first on one node
// holding a node's share of the connections and reports CPU per delivery
// as a ratio to it; each phase also reports how many nodes hold a send's
// target and the PUBLISH/SPUBLISH calls per send counted by the spawned
// redis-servers, and memory is read per node. -mode-messages and
// -mode-rates set the sends and the rate of each phase.
// -floor runs the same phases first against refserver's epoll design (the
// kernel floor, one node, no QoS) and reports each phase's CPU per delivery
// and per send, and idle memory, as ratios to the floor's. Each
// mode is one phase; every phase is bounded by -timeout and the tool stops by
// itself. The report is printed as a table and optionally written as JSON; the
// exit status is 2 when a delivery was lost, duplicated or misrouted.
//
// # Messages
//
// Every published message's data is the JSON string
// "pb|<run>|<phase>|<seq>|<unix nanos>|<key>|<padding>" (sent raw by pushd),
// where key is "*" (broadcast), "u:<user id>" or "t:<tenant id>". The
// receiving connection checks the key against its own identity (misrouted),
// a per-connection bitset of sequence numbers (duplicated) and, at the end of
// the phase, the per-message count of distinct recipients against the number
// of connected connections the message addressed (lost). Under -qos a
// duplicate that is, or follows, a ":resend" redelivery is allowed
// (at-least-once) and counted apart; any other duplicate fails the run.
// The API's "delivered" is compared with the expected count per message.
//
// # Concurrency
//
// One goroutine per connection reads and parses its stream and is the only
// owner of that connection's bitset; per-message and per-phase counters are
// atomics shared by all readers and publishers. run is the whole tool and is
// what the tests call.
package main
