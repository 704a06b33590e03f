//go:build linux

package hub

import (
	"errors"
	"io"
	"net"
	"testing"
)

// TestRawSocket writes several buffers in one send, then checks that a
// released socket refuses to write rather than touch its old descriptor.
func TestRawSocket(t *testing.T) {
	client, server := tcpPair(t)
	s := newRawSocket(server)
	if s == nil {
		t.Fatal("no raw socket for a TCP connection")
	}
	var iov []iovec
	bufs := net.Buffers{[]byte("one "), nil, []byte("two "), []byte("three")}
	blocked, err := s.writeNow(&bufs, &iov)
	if err != nil || blocked || len(bufs) != 0 {
		t.Fatalf("writeNow: blocked %v, err %v, %d buffers left", blocked, err, len(bufs))
	}
	got := make([]byte, len("one two three"))
	if _, err := io.ReadFull(client, got); err != nil || string(got) != "one two three" {
		t.Fatalf("read %q, %v", got, err)
	}

	single := net.Buffers{[]byte("x")}
	if _, err := s.writeNow(&single, &iov); err != nil || len(single) != 0 {
		t.Fatalf("single buffer: err %v, %d left", err, len(single))
	}
	s.release()
	after := net.Buffers{[]byte("late")}
	if _, err := s.writeNow(&after, &iov); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after release: %v, want net.ErrClosed", err)
	}
	if len(after) != 1 {
		t.Fatal("a released socket consumed bytes")
	}
}

// TestRawSocketPeerGone reports a write to a socket whose peer reset it as
// an error (EPIPE or ECONNRESET), never as a signal that ends the process.
func TestRawSocketPeerGone(t *testing.T) {
	client, server := tcpPair(t)
	_ = client.(*net.TCPConn).SetLinger(0) // close with a reset
	_ = client.Close()

	s := newRawSocket(server)
	var iov []iovec
	for range 100 {
		bufs := net.Buffers{[]byte("data")}
		if _, err := s.writeNow(&bufs, &iov); err != nil {
			return
		}
	}
	t.Fatal("100 writes to a reset connection all succeeded")
}

// tcpPair returns both ends of a loopback TCP connection, closed when the
// test ends.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Close() })
	return client, server
}
