package hub

import (
	"bytes"
	"net/http"
	"time"
)

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
				if err == nil {
					// The deadline bounds this write only. Left armed, it
					// would end an idle stream WriteTimeout after its last
					// write: HTTP/2 resets a stream whose deadline passes
					// even while nothing is being written.
					err = rc.SetWriteDeadline(time.Time{})
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
