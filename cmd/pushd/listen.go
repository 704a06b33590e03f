package main

import (
	"context"
	"net"
	"syscall"
	"time"
)

// listen opens the HTTP listener. Its sockets get TCP_USER_TIMEOUT
// (http.tcp_user_timeout, Linux): a browser that vanished without a FIN —
// a dead network, a laptop lid — is noticed once data written to it (a
// heartbeat) stays unacknowledged that long, instead of after the kernel's
// ~15 minutes of retransmissions, so its stream closes and its user goes
// offline.
func listen(ctx context.Context, addr string, userTimeout time.Duration) (net.Listener, error) {
	lc := net.ListenConfig{}
	if userTimeout > 0 {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) { serr = setUserTimeout(fd, userTimeout) }); err != nil {
				return err
			}
			return serr
		}
	}
	return lc.Listen(ctx, "tcp", addr)
}
