//go:build !unix

package hub

import "net"

// peerClosed cannot look at the socket on this platform; a browser that
// went away is noticed when a write (at the latest the heartbeat) fails.
func peerClosed(net.Conn) bool { return false }
