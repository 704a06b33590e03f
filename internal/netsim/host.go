package netsim

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Host is one simulated host: a network namespace with eth0 on the
// network's bridge.
type Host struct {
	// Name is the name given to AddHost.
	Name string
	// IP is the host's address on the network.
	IP netip.Addr

	net  *Network
	ns   string // the namespace, as ip netns names it
	port string // the bridge's end of the host's veth pair, in the switch
}

// Namespace is the name of the host's network namespace (for ip netns).
func (h *Host) Namespace() string { return h.ns }

// Addr is the host's address with port, as a dial address.
func (h *Host) Addr(port int) string {
	return netip.AddrPortFrom(h.IP, uint16(port)).String()
}

// Command runs name inside the host (ip netns exec, which execs name: the
// process's pid is name's). The process is killed when ctx ends, and at
// the latest when the network is removed.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.ns, name}, args...)...)
}

// DialContext connects from the host: the socket is created inside its
// namespace, so its packets take the host's link.
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := h.inside(func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Listen listens inside the host.
func (h *Host) Listen(network, addr string) (net.Listener, error) {
	var l net.Listener
	err := h.inside(func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

// HTTPClient returns a client whose connections start from the host.
// Requests need their own deadline: a partition stalls them silently.
func (h *Host) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: h.DialContext,
		MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second}}
}

// inside runs fn on an OS thread moved into the host's namespace, and
// moves the thread back before other goroutines may run on it (a thread
// that cannot be moved back stays locked and ends with its goroutine).
// Sockets keep the namespace they were created in.
func (h *Host) inside(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		own, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netsim: own namespace: %w", err)
			return
		}
		defer own.Close()
		f, err := os.Open(filepath.Join("/var/run/netns", h.ns))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netsim: host %s: %w", h.Name, err)
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netsim: host %s: setns: %w", h.Name, err)
			return
		}
		err = fn()
		if unix.Setns(int(own.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// SetLink delays every packet leaving the host by delay and drops the
// fraction loss (0 to 1) of them (tc netem on the host's eth0); zero both
// to clear. Latency between two hosts is the sum of their delays one way.
// It returns an error wrapping ErrNoNetem when the kernel has no netem.
func (h *Host) SetLink(delay time.Duration, loss float64) error {
	ctx := context.Background()
	if delay == 0 && loss == 0 {
		err := run(ctx, nil, "tc", "-n", h.ns, "qdisc", "del", "dev", "eth0", "root")
		if err != nil && !strings.Contains(err.Error(), "No such file") && !strings.Contains(err.Error(), "Cannot delete qdisc with handle of zero") {
			return fmt.Errorf("netsim: host %s: %w", h.Name, err)
		}
		return nil
	}
	if loss < 0 || loss > 1 {
		return fmt.Errorf("netsim: host %s: loss %v outside [0, 1]", h.Name, loss)
	}
	err := run(ctx, nil, "tc", "-n", h.ns, "qdisc", "replace", "dev", "eth0", "root", "netem",
		"delay", strconv.FormatInt(delay.Microseconds(), 10)+"us",
		"loss", strconv.FormatFloat(loss*100, 'f', -1, 64)+"%")
	if err != nil && strings.Contains(err.Error(), "qdisc kind is unknown") {
		return fmt.Errorf("%w (host %s: %v)", ErrNoNetem, h.Name, err)
	}
	if err != nil {
		return fmt.Errorf("netsim: host %s: %w", h.Name, err)
	}
	return nil
}

// Partition takes the host's link down at the bridge: no packet goes in
// or out, silently (no reset, no ICMP), until Heal. Its processes and
// their connections stay.
func (h *Host) Partition() {
	h.net.tb.Helper()
	if err := h.net.ipIn(h.net.sw, "link", "set", h.port, "down"); err != nil {
		h.net.tb.Fatalf("netsim: partition %s: %v", h.Name, err)
	}
}

// Heal brings the host's link back up after Partition.
func (h *Host) Heal() {
	h.net.tb.Helper()
	if err := h.net.ipIn(h.net.sw, "link", "set", h.port, "up"); err != nil {
		h.net.tb.Fatalf("netsim: heal %s: %v", h.Name, err)
	}
}
