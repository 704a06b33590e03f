package hub

import (
	"errors"
	"net"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// numCPU is the unit of the default pool size (Config.Writers).
func numCPU() int { return runtime.GOMAXPROCS(0) }

// outlet is the writer side of a connection: told when frames are waiting.
type outlet interface {
	schedule(c *Conn)
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

func (p *writerPool) work() {
	defer p.wg.Done()
	var wb writeBuffers
	for c := p.next(); c != nil; c = p.next() {
		p.write(c, &wb, false)
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

// The writer side of Conn follows. Only the connection's current writer
// calls take, buffers, recycle and written; attach is called once by the
// stream's setup (stream.go) and socket by the sweep.

// attach connects the writer side, and for hijacked streams the socket,
// and wakes the writer for what is queued.
func (c *Conn) attach(out outlet, nc net.Conn) {
	c.mu.Lock()
	c.out, c.nc = out, nc
	c.scheduled = true
	c.mu.Unlock()
	out.schedule(c)
}

// socket returns the hijacked socket, or nil.
func (c *Conn) socket() net.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nc
}

// take removes the waiting frames; done reports that the stream must end
// after writing them. Finding nothing to do clears the scheduled mark, so
// the next enqueue wakes the writer again.
func (c *Conn) take() (frames []*frame, done bool) {
	c.mu.Lock()
	if len(c.queue) > 0 {
		frames, c.queue, c.spare = c.queue, c.spare, nil
	}
	done = c.closed
	if len(frames) == 0 && !done {
		c.scheduled = false
	}
	c.mu.Unlock()
	return frames, done
}

// buffers lays frames out for one vectored write into bufs, filling in
// the id counter of counted frames with digits appended to scratch. It
// returns both slices grown, for the writer to reuse.
func (c *Conn) buffers(frames []*frame, bufs net.Buffers, scratch []byte) (net.Buffers, []byte) {
	for _, f := range frames {
		bufs = append(bufs, f.head)
		if f.counted {
			c.counter++
			start := len(scratch)
			// A connection in resumable streams: every counted id
			// carries its positions, so any Last-Event-ID resumes.
			positioned := false
			if c.resume != nil {
				scratch, positioned = c.resume.appendIDAfter(scratch, f.streams)
			}
			if !positioned {
				scratch = strconv.AppendUint(scratch, c.counter, 10)
			}
			bufs = append(bufs, scratch[start:len(scratch):len(scratch)], f.tail)
		}
	}
	return bufs, scratch
}

// recycle keeps the slice of written frames as the connection's next
// queue (take swaps it in), so a busy connection does not allocate one
// per write. Only the writer calls it.
func (c *Conn) recycle(frames []*frame) {
	clear(frames)
	if cap(frames) <= 2*c.hub.cfg.QueueSize {
		c.spare = frames[:0]
	}
}

// written records frames that reached the socket: QoS messages are
// remembered for redelivery, or acknowledged at once for clients that
// cannot acknowledge, if they still listen to the event (a message whose
// listener was removed while it waited stays stored).
func (c *Conn) written(frames []*frame) {
	var ids, events []string
	for _, f := range frames {
		if f.qosID != "" {
			ids = append(ids, f.qosID)
			events = append(events, f.event)
		}
	}
	if len(ids) == 0 {
		return
	}
	if !c.canAck {
		seen := ids[:0]
		c.mu.Lock()
		for i, id := range ids {
			if c.receivesLocked(events[i]) {
				seen = append(seen, id)
			}
		}
		c.mu.Unlock()
		if len(seen) > 0 {
			c.hub.ackWritten(c, seen)
		}
		return
	}
	if c.hub.cfg.RedeliverAfter < 0 {
		return
	}
	now := time.Now()
	c.mu.Lock()
	for i, id := range ids {
		// A client only sees (and so acknowledges) events it listens to;
		// sending the others again would not help.
		if !c.listensLocked(events[i]) {
			continue
		}
		if c.unacked == nil {
			c.unacked = make(map[string]time.Time, len(ids))
		}
		c.unacked[id] = now
	}
	c.mu.Unlock()
}
