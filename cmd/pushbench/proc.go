package main

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// userHZ is the kernel's USER_HZ, the unit of utime and stime in
// /proc/PID/stat; it is 100 on every Linux architecture Go supports for this
// tool (sysconf(_SC_CLK_TCK) is not reachable without cgo).
const userHZ = 100

// procSample is one reading of a set of processes.
type procSample struct {
	RSSBytes int64         // sum of VmRSS
	CPU      time.Duration // sum of utime+stime
	Err      error         // the first process that could not be read
}

// readProcs reads VmRSS and CPU time of every pid and sums them.
func readProcs(pids []int) procSample {
	var s procSample
	for _, pid := range pids {
		rss, err := readRSS(pid)
		if err != nil && s.Err == nil {
			s.Err = err
		}
		s.RSSBytes += rss
		cpu, err := readCPU(pid)
		if err != nil && s.Err == nil {
			s.Err = err
		}
		s.CPU += cpu
	}
	return s
}

// readRSS returns VmRSS of pid from /proc/PID/status, in bytes.
func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read status of %d: %w", pid, err)
	}
	return parseRSS(b)
}

func parseRSS(status []byte) (int64, error) {
	for _, line := range bytes.Split(status, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("unexpected VmRSS line %q", line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS: %w", err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("no VmRSS line")
}

// readCPU returns utime+stime of pid (all threads) from /proc/PID/stat.
func readCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read stat of %d: %w", pid, err)
	}
	return parseCPU(b)
}

func parseCPU(stat []byte) (time.Duration, error) {
	// The command name (field 2) is in parentheses and may contain spaces
	// and parentheses itself, so split after the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("short stat: %d fields", len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("stat times %q %q", f[11], f[12])
	}
	return time.Duration(ut+st) * time.Second / userHZ, nil
}

// raiseFileLimit lifts the soft RLIMIT_NOFILE to the hard limit and returns
// the resulting soft limit.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return lim.Cur, fmt.Errorf("setrlimit: %w", err)
		}
	}
	return lim.Cur, nil
}

// ephemeralPorts returns the size of the local port range (28232 when it
// cannot be read).
func ephemeralPorts() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 {
			lo, err1 := strconv.Atoi(f[0])
			hi, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil && hi > lo {
				return hi - lo + 1
			}
		}
	}
	return 60999 - 32768 + 1
}

// autoSourceIPs returns loopback source addresses 127.0.0.1, 127.0.0.2, …
// enough for conns connections when they exceed what one source address can
// open (the ephemeral port range minus a margin), or nil when one address is
// enough or a node is not on loopback (127/8 sources only reach loopback).
func autoSourceIPs(conns int, nodes []string) []string {
	perIP := ephemeralPorts() * 9 / 10
	if conns <= perIP {
		return nil
	}
	for _, n := range nodes {
		u, err := url.Parse(n)
		if err != nil {
			return nil
		}
		ip := net.ParseIP(u.Hostname())
		if u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil
		}
	}
	k := (conns + perIP - 1) / perIP
	ips := make([]string, k)
	for i := range ips {
		ips[i] = fmt.Sprintf("127.0.0.%d", i+1)
	}
	return ips
}
