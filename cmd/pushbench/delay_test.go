package main

import (
	"io"
	"net"
	"testing"
	"time"
)

// TestDelayProxyProcess: the proxy of -redis-delay runs in a process of
// its own, forwards both ways with the delay, and ends with stop.
func TestDelayProxyProcess(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	const delay = 20 * time.Millisecond
	p, err := startDelayProxy(ln.Addr().String(), delay)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		p.stop()
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
		t.Fatalf("echo through the proxy: %q, %v", got, err)
	}
	if took := time.Since(start); took < 2*delay {
		t.Errorf("round trip took %v, want at least %v", took, 2*delay)
	}
	p.stop()
	if p.cmd.ProcessState == nil || !p.cmd.ProcessState.Exited() {
		t.Fatalf("the proxy process did not exit: %v", p.cmd.ProcessState)
	}
	if _, err := c.Read(got); err == nil {
		t.Error("the proxied connection is still open after stop")
	}
}
