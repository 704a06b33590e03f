package delayproxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"slices"
	"testing"
	"time"
)

func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

// TestRoundTripTakesTwoDelays: an echo through the proxy comes back intact
// and no sooner than the delay out and the delay back.
func TestRoundTripTakesTwoDelays(t *testing.T) {
	const delay = 30 * time.Millisecond
	p, err := Listen("127.0.0.1:0", echoServer(t), delay)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	for range 3 {
		msg := make([]byte, 100<<10)
		_, _ = rand.Read(msg)
		start := time.Now()
		go func() { _, _ = c.Write(msg) }()
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took < 2*delay {
			t.Errorf("round trip took %v, want at least %v", took, 2*delay)
		}
		if !bytes.Equal(got, msg) {
			t.Fatal("the echo differs from what was sent")
		}
	}
}

// TestCloseEndsConnections: Close ends the proxied connections.
func TestCloseEndsConnections(t *testing.T) {
	p, err := Listen("127.0.0.1:0", echoServer(t), time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(b); err == nil {
		t.Error("the connection is still open after Close")
	}
}

// TestClockWaitsAndEndsWithItsContext: a clock's wait lasts at least its
// delay, and the end of its context ends a wait in progress.
func TestClockWaitsAndEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	clk, err := newClock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const d = 2 * time.Millisecond
	start := time.Now()
	if err := clk.wait(d); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < d {
		t.Errorf("wait(%v) returned after %v", d, took)
	}
	ended := make(chan error, 1)
	go func() { ended <- clk.wait(time.Hour) }()
	cancel()
	select {
	case err := <-ended:
		if err == nil {
			t.Error("a wait ended by its context returned no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the end of the context did not end the wait")
	}
}

// BenchmarkOneWayDelay reports how late a 1 ms proxy delivers a small
// message, one way (µs over the delay, median and worst of b.N).
func BenchmarkOneWayDelay(b *testing.B) {
	const delay = time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	p, err := Listen("127.0.0.1:0", ln.Addr().String(), delay)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	out, err := net.Dial("tcp", p.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	in, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	late := make([]time.Duration, 0, b.N)
	buf := make([]byte, 1)
	for b.Loop() {
		start := time.Now()
		if _, err := out.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(in, buf); err != nil {
			b.Fatal(err)
		}
		late = append(late, time.Since(start)-delay)
	}
	slices.Sort(late)
	b.ReportMetric(float64(late[len(late)/2].Microseconds()), "late-p50-µs")
	b.ReportMetric(float64(late[len(late)-1].Microseconds()), "late-max-µs")
}
