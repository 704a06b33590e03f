package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// Report is the outcome of one run; it is printed as a table and written
// as JSON.
type Report struct {
	Nodes      []string `json:"nodes"`
	PIDs       []int    `json:"pids"`
	Conns      int      `json:"conns"`
	Users      int      `json:"users"`
	Tenants    int      `json:"tenants"`
	Publishers int      `json:"publishers"`
	Rate       float64  `json:"rate"`
	QoS        bool     `json:"qos"`
	Ack        bool     `json:"ack"`
	Payload    int      `json:"payload"`
	SrcIPs     []string `json:"src_ips,omitempty"`
	FileLimit  uint64   `json:"file_limit"`
	// Workers is the number of worker processes that held the connections
	// (0: this process).
	Workers int `json:"workers,omitempty"`
	// Single is the run of the same phases on one node (Config.Single),
	// made first.
	Single *Report `json:"single,omitempty"`
	// ServerLogs are the output files of spawned processes.
	ServerLogs []string `json:"server_logs,omitempty"`
	// Procs are the processes whose CPU each phase reports one by one: the
	// nodes (node1, node2, … in the order of Nodes) and a spawned redis.
	Procs []Proc `json:"procs,omitempty"`
	// Floor is the run of the same phases against the kernel floor
	// (refserver's epoll design), made first; nil without Config.Floor.
	Floor *Report `json:"floor,omitempty"`
	// MemoryFloorRatio is Memory.BytesPerConn over the floor's.
	MemoryFloorRatio float64 `json:"memory_floor_ratio,omitempty"`

	Connect ConnectReport  `json:"connect"`
	Memory  MemoryReport   `json:"memory"`
	Phases  []PhaseReport  `json:"phases"`
	Conn    ConnLifeReport `json:"connections_after"`
	// Reconnect is the mass-reconnect scenario's outcome (-reconnect).
	Reconnect *ReconnectReport `json:"reconnect,omitempty"`
	// Flap is the flap scenario's outcome (-flap).
	Flap *FlapReport `json:"flap,omitempty"`
	// Warnings are problems that do not invalidate the figures.
	Warnings []string `json:"warnings,omitempty"`
}

// ConnectReport describes connection setup.
type ConnectReport struct {
	Attempted  int     `json:"attempted"`
	Connected  int64   `json:"connected"`
	Failed     int64   `json:"failed"`
	Seconds    float64 `json:"seconds"`
	RatePerSec float64 `json:"rate_per_sec"`
	Latency    Summary `json:"latency"`
}

// MemoryReport describes server memory per idle connection.
type MemoryReport struct {
	// Measured is false without server pids.
	Measured        bool      `json:"measured"`
	BaselineRSSKB   int64     `json:"baseline_rss_kb"`
	IdleRSSKB       int64     `json:"idle_rss_kb"`
	BytesPerConn    float64   `json:"bytes_per_conn"`
	SettleSeconds   float64   `json:"settle_seconds"`
	Steps           []RSSStep `json:"steps,omitempty"`
	ServerCPUSecond float64   `json:"server_cpu_seconds_connect"`
	// IdleCPUPercent is the servers' CPU use with all connections open and
	// idle (100 = one core), read over the last settle period.
	IdleCPUPercent float64 `json:"idle_cpu_percent"`
	// IdleCPUKnown is false when the settle period was too short to read it.
	IdleCPUKnown bool `json:"idle_cpu_known"`
	// Nodes is each node's memory after the last step (several nodes).
	Nodes []NodeMemory `json:"nodes,omitempty"`
	// IdlePublishesPerSec is the spawned redis-servers' PUBLISH and
	// SPUBLISH calls per second while idle (the nodes' probes).
	IdlePublishesPerSec float64 `json:"idle_publishes_per_sec,omitempty"`
}

// RSSStep is a memory reading after Conns connections were open and idle.
type RSSStep struct {
	Conns        int64   `json:"conns"`
	RSSKB        int64   `json:"rss_kb"`
	BytesPerConn float64 `json:"bytes_per_conn"`
	// MarginalBytesPerConn is the growth since the previous step divided by
	// the connections added.
	MarginalBytesPerConn float64 `json:"marginal_bytes_per_conn"`
	// Nodes is each node's memory at this step (several nodes).
	Nodes []NodeMemory `json:"nodes,omitempty"`
}

// PhaseReport is one mode's publishing outcome.
type PhaseReport struct {
	Mode       string `json:"mode"`
	QoS        bool   `json:"qos"`
	Recipients int    `json:"recipients"` // connected connections at the start

	Sent        int64   `json:"sent"`
	SendErrors  int64   `json:"send_errors"`
	PublishSecs float64 `json:"publish_seconds"`
	SendsPerSec float64 `json:"sends_per_sec"`

	Expected   int64 `json:"expected"`
	Delivered  int64 `json:"delivered"` // distinct, correctly routed
	Lost       int64 `json:"lost"`
	Duplicated int64 `json:"duplicated"`
	Misrouted  int64 `json:"misrouted"`
	// Resent counts deliveries marked as QoS redeliveries (":resend");
	// DupResent those of them that were duplicates. At-least-once allows
	// them: a QoS phase fails only on duplicates that are not redeliveries.
	Resent           int64   `json:"resent"`
	DupResent        int64   `json:"duplicated_resent"`
	DeliverySecs     float64 `json:"delivery_seconds"`
	DeliveriesPerSec float64 `json:"deliveries_per_sec"`

	MessagesComplete   int64 `json:"messages_complete"`
	MessagesIncomplete int64 `json:"messages_incomplete"`
	// APIDelivered sums the API's "delivered"; APIMismatches counts messages
	// whose "delivered" differs from the number of expected recipients.
	APIDelivered  int64 `json:"api_delivered"`
	APIMismatches int64 `json:"api_mismatches"`

	Latency    Summary `json:"latency"`
	Completion Summary `json:"completion"`
	APICall    Summary `json:"api_call"`

	ServerCPUSecs       float64 `json:"server_cpu_seconds"`
	ServerCPUPerDelivUs float64 `json:"server_cpu_per_delivery_us"`
	ServerCPUPerSendUs  float64 `json:"server_cpu_per_send_us"`
	// The Net figures subtract the idle CPU use over the phase's duration.
	ServerCPUNetSecs       float64 `json:"server_cpu_net_seconds"`
	ServerCPUNetPerDelivUs float64 `json:"server_cpu_net_per_delivery_us"`
	ServerCPUNetPerSendUs  float64 `json:"server_cpu_net_per_send_us"`
	ToolCPUSecs            float64 `json:"tool_cpu_seconds"`
	// Procs is the CPU of each of Report.Procs over the phase, and
	// TotalCPUPerSendUs their sum per send (the nodes and redis-server).
	Procs             []ProcCPU `json:"procs,omitempty"`
	TotalCPUPerSendUs float64   `json:"total_cpu_per_send_us,omitempty"`
	// The Floor figures are this phase's CPU per delivery and per send over
	// the floor's in the same phase (the total with redis for per send).
	FloorCPUPerDelivRatio float64 `json:"floor_cpu_per_delivery_ratio,omitempty"`
	FloorCPUPerSendRatio  float64 `json:"floor_cpu_per_send_ratio,omitempty"`
	TimedOut              bool    `json:"timed_out"`
	// NodesPerSend is the mean number of nodes holding a connection a send
	// addressed. RedisPublishes counts the PUBLISH and SPUBLISH calls of
	// the spawned redis-server masters over the phase, per send, and per
	// send without the idle rate (probes).
	NodesPerSend             float64 `json:"nodes_per_send,omitempty"`
	RedisPublishes           int64   `json:"redis_publishes,omitempty"`
	RedisPublishesPerSend    float64 `json:"redis_publishes_per_send,omitempty"`
	RedisPublishesNetPerSend float64 `json:"redis_publishes_net_per_send,omitempty"`
	// The Single figures are this phase's server CPU per delivery (summed
	// over the nodes), and the same without idle CPU, over the
	// single-node run's.
	SingleCPUPerDelivRatio    float64 `json:"single_cpu_per_delivery_ratio,omitempty"`
	SingleNetCPUPerDelivRatio float64 `json:"single_net_cpu_per_delivery_ratio,omitempty"`

	Errors map[string]int `json:"errors,omitempty"`
}

// Proc is a process whose CPU is reported apart.
type Proc struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
}

// ProcCPU is one process's CPU over a phase.
type ProcCPU struct {
	Name      string  `json:"name"`
	CPUSecs   float64 `json:"cpu_seconds"`
	PerSendUs float64 `json:"per_send_us"`
}

// compareWithFloor fills the floor ratios from r.Floor, phase by phase.
func (r *Report) compareWithFloor() {
	if r.Floor == nil {
		return
	}
	if f := r.Floor.Memory.BytesPerConn; f > 0 {
		r.MemoryFloorRatio = r.Memory.BytesPerConn / f
	}
	for i := range r.Phases {
		if i >= len(r.Floor.Phases) {
			break
		}
		p, f := &r.Phases[i], r.Floor.Phases[i]
		if f.ServerCPUPerDelivUs > 0 {
			p.FloorCPUPerDelivRatio = p.ServerCPUPerDelivUs / f.ServerCPUPerDelivUs
		}
		if f.ServerCPUPerSendUs > 0 {
			p.FloorCPUPerSendRatio = max(p.TotalCPUPerSendUs, p.ServerCPUPerSendUs) / f.ServerCPUPerSendUs
		}
	}
}

// ConnLifeReport is what happened to the connections during the run.
type ConnLifeReport struct {
	Dropped        int64          `json:"dropped"`
	ClosedByServer int64          `json:"closed_by_server"`
	Stray          int64          `json:"stray_messages"`
	OtherEvents    int64          `json:"other_events"`
	Acked          int64          `json:"acked"`
	AckFailures    int64          `json:"ack_failures"`
	Errors         map[string]int `json:"errors,omitempty"`
}

// OK reports whether every connection was set up and every message reached
// exactly its recipients, once.
func (r Report) OK() bool {
	if r.Reconnect != nil && len(r.Reconnect.problems()) > 0 {
		return false
	}
	if r.Flap != nil && len(r.Flap.problems()) > 0 {
		return false
	}
	if r.Single != nil && !r.Single.OK() {
		return false
	}
	if r.Connect.Failed > 0 || r.Connect.Connected != int64(r.Connect.Attempted) {
		return false
	}
	if r.Conn.Dropped > 0 || r.Conn.ClosedByServer > 0 || r.Conn.Stray > 0 || r.Conn.AckFailures > 0 {
		return false
	}
	for _, p := range r.Phases {
		if p.Lost != 0 || p.unexpectedDuplicates() != 0 || p.Misrouted != 0 || p.SendErrors != 0 || p.APIMismatches != 0 || p.TimedOut {
			return false
		}
	}
	return true
}

// unexpectedDuplicates are the duplicates the phase's guarantee forbids:
// all of them, or for QoS those that are not marked as redeliveries.
func (p PhaseReport) unexpectedDuplicates() int64 {
	if p.QoS {
		return p.Duplicated - p.DupResent
	}
	return p.Duplicated
}

// Problems lists in words why OK is false.
func (r Report) Problems() []string {
	var out []string
	if r.Connect.Failed > 0 || r.Connect.Connected != int64(r.Connect.Attempted) {
		out = append(out, fmt.Sprintf("connected %d of %d", r.Connect.Connected, r.Connect.Attempted))
	}
	if r.Conn.Dropped > 0 {
		out = append(out, fmt.Sprintf("%d connections dropped", r.Conn.Dropped))
	}
	if r.Conn.ClosedByServer > 0 {
		out = append(out, fmt.Sprintf("%d connections closed by the server", r.Conn.ClosedByServer))
	}
	if r.Conn.Stray > 0 {
		out = append(out, fmt.Sprintf("%d stray messages", r.Conn.Stray))
	}
	if r.Conn.AckFailures > 0 {
		out = append(out, fmt.Sprintf("%d acknowledgements failed", r.Conn.AckFailures))
	}
	for _, p := range r.Phases {
		name := p.Mode
		if p.QoS {
			name += "/qos"
		}
		add := func(n int64, what string) {
			if n != 0 {
				out = append(out, fmt.Sprintf("%s: %d %s", name, n, what))
			}
		}
		add(p.Lost, "lost")
		add(p.unexpectedDuplicates(), "duplicated")
		add(p.Misrouted, "misrouted")
		add(p.SendErrors, "send errors")
		add(p.APIMismatches, "API delivered mismatches")
		if p.TimedOut {
			out = append(out, name+": timed out")
		}
	}
	if r.Reconnect != nil {
		out = append(out, r.Reconnect.problems()...)
	}
	if r.Flap != nil {
		out = append(out, r.Flap.problems()...)
	}
	if r.Single != nil {
		for _, p := range r.Single.Problems() {
			out = append(out, "single node: "+p)
		}
	}
	return out
}

// WriteTable prints the report for people.
func (r Report) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "nodes\t%s\tpids %v\n", strings.Join(r.Nodes, ","), r.PIDs)
	fmt.Fprintf(tw, "conns\t%d\tusers %d, tenants %d, publishers %d, rate %s, qos %v, ack %v, payload %d B, src ips %d, fd limit %d\n",
		r.Conns, r.Users, r.Tenants, r.Publishers, rateString(r.Rate), r.QoS, r.Ack, r.Payload, max(len(r.SrcIPs), 1), r.FileLimit)
	c := r.Connect
	fmt.Fprintf(tw, "connect\t%d/%d in %.2fs\t%.0f conn/s, setup p50 %s p99 %s max %s\n",
		c.Connected, c.Attempted, c.Seconds, c.RatePerSec, us(c.Latency.P50Us), us(c.Latency.P99Us), us(c.Latency.MaxUs))
	m := r.Memory
	if m.Measured {
		fmt.Fprintf(tw, "idle memory\t%.0f B/conn\tRSS %d → %d kB after %.1fs idle; server CPU while connecting %.2fs, idle %.1f%% of a core\n",
			m.BytesPerConn, m.BaselineRSSKB, m.IdleRSSKB, m.SettleSeconds, m.ServerCPUSecond, m.IdleCPUPercent)
		for _, s := range m.Steps {
			fmt.Fprintf(tw, "  at %d\t%.0f B/conn\tRSS %d kB, marginal %.0f B/conn\n", s.Conns, s.BytesPerConn, s.RSSKB, s.MarginalBytesPerConn)
		}
	} else {
		fmt.Fprintf(tw, "idle memory\tnot measured\t(no -pids / -spawn)\n")
	}
	tw.Flush()
	fmt.Fprintln(w)
	if len(r.Phases) > 0 {
		r.writePhases(w)
		r.writeProcs(w)
	}
	r.writeScale(w)
	if r.Reconnect != nil {
		r.Reconnect.writeTable(w, r.Procs)
	}
	if r.Flap != nil {
		r.Flap.writeTable(w)
	}
	l := r.Conn
	fmt.Fprintf(w, "\nconnections: %d dropped, %d closed by server, %d stray messages, %d other events, %d acked (%d ack failures)\n",
		l.Dropped, l.ClosedByServer, l.Stray, l.OtherEvents, l.Acked, l.AckFailures)
	writeErrors(w, "connection errors", l.Errors)
	for _, p := range r.Phases {
		writeErrors(w, p.Mode+" errors", p.Errors)
	}
	for _, s := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", s)
	}
	if r.OK() {
		fmt.Fprintln(w, "result: OK (no loss, duplicate or misrouted delivery)")
	} else {
		fmt.Fprintf(w, "result: FAILED: %s\n", strings.Join(r.Problems(), "; "))
	}
}

func writeErrors(w io.Writer, title string, errs map[string]int) {
	if len(errs) == 0 {
		return
	}
	keys := make([]string, 0, len(errs))
	for k := range errs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(w, "%s:\n", title)
	for _, k := range keys {
		fmt.Fprintf(w, "  %6d × %s\n", errs[k], k)
	}
}

func rateString(r float64) string {
	if r <= 0 {
		return "max"
	}
	return fmt.Sprintf("%.0f/s", r)
}

func us(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fs", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fms", v/1e3)
	default:
		return fmt.Sprintf("%.0fµs", v)
	}
}

func cpu(v float64, measured bool) string {
	if !measured {
		return "-"
	}
	return fmt.Sprintf("%.2fµs", v)
}

func (r Report) writePhases(w io.Writer) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tsent\tsend/s\texpected\tdelivered\tdeliv/s\tlost\tdup\tmisrouted\tresent\tcomplete\tapi≠\tlat p50\tlat p99\tlat max\tcompl p99\tapi p50\tapi p99\tsrv cpu/deliv\tsrv cpu/send\tnet/deliv\tnet/send\ttool cpu\t")
	for _, p := range r.Phases {
		name := p.Mode
		if p.QoS {
			name += "/qos"
		}
		if p.TimedOut {
			name += " (timeout)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%d\t%d\t%.0f\t%d\t%s\t%d\t%d\t%d/%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2fs\t\n",
			name, p.Sent, p.SendsPerSec, p.Expected, p.Delivered, p.DeliveriesPerSec, p.Lost, dupString(p), p.Misrouted, p.Resent,
			p.MessagesComplete, p.MessagesComplete+p.MessagesIncomplete, p.APIMismatches,
			us(p.Latency.P50Us), us(p.Latency.P99Us), us(p.Latency.MaxUs), us(p.Completion.P99Us),
			us(p.APICall.P50Us), us(p.APICall.P99Us),
			cpu(p.ServerCPUPerDelivUs, r.Memory.Measured), cpu(p.ServerCPUPerSendUs, r.Memory.Measured),
			cpu(p.ServerCPUNetPerDelivUs, r.Memory.IdleCPUKnown), cpu(p.ServerCPUNetPerSendUs, r.Memory.IdleCPUKnown),
			p.ToolCPUSecs)
	}
	tw.Flush()
}

// writeProcs prints each process's CPU per send, the total, and the
// ratios to the floor.
func (r Report) writeProcs(w io.Writer) {
	for _, p := range r.Phases {
		if len(p.Procs) == 0 && r.Floor == nil {
			continue
		}
		fmt.Fprintf(w, "%s cpu/send:", p.Mode)
		for _, pc := range p.Procs {
			fmt.Fprintf(w, " %s %.1fµs", pc.Name, pc.PerSendUs)
		}
		fmt.Fprintf(w, ", total %.1fµs", p.TotalCPUPerSendUs)
		if r.Floor != nil {
			fmt.Fprintf(w, "; × floor: cpu/deliv %.2f, cpu/send %.2f", p.FloorCPUPerDelivRatio, p.FloorCPUPerSendRatio)
		}
		fmt.Fprintln(w)
	}
	if r.Floor != nil {
		fmt.Fprintf(w, "floor (refserver -design=epoll, same phases, run first): idle %.0f B/conn (× %.2f)", r.Floor.Memory.BytesPerConn, r.MemoryFloorRatio)
		for _, f := range r.Floor.Phases {
			fmt.Fprintf(w, "; %s %.2fµs/deliv %.2fµs/send, lost %d", f.Mode, f.ServerCPUPerDelivUs, f.ServerCPUPerSendUs, f.Lost)
		}
		fmt.Fprintln(w)
	}
}

func dupString(p PhaseReport) string {
	if p.DupResent > 0 {
		return fmt.Sprintf("%d (%d resend)", p.Duplicated, p.DupResent)
	}
	return fmt.Sprint(p.Duplicated)
}
