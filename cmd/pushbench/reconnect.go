package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"text/tabwriter"
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

// connectFirst opens every connection to node 1 (DialConcurrency at a
// time) and waits, at most Timeout, until each has its connect-finish or
// failed.
func (r *reconnectRun) connectFirst(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	sem := make(chan struct{}, r.cfg.DialConcurrency)
	var settled sync.WaitGroup
	for _, c := range r.clients {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("connect: %w", ctx.Err())
		}
		settled.Add(1)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.life(ctx, c, func() { <-sem; settled.Done() })
		}()
	}
	settled.Wait()
	return nil
}

// life is one connection's goroutine: the stream on node 1 (settled is
// called once it is open or failed), then, after the kill, reconnects
// until the run closes.
func (r *reconnectRun) life(setupCtx context.Context, c *rcClient, settled func()) {
	var once sync.Once
	settle := func() { once.Do(settled) }
	defer settle()
	base, err := r.stream(setupCtx, c, 0, settle)
	// A connect node 1 refused (its own admission bound) comes back after
	// the Retry-After, within the setup's deadline.
	for refused := (*errRefused)(nil); errors.As(err, &refused); {
		sleepCtx(setupCtx, refused.retryAfter)
		if setupCtx.Err() != nil {
			break
		}
		base, err = r.stream(setupCtx, c, 0, settle)
	}
	if err != nil {
		r.note("node 1: " + err.Error())
		return
	}
	if !r.killed.Load() {
		if !r.closing.Load() {
			r.note("node 1: stream ended before the kill")
		}
		return
	}
	if r.cfg.ReconnectBase > 0 {
		base = r.cfg.ReconnectBase
	}
	// sse.js's _retry: d = min(max, base·2^attempt), wait U[d/2, d), no
	// sooner than a Retry-After.
	attempt := 0
	var minDelay time.Duration
	for !r.closing.Load() {
		d := min(maxReconnectDelay, base<<min(attempt, 16))
		wait := max(minDelay, d/2+rand.N(d/2+1))
		attempt++
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-r.closed:
			t.Stop()
			return
		}
		node := r.survivors[int(r.rr.Add(1))%len(r.survivors)]
		r.attempts.Add(1)
		_, err := r.stream(context.Background(), c, node, nil)
		var refused *errRefused
		switch {
		case r.closing.Load():
			return
		case errors.As(err, &refused):
			r.refused.Add(1)
			minDelay = refused.retryAfter
		case err != nil:
			r.failed.Add(1)
			r.note(fmt.Sprintf("node %d: %s", node+1, err))
			minDelay = 0
		default:
			r.note(fmt.Sprintf("node %d: stream ended", node+1))
			minDelay = 0
		}
	}
}

// errRefused is a connect answered 503.
type errRefused struct{ retryAfter time.Duration }

func (e *errRefused) Error() string { return fmt.Sprintf("503, retry after %v", e.retryAfter) }

// stream opens c's stream on node and reads it until it ends. opened, if
// not nil, is called once connect-finish arrived. It returns the
// reconnectTime of connect-finish and nil when a stream that had opened
// ended, else why it could not open.
func (r *reconnectRun) stream(setupCtx context.Context, c *rcClient, node int, opened func()) (time.Duration, error) {
	u, _ := url.Parse(r.cfg.Nodes[node])
	d := net.Dialer{Timeout: r.cfg.Timeout}
	if len(r.srcIPs) > 0 {
		d.LocalAddr = &net.TCPAddr{IP: r.srcIPs[c.idx%len(r.srcIPs)]}
		d.Control = bindLate
	}
	nc, err := d.DialContext(setupCtx, "tcp", hostPort(u))
	if err != nil {
		return 0, errors.New("dial: " + shortErr(err))
	}
	c.nc.Store(&nc)
	defer nc.Close()
	if r.closing.Load() {
		return 0, errors.New("run is closing")
	}
	_ = nc.SetDeadline(time.Now().Add(r.cfg.Timeout))
	q := url.Values{"userId": {c.user}, "tenantId": {c.tenant}, "name": {c.user},
		"clientId": {"pb-" + r.runID + "-" + strconv.Itoa(c.idx)}, "ack": {"1"}}
	req := "GET " + r.cfg.Base + "/connect?" + q.Encode() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nAccept: text/event-stream\r\nUser-Agent: pushbench\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		return 0, errors.New("write: " + shortErr(err))
	}
	br := bufio.NewReaderSize(nc, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, errors.New("read response: " + shortErr(err))
	}
	if resp.StatusCode == http.StatusServiceUnavailable {
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return 0, &errRefused{retryAfter: time.Duration(secs) * time.Second}
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return 0, fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	p := newSSEParser(bufio.NewReaderSize(resp.Body, 4096), 0)
	var base time.Duration
	for {
		ev, err := p.Next()
		if err != nil {
			return 0, errors.New("read connect-finish: " + shortErr(err))
		}
		if ev.Name != "connect-finish" {
			continue
		}
		var cf struct {
			ReconnectTime int64 `json:"reconnectTime"`
		}
		if err := json.Unmarshal([]byte(ev.Data), &cf); err != nil {
			return 0, fmt.Errorf("connect-finish %q: %w", ev.Data, err)
		}
		base = time.Duration(cf.ReconnectTime) * time.Millisecond
		break
	}
	_ = nc.SetDeadline(time.Time{})
	if base <= 0 {
		base = 5 * time.Second // sse.js's DEFAULT_RECONNECT_TIME
	}
	after := r.killed.Load()
	if after {
		now := time.Now().UnixNano()
		r.perNode[node].Add(1)
		r.back.Add(1)
		atomicMax(&r.lastBack, now)
		r.backLat.Record(time.Duration(now - r.killAt.Load()))
	} else {
		r.onFirst.Add(1)
	}
	if opened != nil {
		opened()
	}
	for {
		ev, err := p.Next()
		if err != nil {
			return base, nil
		}
		if ev.Name != r.cfg.Event {
			continue
		}
		if !after {
			r.live.Add(1)
			continue
		}
		r.account(c, ev)
	}
}

// account counts one backlog message on a stream opened after the kill.
func (r *reconnectRun) account(c *rcClient, ev sseEvent) {
	pl, ok := parsePayload(ev.Data)
	if !ok || pl.run != r.runID || pl.phase != reconnectPhase {
		r.note("stray message")
		return
	}
	if !keyMatches(pl.key, c.user, c.tenant) {
		r.misrouted.Add(1)
		return
	}
	bit := uint64(1) << (pl.seq % int64(r.cfg.Backlog))
	if c.bits&bit != 0 {
		r.dup.Add(1)
		return
	}
	c.bits |= bit
	r.replayed.Add(1)
	c.got++
	if c.got == r.cfg.Backlog {
		now := time.Now().UnixNano()
		r.complete.Add(1)
		atomicMax(&r.lastOK, now)
		r.completeLat.Record(time.Duration(now - r.killAt.Load()))
	}
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
	raw, err := json.Marshal(items)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, node+"/api/v1/apps/"+r.cfg.App+"/send", bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+r.cfg.Key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.http.Do(req)
	if err != nil {
		return errors.New(shortErr(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<22))
	if err != nil {
		return errors.New("read answer: " + shortErr(err))
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(data))
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

// sample reads every process (node 1 until it is gone) once a second
// until ctx ends.
func (r *reconnectRun) sample(ctx context.Context) []ReconnectSample {
	var out []ReconnectSample
	prev := make([]time.Duration, len(r.procs))
	for i, p := range r.procs {
		prev[i], _ = readCPU(p.PID)
	}
	start := time.Now()
	last := start
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return out
		case <-tick.C:
		}
		now := time.Now()
		s := ReconnectSample{Back: r.back.Load(), Complete: r.complete.Load(),
			CPU: map[string]float64{}, RSSMiB: map[string]float64{}}
		if k := r.killAt.Load(); k > 0 {
			s.Secs = float64(now.UnixNano()-k) / 1e9
		} else {
			s.Secs = -now.Sub(start).Seconds()
		}
		for i, p := range r.procs {
			cpu, err := readCPU(p.PID)
			if err != nil {
				continue // node 1 after the kill
			}
			rss, _ := readRSS(p.PID)
			s.CPU[p.Name] = float64(cpu-prev[i]) / float64(now.Sub(last))
			s.RSSMiB[p.Name] = float64(rss) / (1 << 20)
			prev[i] = cpu
		}
		last = now
		out = append(out, s)
	}
}

// report summarises the counters.
func (r *reconnectRun) report(storeSecs float64) ReconnectReport {
	k := r.killAt.Load()
	since := func(t int64) float64 {
		if t == 0 || k == 0 {
			return 0
		}
		return float64(t-k) / 1e9
	}
	rr := ReconnectReport{
		Conns: r.cfg.Conns, Backlog: r.cfg.Backlog, StoreSecs: storeSecs, Stored: r.stored.Load(),
		LiveDelivered: r.live.Load(),
		Back:          r.back.Load(), BackSecs: since(r.lastBack.Load()),
		Complete: r.complete.Load(), CompleteSecs: since(r.lastOK.Load()),
		Expected: int64(r.cfg.Conns * r.cfg.Backlog), Replayed: r.replayed.Load(),
		Duplicated: r.dup.Load(), Misrouted: r.misrouted.Load(),
		Attempts: r.attempts.Load(), Refused: r.refused.Load(), Failed: r.failed.Load(),
		BackLatency: r.backLat.Summary(), CompleteLatency: r.completeLat.Summary(),
		PerNode: map[string]int64{},
	}
	rr.Lost = rr.Expected - rr.Replayed
	for _, n := range r.survivors {
		rr.PerNode[fmt.Sprintf("node%d", n+1)] = r.perNode[n].Load()
	}
	r.errMu.Lock()
	if len(r.errors) > 0 {
		rr.Errors = make(map[string]int, len(r.errors))
		for e, n := range r.errors {
			rr.Errors[e] = n
		}
	}
	r.errMu.Unlock()
	return rr
}

// closeAll ends every connection and waits (bounded) for the goroutines.
func (r *reconnectRun) closeAll() {
	r.closing.Store(true)
	close(r.closed)
	for _, c := range r.clients {
		if nc := c.nc.Load(); nc != nil {
			_ = (*nc).Close()
		}
	}
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}

// problems lists in words what went wrong.
func (rr *ReconnectReport) problems() []string {
	var out []string
	add := func(n int64, what string) {
		if n != 0 {
			out = append(out, fmt.Sprintf("reconnect: %d %s", n, what))
		}
	}
	add(int64(rr.Conns)-rr.Back, "connections not back")
	add(rr.Lost, "backlog messages lost")
	add(rr.Duplicated, "duplicated")
	add(rr.Misrouted, "misrouted")
	add(rr.Expected-rr.Stored, "backlog messages not stored")
	if rr.TimedOut {
		out = append(out, "reconnect: timed out")
	}
	return out
}

// writeTable prints the scenario's figures and the timeline of procs and
// of the tool itself.
func (rr *ReconnectReport) writeTable(w io.Writer, procs []Proc) {
	procs = append(slices.Clone(procs), Proc{Name: "pushbench"})
	fmt.Fprintf(w, "reconnect: %d connections, %d QoS messages per user (stored %d in %.2fs, %d delivered live on node 1)\n",
		rr.Conns, rr.Backlog, rr.Stored, rr.StoreSecs, rr.LiveDelivered)
	fmt.Fprintf(w, "  after the kill: all back (connect-finish) at %.2fs, all backlogs complete at %.2fs; %d/%d back, %d/%d complete\n",
		rr.BackSecs, rr.CompleteSecs, rr.Back, rr.Conns, rr.Complete, rr.Conns)
	fmt.Fprintf(w, "  backlog: %d expected, %d replayed, %d lost, %d duplicated, %d misrouted\n",
		rr.Expected, rr.Replayed, rr.Lost, rr.Duplicated, rr.Misrouted)
	fmt.Fprintf(w, "  connects: %d attempts, %d refused (503), %d failed; per node %v\n", rr.Attempts, rr.Refused, rr.Failed, rr.PerNode)
	fmt.Fprintf(w, "  per connection: back p50 %s p99 %s, complete p50 %s p99 %s\n",
		us(rr.BackLatency.P50Us), us(rr.BackLatency.P99Us), us(rr.CompleteLatency.P50Us), us(rr.CompleteLatency.P99Us))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "t (s)\tback\tcomplete\t")
	for _, p := range procs {
		fmt.Fprintf(tw, "%s cores\t%s MiB\t", p.Name, p.Name)
	}
	fmt.Fprintln(tw)
	for _, s := range rr.Timeline {
		fmt.Fprintf(tw, "%.1f\t%d\t%d\t", s.Secs, s.Back, s.Complete)
		for _, p := range procs {
			if c, ok := s.CPU[p.Name]; ok {
				fmt.Fprintf(tw, "%.2f\t%.0f\t", c, s.RSSMiB[p.Name])
			} else {
				fmt.Fprint(tw, "-\t-\t")
			}
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	writeErrors(w, "reconnect errors", rr.Errors)
}
