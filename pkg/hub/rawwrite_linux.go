//go:build linux

package hub

import (
	"net"
	"syscall"
	"unsafe"
)

// maxIovec is the most buffers one writev takes (IOV_MAX).
const maxIovec = 1024

// iovec is one buffer of a writev.
type iovec = syscall.Iovec

// rawSocket writes a hijacked TCP socket with one non-blocking writev per
// batch, bypassing the runtime's poller: no write deadline to arm per
// write, and a full socket buffer is reported at once instead of parking
// the pool worker.
type rawSocket struct {
	rc syscall.RawConn
}

// newRawSocket returns nil for connections that are not plain sockets
// (TLS, pipes); those are written through net.Conn with a deadline.
func newRawSocket(nc net.Conn) *rawSocket {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return &rawSocket{rc: rc}
}

// writeNow writes as much of bufs as the socket takes now and consumes
// what it wrote; blocked reports that the socket buffer is full. iov is
// the caller's reusable vector.
func (s *rawSocket) writeNow(bufs *net.Buffers, iov *[]iovec) (blocked bool, err error) {
	for len(*bufs) > 0 {
		want := 0
		*iov = (*iov)[:0]
		for _, b := range *bufs {
			if len(*iov) == maxIovec {
				break
			}
			if len(b) == 0 {
				continue
			}
			v := iovec{Base: &b[0]}
			v.SetLen(len(b))
			*iov = append(*iov, v)
			want += len(b)
		}
		if want == 0 {
			*bufs = (*bufs)[:0]
			return false, nil
		}
		var n uintptr
		var errno syscall.Errno
		if err := s.rc.Write(func(fd uintptr) bool {
			n, _, errno = syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&(*iov)[0])), uintptr(len(*iov)))
			return true // never wait for the poller
		}); err != nil {
			return false, err
		}
		switch errno {
		case 0:
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return true, nil
		default:
			return false, errno
		}
		consume(bufs, int(n))
		if int(n) < want {
			return true, nil
		}
	}
	return false, nil
}

// consume drops the first n bytes of bufs.
func consume(bufs *net.Buffers, n int) {
	for len(*bufs) > 0 {
		if l := len((*bufs)[0]); l > n {
			(*bufs)[0] = (*bufs)[0][n:]
			return
		} else {
			n -= l
		}
		(*bufs)[0] = nil
		*bufs = (*bufs)[1:]
	}
}
