package netsim_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/netsim"
)

// echo serves lines back on l until it is closed.
func echo(t *testing.T, l net.Listener) {
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
}

// roundTrip sends a line over c and reads it back within d.
func roundTrip(c net.Conn, d time.Duration) error {
	if err := c.SetDeadline(time.Now().Add(d)); err != nil {
		return err
	}
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err == nil && line != "ping\n" {
		return errors.New("echo answered " + line)
	}
	return err
}

// reaches dials addr from h and sends a line back and forth.
func reaches(h *netsim.Host, addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	c, err := h.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	return roundTrip(c, 500*time.Millisecond)
}

func TestHostsCutPartitionHeal(t *testing.T) {
	var names []string
	t.Run("network", func(t *testing.T) {
		n := netsim.New(t)
		a, b, c := n.AddHost("a"), n.AddHost("b"), n.AddHost("c")
		names = []string{a.Namespace(), b.Namespace(), c.Namespace()}
		l, err := b.Listen("tcp", b.Addr(7000))
		if err != nil {
			t.Fatal(err)
		}
		echo(t, l)
		for _, h := range []*netsim.Host{a, c} {
			if err := reaches(h, b.Addr(7000)); err != nil {
				t.Fatalf("%s does not reach b: %v", h.Name, err)
			}
		}
		// A host has no route out of the network.
		if err := reaches(a, "192.0.2.1:80"); err == nil || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("host a dialing outside the network: %v, want network unreachable", err)
		}

		out, err := a.Command(context.Background(), "ip", "-4", "addr", "show", "eth0").CombinedOutput()
		if err != nil || !strings.Contains(string(out), a.IP.String()+"/24") {
			t.Fatalf("ip addr inside a: %v %s", err, out)
		}

		n.Cut(a, b)
		if err := reaches(a, b.Addr(7000)); err == nil {
			t.Fatal("a reaches b across the cut")
		}
		if err := reaches(c, b.Addr(7000)); err != nil {
			t.Fatalf("c lost b when a and b were cut: %v", err)
		}
		n.Mend(a, b)
		if err := reaches(a, b.Addr(7000)); err != nil {
			t.Fatalf("a does not reach b after the mend: %v", err)
		}

		// A connection open across a partition stalls, silently, and
		// carries on after the heal.
		conn, err := c.DialContext(context.Background(), "tcp", b.Addr(7000))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		b.Partition()
		if err := roundTrip(conn, 300*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
			t.Fatalf("round trip into a partitioned host: %v, want a timeout", err)
		}
		if err := reaches(a, b.Addr(7000)); err == nil {
			t.Fatal("a reaches the partitioned b")
		}
		b.Heal()
		if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || line != "ping\n" {
			t.Fatalf("after the heal the stalled line came back as %q, %v", line, err)
		}

		switch err := n.SetLatency(5 * time.Millisecond); {
		case errors.Is(err, netsim.ErrNoNetem):
			t.Logf("no latency: %v", err)
		case err != nil:
			t.Fatal(err)
		default:
			start := time.Now()
			if err := reaches(a, b.Addr(7000)); err != nil {
				t.Fatal(err)
			}
			// connect and one round trip: two round trips of 10 ms
			if d := time.Since(start); d < 20*time.Millisecond {
				t.Errorf("dial and round trip with 5 ms each way took %v", d)
			}
		}
	})
	if len(names) == 0 {
		return // skipped
	}
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range names {
		if strings.Contains(string(out), ns) {
			t.Errorf("namespace %s left after the test", ns)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
