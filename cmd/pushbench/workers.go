package main

// Worker mode (Config.Workers): the connections of a run are held by
// several processes of the tool, because one process may open only as many
// descriptors as RLIMIT_NOFILE allows (20 000 on the development machine).
// The tool re-executes itself once per worker with PUSHBENCH_WORKER=1 in
// the environment; a worker reads its part of the configuration as the
// first JSON line on stdin, holds the connections i with i%Workers equal
// to its number, and answers commands (one JSON line each on stdin) with
// JSON lines on stdout:
//
//	{"op":"connect","to":N}  open my connections with i < N → "connected"
//	{"op":"sync","id":K}     flush my counts now              → "synced"
//	{"op":"close"}           close everything, flush, exit    → "bye"
//
// Every 50 ms, and before "synced" and "bye", a worker writes a "d" line
// with what it received since the last one: per phase the distinct,
// correctly routed deliveries per message (sequence number, count, last
// delivery time), the latency histogram's new samples by bucket, and the
// duplicates, misrouted and redelivered counts, plus the connections that
// ended. The worker checks what only it can (duplicates per connection,
// routing against the connection's identity); the coordinator adds the
// counts into its own per-message table, so loss (a message's distinct
// recipients below the connections it addressed), the API's delivered
// counts and the latency quantiles are judged over all workers exactly
// as in one process. A worker also ends when its stdin closes (the
// coordinator died).

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// workerEnv marks a process started as a worker.
const workerEnv = "PUSHBENCH_WORKER"

// workerFlushInterval is how often a worker reports its counts.
const workerFlushInterval = 50 * time.Millisecond

// workerSpec is the first line a worker reads: the run's configuration
// (Nodes resolved), its run id and the worker's number among Count.
type workerSpec struct {
	Cfg   Config `json:"cfg"`
	RunID string `json:"run_id"`
	Index int    `json:"index"`
	Count int    `json:"count"`
}

// workerCmd is a command line from the coordinator.
type workerCmd struct {
	Op string `json:"op"`
	To int    `json:"to,omitempty"`
	ID int64  `json:"id,omitempty"`
}

// workerMsg is a line from a worker. Counters are deltas since the
// previous "d" line; Errors is the worker's whole table.
type workerMsg struct {
	T string `json:"t"`
	// connected: the connections of this step that failed (global
	// indexes), how many connected, and the setup latency histogram.
	Failed    []int   `json:"failed,omitempty"`
	Connected int64   `json:"connected,omitempty"`
	ConnLat   []int64 `json:"conn_lat,omitempty"`
	ConnMax   int64   `json:"conn_max,omitempty"`
	// d
	Phases         []workerPhase  `json:"phases,omitempty"`
	Gone           []int          `json:"gone,omitempty"`
	Dropped        int64          `json:"dropped,omitempty"`
	ClosedByServer int64          `json:"closed,omitempty"`
	Stray          int64          `json:"stray,omitempty"`
	OtherEvents    int64          `json:"other,omitempty"`
	Errors         map[string]int `json:"errors,omitempty"`
	// synced
	ID int64 `json:"id,omitempty"`
	// fatal
	Err string `json:"err,omitempty"`
}

// workerPhase is one phase's part of a "d" line.
type workerPhase struct {
	ID int `json:"id"`
	// Msgs are triples: sequence number, new distinct deliveries, last
	// delivery (unix nanos).
	Msgs []int64 `json:"m,omitempty"`
	// Lat are pairs: latency histogram bucket, new samples.
	Lat       []int64 `json:"lat,omitempty"`
	LatMax    int64   `json:"lat_max,omitempty"`
	Dup       int64   `json:"dup,omitempty"`
	DupResent int64   `json:"dup_resent,omitempty"`
	Misrouted int64   `json:"mis,omitempty"`
	Resent    int64   `json:"resent,omitempty"`
}

// ---- worker side ----

// workerMain is the whole life of a worker process.
func workerMain(in io.Reader, out io.Writer) int {
	br := bufio.NewReaderSize(in, 1<<16)
	bw := bufio.NewWriterSize(out, 1<<16)
	w := &workerRun{out: bw, enc: json.NewEncoder(bw)}
	line, err := br.ReadBytes('\n')
	var spec workerSpec
	if err == nil {
		err = json.Unmarshal(line, &spec)
	}
	if err != nil {
		w.write(workerMsg{T: "fatal", Err: "spec: " + err.Error()})
		return 1
	}
	if _, err := raiseFileLimit(); err != nil {
		fmt.Fprintln(os.Stderr, "pushbench worker:", err)
	}
	cfg := spec.Cfg
	cfg.Log = io.Discard
	b := &bench{cfg: cfg, runID: spec.RunID, connErrors: map[string]int{}, worker: true}
	for _, s := range cfg.SrcIPs {
		if ip := net.ParseIP(s); ip != nil {
			b.srcIPs = append(b.srcIPs, ip)
		}
	}
	connNodes, err := nodeIndexes(cfg.ConnNodes, len(cfg.Nodes))
	if err != nil || spec.Count <= 0 {
		w.write(workerMsg{T: "fatal", Err: fmt.Sprintf("spec: nodes %v, count %d", err, spec.Count)})
		return 1
	}
	for i := spec.Index; i < cfg.Conns; i += spec.Count {
		b.clients = append(b.clients, &client{
			idx:      i,
			node:     connNodes[i%len(connNodes)],
			user:     fmt.Sprintf("u%d", i%cfg.Users),
			tenant:   fmt.Sprintf("t%d", i%cfg.Tenants),
			channels: cfg.connChannels(i),
		})
	}
	w.b = b
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		t := time.NewTicker(workerFlushInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				w.flush()
			case <-ctx.Done():
				return
			}
		}
	}()
	next := 0 // first local client not yet started
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			b.closeAll(10 * time.Second)
			return 0
		}
		var c workerCmd
		if err := json.Unmarshal(line, &c); err != nil {
			w.write(workerMsg{T: "fatal", Err: "command: " + err.Error()})
			return 1
		}
		switch c.Op {
		case "connect":
			hi := sort.Search(len(b.clients), func(i int) bool { return b.clients[i].idx >= c.To })
			hi = max(hi, next)
			before := b.connected.Load()
			b.connectRange(ctx, next, hi)
			m := workerMsg{T: "connected", Connected: b.connected.Load() - before}
			for _, cl := range b.clients[next:hi] {
				if cl.state.Load() != stateConnected {
					m.Failed = append(m.Failed, cl.idx)
				}
			}
			m.ConnLat, m.ConnMax = w.connLat.delta(&b.connectLatency)
			next = hi
			w.flush()
			w.write(m)
		case "sync":
			w.flush()
			w.write(workerMsg{T: "synced", ID: c.ID})
		case "close":
			b.closeAll(10 * time.Second)
			cancel()
			w.flush()
			w.write(workerMsg{T: "bye"})
			return 0
		default:
			w.write(workerMsg{T: "fatal", Err: "unknown command " + c.Op})
			return 1
		}
	}
}

// workerRun is a worker's reporting state.
type workerRun struct {
	b   *bench
	mu  sync.Mutex // writes and flush state
	out *bufio.Writer
	enc *json.Encoder

	connLat histSnap
	phases  [64]*phaseSnap
	gone    map[int]bool
	last    struct{ dropped, closed, stray, other int64 }
}

// phaseSnap is what a worker has reported of one phase so far.
type phaseSnap struct {
	reported                       []int32
	lat                            histSnap
	dup, dupResent, misrouted, res int64
}

// histSnap is the part of a histogram already reported.
type histSnap struct {
	buckets []int64
}

// delta returns h's new samples since the previous call as bucket, count
// pairs, and h's maximum.
func (s *histSnap) delta(h *hist) ([]int64, int64) {
	if s.buckets == nil {
		s.buckets = make([]int64, histBuckets)
	}
	var out []int64
	for i := range h.buckets {
		if v := h.buckets[i].Load(); v != s.buckets[i] {
			out = append(out, int64(i), v-s.buckets[i])
			s.buckets[i] = v
		}
	}
	return out, h.max.Load()
}

func (w *workerRun) write(m workerMsg) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writeLocked(m)
}

func (w *workerRun) writeLocked(m workerMsg) {
	_ = w.enc.Encode(m)
	_ = w.out.Flush()
}

// flush writes a "d" line with everything received since the last one
// (nothing when nothing changed).
func (w *workerRun) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := w.b
	m := workerMsg{T: "d"}
	changed := false
	for id := range b.phases {
		ph := b.phases[id].Load()
		if ph == nil {
			continue
		}
		s := w.phases[id]
		if s == nil {
			s = &phaseSnap{}
			w.phases[id] = s
		}
		p := workerPhase{ID: id}
		n := ph.nextSeq.Load()
		for int64(len(s.reported)) < n {
			s.reported = append(s.reported, 0)
		}
		for seq := int64(0); seq < n; seq++ {
			ms := ph.lookup(seq)
			if ms == nil {
				continue
			}
			if r := ms.received.Load(); r != s.reported[seq] {
				p.Msgs = append(p.Msgs, seq, int64(r-s.reported[seq]), ms.lastAt.Load())
				s.reported[seq] = r
			}
		}
		p.Lat, p.LatMax = s.lat.delta(&ph.latency)
		p.Dup, s.dup = ph.duplicated.Load()-s.dup, ph.duplicated.Load()
		p.DupResent, s.dupResent = ph.dupResent.Load()-s.dupResent, ph.dupResent.Load()
		p.Misrouted, s.misrouted = ph.misrouted.Load()-s.misrouted, ph.misrouted.Load()
		p.Resent, s.res = ph.resent.Load()-s.res, ph.resent.Load()
		if len(p.Msgs) > 0 || len(p.Lat) > 0 || p.Dup != 0 || p.DupResent != 0 || p.Misrouted != 0 || p.Resent != 0 {
			m.Phases = append(m.Phases, p)
			changed = true
		}
	}
	if w.gone == nil {
		w.gone = map[int]bool{}
	}
	for _, c := range b.clients {
		if c.state.Load() == stateGone && !w.gone[c.idx] {
			w.gone[c.idx] = true
			m.Gone = append(m.Gone, c.idx)
		}
	}
	d, cl, st, ot := b.dropped.Load(), b.closedByServer.Load(), b.stray.Load(), b.otherEvents.Load()
	m.Dropped, m.ClosedByServer, m.Stray, m.OtherEvents = d-w.last.dropped, cl-w.last.closed, st-w.last.stray, ot-w.last.other
	w.last.dropped, w.last.closed, w.last.stray, w.last.other = d, cl, st, ot
	if len(m.Gone) > 0 || m.Dropped != 0 || m.ClosedByServer != 0 || m.Stray != 0 || m.OtherEvents != 0 {
		changed = true
	}
	if errs := b.connErrorList(); len(errs) > 0 {
		m.Errors = errs
		changed = true
	}
	if changed {
		w.writeLocked(m)
	}
}

// workerPhase returns the worker's phase id, made on its first delivery.
func (b *bench) workerPhase(id int) *phase {
	if ph := b.phases[id].Load(); ph != nil {
		return ph
	}
	b.phases[id].CompareAndSwap(nil, newPhase(id, "", b.cfg.QoS))
	return b.phases[id].Load()
}

// ---- coordinator side ----

// workerProc is one worker process seen from the coordinator.
type workerProc struct {
	idx     int
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	mu      sync.Mutex // stdin writes
	replies chan workerMsg
	exited  chan struct{}
	logPath string
	errs    atomic.Pointer[map[string]int]
}

// startWorkers starts cfg.Workers copies of this executable as workers of
// b and hands each its part of the run.
func (b *bench) startWorkers() error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("workers: %w", err)
	}
	cfg := b.cfg
	cfg.Log = nil
	for k := range cfg.Workers {
		logFile, err := os.CreateTemp(cfg.SpawnLogDir, "pushbench-worker-*.log")
		if err != nil {
			return fmt.Errorf("workers: log file: %w", err)
		}
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), workerEnv+"=1")
		cmd.Stderr = logFile
		stdin, err := cmd.StdinPipe()
		if err != nil {
			_ = logFile.Close()
			return fmt.Errorf("workers: %w", err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			_ = logFile.Close()
			return fmt.Errorf("workers: %w", err)
		}
		if err := cmd.Start(); err != nil {
			_ = logFile.Close()
			return fmt.Errorf("workers: start %s: %w", exe, err)
		}
		w := &workerProc{idx: k, cmd: cmd, stdin: stdin, replies: make(chan workerMsg, 16),
			exited: make(chan struct{}), logPath: logFile.Name()}
		b.workers = append(b.workers, w)
		go func() {
			defer close(w.exited)
			defer logFile.Close()
			br := bufio.NewReaderSize(stdout, 1<<20)
			for {
				line, err := br.ReadBytes('\n')
				if len(line) > 0 {
					var m workerMsg
					if jerr := json.Unmarshal(line, &m); jerr != nil {
						b.noteConnError("worker: bad line: " + jerr.Error())
					} else if m.T == "d" {
						b.applyWorker(w, m)
					} else {
						w.replies <- m
					}
				}
				if err != nil {
					_ = cmd.Wait()
					return
				}
			}
		}()
		spec := workerSpec{Cfg: cfg, RunID: b.runID, Index: k, Count: cfg.Workers}
		if err := w.send(spec); err != nil {
			return fmt.Errorf("workers: worker %d: %w", k+1, err)
		}
	}
	return nil
}

func (w *workerProc) send(v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err = w.stdin.Write(append(raw, '\n'))
	return err
}

// await returns the worker's next reply, which must be of type t.
func (w *workerProc) await(t string, timeout time.Duration) (workerMsg, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	check := func(m workerMsg) (workerMsg, error) {
		if m.T == "fatal" {
			return m, fmt.Errorf("worker %d: %s", w.idx+1, m.Err)
		}
		if m.T != t {
			return m, fmt.Errorf("worker %d: got %q, want %q", w.idx+1, m.T, t)
		}
		return m, nil
	}
	select {
	case m := <-w.replies:
		return check(m)
	case <-w.exited:
		// Its last words were read before the end of its output.
		select {
		case m := <-w.replies:
			return check(m)
		default:
		}
		return workerMsg{}, fmt.Errorf("worker %d exited (log %s)", w.idx+1, w.logPath)
	case <-timer.C:
		return workerMsg{}, fmt.Errorf("worker %d: no %q after %v", w.idx+1, t, timeout)
	}
}

// connectWorkers has every worker open its connections below to and
// waits for them; it returns the wall time.
func (b *bench) connectWorkers(from, to int) time.Duration {
	start := time.Now()
	for _, w := range b.workers {
		if err := w.send(workerCmd{Op: "connect", To: to}); err != nil {
			b.noteConnError("worker: " + err.Error())
		}
	}
	for _, w := range b.workers {
		m, err := w.await("connected", b.cfg.Timeout+30*time.Second)
		failed := map[int]bool{}
		for _, i := range m.Failed {
			failed[i] = true
		}
		for i := from; i < to; i++ {
			if i%len(b.workers) != w.idx {
				continue
			}
			if err != nil || failed[i] {
				b.clients[i].state.Store(stateFailed)
			} else {
				b.clients[i].state.Store(stateConnected)
			}
		}
		if err != nil {
			b.noteConnError(err.Error())
			continue
		}
		b.connected.Add(m.Connected)
		b.failed.Add(int64(len(m.Failed)))
		b.connectLatency.merge(m.ConnLat, m.ConnMax)
	}
	return time.Since(start)
}

// syncWorkers makes every worker report what it received so far and waits
// until the coordinator has counted it.
func (b *bench) syncWorkers() {
	id := b.syncID.Add(1)
	for _, w := range b.workers {
		_ = w.send(workerCmd{Op: "sync", ID: id})
	}
	for _, w := range b.workers {
		if _, err := w.await("synced", 30*time.Second); err != nil {
			b.noteConnError(err.Error())
		}
	}
}

// closeWorkers closes every worker's connections and waits (bounded) for
// the workers to exit.
func (b *bench) closeWorkers(timeout time.Duration) {
	if b.workersClosed.Swap(true) {
		return
	}
	for _, w := range b.workers {
		_ = w.send(workerCmd{Op: "close"})
	}
	for _, w := range b.workers {
		if _, err := w.await("bye", timeout); err != nil && !errors.Is(err, io.EOF) {
			b.noteConnError(err.Error())
		}
		_ = w.stdin.Close()
		select {
		case <-w.exited:
		case <-time.After(timeout):
			_ = w.cmd.Process.Kill()
			<-w.exited
		}
	}
}

// workerCPU is the CPU time of every worker process.
func (b *bench) workerCPU() time.Duration {
	var sum time.Duration
	for _, w := range b.workers {
		if d, err := readCPU(w.cmd.Process.Pid); err == nil {
			sum += d
		}
	}
	return sum
}

// applyWorker adds a worker's "d" line to the run's counts.
func (b *bench) applyWorker(w *workerProc, m workerMsg) {
	for _, p := range m.Phases {
		ph := b.phases[p.ID].Load()
		if ph == nil {
			for j := 1; j < len(p.Msgs); j += 3 {
				b.stray.Add(p.Msgs[j])
			}
			continue
		}
		for j := 0; j+2 < len(p.Msgs); j += 3 {
			seq, n, last := p.Msgs[j], p.Msgs[j+1], p.Msgs[j+2]
			ms := ph.lookup(seq)
			if ms == nil || ms.expected.Load() < 0 {
				b.stray.Add(n)
				continue
			}
			ph.unique.Add(n)
			atomicMax(&ph.lastDelivery, last)
			atomicMax(&ms.lastAt, last)
			exp := ms.expected.Load()
			if r := ms.received.Add(int32(n)); r >= exp && r-int32(n) < exp {
				ph.completion.Record(time.Duration(ms.lastAt.Load() - ms.sentAt.Load()))
			}
		}
		ph.latency.merge(p.Lat, p.LatMax)
		ph.duplicated.Add(p.Dup)
		ph.dupResent.Add(p.DupResent)
		ph.misrouted.Add(p.Misrouted)
		ph.resent.Add(p.Resent)
	}
	for _, i := range m.Gone {
		if i >= 0 && i < len(b.clients) {
			b.clients[i].state.Store(stateGone)
		}
	}
	b.dropped.Add(m.Dropped)
	b.closedByServer.Add(m.ClosedByServer)
	b.stray.Add(m.Stray)
	b.otherEvents.Add(m.OtherEvents)
	if m.Errors != nil {
		errs := m.Errors
		w.errs.Store(&errs)
	}
}

// merge adds bucket, count pairs and a maximum (from histSnap.delta).
func (h *hist) merge(pairs []int64, maxV int64) {
	var n int64
	for j := 0; j+1 < len(pairs); j += 2 {
		if i := pairs[j]; i >= 0 && i < histBuckets {
			h.buckets[i].Add(pairs[j+1])
			n += pairs[j+1]
		}
	}
	h.count.Add(n)
	if n > 0 {
		atomicMax(&h.max, maxV)
	}
}
