package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// bench is the state of one run shared by connections and publishers.
type bench struct {
	cfg     Config
	runID   string
	clients []*client
	srcIPs  []net.IP
	http    *http.Client
	acker   *acker
	phases  [64]atomic.Pointer[phase]
	readers sync.WaitGroup
	closing atomic.Bool

	connected      atomic.Int64
	failed         atomic.Int64
	dropped        atomic.Int64
	closedByServer atomic.Int64
	stray          atomic.Int64
	otherEvents    atomic.Int64
	connectLatency hist

	// idleCPU is the servers' CPU use (in cores) with every connection open
	// and nothing published, from the last settle period; 0 if unknown.
	idleCPU   float64
	idleKnown bool

	errMu      sync.Mutex
	connErrors map[string]int

	// apiNodes are the indexes in cfg.Nodes messages are published on.
	apiNodes []int
	// procs are the processes whose CPU is reported one by one.
	procs []Proc

	// worker is true in a worker process (workers.go); workers are the
	// worker processes of a coordinator, syncID numbers its syncs.
	worker  bool
	workers []*workerProc
	syncID  atomic.Int64
	// workersClosed is set once the workers were told to close.
	workersClosed atomic.Bool
	// redisAddrs are the spawned redis-servers whose PUBLISH and SPUBLISH
	// calls each phase counts; idlePublishRate is their rate per second
	// while idle (probes), from the last settle period.
	redisAddrs      []string
	idlePublishRate float64
}

// run performs one benchmark: optionally start a server, read its idle
// memory, open the connections, run each mode's phase, close everything. It
// returns an error only when nothing could be measured; delivery problems are
// in the report (see Report.OK).
func run(ctx context.Context, cfg Config) (Report, error) {
	// The caller's slices stay untouched: setDefaults and spawning edit them.
	cfg.Nodes, cfg.PIDs, cfg.Modes = slices.Clone(cfg.Nodes), slices.Clone(cfg.PIDs), slices.Clone(cfg.Modes)
	cfg.RSSSteps, cfg.SrcIPs = slices.Clone(cfg.RSSSteps), slices.Clone(cfg.SrcIPs)
	cfg.ConnNodes, cfg.APINodes, cfg.SpawnEnv = slices.Clone(cfg.ConnNodes), slices.Clone(cfg.APINodes), slices.Clone(cfg.SpawnEnv)
	if err := cfg.setDefaults(); err != nil {
		return Report{}, fmt.Errorf("config: %w", err)
	}
	if len(cfg.Modes) >= 63 {
		return Report{}, errors.New("config: too many modes")
	}
	logf := func(format string, args ...any) { fmt.Fprintf(cfg.Log, "pushbench: "+format+"\n", args...) }
	if cfg.Reconnect {
		return runReconnect(ctx, cfg, logf)
	}
	if cfg.Flap.On {
		return runFlap(ctx, cfg, logf)
	}

	rep := Report{}
	if cfg.Floor != "" {
		logf("floor: the same phases against %s -design=epoll", cfg.Floor)
		floor, err := run(ctx, floorConfig(cfg))
		if err != nil {
			return rep, fmt.Errorf("floor: %w", err)
		}
		rep.Floor = &floor
	}
	if cfg.Single && cfg.SpawnNodes > 1 {
		logf("single node: the same phases on one node holding %d connections", cfg.Conns/cfg.SpawnNodes)
		single, err := run(ctx, singleConfig(cfg))
		if err != nil {
			return rep, fmt.Errorf("single node: %w", err)
		}
		rep.Single = &single
	}
	perProcess := cfg.Conns
	if cfg.Workers > 0 {
		perProcess = (cfg.Conns + cfg.Workers - 1) / cfg.Workers
	}
	limit, err := raiseFileLimit()
	if err != nil {
		rep.Warnings = append(rep.Warnings, err.Error())
	}
	if limit > 0 && uint64(perProcess)+64 > limit {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("file limit %d is below conns+64: connections will fail", limit))
	}
	rep.FileLimit = limit

	var procs []Proc
	var redisAddrs []string
	redisURL := ""
	if cfg.SpawnRedis != "" {
		srv, err := spawnRedis(ctx, cfg)
		if err != nil {
			return rep, err
		}
		defer srv.stop(10 * time.Second)
		nodesURL := srv.url // what the nodes dial: Redis, or a delaying proxy in front of it
		if cfg.RedisDelay > 0 {
			target := strings.TrimSuffix(strings.TrimPrefix(srv.url, "redis://"), "/0")
			proxy, err := startDelayProxy(target, cfg.RedisDelay)
			if err != nil {
				return rep, err
			}
			defer proxy.stop()
			nodesURL = "redis://" + proxy.addr + "/0"
			logf("the nodes reach Redis through a proxy that delays each direction by %v (%s, pid %d)", cfg.RedisDelay, proxy.addr, proxy.cmd.Process.Pid)
		}
		cfg.SpawnEnv = append(cfg.SpawnEnv, "PUSHD_CLUSTER_TRANSPORT=redis", "PUSHD_CLUSTER_REDIS_URL="+nodesURL)
		redisURL = nodesURL
		procs = append(procs, Proc{Name: "redis", PID: srv.cmd.Process.Pid})
		rep.ServerLogs = append(rep.ServerLogs, srv.logPath)
		logf("spawned %s at %s (pid %d, log %s)", cfg.SpawnRedis, srv.url, srv.cmd.Process.Pid, srv.logPath)
		redisAddrs = append(redisAddrs, strings.TrimSuffix(strings.TrimPrefix(srv.url, "redis://"), "/0"))
	}
	if cfg.SpawnRedisCluster != "" {
		rc, err := spawnRedisCluster(ctx, cfg)
		if rc != nil {
			defer rc.stop()
		}
		if err != nil {
			return rep, err
		}
		cfg.SpawnEnv = append(cfg.SpawnEnv, "PUSHD_CLUSTER_TRANSPORT=redis", "PUSHD_CLUSTER_REDIS_URL="+rc.url)
		for i, srv := range rc.nodes {
			procs = append(procs, Proc{Name: fmt.Sprintf("redis%d", i+1), PID: srv.cmd.Process.Pid})
			rep.ServerLogs = append(rep.ServerLogs, srv.logPath)
		}
		redisAddrs = append(redisAddrs, rc.addrs...)
		logf("spawned a Redis Cluster of %d redis-servers: %s", len(rc.nodes), rc.url)
	}
	if cfg.History != "" && cfg.Spawn != "" {
		if err := checkHistoryMode(cfg.History, redisURL != ""); err != nil {
			return rep, fmt.Errorf("config: %w", err)
		}
		args, err := writeServerConfig(cfg.SpawnLogDir, cfg.History, cfg.HistorySize)
		if err != nil {
			return rep, err
		}
		defer os.Remove(args[1])
		cfg.SpawnArgs = append(slices.Clone(cfg.SpawnArgs), args...)
		cfg.SpawnEnv = append(cfg.SpawnEnv, historyEnv(cfg.History, redisURL)...)
	}
	var peerEnv [][]string // per node, with SpawnPeers
	if cfg.SpawnPeers {
		common, perNode, err := staticPeersEnv(cfg.SpawnNodes)
		if err != nil {
			return rep, err
		}
		cfg.SpawnEnv = append(cfg.SpawnEnv, common...)
		peerEnv = perNode
		logf("the nodes are clustered over the nacos transport with a static peer list")
	}
	if cfg.Spawn != "" {
		for n := 1; n <= cfg.SpawnNodes; n++ {
			scfg := cfg
			if peerEnv != nil {
				scfg.SpawnEnv = append(slices.Clone(cfg.SpawnEnv), peerEnv[n-1]...)
			}
			srv, err := spawnServer(ctx, scfg, n)
			if err != nil {
				return rep, err
			}
			defer srv.stop(10 * time.Second)
			cfg.Nodes = append(cfg.Nodes, srv.url)
			cfg.PIDs = append(cfg.PIDs, srv.cmd.Process.Pid)
			rep.ServerLogs = append(rep.ServerLogs, srv.logPath)
			logf("spawned %s at %s (pid %d, log %s)", cfg.Spawn, srv.url, srv.cmd.Process.Pid, srv.logPath)
		}
	}
	connNodes, err := nodeIndexes(cfg.ConnNodes, len(cfg.Nodes))
	if err != nil {
		return rep, fmt.Errorf("config: conn-nodes: %w", err)
	}
	apiNodes, err := nodeIndexes(cfg.APINodes, len(cfg.Nodes))
	if err != nil {
		return rep, fmt.Errorf("config: api-nodes: %w", err)
	}
	if len(cfg.SrcIPs) == 0 {
		cfg.SrcIPs = autoSourceIPs(perProcess, cfg.Nodes)
	}
	for i, pid := range cfg.PIDs {
		procs = append(procs, Proc{Name: fmt.Sprintf("node%d", i+1), PID: pid})
	}
	slices.SortStableFunc(procs, func(a, b Proc) int { return strings.Compare(a.Name, b.Name) })
	rep.Procs = procs

	b := &bench{cfg: cfg, runID: newRunID(), connErrors: map[string]int{}, apiNodes: apiNodes, procs: procs, redisAddrs: redisAddrs}
	for _, s := range cfg.SrcIPs {
		ip := net.ParseIP(s)
		if ip == nil {
			return rep, fmt.Errorf("config: source address %q", s)
		}
		b.srcIPs = append(b.srcIPs, ip)
	}
	tr := &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: cfg.Publishers + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		DialContext:         (&net.Dialer{Timeout: cfg.Timeout}).DialContext,
	}
	defer tr.CloseIdleConnections()
	b.http = &http.Client{Transport: tr, Timeout: cfg.Timeout}
	b.clients = make([]*client, cfg.Conns)
	for i := range b.clients {
		b.clients[i] = &client{
			idx:      i,
			node:     connNodes[i%len(connNodes)],
			user:     fmt.Sprintf("u%d", i%cfg.Users),
			tenant:   fmt.Sprintf("t%d", i%cfg.Tenants),
			channels: cfg.connChannels(i),
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.Workers > 0 {
		err := b.startWorkers()
		defer b.closeAll(10 * time.Second)
		if err != nil {
			return rep, err
		}
		logf("%d workers hold the connections", len(b.workers))
	}
	var ackDone chan struct{}
	if cfg.Ack {
		b.acker = &acker{b: b, stop: ctx.Done(), in: make(chan ackItem, 1<<16), http: b.http}
		ackDone = make(chan struct{})
		go func() { defer close(ackDone); b.acker.run(ctx) }()
	}

	rep.Nodes, rep.PIDs, rep.Conns, rep.Users, rep.Tenants = cfg.Nodes, cfg.PIDs, cfg.Conns, cfg.Users, cfg.Tenants
	rep.Publishers, rep.Rate, rep.QoS, rep.Ack, rep.Payload, rep.SrcIPs = cfg.Publishers, cfg.Rate, cfg.QoS, cfg.Ack, cfg.Payload, cfg.SrcIPs
	rep.Workers = len(b.workers)
	measured := len(cfg.PIDs) > 0
	rep.Memory.Measured = measured

	// Idle memory: a baseline, then connect (in steps) and read again.
	if measured {
		sleepCtx(ctx, cfg.Settle)
	}
	base := readProcs(cfg.PIDs)
	baseEach := readEachRSS(cfg.PIDs)
	if measured && base.Err != nil {
		return rep, fmt.Errorf("proc: %w", base.Err)
	}
	steps := []int{}
	for _, s := range cfg.RSSSteps {
		if s < cfg.Conns && (len(steps) == 0 || s > steps[len(steps)-1]) {
			steps = append(steps, s)
		}
	}
	steps = append(steps, cfg.Conns)
	var connectTime time.Duration
	from := 0
	prev := base
	prevConns := int64(0)
	var last procSample
	var connectCPU time.Duration
	for _, to := range steps {
		logf("connecting %d..%d", from, to)
		before := readProcs(cfg.PIDs)
		if len(b.workers) > 0 {
			connectTime += b.connectWorkers(from, to)
		} else {
			connectTime += b.connectRange(ctx, from, to)
		}
		connectCPU += readProcs(cfg.PIDs).CPU - before.CPU
		logf("connected %d, failed %d", b.connected.Load(), b.failed.Load())
		from = to
		settleStart := time.Now()
		settleCPU := readProcs(cfg.PIDs).CPU
		settlePub, pubErr := redisPublishes(b.redisAddrs)
		if measured {
			sleepCtx(ctx, cfg.Settle)
		}
		last = readProcs(cfg.PIDs)
		if el := time.Since(settleStart); measured && el > 500*time.Millisecond {
			b.idleCPU = float64(last.CPU-settleCPU) / float64(el)
			b.idleKnown = true
			if pub, err := redisPublishes(b.redisAddrs); err == nil && pubErr == nil && len(b.redisAddrs) > 0 {
				b.idlePublishRate = float64(pub-settlePub) / el.Seconds()
			}
		}
		if measured && len(steps) > 1 {
			n := b.connected.Load()
			st := RSSStep{Conns: n, RSSKB: last.RSSBytes / 1024}
			if n > 0 {
				st.BytesPerConn = float64(last.RSSBytes-base.RSSBytes) / float64(n)
			}
			if n > prevConns {
				st.MarginalBytesPerConn = float64(last.RSSBytes-prev.RSSBytes) / float64(n-prevConns)
			}
			st.Nodes = b.nodeMemory(baseEach, readEachRSS(cfg.PIDs))
			rep.Memory.Steps = append(rep.Memory.Steps, st)
			prev, prevConns = last, n
		}
		if ctx.Err() != nil {
			break
		}
	}
	connected := b.connected.Load()
	rep.Connect = ConnectReport{
		Attempted: cfg.Conns,
		Connected: connected,
		Failed:    b.failed.Load(),
		Seconds:   connectTime.Seconds(),
		Latency:   b.connectLatency.Summary(),
	}
	if connectTime > 0 {
		rep.Connect.RatePerSec = float64(connected) / connectTime.Seconds()
	}
	if measured {
		rep.Memory.BaselineRSSKB = base.RSSBytes / 1024
		rep.Memory.IdleRSSKB = last.RSSBytes / 1024
		rep.Memory.SettleSeconds = max(cfg.Settle, 0).Seconds()
		rep.Memory.ServerCPUSecond = connectCPU.Seconds()
		rep.Memory.IdleCPUPercent = b.idleCPU * 100
		rep.Memory.IdleCPUKnown = b.idleKnown
		if connected > 0 {
			rep.Memory.BytesPerConn = float64(last.RSSBytes-base.RSSBytes) / float64(connected)
		}
		if len(cfg.PIDs) > 1 {
			rep.Memory.Nodes = b.nodeMemory(baseEach, readEachRSS(cfg.PIDs))
		}
		rep.Memory.IdlePublishesPerSec = b.idlePublishRate
	}
	if connected == 0 {
		b.finish(&rep)
		return rep, fmt.Errorf("no connection could be opened: %v", b.connErrorList())
	}

	for i, mode := range cfg.Modes {
		if ctx.Err() != nil || mode == modeNone {
			break
		}
		logf("phase %s", mode)
		pr := b.runPhase(ctx, i+1, mode)
		if measured && pr.ServerCPUSecs < 1 {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf(
				"%s: server CPU figures rest on %.2fs of CPU time counted in 10 ms ticks; send more messages for precise ones",
				mode, pr.ServerCPUSecs))
		}
		rep.Phases = append(rep.Phases, pr)
	}
	b.closeAll(10 * time.Second)
	cancel()
	if ackDone != nil {
		<-ackDone
	}
	b.finish(&rep)
	rep.compareWithFloor()
	rep.compareWithSingle()
	return rep, nil
}

// floorConfig is cfg's run against the floor: one refserver -design=epoll
// node, the same connections and phases, no QoS.
func floorConfig(cfg Config) Config {
	f := cfg
	f.Floor, f.Spawn, f.SpawnArgs, f.SpawnNodes = "", cfg.Floor, []string{"-design=epoll"}, 1
	f.SpawnRedis, f.SpawnEnv, f.Nodes, f.PIDs, f.ConnNodes, f.APINodes = "", nil, nil, nil, nil, nil
	f.QoS, f.Ack, f.History = false, false, ""
	return f
}

// finish copies the connection counters into the report.
func (b *bench) finish(rep *Report) {
	rep.Conn = ConnLifeReport{
		Dropped:        b.dropped.Load(),
		ClosedByServer: b.closedByServer.Load(),
		Stray:          b.stray.Load(),
		OtherEvents:    b.otherEvents.Load(),
		Errors:         b.connErrorList(),
	}
	if b.acker != nil {
		rep.Conn.Acked = b.acker.acked.Load()
		rep.Conn.AckFailures = b.acker.failures.Load()
	}
}

func (b *bench) connErrorList() map[string]int {
	b.errMu.Lock()
	defer b.errMu.Unlock()
	out := make(map[string]int, len(b.connErrors))
	for k, v := range b.connErrors {
		out[k] = v
	}
	for _, w := range b.workers {
		if errs := w.errs.Load(); errs != nil {
			for k, v := range *errs {
				out[k] += v
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// runPhase publishes one mode's messages, waits for their delivery (bounded
// by Timeout) and accounts them.
func (b *bench) runPhase(ctx context.Context, id int, mode string) PhaseReport {
	ph := newPhase(id, mode, b.cfg.QoS)
	b.phases[id].Store(ph)
	exp := b.expectations()
	cpu0 := readProcs(b.cfg.PIDs)
	each0 := b.readEach()
	self0 := b.toolCPU()
	pub0, pubErr0 := redisPublishes(b.redisAddrs)
	phaseStart := time.Now()

	pubTimeout := b.cfg.Timeout
	if b.cfg.Duration > 0 {
		pubTimeout += b.cfg.Duration
	}
	pctx, cancel := context.WithTimeout(ctx, pubTimeout)
	t0 := time.Now()
	b.publish(pctx, ph, exp)
	publishTime := time.Since(t0)
	timedOut := pctx.Err() != nil
	cancel()

	// Drain: wait until every expected delivery arrived, at most Timeout.
	dctx, dcancel := context.WithTimeout(ctx, b.cfg.Timeout)
	for ph.unique.Load() < ph.expectedTotal.Load() && dctx.Err() == nil {
		sleepCtx(dctx, 5*time.Millisecond)
	}
	if ph.unique.Load() < ph.expectedTotal.Load() {
		timedOut = true
	}
	// With acknowledgements, the phase includes posting the last ones.
	for b.acker != nil && !b.acker.settled() && dctx.Err() == nil {
		sleepCtx(dctx, 5*time.Millisecond)
	}
	dcancel()
	// A short quiet period so that late duplicates are seen.
	sleepCtx(ctx, 200*time.Millisecond)
	if len(b.workers) > 0 {
		b.syncWorkers()
	}
	cpu1 := readProcs(b.cfg.PIDs)
	each1 := b.readEach()
	self1 := b.toolCPU()
	pub1, pubErr1 := redisPublishes(b.redisAddrs)
	phaseTime := time.Since(phaseStart)

	r := PhaseReport{
		Mode:        mode,
		QoS:         ph.qos,
		Recipients:  exp.all,
		Sent:        ph.sent.Load(),
		SendErrors:  ph.sendErr.Load(),
		PublishSecs: publishTime.Seconds(),
		Expected:    ph.expectedTotal.Load(),
		Delivered:   ph.unique.Load(),
		Duplicated:  ph.duplicated.Load(),
		DupResent:   ph.dupResent.Load(),
		Misrouted:   ph.misrouted.Load(),
		Resent:      ph.resent.Load(),
		Latency:     ph.latency.Summary(),
		Completion:  ph.completion.Summary(),
		APICall:     ph.apiCall.Summary(),
		TimedOut:    timedOut,
		ToolCPUSecs: (self1 - self0).Seconds(),
		Errors:      ph.errorList(),
	}
	r.Lost = r.Expected - r.Delivered
	if len(b.redisAddrs) > 0 && pubErr0 == nil && pubErr1 == nil {
		r.RedisPublishes = pub1 - pub0
		if r.Sent > 0 {
			r.RedisPublishesPerSend = float64(r.RedisPublishes) / float64(r.Sent)
			idle := b.idlePublishRate * phaseTime.Seconds()
			r.RedisPublishesNetPerSend = max(float64(r.RedisPublishes)-idle, 0) / float64(r.Sent)
		}
	}
	r.NodesPerSend = b.nodesPerSend(ph, exp)
	if publishTime > 0 {
		r.SendsPerSec = float64(r.Sent) / publishTime.Seconds()
	}
	if first, last := ph.firstSend.Load(), ph.lastDelivery.Load(); first > 0 && last > first {
		r.DeliverySecs = time.Duration(last - first).Seconds()
		r.DeliveriesPerSec = float64(r.Delivered) / r.DeliverySecs
	}
	claimed := ph.nextSeq.Load()
	for seq := int64(0); seq < claimed; seq++ {
		m := ph.lookup(seq)
		if m == nil {
			break
		}
		exp := m.expected.Load()
		if exp < 0 {
			continue // never sent
		}
		if m.received.Load() == exp {
			r.MessagesComplete++
		} else {
			r.MessagesIncomplete++
		}
		if d := m.apiDelivered.Load(); d >= 0 {
			r.APIDelivered += int64(d)
			if d != exp {
				r.APIMismatches++
			}
		}
	}
	if len(b.cfg.PIDs) > 0 {
		cpu := cpu1.CPU - cpu0.CPU
		r.ServerCPUSecs = cpu.Seconds()
		if r.Delivered > 0 {
			r.ServerCPUPerDelivUs = float64(cpu) / 1e3 / float64(r.Delivered)
		}
		if r.Sent > 0 {
			r.ServerCPUPerSendUs = float64(cpu) / 1e3 / float64(r.Sent)
		}
		for i, p := range b.procs {
			pc := ProcCPU{Name: p.Name, CPUSecs: (each1[i] - each0[i]).Seconds()}
			if r.Sent > 0 {
				pc.PerSendUs = float64(each1[i]-each0[i]) / 1e3 / float64(r.Sent)
			}
			r.Procs = append(r.Procs, pc)
			r.TotalCPUPerSendUs += pc.PerSendUs
		}
		// The same without what the servers spend while idle (heartbeats,
		// timers, GC of the connection state) over the phase's duration.
		if b.idleKnown {
			net := cpu - time.Duration(b.idleCPU*float64(phaseTime))
			r.ServerCPUNetSecs = max(net, 0).Seconds()
			if r.Delivered > 0 {
				r.ServerCPUNetPerDelivUs = max(float64(net), 0) / 1e3 / float64(r.Delivered)
			}
			if r.Sent > 0 {
				r.ServerCPUNetPerSendUs = max(float64(net), 0) / 1e3 / float64(r.Sent)
			}
		}
	}
	return r
}

// readEach reads the CPU time of each of b.procs (0 when unreadable).
func (b *bench) readEach() []time.Duration {
	out := make([]time.Duration, len(b.procs))
	for i, p := range b.procs {
		out[i], _ = readCPU(p.PID)
	}
	return out
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func newRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
