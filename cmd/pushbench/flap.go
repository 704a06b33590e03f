package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
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
