package api

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The lean path. net/http costs about half of an API send's CPU (its
// request and header maps, the response's buffers, the connection
// loop's bookkeeping: docs/performance.md, "API send"). Handler.Listener
// wraps the server's listener: a connection whose first bytes are
// "POST /api/v1/apps/" is served by leanConn, which parses the head of a
// plain send itself, reuses one *http.Request, header map and answer
// buffer per connection and runs the same Handler, so the API key is
// checked before the body is read and limits and error answers are the
// handler's. Anything else it does not take: every other connection goes
// to net/http untouched (its first bytes only peeked at), and a request
// the lean path does not serve (another endpoint, a chunked body,
// Expect, Connection: close, HTTP/1.0, an NDJSON stream, a head over
// the limit) hands the connection to net/http at that request.

// LeanConfig bounds the connections Handler.Listener serves itself, as
// the http.Server fields of the same names bound the others.
type LeanConfig struct {
	// ReadHeaderTimeout bounds reading a request's head. Default 10 s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a request's body, from the end of its
	// head (pushd's http.read_timeout). Zero: no bound.
	ReadTimeout time.Duration
	// IdleTimeout closes a connection idle this long between requests.
	// Default 120 s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the head the lean path reads; a longer one is
	// handed to net/http, which applies its own limit. Default and most
	// 4 KiB, the lean path's buffer.
	MaxHeaderBytes int
	// Answered, when set, is called after each answer the lean path
	// wrote, with the request and the answer's status (the middleware the
	// net/http path runs, such as error counting, does not see these).
	Answered func(r *http.Request, status int)
}

// leanBuffer is the size of a lean connection's read buffer.
const leanBuffer = 4 << 10

// maxDiscard is the most of an unread body a lean connection reads past
// to keep the connection, as net/http does (256 KiB).
const maxDiscard = 256 << 10

// apiPrefix starts the request line of every API call served lean.
const apiPrefix = "POST /api/v1/apps/"

// Listener returns ln with the API's sends served by the lean path; give
// it to the http.Server that serves h (and everything else). Closing it
// closes ln and the lean connections waiting for a request; the others
// end after their answer.
func (h *Handler) Listener(ln net.Listener, cfg LeanConfig) net.Listener {
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = 10 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 120 * time.Second
	}
	if cfg.MaxHeaderBytes <= 0 || cfg.MaxHeaderBytes > leanBuffer {
		cfg.MaxHeaderBytes = leanBuffer
	}
	l := &leanListener{Listener: ln, h: h, cfg: cfg, handoff: make(chan net.Conn),
		done: make(chan struct{}), acceptDone: make(chan struct{}), conns: map[*leanConn]bool{}}
	go l.acceptLoop()
	return l
}

// leanListener is the listener of Handler.Listener.
type leanListener struct {
	net.Listener
	h   *Handler
	cfg LeanConfig

	handoff    chan net.Conn // connections for net/http
	done       chan struct{} // closed by Close
	acceptDone chan struct{} // closed when the accept loop ends, acceptErr set
	acceptErr  error

	mu     sync.Mutex
	closed bool
	conns  map[*leanConn]bool // lean connections, true while waiting for a request

	served atomic.Int64 // requests served lean
}

// acceptLoop accepts connections and sorts them, each on its own
// goroutine, until ln fails; temporary errors are retried with a backoff,
// as http.Server.Serve does.
func (l *leanListener) acceptLoop() {
	defer close(l.acceptDone)
	var delay time.Duration
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(delay):
					continue
				case <-l.done:
				}
			}
			l.acceptErr = err
			return
		}
		delay = 0
		go l.sort(nc)
	}
}

// Accept returns the next connection for net/http.
func (l *leanListener) Accept() (net.Conn, error) {
	select {
	case nc := <-l.handoff:
		return nc, nil
	case <-l.acceptDone:
		return nil, l.acceptErr
	}
}

// Close closes ln and the lean connections waiting for a request.
func (l *leanListener) Close() error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.done)
		for c, idle := range l.conns {
			if idle {
				_ = c.nc.Close()
			}
		}
	}
	l.mu.Unlock()
	return l.Listener.Close()
}

// handOff gives nc to net/http.
func (l *leanListener) handOff(nc net.Conn) {
	select {
	case l.handoff <- nc:
	case <-l.done:
		_ = nc.Close()
	}
}

// sort peeks at nc's first bytes (without reading them) and serves it
// lean or hands it to net/http.
func (l *leanListener) sort(nc net.Conn) {
	c := &leanConn{l: l, nc: nc}
	if !l.track(c, true) {
		_ = nc.Close()
		return
	}
	_ = nc.SetReadDeadline(time.Now().Add(l.cfg.ReadHeaderTimeout))
	switch peekPrefix(nc, apiPrefix) {
	case peekMatch:
		c.serve()
	case peekOther:
		l.forget(c)
		_ = nc.SetReadDeadline(time.Time{})
		l.handOff(nc)
	default: // nothing came, or the peek failed: as net/http would, close
		l.forget(c)
		_ = nc.Close()
	}
}

// track registers c, idle or not; false means the listener is closed.
func (l *leanListener) track(c *leanConn, idle bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.conns[c] = idle
	return true
}

func (l *leanListener) forget(c *leanConn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

// peekResult is what peekPrefix found.
type peekResult int

const (
	peekFailed peekResult = iota // an error, a timeout or the end before any decision
	peekMatch                    // the connection starts with the prefix
	peekOther                    // it does not (or cannot be peeked at)
)

// handoffConn is a connection handed to net/http with bytes the lean path
// has read but not served: they are read first.
type handoffConn struct {
	net.Conn
	mu sync.Mutex
	br *bufio.Reader
}

func (c *handoffConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	br := c.br
	if br != nil && br.Buffered() == 0 {
		c.br, br = nil, nil
	}
	c.mu.Unlock()
	if br == nil {
		return c.Conn.Read(p)
	}
	return br.Read(p[:min(len(p), br.Buffered())])
}

// SyscallConn lets the hub write a stream's socket directly.
func (c *handoffConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// CloseWrite half-closes the socket, as net/http does before closing.
func (c *handoffConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// leanBody is a request body of a known length read from the
// connection's buffer.
type leanBody struct {
	br *bufio.Reader
	n  int64 // bytes left
}

func (b *leanBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.br.Read(p)
	b.n -= int64(n)
	if err == io.EOF && b.n > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (*leanBody) Close() error { return nil }

// leanWriter gathers an answer, written in one piece once the handler
// returns.
type leanWriter struct {
	header http.Header
	status int
	body   []byte
}

func (w *leanWriter) Header() http.Header { return w.header }

func (w *leanWriter) WriteHeader(status int) {
	if w.status == 0 && status >= 200 {
		w.status = status
	}
}

func (w *leanWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.body = append(w.body, p...)
	return len(p), nil
}

// leanConn is a connection served by the lean path.
type leanConn struct {
	l      *leanListener
	nc     net.Conn
	br     *bufio.Reader
	r      *http.Request
	w      leanWriter
	body   leanBody
	out    []byte
	auth   []string // the Authorization value, reused while it does not change
	ctype  []string // the Content-Type value, likewise
	cancel context.CancelFunc
}

// errHandOff means the request is one for net/http.
var errHandOff = errors.New("not for the lean path")

// serve serves requests until one is for net/http, the connection fails
// or the listener closes.
func (c *leanConn) serve() {
	l := c.l
	c.br = bufio.NewReaderSize(c.nc, leanBuffer)
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.r = (&http.Request{Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, URL: &url.URL{},
		Header: http.Header{}, RemoteAddr: c.nc.RemoteAddr().String()}).WithContext(ctx)
	c.body.br = c.br
	c.r.Body = &c.body
	c.w.header = http.Header{}
	c.auth, c.ctype = []string{""}, []string{""}
	handedOff := false
	defer func() {
		cancel()
		l.forget(c)
		if !handedOff {
			_ = c.nc.Close()
		}
	}()
	for first := true; ; first = false {
		if !first {
			if !l.track(c, true) {
				return
			}
			_ = c.nc.SetReadDeadline(time.Now().Add(l.cfg.IdleTimeout))
			if _, err := c.br.Peek(1); err != nil {
				return
			}
			_ = c.nc.SetReadDeadline(time.Now().Add(l.cfg.ReadHeaderTimeout))
		}
		if !l.track(c, false) {
			return
		}
		n, err := c.readHead()
		if errors.Is(err, errHandOff) {
			handedOff = true
			l.forget(c)
			_ = c.nc.SetReadDeadline(time.Time{})
			l.handOff(&handoffConn{Conn: c.nc, br: c.br})
			return
		}
		if err != nil {
			return
		}
		_, _ = c.br.Discard(n)
		if !c.answer() {
			return
		}
	}
}

// readHead waits for the whole head of the next request and checks that
// the lean path serves it: errHandOff if not. It sets c.r from it and
// returns its length; nothing is consumed.
func (c *leanConn) readHead() (int, error) {
	var b []byte
	for {
		b, _ = c.br.Peek(c.br.Buffered())
		if !strings.HasPrefix(apiPrefix, string(b[:min(len(b), len(apiPrefix))])) {
			return 0, errHandOff
		}
		if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
			b = b[:i+2] // the lines, each with its CRLF
			break
		}
		if len(b) >= c.l.cfg.MaxHeaderBytes || bytes.Contains(b, []byte("\n\n")) {
			return 0, errHandOff // too long for the lean path, or bare LF line ends
		}
		if _, err := c.br.Peek(len(b) + 1); err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return 0, errHandOff
			}
			return 0, err
		}
	}
	n := len(b) + 2
	line, rest, _ := bytes.Cut(b, []byte("\r\n"))
	target, ok := bytes.CutPrefix(line, []byte("POST "))
	if !ok {
		return 0, errHandOff
	}
	target, ok = bytes.CutSuffix(target, []byte(" HTTP/1.1"))
	if !ok || !plainSendPath(target) {
		return 0, errHandOff
	}
	var length int64 = -1
	var auth, ctype, host []byte
	haveAuth, haveType, haveHost := false, false, false
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !isToken(name) || !plainValue(value) {
			return 0, errHandOff // folded or malformed lines are net/http's to refuse
		}
		value = bytes.Trim(value, " \t")
		dup := false
		switch {
		case asciiFold(name, "content-length"):
			if dup = length >= 0; !dup {
				if length = digits(value); length < 0 {
					return 0, errHandOff
				}
			}
		case asciiFold(name, "authorization"):
			dup, haveAuth, auth = haveAuth, true, value
		case asciiFold(name, "content-type"):
			dup, haveType, ctype = haveType, true, value
			if !plainJSONType(value) {
				return 0, errHandOff // NDJSON streams and anything unusual
			}
		case asciiFold(name, "host"):
			dup, haveHost, host = haveHost, true, value
		case asciiFold(name, "connection"):
			if !asciiFold(value, "keep-alive") {
				return 0, errHandOff
			}
		case asciiFold(name, "transfer-encoding"), asciiFold(name, "expect"), asciiFold(name, "upgrade"),
			asciiFold(name, "te"), asciiFold(name, "trailer"):
			return 0, errHandOff
		}
		if dup {
			return 0, errHandOff
		}
	}
	if length < 0 || !haveHost || !plainHost(host) {
		return 0, errHandOff
	}
	r := c.r
	r.Method = http.MethodPost
	if string(target) != r.RequestURI {
		r.RequestURI = string(target)
		r.URL.Path = r.RequestURI
	}
	if string(host) != r.Host {
		r.Host = string(host)
	}
	clear(r.Header)
	if haveAuth {
		if string(auth) != c.auth[0] {
			c.auth = []string{string(auth)} // a new slice: the handler may keep the old one
		}
		r.Header["Authorization"] = c.auth
	}
	if haveType {
		if string(ctype) != c.ctype[0] {
			c.ctype = []string{string(ctype)}
		}
		r.Header["Content-Type"] = c.ctype
	}
	r.ContentLength, c.body.n = length, length
	return n, nil
}

// plainSendPath reports whether target is /api/v1/apps/{app}/send as the
// handler's fast route takes it: no query, no escapes, no dot segments.
func plainSendPath(target []byte) bool {
	for _, ch := range target {
		if ch <= ' ' || ch >= 0x7f || ch == '%' || ch == '?' || ch == '#' {
			return false
		}
	}
	rest, ok := bytes.CutPrefix(target, []byte("/api/v1/apps/"))
	if !ok {
		return false
	}
	app, ok := bytes.CutSuffix(rest, []byte("/send"))
	return ok && len(app) > 0 && string(app) != "." && string(app) != ".." && bytes.IndexByte(app, '/') < 0
}

// isToken reports whether b is a header name net/http takes: a token of
// RFC 9110.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, ch := range b {
		switch {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", ch) >= 0:
		default:
			return false
		}
	}
	return true
}

// plainValue reports whether a header value holds no control byte but
// tabs (net/http refuses them).
func plainValue(b []byte) bool {
	for _, ch := range b {
		if (ch < ' ' && ch != '\t') || ch == 0x7f {
			return false
		}
	}
	return true
}

// plainHost reports whether a Host value is a plain name, address or
// bracketed IPv6 address with an optional port; anything else is left to
// net/http's checks.
func plainHost(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, ch := range b {
		switch {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9':
		case ch == '.' || ch == '-' || ch == ':' || ch == '[' || ch == ']' || ch == '_':
		default:
			return false
		}
	}
	return true
}

// plainJSONType reports whether a Content-Type is JSON (or unset).
func plainJSONType(v []byte) bool {
	return len(v) == 0 || asciiFold(v, "application/json") || asciiFold(v, "application/json; charset=utf-8")
}

// asciiFold reports whether b is s (lower case ASCII) in any case.
func asciiFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		ch := b[i]
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		if ch != s[i] {
			return false
		}
	}
	return true
}

// digits parses a Content-Length: decimal digits only, else -1.
func digits(b []byte) int64 {
	if len(b) == 0 || len(b) > 18 {
		return -1
	}
	var n int64
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return -1
		}
		n = n*10 + int64(ch-'0')
	}
	return n
}

// answer runs the handler on c.r and writes its answer; false means the
// connection is to be closed.
func (c *leanConn) answer() (keep bool) {
	l := c.l
	if l.cfg.ReadTimeout > 0 {
		_ = c.nc.SetReadDeadline(time.Now().Add(l.cfg.ReadTimeout))
	} else {
		_ = c.nc.SetReadDeadline(time.Time{})
	}
	w := &c.w
	clear(w.header)
	w.status, w.body = 0, w.body[:0]
	start := time.Now()
	if !c.run() {
		return false
	}
	l.served.Add(1)
	// What the handler left of the body is read past, up to maxDiscard;
	// past that, or when it cannot be read, the connection ends.
	keep = c.body.n == 0
	if c.body.n > 0 && c.body.n <= maxDiscard {
		_, err := io.Copy(io.Discard, &c.body)
		keep = err == nil && c.body.n == 0
	}
	select {
	case <-l.done:
		keep = false
	default:
	}
	out := c.appendHead(c.out[:0], keep)
	out = append(out, w.body...)
	c.out = out
	if len(out) > 64<<10 {
		c.out = nil // a large answer's buffer is not kept
	}
	if _, err := c.nc.Write(out); err != nil {
		return false
	}
	if l.cfg.Answered != nil {
		l.cfg.Answered(c.r, w.status)
	}
	if e := l.h.log.Debug(); e.Enabled() {
		e.Str("method", c.r.Method).Str("path", c.r.URL.Path).Int("status", w.status).
			Dur("took", time.Since(start)).Msg("request (lean)")
	}
	return keep
}

// run calls the handler; a panic is answered with 500 and ends the
// connection (http.ErrAbortHandler ends it without an answer).
func (c *leanConn) run() (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler { //nolint:errorlint // a panic value, compared as net/http does
				c.l.h.log.Error().Interface("panic", p).Str("path", c.r.URL.Path).Msg("API handler panicked")
				_, _ = c.nc.Write([]byte("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
			}
			ok = false
		}
	}()
	c.l.h.ServeHTTP(&c.w, c.r)
	return true
}

// appendHead appends the answer's status line and headers, with Date
// and Content-Length as net/http writes them.
func (c *leanConn) appendHead(b []byte, keep bool) []byte {
	w := &c.w
	w.WriteHeader(http.StatusOK)
	if _, ok := w.header["Content-Type"]; !ok && len(w.body) > 0 {
		w.header.Set("Content-Type", http.DetectContentType(w.body))
	}
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(w.status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(w.status)...)
	b = append(b, "\r\n"...)
	for k, vs := range w.header {
		if k == "Content-Length" || k == "Date" || k == "Connection" || k == "Transfer-Encoding" {
			continue
		}
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	b = append(b, "Date: "...)
	b = time.Now().UTC().AppendFormat(b, http.TimeFormat)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(w.body)), 10)
	if !keep {
		b = append(b, "\r\nConnection: close"...)
	}
	return append(b, "\r\n\r\n"...)
}
