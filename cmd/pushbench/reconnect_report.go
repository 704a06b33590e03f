package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

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
