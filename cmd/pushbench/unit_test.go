package main

import (
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPayloadRoundTrip(t *testing.T) {
	s := formatPayload("ab12", 3, 4711, 1764000000123456789, "u:u5", []byte("xxxx"))
	p, ok := parsePayload(s)
	if !ok {
		t.Fatalf("parse %q failed", s)
	}
	want := payload{run: "ab12", phase: 3, seq: 4711, sent: 1764000000123456789, key: "u:u5"}
	if p != want {
		t.Fatalf("got %+v, want %+v", p, want)
	}
	for _, bad := range []string{"", "pb|", "xx|r|1|2|3|*|", "pb|r|a|2|3|*|", "pb|r|1|2|3|*"} {
		if _, ok := parsePayload(bad); ok {
			t.Errorf("parsePayload(%q) accepted", bad)
		}
	}
}

func TestKeyMatches(t *testing.T) {
	tests := []struct {
		key, user, tenant string
		want              bool
	}{
		{"*", "u1", "t1", true},
		{"u:u1", "u1", "t1", true},
		{"u:u1", "u11", "t1", false},
		{"t:t1", "u1", "t1", true},
		{"t:t1", "u1", "t2", false},
		{"x:u1", "u1", "t1", false},
		{"u:", "", "", false},
	}
	for _, tt := range tests {
		if got := keyMatches(tt.key, tt.user, tt.tenant); got != tt.want {
			t.Errorf("keyMatches(%q, %q, %q) = %v", tt.key, tt.user, tt.tenant, got)
		}
	}
}

func TestHistQuantiles(t *testing.T) {
	var h hist
	if h.Quantile(0.5) != 0 {
		t.Fatal("empty histogram has a quantile")
	}
	vals := make([]int64, 10000)
	for i := range vals {
		vals[i] = rand.Int64N(int64(time.Second))
		h.Record(time.Duration(vals[i]))
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.99} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := int64(h.Quantile(q))
		if got < exact || float64(got) > float64(exact)*1.07 {
			t.Errorf("q%.2f = %d, exact %d (want within +7%%)", q, got, exact)
		}
	}
	if int64(h.Quantile(1)) != vals[len(vals)-1] {
		t.Errorf("max %d, want %d", h.Quantile(1), vals[len(vals)-1])
	}
	for v := int64(0); v < 1<<20; v += 997 {
		i := histBucket(v)
		if histUpper(i) < v || (i > 0 && histUpper(i-1) >= v) {
			t.Fatalf("value %d in bucket %d with upper %d (previous %d)", v, i, histUpper(i), histUpper(i-1))
		}
	}
}

func TestProcParsing(t *testing.T) {
	rss, err := parseRSS([]byte("Name:\tpushd\nVmPeak:\t  100 kB\nVmRSS:\t   2048 kB\nThreads: 5\n"))
	if err != nil || rss != 2048*1024 {
		t.Fatalf("rss %d, %v", rss, err)
	}
	if _, err := parseRSS([]byte("Name: x\n")); err == nil {
		t.Fatal("missing VmRSS accepted")
	}
	// A command name with spaces and parentheses; utime 150, stime 50 ticks.
	stat := "1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 8 0 100 0 0"
	cpu, err := parseCPU([]byte(stat))
	if err != nil || cpu != 2*time.Second {
		t.Fatalf("cpu %v, %v", cpu, err)
	}
	// Our own process can be read.
	if s := readProcs([]int{osGetpid()}); s.Err != nil || s.RSSBytes <= 0 {
		t.Fatalf("self reading %+v", s)
	}
}

func TestAutoSourceIPs(t *testing.T) {
	nodes := []string{"http://127.0.0.1:8080"}
	if ips := autoSourceIPs(1000, nodes); ips != nil {
		t.Fatalf("1000 conns got %v", ips)
	}
	ips := autoSourceIPs(100000, nodes)
	if len(ips) < 4 || ips[0] != "127.0.0.1" || ips[1] != "127.0.0.2" {
		t.Fatalf("100000 conns got %v", ips)
	}
	if ips := autoSourceIPs(100000, []string{"http://10.0.0.1:8080"}); ips != nil {
		t.Fatalf("non-loopback node got %v", ips)
	}
}

func TestParseFlags(t *testing.T) {
	var sb strings.Builder
	c, js, err := parseFlags(strings.Fields("-nodes http://127.0.0.1:1,http://127.0.0.1:2 -conns 300 -mode user,tenant -pids 5,6 -rss-steps 100,200 -json o.json -qos"), &sb)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.setDefaults(); err != nil {
		t.Fatal(err)
	}
	if js != "o.json" || len(c.Nodes) != 2 || c.Conns != 300 || !slices.Equal(c.Modes, []string{"user", "tenant"}) ||
		!slices.Equal(c.PIDs, []int{5, 6}) || !slices.Equal(c.RSSSteps, []int{100, 200}) || !c.QoS || c.Users != 30 {
		t.Fatalf("config %+v", c)
	}
	for _, bad := range []string{"-mode nope -nodes http://x:1", "-pids a", "-conns 5", "-nodes https://x:1",
		"-spawn /bin/true -redis-delay 1ms", "-spawn /bin/true -spawn-redis /bin/true -redis-delay -1ms",
		"-spawn /bin/true -spawn-peers", "-spawn /bin/true -spawn-nodes 2 -spawn-peers -spawn-redis /bin/true"} {
		c, _, err := parseFlags(strings.Fields(bad), &sb)
		if err == nil {
			err = c.setDefaults()
		}
		if err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func osGetpid() int { return os.Getpid() }

func TestNodeIndexes(t *testing.T) {
	all, err := nodeIndexes(nil, 3)
	if err != nil || !slices.Equal(all, []int{0, 1, 2}) {
		t.Fatalf("default: %v, %v", all, err)
	}
	some, err := nodeIndexes([]int{2, 1}, 2)
	if err != nil || !slices.Equal(some, []int{1, 0}) {
		t.Fatalf("[2 1]: %v, %v", some, err)
	}
	if _, err := nodeIndexes([]int{3}, 2); err == nil {
		t.Fatal("node 3 of 2 accepted")
	}
}
