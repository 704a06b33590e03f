//go:build unix

package api

import (
	"errors"
	"net"
	"syscall"
)

// peekPrefix waits until nc's first bytes decide whether it starts with
// prefix, looking at them with MSG_PEEK: nothing is read, so a connection
// handed to net/http is the socket itself, as if never touched (the hub
// writes streams on it directly). The read deadline bounds the wait.
func peekPrefix(nc net.Conn, prefix string) peekResult {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return peekOther
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return peekOther
	}
	var buf [64]byte
	p := buf[:min(len(prefix), len(buf))]
	res := peekFailed
	err = raw.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), p, syscall.MSG_PEEK)
		switch {
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
			return false // wait until readable
		case err != nil || n == 0:
			res = peekFailed
		case string(p[:n]) != prefix[:n]:
			res = peekOther
		case n == len(p):
			res = peekMatch
		default:
			return false // the start of prefix so far: wait for more
		}
		return true
	})
	if err != nil {
		return peekFailed
	}
	return res
}
