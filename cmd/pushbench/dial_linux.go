package main

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// bindLate makes a dialer bound to a source address pick the source port
// at connect time (IP_BIND_ADDRESS_NO_PORT), by the whole address pair,
// instead of at bind time among every port of that address: with tens of
// thousands of sockets on one address the bind-time search took the
// kernel seconds per thousand dials, holding up the whole tool.
func bindLate(_, _ string, rc syscall.RawConn) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	}); err != nil {
		return err
	}
	return serr
}
