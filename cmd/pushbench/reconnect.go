package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The mass-reconnect scenario (issue 17 #5, -reconnect): every connection
// is held by node 1 and acknowledges nothing, Backlog QoS messages per user
// are stored (sent through the other nodes, delivered live on node 1), node
// 1 is killed with SIGKILL, and every connection comes back on the other
// nodes, round robin as a load balancer would spread them, after the delay
// pushd's sse.js waits (a jittered, growing backoff from the reconnectTime
// of connect-finish, no sooner than a 503's Retry-After). Its new stream
// must replay the whole backlog of its user.

// reconnectPhase is the phase number in the payloads of the backlog.
const reconnectPhase = 1

// maxReconnectDelay is sse.js's maxReconnectTime default.
const maxReconnectDelay = 30 * time.Second

// ReconnectReport is the outcome of the mass-reconnect scenario. Times are
// counted from the kill.
type ReconnectReport struct {
	Conns   int `json:"conns"`
	Backlog int `json:"backlog_per_user"`
	// StoreSecs is how long storing the backlog took (all batch calls
	// answered); Stored counts the messages the API reported stored.
	StoreSecs float64 `json:"store_seconds"`
	Stored    int64   `json:"stored"`
	// LiveDelivered counts the backlog's live deliveries on node 1.
	LiveDelivered int64 `json:"live_delivered"`
	// Back counts the connections that got a connect-finish on another
	// node; BackSecs is when the last one did.
	Back     int64   `json:"back"`
	BackSecs float64 `json:"back_seconds"`
	// Complete counts the connections that got their whole backlog again;
	// CompleteSecs is when the last one did.
	Complete     int64   `json:"complete"`
	CompleteSecs float64 `json:"complete_seconds"`
	// Expected, Replayed and Lost are backlog messages over all
	// connections; Duplicated counts those a connection got more than once
	// after the kill, Misrouted those meant for somebody else.
	Expected   int64 `json:"expected"`
	Replayed   int64 `json:"replayed"`
	Lost       int64 `json:"lost"`
	Duplicated int64 `json:"duplicated"`
	Misrouted  int64 `json:"misrouted"`
	// Attempts counts connects after the kill; Refused those answered 503
	// (admission), Failed those that failed otherwise.
	Attempts int64 `json:"attempts"`
	Refused  int64 `json:"refused_503"`
	Failed   int64 `json:"failed"`
	// BackLatency is kill → connect-finish and CompleteLatency kill → last
	// backlog message, per connection.
	BackLatency     Summary `json:"back_latency"`
	CompleteLatency Summary `json:"complete_latency"`
	// PerNode counts the connections each surviving node took (node
	// numbers as in Report.Procs).
	PerNode map[string]int64 `json:"per_node"`
	// Timeline is one reading a second, from a second before the kill.
	Timeline []ReconnectSample `json:"timeline"`
	TimedOut bool              `json:"timed_out"`
	Errors   map[string]int    `json:"errors,omitempty"`
}

// ReconnectSample is one reading of the scenario's progress and of the
// processes: CPU in cores over the second before, RSS in MiB.
type ReconnectSample struct {
	Secs     float64            `json:"seconds"`
	Back     int64              `json:"back"`
	Complete int64              `json:"complete"`
	CPU      map[string]float64 `json:"cpu_cores"`
	RSSMiB   map[string]float64 `json:"rss_mib"`
}

// rcClient is one connection of the scenario. bits and got are owned by
// its goroutine.
type rcClient struct {
	idx    int
	user   string
	tenant string
	nc     atomic.Pointer[net.Conn]
	bits   uint64 // backlog messages seen after the kill
	got    int
}

// reconnectRun is the scenario's shared state.
type reconnectRun struct {
	cfg       Config
	runID     string
	srcIPs    []net.IP
	survivors []int
	procs     []Proc
	http      *http.Client
	clients   []*rcClient

	killed  atomic.Bool
	killAt  atomic.Int64
	closing atomic.Bool
	closed  chan struct{} // closed with closing set
	rr      atomic.Uint64

	onFirst, live                    atomic.Int64
	back, complete, lastBack, lastOK atomic.Int64
	replayed, dup, misrouted         atomic.Int64
	attempts, refused, failed        atomic.Int64
	stored                           atomic.Int64
	perNode                          []atomic.Int64
	backLat, completeLat             hist

	errMu  sync.Mutex
	errors map[string]int
	wg     sync.WaitGroup
}

func (r *reconnectRun) note(what string) {
	r.errMu.Lock()
	if len(r.errors) < 50 || r.errors[what] > 0 {
		r.errors[what]++
	}
	r.errMu.Unlock()
}

// runReconnect runs the scenario on spawned nodes (node 1 is killed) and a
// spawned redis-server holding the transport and the QoS store.
func runReconnect(ctx context.Context, cfg Config, logf func(string, ...any)) (Report, error) {
	rep := Report{}
	if cfg.Spawn == "" || cfg.SpawnRedis == "" || cfg.SpawnNodes < 2 {
		return rep, errors.New("config: -reconnect needs -spawn, -spawn-redis and -spawn-nodes of at least 2")
	}
	if cfg.Backlog <= 0 || cfg.Backlog > 64 {
		return rep, errors.New("config: -backlog must be 1..64")
	}
	limit, err := raiseFileLimit()
	if err != nil {
		rep.Warnings = append(rep.Warnings, err.Error())
	}
	rep.FileLimit = limit
	if limit > 0 && uint64(cfg.Conns)+256 > limit {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("file limit %d is below conns+256: connections will fail", limit))
	}
	rds, err := spawnRedis(ctx, cfg)
	if err != nil {
		return rep, err
	}
	defer rds.stop(10 * time.Second)
	rep.ServerLogs = append(rep.ServerLogs, rds.logPath)
	cfg.SpawnEnv = append(cfg.SpawnEnv,
		"PUSHD_CLUSTER_TRANSPORT=redis", "PUSHD_CLUSTER_REDIS_URL="+rds.url,
		"PUSHD_QOS_REPOSITORY=redis", "PUSHD_QOS_REDIS_URL="+rds.url,
		// Redelivery to connected clients is not what is measured.
		"PUSHD_QOS_REDELIVER_AFTER=-1")
	procs := []Proc{}
	var first *server
	for n := 1; n <= cfg.SpawnNodes; n++ {
		srv, err := spawnServer(ctx, cfg, n)
		if err != nil {
			return rep, err
		}
		defer srv.stop(10 * time.Second)
		if n == 1 {
			first = srv
		}
		cfg.Nodes = append(cfg.Nodes, srv.url)
		cfg.PIDs = append(cfg.PIDs, srv.cmd.Process.Pid)
		procs = append(procs, Proc{Name: fmt.Sprintf("node%d", n), PID: srv.cmd.Process.Pid})
		rep.ServerLogs = append(rep.ServerLogs, srv.logPath)
		logf("spawned %s at %s (pid %d, log %s)", cfg.Spawn, srv.url, srv.cmd.Process.Pid, srv.logPath)
	}
	procs = append(procs, Proc{Name: "redis", PID: rds.cmd.Process.Pid})
	rep.Procs, rep.Nodes, rep.PIDs = procs, cfg.Nodes, cfg.PIDs
	// The tool shares the machine: its own CPU is in the timeline too.
	procs = append(procs, Proc{Name: "pushbench", PID: os.Getpid()})
	rep.Conns, rep.Users, rep.Tenants, rep.Publishers = cfg.Conns, cfg.Users, cfg.Tenants, cfg.Publishers
	rep.QoS, rep.Ack = true, true

	r := &reconnectRun{cfg: cfg, runID: newRunID(), procs: procs, errors: map[string]int{}, closed: make(chan struct{})}
	r.perNode = make([]atomic.Int64, len(cfg.Nodes))
	for i := 1; i < len(cfg.Nodes); i++ {
		r.survivors = append(r.survivors, i)
	}
	srcs := cfg.SrcIPs
	if len(srcs) == 0 {
		// The old and the new connections may overlap: room for both.
		srcs = autoSourceIPs(2*cfg.Conns, cfg.Nodes)
	}
	rep.SrcIPs = srcs
	for _, s := range srcs {
		ip := net.ParseIP(s)
		if ip == nil {
			return rep, fmt.Errorf("config: source address %q", s)
		}
		r.srcIPs = append(r.srcIPs, ip)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: cfg.Publishers + 4, DisableCompression: true}
	defer tr.CloseIdleConnections()
	r.http = &http.Client{Transport: tr, Timeout: cfg.Timeout}
	r.clients = make([]*rcClient, cfg.Conns)
	for i := range r.clients {
		r.clients[i] = &rcClient{idx: i, user: fmt.Sprintf("u%d", i%cfg.Users), tenant: fmt.Sprintf("t%d", i%cfg.Tenants)}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer r.closeAll()

	// Every connection on node 1.
	logf("connecting %d to node 1", cfg.Conns)
	t0 := time.Now()
	if err := r.connectFirst(ctx); err != nil {
		return rep, err
	}
	rep.Connect = ConnectReport{Attempted: cfg.Conns, Connected: r.onFirst.Load(), Seconds: time.Since(t0).Seconds()}
	rep.Connect.Failed = int64(cfg.Conns) - rep.Connect.Connected
	rep.Connect.RatePerSec = float64(rep.Connect.Connected) / rep.Connect.Seconds
	if rep.Connect.Failed > 0 {
		rr := r.report(0)
		rep.Reconnect = &rr
		return rep, fmt.Errorf("connected %d of %d to node 1: %v", rep.Connect.Connected, cfg.Conns, r.errors)
	}

	// The backlog: Backlog messages per user, stored and delivered live.
	logf("storing %d QoS messages per user for %d users", cfg.Backlog, cfg.Users)
	t1 := time.Now()
	r.store(ctx)
	storeSecs := time.Since(t1).Seconds()
	want := int64(cfg.Conns * cfg.Backlog)
	wctx, wcancel := context.WithTimeout(ctx, cfg.Timeout)
	for r.live.Load() < want && wctx.Err() == nil {
		sleepCtx(wctx, 10*time.Millisecond)
	}
	wcancel()
	logf("stored %d in %.2fs, %d of %d delivered live", r.stored.Load(), storeSecs, r.live.Load(), want)
	sleepCtx(ctx, max(cfg.Settle, 0))

	// Kill node 1 and follow the reconnects.
	samples := make(chan []ReconnectSample, 1)
	sctx, scancel := context.WithCancel(ctx)
	go func() { samples <- r.sample(sctx) }()
	sleepCtx(ctx, 1500*time.Millisecond)
	logf("killing node 1 (pid %d)", first.cmd.Process.Pid)
	r.killAt.Store(time.Now().UnixNano())
	r.killed.Store(true)
	if err := first.cmd.Process.Kill(); err != nil {
		scancel()
		return rep, fmt.Errorf("kill node 1: %w", err)
	}
	dctx, dcancel := context.WithTimeout(ctx, cfg.Timeout)
	for r.complete.Load() < int64(cfg.Conns) && dctx.Err() == nil {
		sleepCtx(dctx, 5*time.Millisecond)
	}
	timedOut := r.complete.Load() < int64(cfg.Conns)
	dcancel()
	// Late duplicates, and the servers' CPU after the storm.
	sleepCtx(ctx, 2*time.Second)
	scancel()
	rr := r.report(storeSecs)
	rr.TimedOut = timedOut
	rr.Timeline = <-samples
	rep.Reconnect = &rr
	return rep, nil
}

// store sends Backlog QoS messages to every user through the surviving
// nodes, in batches of 100, with Publishers calls in flight. Message k of
// user i has sequence number i·Backlog+k.
func (r *reconnectRun) store(ctx context.Context) {
	total := r.cfg.Users * r.cfg.Backlog
	const batch = 100
	var next atomic.Int64
	var wg sync.WaitGroup
	for range r.cfg.Publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				from := int(next.Add(batch)) - batch
				if from >= total {
					return
				}
				items := make([]sendRequest, 0, batch)
				for seq := from; seq < min(from+batch, total); seq++ {
					u := "u" + strconv.Itoa(seq/r.cfg.Backlog)
					items = append(items, sendRequest{
						To: sendTarget{UserIDs: []string{u}}, Event: r.cfg.Event, QoS: true, TTL: r.cfg.TTL,
						Data: formatPayload(r.runID, reconnectPhase, int64(seq), time.Now().UnixNano(), "u:"+u, nil),
					})
				}
				node := r.cfg.Nodes[r.survivors[(from/batch)%len(r.survivors)]]
				if err := r.sendBatch(ctx, node, items); err != nil {
					r.note("store: " + err.Error())
				}
			}
		}()
	}
	wg.Wait()
}

// sendBatch posts items as one batch and counts the stored ones.
func (r *reconnectRun) sendBatch(ctx context.Context, node string, items []sendRequest) error {
	data, err := postSend(ctx, r.http, r.cfg, node, items, 1<<22)
	if err != nil {
		return err
	}
	var res []struct {
		Stored bool   `json:"stored"`
		Error  string `json:"error"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	for _, x := range res {
		switch {
		case x.Stored:
			r.stored.Add(1)
		case x.Error != "":
			r.note("store: " + x.Error)
		default:
			r.note("store: not stored")
		}
	}
	return nil
}
