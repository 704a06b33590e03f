package hub

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"sync"
	"syscall"
	"time"
)

func numCPU() int { return runtime.GOMAXPROCS(0) }

// jitter spreads d over [d/2, 3d/2).
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d)
}

// sseHeaders sets the stream's response headers.
func sseHeaders(hdr http.Header) {
	hdr.Set("Content-Type", "text/event-stream;charset=UTF-8")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no")
	hdr.Del("Content-Length")
}

// ServeStream writes c's stream to w until the connection closes. Headers
// already set on w (X-Sse-*, CORS) are sent with the stream's own.
//
// An HTTP/1.x stream is hijacked when the hub has a writer pool: the
// request goroutine and its buffers are released at once and the pool
// writes the socket, so an idle connection costs no goroutine. Otherwise
// (HTTP/2, a ResponseWriter that cannot be hijacked, Config.Writers -1) the
// calling goroutine is the writer and ServeStream blocks until the end.
func (h *Hub) ServeStream(w http.ResponseWriter, r *http.Request, c *Conn) {
	h.streams.Add(1)
	sseHeaders(w.Header())
	if h.pool != nil && r.ProtoMajor == 1 && h.hijack(w, c) {
		return
	}
	defer h.streams.Done()
	h.serveDirect(w, r, c)
}

// hijack takes over the socket of an HTTP/1.x request, writes the response
// head and hands c to the writer pool. It reports false, having written
// nothing, when w cannot be hijacked.
func (h *Hub) hijack(w http.ResponseWriter, c *Conn) bool {
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	w.Header().Set("Connection", "close")
	if err := w.Header().Write(&head); err != nil {
		return false
	}
	head.WriteString("\r\n")
	nc, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		w.Header().Del("Connection")
		return false
	}
	_ = rw // its buffers are dropped: nothing more is read from the socket
	_ = nc.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout))
	if _, err := nc.Write(head.Bytes()); err != nil {
		_ = nc.Close()
		c.close(ReasonWriteError)
		h.finish(c)
		h.streams.Done()
		return true
	}
	// From here on writes are bounded per write (writeSome), never by the
	// deadline of the head: a raw write checks it too.
	_ = nc.SetWriteDeadline(time.Time{})
	c.raw = newRawSocket(nc)
	h.started(c)
	c.attach(h.pool, nc)
	return true
}

// chanOutlet wakes the goroutine writing one connection directly.
type chanOutlet chan struct{}

func (o chanOutlet) schedule(*Conn) {
	select {
	case o <- struct{}{}:
	default:
	}
}

// serveDirect is the writer loop of a connection written by its own
// request goroutine.
func (h *Hub) serveDirect(w http.ResponseWriter, r *http.Request, c *Conn) {
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		c.close(ReasonWriteError)
		h.finish(c)
		return
	}
	wake := make(chanOutlet, 1)
	h.started(c)
	c.attach(wake, nil)
	var wb writeBuffers
	for {
		select {
		case <-r.Context().Done():
			c.close(ReasonClientGone)
		case <-wake:
		}
		for {
			frames, done := c.take()
			if len(frames) > 0 {
				_ = rc.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout))
				_, err := wb.lay(c, frames).WriteTo(w)
				if err == nil {
					err = rc.Flush()
				}
				if err != nil {
					c.close(ReasonWriteError)
					h.finish(c)
					return
				}
				c.written(frames)
				c.recycle(frames)
			}
			if done {
				h.finish(c)
				return
			}
			if len(frames) == 0 {
				break
			}
		}
	}
}

// finish unregisters an ended connection once.
func (h *Hub) finish(c *Conn) {
	h.unregister(c)
}

// writerPool writes the hijacked connections: each connection with frames
// waiting is in ready at most once, and one worker writes it at a time.
type writerPool struct {
	hub     *Hub
	workers int
	mu      sync.Mutex
	cond    *sync.Cond
	ready   []*Conn
	stopped bool
	wg      sync.WaitGroup
}

func newWriterPool(h *Hub, workers int) *writerPool {
	p := &writerPool{hub: h, workers: workers}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(workers)
	for range workers {
		go p.work()
	}
	return p
}

func (p *writerPool) schedule(c *Conn) {
	p.mu.Lock()
	p.ready = append(p.ready, c)
	p.mu.Unlock()
	p.cond.Signal()
}

// scheduleAll queues many connections under one lock and wakes as many
// workers as there is work for.
func (p *writerPool) scheduleAll(conns []*Conn) {
	p.mu.Lock()
	p.ready = append(p.ready, conns...)
	p.mu.Unlock()
	if len(conns) >= p.workers {
		p.cond.Broadcast()
		return
	}
	for range conns {
		p.cond.Signal()
	}
}

// waker collects the pool connections a fan-out made ready, to wake their
// writers together; other outlets are woken at once.
type waker struct {
	pool  *writerPool
	conns []*Conn
}

var wakerConns = sync.Pool{New: func() any { return new([]*Conn) }}

func (h *Hub) newWaker() waker { return waker{pool: h.pool} }

// offer queues f to c (see Conn.offer) and notes its writer to wake.
func (w *waker) offer(c *Conn, f *frame, listening bool) bool {
	ok, out := c.offer(f, listening)
	switch {
	case out == nil:
	case w.pool != nil && out == outlet(w.pool):
		if w.conns == nil {
			w.conns = (*wakerConns.Get().(*[]*Conn))[:0]
		}
		w.conns = append(w.conns, c)
	default:
		out.schedule(c)
	}
	return ok
}

// inlineWrites is the most connections a fan-out writes on its own
// goroutine instead of waking pool workers: for a personal send, waking a
// worker (a thread wake-up and two context switches) costs more than the
// non-blocking write itself.
const inlineWrites = 4

// flush writes or wakes the collected writers.
func (w *waker) flush() {
	if len(w.conns) == 0 {
		return
	}
	if len(w.conns) <= inlineWrites {
		for _, c := range w.conns {
			w.pool.writeInline(c)
		}
	} else {
		w.pool.scheduleAll(w.conns)
	}
	clear(w.conns)
	conns := w.conns[:0]
	wakerConns.Put(&conns)
	w.conns = nil
}

func (p *writerPool) stop() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	p.cond.Broadcast()
	p.wg.Wait()
}

func (p *writerPool) next() *Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.ready) == 0 {
		if p.stopped {
			return nil
		}
		p.cond.Wait()
	}
	c := p.ready[0]
	p.ready[0] = nil
	p.ready = p.ready[1:]
	if len(p.ready) == 0 {
		p.ready = p.ready[:0:0]
	}
	return c
}

// writeBuffers are a writer's reusable buffers. out is the slice a write
// consumes; keeping it here rather than in a local variable keeps it from
// escaping to the heap on every write.
type writeBuffers struct {
	bufs    net.Buffers
	out     net.Buffers
	scratch []byte
	iov     []iovec
}

// lay lays frames out for c into the buffers and returns them.
func (wb *writeBuffers) lay(c *Conn, frames []*frame) *net.Buffers {
	wb.bufs, wb.scratch = c.buffers(frames, wb.bufs[:0], wb.scratch[:0])
	wb.out = wb.bufs
	return &wb.out
}

func (p *writerPool) work() {
	defer p.wg.Done()
	var wb writeBuffers
	for c := p.next(); c != nil; c = p.next() {
		p.write(c, &wb, false)
	}
}

var inlineBuffers = sync.Pool{New: func() any { return new(writeBuffers) }}

// writeInline writes c, which the caller has just made ready, on the
// calling goroutine, as a pool worker would. Only sockets written without
// blocking qualify; the rest, and the end of a stream (which runs the
// disconnect hooks), are left to the pool.
func (p *writerPool) writeInline(c *Conn) {
	if c.raw == nil {
		p.schedule(c)
		return
	}
	wb := inlineBuffers.Get().(*writeBuffers)
	p.write(c, wb, true)
	inlineBuffers.Put(wb)
}

// Writing to a socket whose send buffer is full blocks. A pool worker
// never waits on one socket for longer than writeSlice: what is left is
// kept with the connection and tried again after stallRetry, so a few
// stuck browsers cannot hold up the others. A connection stalled for
// longer than Config.WriteTimeout in total is closed.
const (
	writeSlice = 20 * time.Millisecond
	stallRetry = 50 * time.Millisecond
)

// pendingWrite is what a pool worker could not yet write to a socket.
type pendingWrite struct {
	rest    []byte    // the bytes still to write
	frames  []*frame  // the frames they belong to
	closing bool      // the stream ends once they are written
	since   time.Time // when the socket stopped taking bytes
}

// write drains c's queue to its socket until the queue is empty, the
// socket stalls or the connection ends. Inline, the end of the stream is
// handed to a pool worker instead.
func (p *writerPool) write(c *Conn, wb *writeBuffers, inline bool) {
	h := p.hub
	for {
		var bufs *net.Buffers
		var frames []*frame
		closing := false
		if w := c.stalled; w != nil {
			wb.out = append(wb.out[:0], w.rest)
			bufs, frames, closing = &wb.out, w.frames, w.closing
		} else {
			var done bool
			frames, done = c.take()
			if len(frames) == 0 && !done {
				return
			}
			bufs, closing = wb.lay(c, frames), done
		}
		if len(frames) > 0 {
			blocked, err := p.writeSome(c, bufs, wb)
			switch {
			case err == nil && !blocked:
				c.stalled = nil
				c.written(frames)
				c.recycle(frames)
			case err == nil && p.keepStalled(c, *bufs, frames, closing):
				return
			default:
				if err == nil {
					err = errStalled
				}
				reason := ReasonWriteError
				if errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
					reason = ReasonClientGone
				}
				h.log.Debug().Err(err).Str("conn", c.id).Msg("write failed")
				c.close(reason)
				closing = true
			}
		}
		if closing && inline {
			// c stays scheduled; the worker finds the queue done (or the
			// failed write still stalled) and ends the stream.
			p.schedule(c)
			return
		}
		if closing {
			if c.raw != nil {
				c.raw.release()
			}
			_ = c.nc.Close()
			h.finish(c)
			h.streams.Done()
			return
		}
	}
}

// errStalled closes a connection whose socket took nothing for longer
// than the write timeout.
var errStalled = errors.New("hub: socket stalled")

// writeSome writes what the socket takes now, consuming bufs; blocked
// reports that it stopped taking bytes. Plain sockets on Linux get one
// non-blocking send on the descriptor; others a write bounded by writeSlice.
func (p *writerPool) writeSome(c *Conn, bufs *net.Buffers, wb *writeBuffers) (blocked bool, err error) {
	if c.raw != nil {
		return c.raw.writeNow(bufs, &wb.iov)
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(writeSlice))
	_, err = bufs.WriteTo(c.nc) // advances bufs past what was written
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true, nil
	}
	return false, err
}

// keepStalled keeps the unwritten rest of a write with c and schedules a
// retry, unless c has been stalled for longer than the write timeout.
func (p *writerPool) keepStalled(c *Conn, rest net.Buffers, frames []*frame, closing bool) bool {
	now := time.Now()
	since := now
	if c.stalled != nil {
		since = c.stalled.since
	}
	if now.Sub(since) > p.hub.cfg.WriteTimeout {
		return false
	}
	var b []byte
	for _, part := range rest {
		b = append(b, part...)
	}
	c.stalled = &pendingWrite{rest: b, frames: frames, closing: closing, since: since}
	time.AfterFunc(stallRetry, func() { p.schedule(c) })
	return true
}
