package main

import (
	"context"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestAcceptedSocketsGetTheDefaultUserTimeout: with no http section, an
// accepted connection carries TCP_USER_TIMEOUT of the default — well above
// the 15 s keepalive interval (at 30 s one lost probe ACK aborted idle
// streams by the thousand in the 95 000-connection run).
func TestAcceptedSocketsGetTheDefaultUserTimeout(t *testing.T) {
	var h HTTPConfig
	h.validate(&problems{})
	if d := time.Duration(h.TCPUserTimeout); d != defaultTCPUserTimeout || d < 4*15*time.Second {
		t.Fatalf("default tcp_user_timeout %v, want %v (≥ 4 keepalive intervals)", d, defaultTCPUserTimeout)
	}
	ln, err := listen(context.Background(), "127.0.0.1:0", time.Duration(h.TCPUserTimeout))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	raw, err := a.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var gerr error
	if err := raw.Control(func(fd uintptr) { got, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	if want := int(defaultTCPUserTimeout / time.Millisecond); got != want {
		t.Errorf("accepted socket TCP_USER_TIMEOUT %d ms, want %d", got, want)
	}
}
