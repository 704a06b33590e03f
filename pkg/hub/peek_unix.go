//go:build unix

package hub

import (
	"errors"
	"net"
	"syscall"
)

// peerClosed reports whether the peer of a hijacked socket has closed it
// (or sent data, which an SSE client never does), without blocking: no
// goroutine reads these sockets, so this is how a browser that went away
// is noticed before the next write fails.
func peerClosed(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	var buf [1]byte
	_ = raw.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == nil:
			closed = n == 0 // orderly shutdown; data means a misbehaving client, left alone
		case errors.Is(err, syscall.EAGAIN):
		default:
			closed = true
		}
		return true
	})
	return closed
}
