package netsim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ErrNoNetem is returned by SetLink when the kernel has no netem qdisc
// (sch_netem is neither built in nor loadable).
var ErrNoNetem = errors.New("netsim: the kernel has no netem qdisc")

// Network is a bridge in a namespace of its own and the hosts plugged
// into it. Its methods are safe for concurrent use.
type Network struct {
	tb     testing.TB
	id     string // random suffix of every name
	sw     string // the switch's namespace
	prefix netip.Prefix

	mu    sync.Mutex
	hosts []*Host
	cuts  map[[2]netip.Addr]bool
	nft   bool // the switch has its nft table
}

// hostName is what AddHost accepts as a host's name.
var hostName = regexp.MustCompile(`^[a-z][a-z0-9]{0,15}$`)

// New creates an empty network and removes it, with every host, when tb
// ends. It skips tb when the machine cannot run network namespaces (see
// the package documentation).
func New(tb testing.TB) *Network {
	tb.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("netsim: ip (iproute2) is not installed and CI is set: %v", err)
		}
		tb.Skipf("netsim: ip (iproute2) is not installed (CI=1 makes this a failure): %v", err)
	}
	if os.Geteuid() != 0 {
		tb.Skip("netsim: simulated hosts need root (network namespaces, veth, bridge); not root")
	}
	n := &Network{tb: tb, id: randomID(), cuts: map[[2]netip.Addr]bool{}}
	n.sw = "netsim-" + n.id
	n.prefix = pickPrefix()
	if err := ip(context.Background(), "netns", "add", n.sw); err != nil {
		tb.Skipf("netsim: the kernel refuses network namespaces: %v", err)
	}
	tb.Cleanup(n.remove)
	if err := n.ipIn(n.sw, "link", "add", "br0", "type", "bridge"); err != nil {
		tb.Skipf("netsim: the kernel refuses a bridge: %v", err)
	}
	for _, args := range [][]string{{"link", "set", "lo", "up"}, {"link", "set", "br0", "up"}} {
		if err := n.ipIn(n.sw, args...); err != nil {
			tb.Fatalf("netsim: switch: %v", err)
		}
	}
	return n
}

// randomID is 8 hex digits.
func randomID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail
	return hex.EncodeToString(b)
}

// pickPrefix picks a 10.x.y.0/24 that no address of the machine's
// namespace falls in (the hosts never see the machine's networks, but
// addresses that look like none of them keep logs unambiguous).
func pickPrefix() netip.Prefix {
	var own []netip.Prefix
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				own = append(own, p.Masked())
			}
		}
	}
	for {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(200 + mrand.IntN(50)), byte(mrand.IntN(256)), 0}), 24)
		clash := false
		for _, o := range own {
			clash = clash || o.Overlaps(p)
		}
		if !clash {
			return p
		}
	}
}

// AddHost creates the host name (lower case letters and digits, unique in
// the network) with the next address of the network.
func (n *Network) AddHost(name string) *Host {
	n.tb.Helper()
	if !hostName.MatchString(name) {
		n.tb.Fatalf("netsim: host name %q: want [a-z][a-z0-9]{0,15}", name)
	}
	n.mu.Lock()
	index := len(n.hosts) + 1
	if index > 250 {
		n.mu.Unlock()
		n.tb.Fatal("netsim: more than 250 hosts")
	}
	for _, h := range n.hosts {
		if h.Name == name {
			n.mu.Unlock()
			n.tb.Fatalf("netsim: host %q added twice", name)
		}
	}
	addr := n.prefix.Addr().As4()
	addr[3] = byte(1 + index)
	h := &Host{Name: name, IP: netip.AddrFrom4(addr), net: n, ns: n.sw + "-" + name, port: fmt.Sprintf("p%d", index)}
	n.hosts = append(n.hosts, h)
	n.mu.Unlock()
	if err := ip(context.Background(), "netns", "add", h.ns); err != nil {
		n.tb.Fatalf("netsim: host %s: %v", name, err)
	}
	steps := [][]string{
		{"link", "add", h.port, "netns", n.sw, "type", "veth", "peer", "name", "eth0", "netns", h.ns},
		{"-n", n.sw, "link", "set", h.port, "master", "br0", "up"},
		{"-n", h.ns, "addr", "add", netip.PrefixFrom(h.IP, n.prefix.Bits()).String(), "dev", "eth0"},
		{"-n", h.ns, "link", "set", "eth0", "up"},
		{"-n", h.ns, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if err := ip(context.Background(), s...); err != nil {
			n.tb.Skipf("netsim: the kernel refuses a veth pair for host %s: %v", name, err)
		}
	}
	return h
}

// SetLatency is SetLink(delay, 0) on every host added so far.
func (n *Network) SetLatency(delay time.Duration) error {
	n.mu.Lock()
	hosts := append([]*Host(nil), n.hosts...)
	n.mu.Unlock()
	for _, h := range hosts {
		if err := h.SetLink(delay, 0); err != nil {
			return err
		}
	}
	return nil
}

// remove kills what still runs in the hosts (processes the test started
// there) and deletes every namespace, which deletes their interfaces and
// the bridge with them.
func (n *Network) remove() {
	n.mu.Lock()
	hosts := n.hosts
	n.mu.Unlock()
	ctx := context.Background()
	for _, h := range hosts {
		out, err := exec.CommandContext(ctx, "ip", "netns", "pids", h.ns).Output()
		if err == nil {
			for _, f := range strings.Fields(string(out)) {
				var pid int
				if _, err := fmt.Sscan(f, &pid); err == nil && pid > 0 && pid != os.Getpid() {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		if err := ip(ctx, "netns", "del", h.ns); err != nil {
			n.tb.Errorf("netsim: remove host %s: %v", h.Name, err)
		}
	}
	if err := ip(ctx, "netns", "del", n.sw); err != nil {
		n.tb.Errorf("netsim: remove the switch: %v", err)
	}
}

// ipIn runs ip in the namespace ns.
func (n *Network) ipIn(ns string, args ...string) error {
	return ip(context.Background(), append([]string{"-n", ns}, args...)...)
}

// ip runs the ip program, its error carrying what it printed.
func ip(ctx context.Context, args ...string) error {
	return run(ctx, nil, "ip", args...)
}

// run runs a program with stdin, its error carrying what it printed.
func run(ctx context.Context, stdin []byte, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
