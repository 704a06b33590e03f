package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// floor is the epoll design, the kernel floor: one goroutine on its own
// thread owns the listening socket, an epoll instance and every
// connection. It parses HTTP/1.1 requests itself (no net/http), and a send
// writes each recipient's frame with one send(2), straight from the
// request: no queue, no writer. A stream whose socket cannot take a whole
// frame at once is closed.
type floor struct {
	base     string
	lfd, ep  int
	conns    map[int]*floorConn // by fd
	byUser   map[string]map[*floorConn]struct{}
	byTenant map[string]map[*floorConn]struct{}
	nextID   int64
	buf      []byte
}

// floorConn is one client connection: an API or health connection until it
// asks for a stream, then a stream.
type floorConn struct {
	fd     int
	in     []byte // bytes of requests not handled yet
	stream bool
	user   string
	tenant string
}

// maxRequest bounds a request's head and body.
const maxRequest = 1 << 20

// serveFloor listens on addr (IPv4 host:port) and serves until an error.
func serveFloor(addr, base string) error {
	f, err := listenFloor(addr, base)
	if err != nil {
		return err
	}
	return f.serve()
}

func listenFloor(addr, base string) (*floor, error) {
	ap, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		return nil, fmt.Errorf("floor: address: %w", err)
	}
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("floor: socket: %w", err)
	}
	if err := unix.SetsockoptInt(lfd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return nil, fmt.Errorf("floor: SO_REUSEADDR: %w", err)
	}
	sa := &unix.SockaddrInet4{Port: ap.Port}
	copy(sa.Addr[:], ap.IP.To4())
	if err := unix.Bind(lfd, sa); err != nil {
		return nil, fmt.Errorf("floor: bind %s: %w", addr, err)
	}
	if err := unix.Listen(lfd, 4096); err != nil {
		return nil, fmt.Errorf("floor: listen: %w", err)
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("floor: epoll: %w", err)
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, lfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(lfd)}); err != nil {
		return nil, fmt.Errorf("floor: epoll add: %w", err)
	}
	return &floor{
		base: base, lfd: lfd, ep: ep,
		conns:    map[int]*floorConn{},
		byUser:   map[string]map[*floorConn]struct{}{},
		byTenant: map[string]map[*floorConn]struct{}{},
		buf:      make([]byte, 64<<10),
	}, nil
}

// port is the port the floor listens on.
func (f *floor) port() (int, error) {
	sa, err := unix.Getsockname(f.lfd)
	if err != nil {
		return 0, fmt.Errorf("floor: getsockname: %w", err)
	}
	return sa.(*unix.SockaddrInet4).Port, nil
}

// serve is the event loop; it returns only on an epoll error.
func (f *floor) serve() error {
	runtime.LockOSThread()
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(f.ep, events, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("floor: epoll_wait: %w", err)
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			if fd == f.lfd {
				f.accept()
				continue
			}
			if c := f.conns[fd]; c != nil {
				f.readable(c)
			}
		}
	}
}

func (f *floor) accept() {
	for {
		fd, _, err := unix.Accept4(f.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			return // EAGAIN: accepted all; others: the client is gone
		}
		if err := unix.EpollCtl(f.ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}); err != nil {
			_ = unix.Close(fd)
			continue
		}
		f.conns[fd] = &floorConn{fd: fd}
	}
}

// readable reads what c sent and handles every complete request.
func (f *floor) readable(c *floorConn) {
	n, err := unix.Read(c.fd, f.buf)
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
		return
	}
	if n <= 0 || c.stream {
		f.close(c) // end of stream, an error, or a stream's client talking
		return
	}
	c.in = append(c.in, f.buf[:n]...)
	for len(c.in) > 0 && !c.stream {
		used, ok := f.request(c)
		if !ok {
			f.close(c)
			return
		}
		if used == 0 {
			if len(c.in) > maxRequest {
				f.close(c)
			}
			return // incomplete
		}
		c.in = c.in[used:]
	}
	if len(c.in) == 0 || c.stream {
		c.in = nil // a stream's client has nothing more to say
	}
}

// request handles the first request in c.in and returns the bytes it took
// (0: incomplete); false means the connection must be closed.
func (f *floor) request(c *floorConn) (int, bool) {
	end := bytes.Index(c.in, []byte("\r\n\r\n"))
	if end < 0 {
		return 0, true
	}
	head := c.in[:end]
	line, headers, _ := bytes.Cut(head, []byte("\r\n"))
	method, rest, ok1 := bytes.Cut(line, []byte(" "))
	target, _, ok2 := bytes.Cut(rest, []byte(" "))
	if !ok1 || !ok2 {
		return 0, false
	}
	length := 0
	for h := range bytes.SplitSeq(headers, []byte("\r\n")) {
		name, value, _ := bytes.Cut(h, []byte(":"))
		if bytes.EqualFold(bytes.TrimSpace(name), []byte("Content-Length")) {
			v, err := strconv.Atoi(string(bytes.TrimSpace(value)))
			if err != nil || v < 0 || v > maxRequest {
				return 0, false
			}
			length = v
		}
	}
	total := end + 4 + length
	if len(c.in) < total {
		return 0, true
	}
	body := c.in[end+4 : total]
	path, query, _ := bytes.Cut(target, []byte("?"))
	switch {
	case string(method) == "GET" && string(path) == "/healthz":
		return total, f.answer(c, "200 OK", "text/plain", []byte("ok"))
	case string(method) == "GET" && string(path) == f.base+"/connect":
		return total, f.openStream(c, string(query))
	case string(method) == "POST" && bytes.HasPrefix(path, []byte("/api/v1/apps/")) && bytes.HasSuffix(path, []byte("/send")):
		return total, f.send(c, body)
	default:
		return total, f.answer(c, "404 Not Found", "application/json", []byte(`{"error":"not found"}`))
	}
}

// answer writes a whole response with one send(2).
func (f *floor) answer(c *floorConn, status, contentType string, body []byte) bool {
	out := make([]byte, 0, 96+len(body))
	out = append(out, "HTTP/1.1 "...)
	out = append(out, status...)
	out = append(out, "\r\nContent-Type: "...)
	out = append(out, contentType...)
	out = append(out, "\r\nContent-Length: "...)
	out = strconv.AppendInt(out, int64(len(body)), 10)
	out = append(out, "\r\n\r\n"...)
	out = append(out, body...)
	return writeAll(c.fd, out)
}

// openStream answers the connect request with the stream's head and
// connect-finish, and registers the stream under its user and tenant.
func (f *floor) openStream(c *floorConn, rawQuery string) bool {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return f.answer(c, "400 Bad Request", "application/json", []byte(`{"error":"bad query"}`))
	}
	f.nextID++
	head := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n" +
		"event:connect-finish\ndata:{\"connectionId\":\"" + strconv.FormatInt(f.nextID, 10) + "\"}\n\n"
	if !writeAll(c.fd, []byte(head)) {
		return false
	}
	c.stream, c.user, c.tenant = true, q.Get("userId"), q.Get("tenantId")
	addTo(f.byUser, c.user, c)
	addTo(f.byTenant, c.tenant, c)
	return true
}

// floorSend is the part of pushd's send body the floor understands.
type floorSend struct {
	To struct {
		All       bool     `json:"all"`
		UserIDs   []string `json:"userIds"`
		TenantIDs []string `json:"tenantIds"`
	} `json:"to"`
	Event string `json:"event"`
	Data  string `json:"data"`
}

// send writes the frame to every addressed stream, one send(2) each, and
// answers the number written.
func (f *floor) send(c *floorConn, body []byte) bool {
	var req floorSend
	if err := json.Unmarshal(body, &req); err != nil {
		return f.answer(c, "400 Bad Request", "application/json", []byte(`{"error":"bad body"}`))
	}
	frame := []byte("event:" + req.Event + "\ndata:" + req.Data + "\n\n")
	delivered := 0
	var failed []*floorConn
	write := func(s *floorConn) {
		if writeAll(s.fd, frame) {
			delivered++
		} else {
			failed = append(failed, s)
		}
	}
	switch {
	case req.To.All:
		for _, s := range f.conns {
			if s.stream {
				write(s)
			}
		}
	case len(req.To.UserIDs)+len(req.To.TenantIDs) == 1:
		// One key: each stream once without a set of those seen.
		for _, u := range req.To.UserIDs {
			for s := range f.byUser[u] {
				write(s)
			}
		}
		for _, t := range req.To.TenantIDs {
			for s := range f.byTenant[t] {
				write(s)
			}
		}
	default:
		seen := map[*floorConn]struct{}{}
		visit := func(s *floorConn) {
			if _, dup := seen[s]; !dup {
				seen[s] = struct{}{}
				write(s)
			}
		}
		for _, u := range req.To.UserIDs {
			for s := range f.byUser[u] {
				visit(s)
			}
		}
		for _, t := range req.To.TenantIDs {
			for s := range f.byTenant[t] {
				visit(s)
			}
		}
	}
	for _, s := range failed {
		f.close(s)
	}
	return f.answer(c, "200 OK", "application/json", []byte(`{"delivered":`+strconv.Itoa(delivered)+`}`))
}

// writeAll writes b with one send(2) and reports whether all of it went.
func writeAll(fd int, b []byte) bool {
	n, err := unix.Write(fd, b)
	return err == nil && n == len(b)
}

func (f *floor) close(c *floorConn) {
	if _, ok := f.conns[c.fd]; !ok {
		return
	}
	delete(f.conns, c.fd)
	if c.stream {
		removeFrom(f.byUser, c.user, c)
		removeFrom(f.byTenant, c.tenant, c)
	}
	_ = unix.Close(c.fd) // also removes it from the epoll set
}

func addTo(ix map[string]map[*floorConn]struct{}, key string, c *floorConn) {
	set := ix[key]
	if set == nil {
		set = map[*floorConn]struct{}{}
		ix[key] = set
	}
	set[c] = struct{}{}
}

func removeFrom(ix map[string]map[*floorConn]struct{}, key string, c *floorConn) {
	delete(ix[key], c)
	if len(ix[key]) == 0 {
		delete(ix, key)
	}
}
