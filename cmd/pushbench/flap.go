package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The flap scenario (issue 15, -flap): subscribers on the spawned nodes,
// clustered over a private redis-server, each in one channel and its
// own user stream; a publisher per stream kind sends to the channels and
// to the users at a steady rate through the API of random nodes, while
// every subscriber's TCP connection is dropped by the client (RST) every
// few seconds, stays down about -flap-down and comes back to a random
// node with the Last-Event-ID an EventSource would send. The same run is
// made once per history setting (-flap-history), each on fresh servers
// and a fresh Redis: with the streams' history in Redis, in each node's
// memory, or without history (what an at-most-once server gives).
//
// Subscriber i is user u{i} in channel fc.{i%channels}; the messages of
// one stream carry that stream's sequence numbers 0, 1, 2, … (every
// stream is sent to by one publisher goroutine, one send at a time), so a
// subscriber can tell what it lacks, what it got twice and what came out
// of order.

// FlapConfig is the flap scenario's own settings; the subscribers are
// Config.Conns, the channels Config.Channels (default Conns/10), the
// publishing time Config.Duration (default 30 s) and the publisher
// goroutines per stream kind Config.Publishers.
type FlapConfig struct {
	// On runs the scenario instead of the modes.
	On bool
	// Variants are the history settings run one after the other:
	// "redis", "memory" or "off". Zero value: redis, off.
	Variants []string
	// Up is the mean time a connection stays up (drawn from [Up/2,
	// 3·Up/2)). Zero value: 5 s.
	Up time.Duration
	// Down is the mean time a dropped subscriber waits before it
	// reconnects (drawn from [0.8·Down, 1.2·Down)). Zero value: 2 s.
	Down time.Duration
	// ChannelRate and UserRate are the sends per second to channels and to
	// users. Zero values: 100 and 100.
	ChannelRate float64
	UserRate    float64
}

func (f *FlapConfig) addFlags(fs *flag.FlagSet) {
	fs.BoolVar(&f.On, "flap", false, "flap scenario: subscribers in a channel and their user stream, connections dropped and resumed with Last-Event-ID on a random node")
	fs.Func("flap-history", "history settings of -flap, run one after the other: redis, memory, off (default redis,off)", func(s string) error {
		f.Variants = splitList(s)
		return nil
	})
	fs.DurationVar(&f.Up, "flap-up", 5*time.Second, "mean time a -flap connection stays up")
	fs.DurationVar(&f.Down, "flap-down", 2*time.Second, "mean time a -flap subscriber stays down")
	fs.Float64Var(&f.ChannelRate, "flap-channel-rate", 100, "channel sends per second in -flap")
	fs.Float64Var(&f.UserRate, "flap-user-rate", 100, "user sends per second in -flap")
}

// FlapReport is the outcome of the flap scenario, one variant per
// history setting.
type FlapReport struct {
	Subscribers int           `json:"subscribers"`
	Channels    int           `json:"channels"`
	Nodes       int           `json:"nodes"`
	UpSecs      float64       `json:"up_seconds"`
	DownSecs    float64       `json:"down_seconds"`
	ChannelRate float64       `json:"channel_rate"`
	UserRate    float64       `json:"user_rate"`
	Variants    []FlapVariant `json:"variants"`
}

// FlapVariant is one history setting's run.
type FlapVariant struct {
	History string `json:"history"`
	// PublishSecs is the publishing time; the sends are those the API
	// answered 200, SendErrors the others.
	PublishSecs  float64 `json:"publish_seconds"`
	ChannelSends int64   `json:"channel_sends"`
	UserSends    int64   `json:"user_sends"`
	SendErrors   int64   `json:"send_errors"`
	// Drops counts connections the tool dropped; Reconnects the streams
	// opened after one (connect-finish), OtherEnds streams that ended
	// otherwise, Refused connects answered 503.
	Drops      int64 `json:"drops"`
	Reconnects int64 `json:"reconnects"`
	OtherEnds  int64 `json:"other_ends"`
	Refused    int64 `json:"refused_503"`
	// ResumedTrue and ResumedFalse count connect-finish's "resumed";
	// Gaps counts sse-gap events.
	ResumedTrue  int64 `json:"resumed_true"`
	ResumedFalse int64 `json:"resumed_false"`
	Gaps         int64 `json:"gap_events"`
	// Expected is the sum over subscribers of the sends to their channel
	// and user; Unique what they received of it, each message once.
	Expected        int64   `json:"expected"`
	Unique          int64   `json:"unique"`
	DeliveryPct     float64 `json:"delivery_percent"`
	Duplicated      int64   `json:"duplicated"`
	OrderViolations int64   `json:"order_violations"`
	Misrouted       int64   `json:"misrouted"`
	Stray           int64   `json:"stray"`
	// PerSubscriber is the distribution of unique received / sent to it.
	PerSubscriber FlapDistribution `json:"per_subscriber_delivery"`
	// CatchUp is, per reconnect, the time from its dial to the moment the
	// subscriber had every message sent to its streams before that dial;
	// Interrupted counts reconnects dropped before that.
	CatchUp     Summary `json:"catch_up"`
	Interrupted int64   `json:"catch_up_interrupted"`
	// Connect is dial → connect-finish of the reconnects.
	Connect Summary `json:"connect"`
	// Procs is each process's CPU over the publishing time and
	// TotalCPUPerSendUs their sum per send (channel and user).
	Procs             []ProcCPU      `json:"procs"`
	TotalCPUPerSendUs float64        `json:"total_cpu_per_send_us"`
	TimedOut          bool           `json:"timed_out"`
	Errors            map[string]int `json:"errors,omitempty"`
}

// FlapDistribution summarises per-subscriber delivery percentages.
type FlapDistribution struct {
	MinPct   float64 `json:"min_percent"`
	P1Pct    float64 `json:"p1_percent"`
	P50Pct   float64 `json:"p50_percent"`
	MeanPct  float64 `json:"mean_percent"`
	Complete int     `json:"complete"` // subscribers that got 100 %
}

// flapSub is one subscriber. The fields after the marker are owned by
// its goroutine.
type flapSub struct {
	idx     int
	user    string
	channel int

	mu      sync.Mutex
	nc      net.Conn
	timer   *time.Timer
	dropped atomic.Bool // the current connection was dropped by the tool

	unique atomic.Int64

	// owned by the goroutine
	lastID string
	recv   [2]streamRecv // channel, user
}

// streamRecv is what a subscriber got of one stream.
type streamRecv struct {
	bits  []uint64
	max   int64 // highest sequence number received, -1 before any
	water int64 // every sequence number below it was received
}

// catchUp is a reconnect waiting until the subscriber has what was sent
// to its streams before the dial.
type catchUp struct {
	start time.Time
	want  [2]int64
	done  bool
}

// flapRun is one variant's shared state.
type flapRun struct {
	cfg     Config
	history string
	runID   string
	nodes   []string
	srcIPs  []net.IP
	http    *http.Client
	subs    []*flapSub

	chanSent []atomic.Int64
	userSent []atomic.Int64

	flapping, final, closing atomic.Bool
	closed                   chan struct{}
	wg                       sync.WaitGroup

	connected                                     atomic.Int64
	drops, reconnects, otherEnds, refused         atomic.Int64
	resumedTrue, resumedFalse, gaps               atomic.Int64
	dup, order, misrouted, stray, sendErr         atomic.Int64
	interrupted, totalUnique, lastDelivery, opens atomic.Int64
	catchLat, connectLat                          hist

	errMu  sync.Mutex
	errors map[string]int
}

func (r *flapRun) note(what string) {
	r.errMu.Lock()
	if len(r.errors) < 50 || r.errors[what] > 0 {
		r.errors[what]++
	}
	r.errMu.Unlock()
}

func (r *flapRun) channelName(k int) string { return "fc." + strconv.Itoa(k) }

// runFlap runs the scenario once per variant.
func runFlap(ctx context.Context, cfg Config, logf func(string, ...any)) (Report, error) {
	rep := Report{}
	f := &cfg.Flap
	if cfg.Spawn == "" || cfg.SpawnRedis == "" || cfg.SpawnNodes < 2 {
		return rep, errors.New("config: -flap needs -spawn, -spawn-redis and -spawn-nodes of at least 2")
	}
	if len(f.Variants) == 0 {
		f.Variants = []string{historyRedis, historyOff}
	}
	for _, v := range f.Variants {
		if err := checkHistoryMode(v, true); err != nil {
			return rep, fmt.Errorf("config: -flap-history: %w", err)
		}
	}
	f.Up = cmp0(f.Up, 5*time.Second)
	f.Down = cmp0(f.Down, 2*time.Second)
	if f.ChannelRate <= 0 {
		f.ChannelRate = 100
	}
	if f.UserRate <= 0 {
		f.UserRate = 100
	}
	if cfg.Channels == 0 {
		cfg.Channels = max(cfg.Conns/10, 1)
	}
	if cfg.Duration == 0 {
		cfg.Duration = 30 * time.Second
	}
	limit, err := raiseFileLimit()
	if err != nil {
		rep.Warnings = append(rep.Warnings, err.Error())
	}
	rep.FileLimit = limit
	fr := &FlapReport{Subscribers: cfg.Conns, Channels: cfg.Channels, Nodes: cfg.SpawnNodes,
		UpSecs: f.Up.Seconds(), DownSecs: f.Down.Seconds(), ChannelRate: f.ChannelRate, UserRate: f.UserRate}
	rep.Flap = fr
	rep.Conns, rep.Users, rep.Publishers, rep.Payload = cfg.Conns, cfg.Conns, cfg.Publishers, cfg.Payload
	for _, v := range f.Variants {
		if ctx.Err() != nil {
			break
		}
		logf("flap: history %s", v)
		fv, logs, err := runFlapVariant(ctx, cfg, v, logf)
		rep.ServerLogs = append(rep.ServerLogs, logs...)
		if err != nil {
			return rep, fmt.Errorf("flap, history %s: %w", v, err)
		}
		fr.Variants = append(fr.Variants, fv)
	}
	return rep, nil
}

func cmp0(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// runFlapVariant spawns a redis-server and the nodes with history
// setting v, runs the scenario and stops them.
func runFlapVariant(ctx context.Context, cfg Config, v string, logf func(string, ...any)) (FlapVariant, []string, error) {
	fv := FlapVariant{History: v}
	var logs []string
	rds, err := spawnRedis(ctx, cfg)
	if err != nil {
		return fv, logs, err
	}
	defer rds.stop(10 * time.Second)
	logs = append(logs, rds.logPath)
	args, err := writeServerConfig(cfg.SpawnLogDir, v, cfg.HistorySize)
	if err != nil {
		return fv, logs, err
	}
	defer os.Remove(args[1])
	scfg := cfg
	scfg.SpawnArgs = append(slices.Clone(cfg.SpawnArgs), args...)
	scfg.SpawnEnv = append(slices.Clone(cfg.SpawnEnv), "PUSHD_CLUSTER_TRANSPORT=redis", "PUSHD_CLUSTER_REDIS_URL="+rds.url)
	scfg.SpawnEnv = append(scfg.SpawnEnv, historyEnv(v, rds.url)...)
	var procs []Proc
	r := &flapRun{cfg: cfg, history: v, runID: newRunID(), errors: map[string]int{}, closed: make(chan struct{})}
	for n := 1; n <= cfg.SpawnNodes; n++ {
		srv, err := spawnServer(ctx, scfg, n)
		if err != nil {
			return fv, logs, err
		}
		defer srv.stop(10 * time.Second)
		r.nodes = append(r.nodes, srv.url)
		procs = append(procs, Proc{Name: fmt.Sprintf("node%d", n), PID: srv.cmd.Process.Pid})
		logs = append(logs, srv.logPath)
	}
	procs = append(procs, Proc{Name: "redis", PID: rds.cmd.Process.Pid})
	logf("flap: %d nodes %v, redis %s", len(r.nodes), r.nodes, rds.url)
	srcs := cfg.SrcIPs
	if len(srcs) == 0 {
		srcs = autoSourceIPs(2*cfg.Conns, r.nodes)
	}
	for _, s := range srcs {
		ip := net.ParseIP(s)
		if ip == nil {
			return fv, logs, fmt.Errorf("config: source address %q", s)
		}
		r.srcIPs = append(r.srcIPs, ip)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 2*cfg.Publishers + 4, DisableCompression: true}
	defer tr.CloseIdleConnections()
	r.http = &http.Client{Transport: tr, Timeout: cfg.Timeout}
	r.chanSent = make([]atomic.Int64, cfg.Channels)
	r.userSent = make([]atomic.Int64, cfg.Conns)
	r.subs = make([]*flapSub, cfg.Conns)
	for i := range r.subs {
		r.subs[i] = &flapSub{idx: i, user: "u" + strconv.Itoa(i), channel: i % cfg.Channels}
		for k := range r.subs[i].recv {
			r.subs[i].recv[k].max = -1
		}
	}
	defer r.closeAll()

	logf("flap: connecting %d subscribers", cfg.Conns)
	if err := r.connectAll(ctx); err != nil {
		return fv, logs, err
	}

	logf("flap: publishing for %v (channels %.0f/s, users %.0f/s), connections up ~%v, down ~%v",
		cfg.Duration, cfg.Flap.ChannelRate, cfg.Flap.UserRate, cfg.Flap.Up, cfg.Flap.Down)
	cpu0 := readEachProc(procs)
	t0 := time.Now()
	r.startFlapping()
	r.publish(ctx)
	fv.PublishSecs = time.Since(t0).Seconds()
	cpu1 := readEachProc(procs)
	r.stopFlapping()

	// Everybody back, and caught up (or nothing new for 3 s).
	dctx, dcancel := context.WithTimeout(ctx, cfg.Timeout)
	defer dcancel()
	var expected int64
	for {
		expected = r.expected()
		if r.connected.Load() == int64(cfg.Conns) {
			if r.totalUnique.Load() >= expected {
				break
			}
			if last := r.lastDelivery.Load(); last > 0 && time.Since(time.Unix(0, last)) > 3*time.Second {
				break
			}
		}
		if dctx.Err() != nil {
			fv.TimedOut = true
			break
		}
		sleepCtx(dctx, 20*time.Millisecond)
	}
	// Late duplicates.
	sleepCtx(ctx, 500*time.Millisecond)
	r.closeAll()

	fv.ChannelSends, fv.UserSends = sumAtomics(r.chanSent), sumAtomics(r.userSent)
	fv.SendErrors = r.sendErr.Load()
	fv.Drops, fv.Reconnects, fv.OtherEnds, fv.Refused = r.drops.Load(), r.reconnects.Load(), r.otherEnds.Load(), r.refused.Load()
	fv.ResumedTrue, fv.ResumedFalse, fv.Gaps = r.resumedTrue.Load(), r.resumedFalse.Load(), r.gaps.Load()
	fv.Expected, fv.Unique = expected, r.totalUnique.Load()
	if expected > 0 {
		fv.DeliveryPct = 100 * float64(fv.Unique) / float64(expected)
	}
	fv.Duplicated, fv.OrderViolations, fv.Misrouted, fv.Stray = r.dup.Load(), r.order.Load(), r.misrouted.Load(), r.stray.Load()
	fv.PerSubscriber = r.distribution()
	fv.CatchUp, fv.Interrupted, fv.Connect = r.catchLat.Summary(), r.interrupted.Load(), r.connectLat.Summary()
	sends := fv.ChannelSends + fv.UserSends
	for i, p := range procs {
		pc := ProcCPU{Name: p.Name, CPUSecs: (cpu1[i] - cpu0[i]).Seconds()}
		if sends > 0 {
			pc.PerSendUs = float64(cpu1[i]-cpu0[i]) / 1e3 / float64(sends)
		}
		fv.Procs = append(fv.Procs, pc)
		fv.TotalCPUPerSendUs += pc.PerSendUs
	}
	r.errMu.Lock()
	if len(r.errors) > 0 {
		fv.Errors = r.errors
	}
	r.errMu.Unlock()
	return fv, logs, nil
}

func readEachProc(procs []Proc) []time.Duration {
	out := make([]time.Duration, len(procs))
	for i, p := range procs {
		out[i], _ = readCPU(p.PID)
	}
	return out
}

func sumAtomics(a []atomic.Int64) int64 {
	var n int64
	for i := range a {
		n += a[i].Load()
	}
	return n
}

// expected is the sum over subscribers of the sends to their streams.
func (r *flapRun) expected() int64 {
	var n int64
	for _, s := range r.subs {
		n += r.chanSent[s.channel].Load() + r.userSent[s.idx].Load()
	}
	return n
}

// distribution summarises unique received / sent per subscriber.
func (r *flapRun) distribution() FlapDistribution {
	pcts := make([]float64, 0, len(r.subs))
	var sum float64
	d := FlapDistribution{}
	for _, s := range r.subs {
		want := r.chanSent[s.channel].Load() + r.userSent[s.idx].Load()
		p := 100.0
		if want > 0 {
			p = 100 * float64(s.unique.Load()) / float64(want)
		}
		if s.unique.Load() >= want {
			d.Complete++
		}
		pcts = append(pcts, p)
		sum += p
	}
	if len(pcts) == 0 {
		return d
	}
	slices.Sort(pcts)
	d.MinPct, d.P1Pct, d.P50Pct = pcts[0], pcts[len(pcts)/100], pcts[len(pcts)/2]
	d.MeanPct = sum / float64(len(pcts))
	return d
}

// connectAll starts every subscriber's goroutine and waits, at most
// Timeout, until each has opened its first stream.
func (r *flapRun) connectAll(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	sem := make(chan struct{}, r.cfg.DialConcurrency)
	var settled sync.WaitGroup
	for _, s := range r.subs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("connect: %w", ctx.Err())
		}
		settled.Add(1)
		r.wg.Add(1)
		var once sync.Once
		go func() {
			defer r.wg.Done()
			r.life(s, func() { once.Do(func() { <-sem; settled.Done() }) })
		}()
	}
	done := make(chan struct{})
	go func() { settled.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("connect: %d of %d open after %v: %v", r.opens.Load(), len(r.subs), r.cfg.Timeout, r.errors)
	}
}

// life is a subscriber's goroutine: its first stream (opened is called
// once it is up), then, after every drop, a pause and a reconnect to a
// random node with its last event id, until the run closes.
func (r *flapRun) life(s *flapSub, opened func()) {
	first := true
	for !r.closing.Load() {
		node := s.idx % len(r.nodes)
		var cu *catchUp
		if !first {
			node = rand.N(len(r.nodes))
			cu = &catchUp{start: time.Now(), want: [2]int64{r.chanSent[s.channel].Load(), r.userSent[s.idx].Load()}}
		}
		up, err := r.stream(s, node, cu, opened)
		if up {
			first = false
		}
		if r.closing.Load() {
			return
		}
		pause := 500 * time.Millisecond
		var refused *errRefused
		switch {
		case s.dropped.Swap(false):
			r.drops.Add(1)
			d := r.cfg.Flap.Down
			pause = d*4/5 + rand.N(d*2/5+1)
		case errors.As(err, &refused):
			r.refused.Add(1)
			pause = max(refused.retryAfter, pause)
		case err != nil:
			r.otherEnds.Add(1)
			r.note(fmt.Sprintf("node %d: %s", node+1, err))
		default:
			r.otherEnds.Add(1)
			r.note(fmt.Sprintf("node %d: stream ended", node+1))
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-r.closed:
			t.Stop()
			return
		}
	}
}

// stream opens s's stream on node (with Last-Event-ID when s has one)
// and reads it until it ends. It reports whether the stream opened; err
// says why it ended when the tool did not drop it.
func (r *flapRun) stream(s *flapSub, node int, cu *catchUp, opened func()) (bool, error) {
	u, _ := url.Parse(r.nodes[node])
	d := net.Dialer{Timeout: r.cfg.Timeout}
	if len(r.srcIPs) > 0 {
		d.LocalAddr = &net.TCPAddr{IP: r.srcIPs[s.idx%len(r.srcIPs)]}
	}
	nc, err := d.Dial("tcp", hostPort(u))
	if err != nil {
		return false, errors.New("dial: " + shortErr(err))
	}
	s.mu.Lock()
	s.nc = nc
	s.mu.Unlock()
	defer s.release(nc)
	if r.closing.Load() {
		return false, errors.New("run is closing")
	}
	_ = nc.SetDeadline(time.Now().Add(r.cfg.Timeout))
	q := url.Values{"userId": {s.user}, "tenantId": {"t0"}, "name": {s.user},
		"clientId": {"pb-" + r.runID + "-" + strconv.Itoa(s.idx)}, "channel": {r.channelName(s.channel)}}
	req := "GET " + r.cfg.Base + "/connect?" + q.Encode() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nAccept: text/event-stream\r\nUser-Agent: pushbench\r\n"
	if s.lastID != "" {
		req += "Last-Event-ID: " + s.lastID + "\r\n"
	}
	if _, err := io.WriteString(nc, req+"\r\n"); err != nil {
		return false, errors.New("write: " + shortErr(err))
	}
	br := bufio.NewReaderSize(nc, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return false, errors.New("read response: " + shortErr(err))
	}
	if resp.StatusCode == http.StatusServiceUnavailable {
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return false, &errRefused{retryAfter: time.Duration(secs) * time.Second}
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return false, fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	p := newSSEParser(bufio.NewReaderSize(resp.Body, 4096), 0)
	// What an EventSource would send next time: the id as of the last
	// complete block, when this stream gave one.
	defer func() {
		if id := p.LastEventID(); id != "" {
			s.lastID = id
		}
	}()
	for {
		ev, err := p.Next()
		if err != nil {
			return false, errors.New("read connect-finish: " + shortErr(err))
		}
		if ev.Name != "connect-finish" {
			continue
		}
		var cf struct {
			Resumed *bool `json:"resumed"`
		}
		if err := json.Unmarshal([]byte(ev.Data), &cf); err != nil {
			return false, fmt.Errorf("connect-finish %q: %w", ev.Data, err)
		}
		switch {
		case cf.Resumed == nil:
		case *cf.Resumed:
			r.resumedTrue.Add(1)
		default:
			r.resumedFalse.Add(1)
		}
		break
	}
	_ = nc.SetDeadline(time.Time{})
	r.connected.Add(1)
	defer r.connected.Add(-1)
	r.opens.Add(1)
	if cu != nil {
		r.reconnects.Add(1)
		r.connectLat.Record(time.Since(cu.start))
		r.checkCaughtUp(s, cu)
		defer func() {
			if !cu.done {
				r.interrupted.Add(1)
			}
		}()
	}
	opened()
	if r.flapping.Load() && !r.final.Load() {
		up := r.cfg.Flap.Up
		s.arm(nc, up/2+rand.N(up+1))
	}
	for {
		ev, err := p.Next()
		if err != nil {
			if s.dropped.Load() || r.closing.Load() {
				return true, nil
			}
			return true, errors.New("stream: " + shortErr(err))
		}
		switch ev.Name {
		case r.cfg.Event:
			r.account(s, ev, cu)
		case "sse-gap":
			r.gaps.Add(1)
		}
	}
}

// account counts one message received by s.
func (r *flapRun) account(s *flapSub, ev sseEvent, cu *catchUp) {
	pl, ok := parsePayload(ev.Data)
	if !ok || pl.run != r.runID {
		r.stray.Add(1)
		return
	}
	var k int
	switch pl.key {
	case "c:" + r.channelName(s.channel):
		k = 0
	case "u:" + s.user:
		k = 1
	default:
		r.misrouted.Add(1)
		return
	}
	st := &s.recv[k]
	w := int(pl.seq >> 6)
	st.bits = growBits(st.bits, w)
	bit := uint64(1) << (pl.seq & 63)
	if st.bits[w]&bit != 0 {
		r.dup.Add(1)
		when := "after the catch-up"
		switch {
		case cu == nil:
			when = "on a first stream"
		case !cu.done:
			when = "during the catch-up"
		}
		r.note(fmt.Sprintf("duplicate %s message %s (%d behind the newest received)", [2]string{"channel", "user"}[k], when, st.max-pl.seq))
		return
	}
	st.bits[w] |= bit
	s.unique.Add(1)
	r.totalUnique.Add(1)
	atomicMax(&r.lastDelivery, time.Now().UnixNano())
	if pl.seq < st.max {
		r.order.Add(1)
	}
	st.max = max(st.max, pl.seq)
	for st.water < int64(len(st.bits))*64 && st.bits[st.water>>6]&(1<<(st.water&63)) != 0 {
		st.water++
	}
	if cu != nil {
		r.checkCaughtUp(s, cu)
	}
}

// checkCaughtUp records the catch-up time of cu once s has everything it
// waits for.
func (r *flapRun) checkCaughtUp(s *flapSub, cu *catchUp) {
	if cu.done || s.recv[0].water < cu.want[0] || s.recv[1].water < cu.want[1] {
		return
	}
	cu.done = true
	r.catchLat.Record(time.Since(cu.start))
}

// arm schedules the abrupt drop of s's connection nc after d, unless
// one is scheduled.
func (s *flapSub) arm(nc net.Conn, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nc != nc || s.timer != nil {
		return
	}
	s.timer = time.AfterFunc(d, func() { s.drop(nc) })
}

// drop closes nc, if it is still s's connection, with a reset: the
// client vanishes as on a network failure, without a FIN handshake.
func (s *flapSub) drop(nc net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nc != nc {
		return
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	s.dropped.Store(true)
	_ = nc.Close()
}

// release forgets nc (its stream ended) and its scheduled drop.
func (s *flapSub) release(nc net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = nc.Close()
	if s.nc == nc {
		s.nc = nil
		if s.timer != nil {
			s.timer.Stop()
			s.timer = nil
		}
	}
}

// startFlapping schedules every open connection's first drop, spread
// over the first Up.
func (r *flapRun) startFlapping() {
	r.flapping.Store(true)
	up := r.cfg.Flap.Up
	for _, s := range r.subs {
		s.mu.Lock()
		nc := s.nc
		s.mu.Unlock()
		if nc != nil {
			s.arm(nc, rand.N(up+1))
		}
	}
}

// stopFlapping cancels the drops not yet made; dropped subscribers still
// come back after their pause.
func (r *flapRun) stopFlapping() {
	r.final.Store(true)
	for _, s := range r.subs {
		s.mu.Lock()
		if s.timer != nil && s.timer.Stop() {
			s.timer = nil
		}
		s.mu.Unlock()
	}
}

// publish runs Publishers goroutines per stream kind for Duration; each
// owns the streams whose index it is modulo Publishers and sends to them
// in turn, one send at a time, at its share of the kind's rate. A
// stream's sequence number advances only when a send was answered 200,
// so that each stream's numbers have no holes.
func (r *flapRun) publish(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Duration)
	defer cancel()
	start := time.Now()
	pad := strings.Repeat("x", r.cfg.Payload)
	var wg sync.WaitGroup
	kinds := []struct {
		rate float64
		sent []atomic.Int64
		key  func(j int) (string, sendTarget)
	}{
		{r.cfg.Flap.ChannelRate, r.chanSent, func(j int) (string, sendTarget) {
			ch := r.channelName(j)
			return "c:" + ch, sendTarget{Channels: []string{ch}}
		}},
		{r.cfg.Flap.UserRate, r.userSent, func(j int) (string, sendTarget) {
			u := "u" + strconv.Itoa(j)
			return "u:" + u, sendTarget{UserIDs: []string{u}}
		}},
	}
	for _, kind := range kinds {
		p := min(r.cfg.Publishers, len(kind.sent))
		for g := range p {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var own []int
				for j := g; j < len(kind.sent); j += p {
					own = append(own, j)
				}
				every := time.Duration(float64(time.Second) * float64(p) / kind.rate)
				for n := 0; ; n++ {
					if d := time.Until(start.Add(time.Duration(n) * every)); d > 0 {
						sleepCtx(ctx, d)
					}
					if ctx.Err() != nil {
						return
					}
					j := own[n%len(own)]
					key, to := kind.key(j)
					seq := kind.sent[j].Load()
					req := sendRequest{To: to, Event: r.cfg.Event,
						Data: formatPayload(r.runID, 1, seq, time.Now().UnixNano(), key, []byte(pad))}
					if err := r.send(ctx, req); err != nil {
						if ctx.Err() == nil {
							r.sendErr.Add(1)
							r.note("send: " + err.Error())
						}
						continue
					}
					kind.sent[j].Add(1)
				}
			}()
		}
	}
	wg.Wait()
}

// send posts one message through a random node's API. The send is not
// bound to ctx's end, so that a send the server took is also counted.
func (r *flapRun) send(ctx context.Context, body sendRequest) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	node := r.nodes[rand.N(len(r.nodes))]
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost,
		node+"/api/v1/apps/"+r.cfg.App+"/send", strings.NewReader(string(raw)))
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
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(data)))
	}
	return nil
}

// closeAll ends every connection and waits (bounded) for the
// subscribers' goroutines. It may be called twice.
func (r *flapRun) closeAll() {
	if r.closing.Swap(true) {
		return
	}
	close(r.closed)
	for _, s := range r.subs {
		s.mu.Lock()
		if s.nc != nil {
			_ = s.nc.Close()
		}
		s.mu.Unlock()
	}
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}

// problems lists in words what went wrong: with history in Redis, any
// message missing; with Redis or no history, duplicates and order
// violations (with node-local memory history, a reconnect to another node
// gets an epoch gap, and what that node keeps is replayed from its oldest
// entry, which may repeat what the subscriber had); with any setting,
// misrouted or stray messages, failed sends and timeouts.
func (fr *FlapReport) problems() []string {
	var out []string
	for _, v := range fr.Variants {
		add := func(n int64, what string) {
			if n != 0 {
				out = append(out, fmt.Sprintf("flap %s: %d %s", v.History, n, what))
			}
		}
		if v.History == historyRedis {
			add(v.Expected-v.Unique, "messages missing")
		}
		if v.History != historyMemory {
			add(v.Duplicated, "duplicated")
			add(v.OrderViolations, "out of order")
		}
		add(v.Misrouted, "misrouted")
		add(v.Stray, "stray")
		add(v.SendErrors, "send errors")
		if v.TimedOut {
			out = append(out, fmt.Sprintf("flap %s: timed out", v.History))
		}
	}
	return out
}

// writeTable prints every variant's figures.
func (fr *FlapReport) writeTable(w io.Writer) {
	fmt.Fprintf(w, "flap: %d subscribers on %d nodes, each in one of %d channels and its user stream; up ~%.1fs, down ~%.1fs; %.0f channel and %.0f user sends/s\n",
		fr.Subscribers, fr.Nodes, fr.Channels, fr.UpSecs, fr.DownSecs, fr.ChannelRate, fr.UserRate)
	for _, v := range fr.Variants {
		fmt.Fprintf(w, "history %s:\n", v.History)
		fmt.Fprintf(w, "  sent %d to channels, %d to users in %.1fs (%d errors); %d drops, %d reconnects (resumed %d true, %d false; %d sse-gap), %d other ends, %d refused\n",
			v.ChannelSends, v.UserSends, v.PublishSecs, v.SendErrors, v.Drops, v.Reconnects, v.ResumedTrue, v.ResumedFalse, v.Gaps, v.OtherEnds, v.Refused)
		fmt.Fprintf(w, "  delivery %.3f%% (%d of %d); per subscriber min %.2f%% p1 %.2f%% p50 %.2f%% mean %.2f%%, %d of %d at 100%%\n",
			v.DeliveryPct, v.Unique, v.Expected, v.PerSubscriber.MinPct, v.PerSubscriber.P1Pct, v.PerSubscriber.P50Pct,
			v.PerSubscriber.MeanPct, v.PerSubscriber.Complete, fr.Subscribers)
		fmt.Fprintf(w, "  %d duplicated, %d out of order, %d misrouted, %d stray\n", v.Duplicated, v.OrderViolations, v.Misrouted, v.Stray)
		fmt.Fprintf(w, "  catch-up after reconnect (dial → all sent before it received): p50 %s p99 %s max %s over %d, %d interrupted; connect p50 %s p99 %s\n",
			us(v.CatchUp.P50Us), us(v.CatchUp.P99Us), us(v.CatchUp.MaxUs), v.CatchUp.Count, v.Interrupted, us(v.Connect.P50Us), us(v.Connect.P99Us))
		fmt.Fprint(w, "  cpu/send while publishing:")
		for _, pc := range v.Procs {
			fmt.Fprintf(w, " %s %.1fµs", pc.Name, pc.PerSendUs)
		}
		fmt.Fprintf(w, ", total %.1fµs\n", v.TotalCPUPerSendUs)
		if v.TimedOut {
			fmt.Fprintln(w, "  timed out waiting for the subscribers to catch up")
		}
		writeErrors(w, "  errors", v.Errors)
	}
}
