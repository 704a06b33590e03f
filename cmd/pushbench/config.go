package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Mode names: which addressing a phase's messages use.
const (
	modeBroadcast = "broadcast" // to: {all: true}; every connection
	modeUser      = "user"      // to: {userIds: [u{seq%users}]}
	modeTenant    = "tenant"    // to: {tenantIds: [t{seq%tenants}]}
	modeNone      = "none"      // no publishing: connect, read memory, stop
	modeChannel   = "channel"   // to: {channels: [{prefix}{seq%channels}]}; "channel:PREFIX" picks the prefix
)

// Config is one benchmark run.
type Config struct {
	// Nodes are the pushd base URLs ("http://127.0.0.1:8080"); connection i
	// goes to node i%len(Nodes), message i is published on node i%len(Nodes)
	// (unless ConnNodes and APINodes say otherwise). Empty with Spawn set
	// means the spawned servers.
	Nodes []string
	// ConnNodes are the nodes (1-based numbers in Nodes) that hold the
	// connections, round-robin. Zero value: all.
	ConnNodes []int
	// APINodes are the nodes (1-based) the messages are published on,
	// round-robin. Zero value: all. With ConnNodes {1} and APINodes {2}
	// every send crosses from node 2 to node 1.
	APINodes []int
	// App is the app name in the server API. Zero value: "demo".
	App string
	// Base is the app's browser base path. Zero value: "/sse/demo".
	Base string
	// Key is the API key. Zero value: "demo-key".
	Key string
	// Conns is the number of SSE connections. Zero value: 100.
	Conns int
	// Users is the number of distinct users; connection i is user u{i%Users}.
	// Zero value: Conns/10 (at least 1).
	Users int
	// Tenants is the number of distinct tenants; connection i is tenant
	// t{i%Tenants}. Zero value: 10 (at most Conns).
	Tenants int
	// Modes are the phases to run, in order (broadcast, user, tenant), or
	// just "none" to only connect and read memory. Zero value: all three.
	Modes []string
	// Rate bounds the sends per second over all publishers; 0 means as fast as
	// possible.
	Rate float64
	// Publishers is the number of concurrent publishing goroutines. Zero
	// value: 4.
	Publishers int
	// Messages is the number of sends per phase. Zero value: 100 unless
	// Duration is set (then unbounded).
	Messages int
	// Duration bounds each phase's publishing time; 0 means until Messages
	// are sent.
	Duration time.Duration
	// QoS marks every send as a QoS (at-least-once) send.
	QoS bool
	// TTL is the QoS ttl sent with QoS messages. Zero value: "1m".
	TTL string
	// Ack makes connections declare ack=1 and acknowledge QoS messages on
	// {base}/connect/ack.do, batched per connection every AckInterval.
	Ack bool
	// AckInterval is the acknowledgement batching interval. Zero value: 200ms.
	AckInterval time.Duration
	// PIDs are the server processes whose /proc readings are reported.
	PIDs []int
	// Spawn is a pushd binary to start (demo mode, on a free loopback port)
	// for the run and stop afterwards; its pid is added to PIDs.
	Spawn string
	// SpawnNodes is how many pushd processes Spawn starts (node ids
	// pushbench-1, pushbench-2, …); clustering them is up to SpawnEnv or
	// SpawnArgs. Zero value: 1.
	SpawnNodes int
	// SpawnArgs are extra arguments for the spawned pushd.
	SpawnArgs []string
	// SpawnEnv are extra environment variables (KEY=value) for it.
	SpawnEnv []string
	// SpawnRedis is a redis-server binary to start on a free loopback port
	// (no persistence) for the run: the spawned pushd nodes are clustered
	// over it with the Redis transport, and its CPU is reported apart.
	SpawnRedis string
	// Floor is a refserver binary: before the run, the same phases (without
	// QoS) run against its epoll design, the kernel floor, on one node, and
	// every phase reports its CPU figures as ratios to the floor's.
	Floor string
	// SpawnLogDir receives the spawned pushd's output file. Zero value: the
	// system's temporary directory.
	SpawnLogDir string
	// SrcIPs are local source addresses used round-robin for connections.
	// Zero value: automatic (127.0.0.1, 127.0.0.2, … when Conns exceeds the
	// ephemeral port range and all nodes are on loopback, otherwise none).
	SrcIPs []string
	// Timeout bounds every phase (connecting, each publish phase and its
	// drain). Zero value: 60s.
	Timeout time.Duration
	// Settle is how long the servers are left alone before a memory reading.
	// Zero value: 3s; negative means no wait.
	Settle time.Duration
	// RSSSteps are connection counts at which server memory is also read
	// (after Settle), to see whether memory per connection stays flat.
	RSSSteps []int
	// DialConcurrency bounds connection setups in flight. Zero value: 64.
	DialConcurrency int
	// Payload pads each message's data with this many bytes.
	Payload int
	// Event is the SSE event name used for the messages. Zero value: "pb".
	Event string
	// Reconnect runs the mass-reconnect scenario instead of the modes (see
	// reconnect.go): connections on node 1, Backlog QoS messages per user
	// stored, node 1 killed, everybody back on the other nodes. It needs
	// Spawn, SpawnRedis and SpawnNodes ≥ 2.
	Reconnect bool
	// Backlog is the number of QoS messages stored per user for Reconnect
	// (1..64). Zero value: 5.
	Backlog int
	// ReconnectBase replaces the reconnectTime of connect-finish as the
	// base of the clients' reconnect backoff. Zero value: the server's.
	ReconnectBase time.Duration
	// Channels is the number of channels per prefix; connection i joins
	// ConnChannels of them per prefix at connect ({prefix}{(i+j)%Channels},
	// j < ConnChannels). Zero value: none.
	Channels int
	// ConnChannels is the number of channels per prefix a connection
	// joins. Zero value: 1 when Channels is set.
	ConnChannels int
	// ChannelPrefixes start the channel names. Zero value: "ch.". With
	// History, channels starting with "nh." keep no history (histcfg.go).
	ChannelPrefixes []string
	// History makes the spawned pushd run on a configuration pushbench
	// writes (histcfg.go): "off" without history, "memory" or "redis" with
	// history for channels and users in that store (redis needs
	// SpawnRedis). Zero value: the spawned pushd's own configuration.
	History string
	// HistorySize is the events each stream keeps with History. Zero
	// value: 100.
	HistorySize int
	// Flap runs the flap scenario instead of the modes (flap.go).
	Flap FlapConfig
	// Workers is the number of worker processes holding the connections
	// (workers.go); connection i is held by worker i%Workers. Zero value:
	// this process holds them.
	Workers int
	// ModeMessages and ModeRates override Messages and Rate for the
	// phases in the order of Modes (a shorter list leaves the rest at
	// Messages and Rate; a zero message count keeps Messages).
	ModeMessages []int
	ModeRates    []float64
	// Single runs the same phases first on one spawned node holding
	// Conns/SpawnNodes connections (users scaled alike, the same
	// transport on its own Redis) and reports each phase's server CPU per
	// delivery as a ratio to that single node's. Needs SpawnNodes ≥ 2.
	Single bool
	// RedisDelay, with SpawnRedis, puts a proxy between the nodes and
	// Redis that delays each direction by this much: one-way latency
	// between hosts where the kernel has no netem (internal/delayproxy).
	RedisDelay time.Duration
	// SpawnRedisCluster is a redis-server binary: a Redis Cluster of six
	// of them (three masters, three replicas, made with redis-cli) is
	// started for the run and the spawned nodes are clustered over it
	// with the Redis transport (sharded pub/sub); every node's CPU is
	// reported apart.
	SpawnRedisCluster string
	// SpawnPeers clusters the spawned nodes over the nacos transport with
	// a static peer list instead of Redis: each node serves its peer API
	// on a free loopback port and knows the others' (no Nacos server).
	SpawnPeers bool
	// Batch makes each API call a batch send of this many messages (a
	// JSON array; batch.go). Zero value or 1: one message per call.
	Batch int
	// Log receives progress lines. Zero value: discarded.
	Log io.Writer
}

func (c *Config) setDefaults() error {
	if c.App == "" {
		c.App = "demo"
	}
	if c.Base == "" {
		c.Base = "/sse/demo"
	}
	c.Base = "/" + strings.Trim(c.Base, "/")
	if c.Key == "" {
		c.Key = "demo-key"
	}
	if c.Conns == 0 {
		c.Conns = 100
	}
	if c.Conns < 0 {
		return errors.New("conns must be positive")
	}
	if c.Users == 0 {
		c.Users = max(c.Conns/10, 1)
	}
	if c.Tenants == 0 {
		c.Tenants = min(10, c.Conns)
	}
	if c.Users < 0 || c.Tenants < 0 {
		return errors.New("users and tenants must be positive")
	}
	if len(c.Modes) == 0 {
		c.Modes = []string{modeBroadcast, modeUser, modeTenant}
	}
	for _, m := range c.Modes {
		if _, ok := strings.CutPrefix(m, modeChannel); ok {
			if c.Channels <= 0 {
				return errors.New("mode channel needs -channels")
			}
			continue
		}
		switch m {
		case modeBroadcast, modeUser, modeTenant:
		case modeNone:
			if len(c.Modes) > 1 {
				return errors.New("mode none excludes the others")
			}
		default:
			return fmt.Errorf("unknown mode %q", m)
		}
	}
	if c.Rate < 0 {
		return errors.New("rate must not be negative")
	}
	if c.Publishers == 0 {
		c.Publishers = 4
	}
	if c.Publishers < 0 {
		return errors.New("publishers must be positive")
	}
	if c.Messages == 0 && c.Duration == 0 {
		c.Messages = 100
	}
	if c.Messages < 0 || c.Duration < 0 {
		return errors.New("messages and duration must not be negative")
	}
	if c.TTL == "" {
		c.TTL = "1m"
	}
	if c.AckInterval <= 0 {
		c.AckInterval = 200 * time.Millisecond
	}
	if c.Timeout <= 0 {
		c.Timeout = 60 * time.Second
	}
	if c.Settle == 0 {
		c.Settle = 3 * time.Second
	}
	if c.DialConcurrency <= 0 {
		c.DialConcurrency = 64
	}
	if c.SpawnNodes <= 0 {
		c.SpawnNodes = 1
	}
	if c.Event == "" {
		c.Event = "pb"
	}
	if c.Backlog == 0 {
		c.Backlog = 5
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	if err := c.setChannelDefaults(); err != nil {
		return err
	}
	if len(c.Nodes) == 0 && c.Spawn == "" {
		return errors.New("no nodes: give -nodes or -spawn")
	}
	for i, n := range c.Nodes {
		u, err := url.Parse(n)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return fmt.Errorf("node %q: want http://host:port (plain HTTP/1.1)", n)
		}
		c.Nodes[i] = strings.TrimRight(n, "/")
	}
	sort.Ints(c.RSSSteps)
	if c.SpawnRedis != "" && c.Spawn == "" {
		return errors.New("spawn-redis needs spawn")
	}
	if c.RedisDelay < 0 || (c.RedisDelay > 0 && c.SpawnRedis == "") {
		return errors.New("redis-delay needs spawn-redis and must not be negative")
	}
	if c.SpawnPeers && (c.Spawn == "" || c.SpawnRedis != "" || c.SpawnRedisCluster != "" || c.SpawnNodes < 2 || c.Reconnect) {
		return errors.New("spawn-peers needs spawn and spawn-nodes ≥ 2, and excludes spawn-redis, spawn-redis-cluster and reconnect")
	}
	if c.SpawnRedisCluster != "" && (c.Spawn == "" || c.SpawnRedis != "") {
		return errors.New("spawn-redis-cluster needs spawn and excludes spawn-redis")
	}
	if c.Workers < 0 {
		return errors.New("workers must not be negative")
	}
	if c.Workers > 0 && (c.Reconnect || c.Flap.On || c.Ack) {
		return errors.New("workers: not with -reconnect, -flap or -ack")
	}
	if c.Single && (c.Spawn == "" || c.SpawnNodes < 2) {
		return errors.New("single needs spawn and spawn-nodes ≥ 2")
	}
	if len(c.ModeMessages) > len(c.Modes) || len(c.ModeRates) > len(c.Modes) {
		return errors.New("mode-messages and mode-rates: more values than modes")
	}
	return nil
}

// phaseLimits returns the sends and the rate of phase id (1-based, in the
// order of Modes).
func (c *Config) phaseLimits(id int) (int, float64) {
	messages, rate := c.Messages, c.Rate
	if i := id - 1; i >= 0 && i < len(c.ModeMessages) && c.ModeMessages[i] > 0 {
		messages = c.ModeMessages[i]
	}
	if i := id - 1; i >= 0 && i < len(c.ModeRates) {
		rate = c.ModeRates[i]
	}
	return messages, rate
}

// nodeIndexes checks 1-based node numbers against n nodes and returns them
// 0-based; empty means all.
func nodeIndexes(nums []int, n int) ([]int, error) {
	if len(nums) == 0 {
		all := make([]int, n)
		for i := range all {
			all[i] = i
		}
		return all, nil
	}
	out := make([]int, len(nums))
	for i, v := range nums {
		if v < 1 || v > n {
			return nil, fmt.Errorf("node %d: there are %d nodes", v, n)
		}
		out[i] = v - 1
	}
	return out, nil
}

// parseFlags turns command-line arguments into a Config and the JSON output
// path.
func parseFlags(args []string, stderr io.Writer) (Config, string, error) {
	var (
		c                                        Config
		nodes, modes, pids, srcips, steps, sargs string
		senv, connNodes, apiNodes                string
		jsonPath                                 string
	)
	fs := flag.NewFlagSet("pushbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&nodes, "nodes", "", "comma-separated pushd base URLs (connections spread round-robin)")
	fs.StringVar(&c.App, "app", "demo", "app name in the server API")
	fs.StringVar(&c.Base, "base", "/sse/demo", "browser base path of the app")
	fs.StringVar(&c.Key, "key", "demo-key", "server API key")
	fs.IntVar(&c.Conns, "conns", 100, "number of SSE connections")
	fs.IntVar(&c.Users, "users", 0, "distinct users (connection i is user u{i%users}); 0 = conns/10")
	fs.IntVar(&c.Tenants, "tenants", 0, "distinct tenants (connection i is tenant t{i%tenants}); 0 = 10")
	fs.StringVar(&modes, "mode", "all", "phases: broadcast, user, tenant, channel or channel:PREFIX (needs -channels), comma-separated, all, or none (connect and read memory only)")
	fs.Float64Var(&c.Rate, "rate", 0, "sends per second over all publishers (0 = as fast as possible)")
	fs.IntVar(&c.Publishers, "publishers", 4, "concurrent publishers")
	fs.IntVar(&c.Batch, "batch", 0, "messages per API call, sent as one batch (a JSON array); 0 or 1 = single sends (not with -floor: the floor takes single sends only)")
	fs.IntVar(&c.Messages, "messages", 0, "sends per phase (default 100 unless -duration)")
	fs.DurationVar(&c.Duration, "duration", 0, "publishing time per phase (0 = until -messages)")
	fs.BoolVar(&c.QoS, "qos", false, "send as QoS (at-least-once) messages")
	fs.StringVar(&c.TTL, "ttl", "1m", "ttl of QoS messages")
	fs.BoolVar(&c.Ack, "ack", false, "connect with ack=1 and acknowledge QoS messages on ack.do")
	fs.DurationVar(&c.AckInterval, "ack-interval", 200*time.Millisecond, "ack batching interval per connection")
	fs.StringVar(&pids, "pids", "", "comma-separated server pids for /proc readings")
	fs.StringVar(&c.Spawn, "spawn", "", "path of a pushd binary to start (demo mode, free loopback port)")
	fs.StringVar(&c.SpawnRedis, "spawn-redis", "", "path of a redis-server to start and cluster the spawned nodes over (its CPU reported apart)")
	fs.StringVar(&c.Floor, "floor", "", "path of refserver: run the phases against its epoll design first and report ratios to it")
	fs.StringVar(&connNodes, "conn-nodes", "", "comma-separated node numbers (1-based) holding the connections (default all)")
	fs.StringVar(&apiNodes, "api-nodes", "", "comma-separated node numbers (1-based) publishing the messages (default all)")
	fs.IntVar(&c.SpawnNodes, "spawn-nodes", 1, "number of pushd processes -spawn starts")
	fs.StringVar(&sargs, "spawn-args", "", "space-separated extra arguments for the spawned pushd")
	fs.StringVar(&senv, "spawn-env", "", "comma-separated KEY=value environment for the spawned pushd")
	fs.StringVar(&jsonPath, "json", "", "also write the report as JSON to this file")
	fs.StringVar(&srcips, "srcips", "", "comma-separated local source addresses (default: automatic)")
	fs.DurationVar(&c.Timeout, "timeout", 60*time.Second, "bound of every phase")
	fs.DurationVar(&c.Settle, "settle", 3*time.Second, "idle time before a memory reading")
	fs.StringVar(&steps, "rss-steps", "", "comma-separated connection counts at which memory is also read")
	fs.IntVar(&c.DialConcurrency, "dial-concurrency", 64, "connection setups in flight")
	fs.IntVar(&c.Payload, "payload", 0, "padding bytes per message")
	fs.StringVar(&c.Event, "event", "pb", "SSE event name of the messages")
	fs.BoolVar(&c.Reconnect, "reconnect", false, "mass reconnect: connections on node 1, -backlog QoS messages per user, node 1 killed, back on the others")
	fs.IntVar(&c.Backlog, "backlog", 5, "QoS messages stored per user for -reconnect")
	fs.DurationVar(&c.ReconnectBase, "reconnect-base", 0, "base of the clients' reconnect backoff for -reconnect (0 = connect-finish's reconnectTime)")
	var prefixes string
	fs.IntVar(&c.Channels, "channels", 0, "channels per prefix; each connection joins -conn-channels of them per prefix")
	fs.IntVar(&c.ConnChannels, "conn-channels", 0, "channels per prefix a connection joins (default 1 with -channels)")
	fs.StringVar(&prefixes, "channel-prefixes", "", `comma-separated channel name prefixes (default "ch."; with -history, "nh." channels keep no history)`)
	fs.StringVar(&c.History, "history", "", "run the spawned pushd on a generated configuration: off, memory or redis history for channels and users")
	fs.IntVar(&c.HistorySize, "history-size", 100, "events kept per stream with -history")
	c.Flap.addFlags(fs)
	var modeMessages, modeRates string
	fs.IntVar(&c.Workers, "workers", 0, "worker processes holding the connections (connection i in worker i%workers; 0 = this process)")
	fs.StringVar(&modeMessages, "mode-messages", "", "comma-separated sends per phase, in the order of -mode (overrides -messages)")
	fs.StringVar(&modeRates, "mode-rates", "", "comma-separated sends per second per phase, in the order of -mode (overrides -rate; 0 = as fast as possible)")
	fs.BoolVar(&c.Single, "single", false, "run the phases first on one spawned node holding conns/spawn-nodes connections and report CPU per delivery as a ratio to it")
	fs.DurationVar(&c.RedisDelay, "redis-delay", 0, "with -spawn-redis: the nodes reach Redis through a proxy that delays each direction by this (one-way latency without netem)")
	fs.BoolVar(&c.SpawnPeers, "spawn-peers", false, "cluster the spawned nodes over the nacos transport with a static peer list (no Redis, no Nacos server)")
	fs.StringVar(&c.SpawnRedisCluster, "spawn-redis-cluster", "", "path of a redis-server: start a Redis Cluster of 6 (3 masters, 3 replicas, via redis-cli) and cluster the spawned nodes over it")
	if err := fs.Parse(args); err != nil {
		return Config{}, "", err
	}
	if fs.NArg() > 0 {
		return Config{}, "", fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c.Nodes = splitList(nodes)
	c.SrcIPs = splitList(srcips)
	c.SpawnArgs = strings.Fields(sargs)
	c.SpawnEnv = splitList(senv)
	if modes != "all" {
		c.Modes = splitList(modes)
	}
	var err error
	if c.PIDs, err = splitInts(pids); err != nil {
		return Config{}, "", fmt.Errorf("-pids: %w", err)
	}
	if c.RSSSteps, err = splitInts(steps); err != nil {
		return Config{}, "", fmt.Errorf("-rss-steps: %w", err)
	}
	if c.ConnNodes, err = splitInts(connNodes); err != nil {
		return Config{}, "", fmt.Errorf("-conn-nodes: %w", err)
	}
	if c.APINodes, err = splitInts(apiNodes); err != nil {
		return Config{}, "", fmt.Errorf("-api-nodes: %w", err)
	}
	c.ChannelPrefixes = splitList(prefixes)
	if c.ModeMessages, err = splitInts(modeMessages); err != nil {
		return Config{}, "", fmt.Errorf("-mode-messages: %w", err)
	}
	for _, p := range splitList(modeRates) {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v < 0 {
			return Config{}, "", fmt.Errorf("-mode-rates: %q is not a rate", p)
		}
		c.ModeRates = append(c.ModeRates, v)
	}
	return c, jsonPath, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func splitInts(s string) ([]int, error) {
	var out []int
	for _, p := range splitList(s) {
		v, err := strconv.Atoi(p)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%q is not a positive integer", p)
		}
		out = append(out, v)
	}
	return out, nil
}
