//go:build !linux

package hub

import "net"

// rawSocket is only used on Linux; elsewhere every socket is written
// through net.Conn with a deadline.
type rawSocket struct{}

type iovec struct{}

func newRawSocket(net.Conn) *rawSocket { return nil }

func (*rawSocket) writeNow(*net.Buffers, *[]iovec) (bool, error) { return false, nil }

func (*rawSocket) release() {}
