package main

// The figures of a run over several nodes: memory per node, nodes holding
// each send's target, PUBLISH calls counted by the spawned redis-servers,
// and the comparison with the same phases on a single node (-single).

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// NodeMemory is one node's memory after its connections were open and
// idle.
type NodeMemory struct {
	Name         string  `json:"name"`
	Conns        int64   `json:"conns"`
	RSSKB        int64   `json:"rss_kb"`
	BytesPerConn float64 `json:"bytes_per_conn"`
}

// toolCPU is the CPU time of this process and of its workers.
func (b *bench) toolCPU() time.Duration {
	self, _ := readCPU(os.Getpid())
	return self + b.workerCPU()
}

// readEachRSS reads VmRSS of every pid (0 when unreadable).
func readEachRSS(pids []int) []int64 {
	out := make([]int64, len(pids))
	for i, pid := range pids {
		out[i], _ = readRSS(pid)
	}
	return out
}

// nodeMemory is each node's growth from base to now over the connections
// it holds.
func (b *bench) nodeMemory(base, now []int64) []NodeMemory {
	conns := make([]int64, len(b.cfg.Nodes))
	for _, c := range b.clients {
		if c.state.Load() == stateConnected && c.node < len(conns) {
			conns[c.node]++
		}
	}
	out := make([]NodeMemory, 0, len(now))
	for i := range now {
		m := NodeMemory{Name: fmt.Sprintf("node%d", i+1), RSSKB: now[i] / 1024}
		if i < len(conns) {
			m.Conns = conns[i]
		}
		if m.Conns > 0 && i < len(base) {
			m.BytesPerConn = float64(now[i]-base[i]) / float64(m.Conns)
		}
		out = append(out, m)
	}
	return out
}

// nodesPerSend is the mean number of nodes holding a connection the
// phase's accepted sends addressed — the pods a send must reach.
func (b *bench) nodesPerSend(ph *phase, e expectations) float64 {
	held := map[string]map[int]bool{}
	add := func(key string, node int) {
		if held[key] == nil {
			held[key] = map[int]bool{}
		}
		held[key][node] = true
	}
	for _, c := range b.clients {
		if c.state.Load() != stateConnected && c.state.Load() != stateGone {
			continue
		}
		add("*", c.node)
		add("u:"+c.user, c.node)
		add("t:"+c.tenant, c.node)
		for _, ch := range c.channels {
			add("c:"+ch, c.node)
		}
	}
	var sends, nodes int64
	for seq := int64(0); seq < ph.nextSeq.Load(); seq++ {
		m := ph.lookup(seq)
		if m == nil {
			break
		}
		if m.expected.Load() < 0 || m.apiDelivered.Load() < 0 {
			continue
		}
		key, _, _ := b.target(ph.mode, seq, e)
		sends++
		nodes += int64(len(held[key]))
	}
	if sends == 0 {
		return 0
	}
	return float64(nodes) / float64(sends)
}

// redisPublishes sums the PUBLISH and SPUBLISH calls (INFO commandstats)
// of the masters among addrs; replicas are left out, since a master
// propagates SPUBLISH to them.
func redisPublishes(addrs []string) (int64, error) {
	var sum int64
	for _, a := range addrs {
		info, err := redisCommand(a, "INFO", "everything")
		if err != nil {
			return 0, err
		}
		if strings.Contains(info, "role:slave") {
			continue
		}
		sum += commandCalls(info, "publish") + commandCalls(info, "spublish")
	}
	return sum, nil
}

// commandCalls reads calls= of cmdstat_<name> in an INFO answer.
func commandCalls(info, name string) int64 {
	for _, line := range strings.Split(info, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+name+":calls=")
		if !ok {
			continue
		}
		v, _, _ := strings.Cut(rest, ",")
		n, _ := strconv.ParseInt(v, 10, 64)
		return n
	}
	return 0
}

// redisCommand sends one command to the redis-server at addr and returns
// its answer (a simple or bulk string, or an integer as text).
func redisCommand(addr string, args ...string) (string, error) {
	nc, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	var sb strings.Builder
	fmt.Fprintf(&sb, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&sb, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := nc.Write([]byte(sb.String())); err != nil {
		return "", err
	}
	br := bufio.NewReader(nc)
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("redis: empty answer")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", fmt.Errorf("redis %s: %s", addr, line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("redis %s: answer %q", addr, line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("redis %s: unexpected answer %q", addr, line)
}

// singleConfig is cfg's run on one node: the same phases, transport and
// spawned Redis (a fresh one), with the connections one node holds in cfg
// (Conns/SpawnNodes) and the users scaled alike, so that the connections
// per user are the same.
func singleConfig(cfg Config) Config {
	n := cfg.SpawnNodes
	s := cfg
	s.Single, s.Floor, s.SpawnNodes, s.SpawnPeers = false, "", 1, false
	s.Conns = max(cfg.Conns/n, 1)
	s.Users = max(cfg.Users/n, 1)
	s.Tenants = min(cfg.Tenants, s.Conns)
	s.Nodes, s.PIDs, s.ConnNodes, s.APINodes, s.SrcIPs = nil, nil, nil, nil, nil
	s.RSSSteps = nil
	for _, st := range cfg.RSSSteps {
		s.RSSSteps = append(s.RSSSteps, max(st/n, 1))
	}
	if cfg.Workers > 0 {
		s.Workers = 1
	}
	return s
}

// compareWithSingle fills the ratios to the single-node run, phase by
// phase.
func (r *Report) compareWithSingle() {
	if r.Single == nil {
		return
	}
	for i := range r.Phases {
		if i >= len(r.Single.Phases) {
			break
		}
		p, s := &r.Phases[i], r.Single.Phases[i]
		if s.ServerCPUPerDelivUs > 0 {
			p.SingleCPUPerDelivRatio = p.ServerCPUPerDelivUs / s.ServerCPUPerDelivUs
		}
		if s.ServerCPUNetPerDelivUs > 0 {
			p.SingleNetCPUPerDelivRatio = p.ServerCPUNetPerDelivUs / s.ServerCPUNetPerDelivUs
		}
	}
}

// writeScale prints the multi-node figures: memory per node, nodes and
// PUBLISH calls per send, and the ratios to the single-node run.
func (r Report) writeScale(w io.Writer) {
	if r.Workers > 0 {
		fmt.Fprintf(w, "workers: %d processes held the connections\n", r.Workers)
	}
	for _, s := range r.Memory.Steps {
		writeNodeMemory(w, fmt.Sprintf("memory per node at %d", s.Conns), s.Nodes)
	}
	if len(r.Memory.Steps) == 0 {
		writeNodeMemory(w, "memory per node", r.Memory.Nodes)
	}
	if r.Memory.IdlePublishesPerSec > 0 {
		fmt.Fprintf(w, "redis while idle: %.1f PUBLISH/SPUBLISH per second (probes)\n", r.Memory.IdlePublishesPerSec)
	}
	for _, p := range r.Phases {
		if p.NodesPerSend == 0 && p.RedisPublishes == 0 && r.Single == nil {
			continue
		}
		fmt.Fprintf(w, "%s: %.2f nodes hold a send's target", p.Mode, p.NodesPerSend)
		if p.RedisPublishes > 0 {
			fmt.Fprintf(w, ", %.2f PUBLISH/SPUBLISH per send (%.2f without the idle probes)", p.RedisPublishesPerSend, p.RedisPublishesNetPerSend)
		}
		if r.Single != nil {
			fmt.Fprintf(w, "; server cpu/deliv × single node %.2f (net %.2f)", p.SingleCPUPerDelivRatio, p.SingleNetCPUPerDelivRatio)
		}
		fmt.Fprintln(w)
	}
	if s := r.Single; s != nil {
		fmt.Fprintf(w, "single node (run first, %d conns, %d users): idle %.0f B/conn", s.Conns, s.Users, s.Memory.BytesPerConn)
		for _, f := range s.Phases {
			fmt.Fprintf(w, "; %s %.2fµs/deliv (net %.2fµs), lat p99 %s, lost %d", f.Mode, f.ServerCPUPerDelivUs, f.ServerCPUNetPerDelivUs, us(f.Latency.P99Us), f.Lost)
		}
		if !s.OK() {
			fmt.Fprintf(w, "; FAILED: %s", strings.Join(s.Problems(), "; "))
		}
		fmt.Fprintln(w)
	}
}

func writeNodeMemory(w io.Writer, title string, nodes []NodeMemory) {
	if len(nodes) == 0 {
		return
	}
	fmt.Fprintf(w, "%s:", title)
	for _, n := range nodes {
		fmt.Fprintf(w, " %s %d conns %.0f B/conn (RSS %d kB);", n.Name, n.Conns, n.BytesPerConn, n.RSSKB)
	}
	fmt.Fprintln(w)
}
