package nacos

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"runtime"
	"sync"
	"time"
)

// A peer link is one TCP connection from a node to a peer that carries
// its requests in one direction and the peer's replies in the other, many
// in a frame, instead of one HTTP request per send. It starts as an HTTP
// request to PathLink with the request signature of every peer call (and
// Upgrade: linkProtocol); the peer answers 101 with a signed reply bound to
// the request's nonce. From then on each frame is
//
//	length (4 bytes, big endian) | body | HMAC-SHA256 (32 bytes)
//
// where the HMAC covers the frame's sequence number in its direction and
// the body, under a key derived from the shared secret, the handshake's
// nonce, both node ids and the direction (linkKey). A frame that is
// replayed, reordered, cut, moved to another link or forged fails it, and
// the link is closed. In insecure mode (no secret) frames carry no HMAC.

// PathLink is the peer API path a peer link starts at.
const PathLink = "/pushd/peer/v1/link"

// linkProtocol is the Upgrade token of a peer link.
const linkProtocol = "pushd-peer-link/1"

// macSize is the length of a frame's HMAC.
const macSize = sha256.Size

// maxQueuedBytes bounds what a link holds unwritten: a peer that stops
// reading makes sends fail at once instead of growing the queue.
const maxQueuedBytes = 16 << 20

// Link directions, part of the derived key.
const (
	dirRequests = "requests"
	dirReplies  = "replies"
)

var (
	errLinkClosed  = errors.New("peer link closed")
	errLinkBusy    = errors.New("peer link queue full")
	errFrameMAC    = errors.New("peer link frame with a bad signature")
	errFrameSize   = errors.New("peer link frame too large")
	errEntrySize   = errors.New("request larger than the peer's body limit")
	errNoLinkPeer  = errors.New("peer does not serve links")
	errLinkRefused = errors.New("peer refused the link")
)

// linkKey derives the key of one direction of the link opened with nonce
// by from to to.
func (s *signer) linkKey(dir, nonce, from, to string) []byte {
	m := hmac.New(sha256.New, s.key)
	for _, part := range []string{"pushd-peer-link-v1", dir, nonce, from, to} {
		m.Write([]byte(part))
		m.Write([]byte{'\n'})
	}
	return m.Sum(nil)
}

// frameMAC returns the frame signatures of one direction (nil in insecure
// mode).
func (s *signer) frameMAC(dir, nonce, from, to string) *frameMAC {
	if s == nil {
		return nil
	}
	return &frameMAC{h: hmac.New(sha256.New, s.linkKey(dir, nonce, from, to))}
}

// frameMAC signs (or checks) the frames of one direction in order: each
// frame's HMAC covers its sequence number and its body.
type frameMAC struct {
	h        hash.Hash
	seq      uint64
	seqBytes [8]byte
	sum      []byte
}

// next returns the HMAC of the next frame, body; it is valid until the
// next call.
func (m *frameMAC) next(body []byte) []byte {
	binary.BigEndian.PutUint64(m.seqBytes[:], m.seq)
	m.seq++
	m.h.Reset()
	m.h.Write(m.seqBytes[:])
	m.h.Write(body)
	m.sum = m.h.Sum(m.sum[:0])
	return m.sum
}

// frameWriter batches the entries of one direction of a link into frames.
// Whoever adds an entry while no write is in progress writes; entries
// added during a write (or while the writer yields before it) go out with
// the next one, so concurrent senders share frames and system calls
// without a goroutine in between.
type frameWriter struct {
	conn     net.Conn
	timeout  time.Duration
	maxFrame int

	mu         sync.Mutex
	queue      []byte // entries not yet written
	ends       []int  // where each queued entry ends, to split frames at maxFrame
	spareQueue []byte // the buffers of the last write, for the next queue
	spareEnds  []int
	writing    bool
	err        error // the first write error: the link is dead

	// Owned by the writer of the moment.
	mac  *frameMAC
	out  []byte
	done func(error) // called once with the first write error
}

// add appends one entry (what encode appends to its argument) and, unless
// hold, writes what is queued when no write is in progress. hold queues
// only: the caller calls flush after a series.
func (w *frameWriter) add(encode func([]byte) []byte, hold bool) error {
	w.mu.Lock()
	if w.err != nil {
		w.mu.Unlock()
		return w.err
	}
	if len(w.queue) > maxQueuedBytes {
		w.mu.Unlock()
		return errLinkBusy
	}
	start := len(w.queue)
	w.queue = encode(w.queue)
	if len(w.queue)-start > w.maxFrame {
		w.queue = w.queue[:start]
		w.mu.Unlock()
		return errEntrySize
	}
	w.ends = append(w.ends, len(w.queue))
	if hold || w.writing {
		w.mu.Unlock()
		return nil
	}
	// This caller writes, but first lets the goroutines that are ready to
	// run on its P go: under load those are senders about to add their
	// entries, which then share the write (pushbench, two nodes, 16
	// publishers: 64.5 against 72.5 µs per send over both nodes, median
	// of 7 interleaved runs; with an empty run queue it costs ~0.1 µs).
	w.writing = true
	w.mu.Unlock()
	runtime.Gosched()
	w.mu.Lock()
	return w.writeLocked()
}

// flush writes what is queued unless a write is in progress (which will).
func (w *frameWriter) flush() error {
	w.mu.Lock()
	if w.writing || len(w.queue) == 0 || w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	return w.writeLocked()
}

// writeLocked writes until the queue is empty; it is called with mu held
// and returns with it released. The queue being written is swapped for
// the spare one, which takes the entries added meanwhile.
func (w *frameWriter) writeLocked() error {
	w.writing = true
	for len(w.queue) > 0 && w.err == nil {
		queue, ends := w.queue, w.ends
		w.queue, w.ends = w.spareQueue[:0], w.spareEnds[:0]
		w.mu.Unlock()
		w.out = w.frames(w.out[:0], queue, ends)
		_ = w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
		_, err := w.conn.Write(w.out)
		w.mu.Lock()
		w.spareQueue, w.spareEnds = queue, ends
		if err != nil {
			w.err = fmt.Errorf("%w: %w", errLinkClosed, err)
		}
	}
	w.writing = false
	err := w.err
	w.mu.Unlock()
	if err != nil && w.done != nil {
		w.done(err)
	}
	return err
}

// frames renders queued entries (ending at ends) as frames of at most
// maxFrame bytes of body each (add keeps every entry within it).
func (w *frameWriter) frames(out, queue []byte, ends []int) []byte {
	start, i := 0, 0
	for i < len(ends) {
		end := ends[i]
		for i++; i < len(ends) && ends[i]-start <= w.maxFrame; i++ {
			end = ends[i]
		}
		body := queue[start:end]
		size := len(body)
		if w.mac != nil {
			size += macSize
		}
		out = binary.BigEndian.AppendUint32(out, uint32(size))
		out = append(out, body...)
		if w.mac != nil {
			out = append(out, w.mac.next(body)...)
		}
		start = end
	}
	return out
}

// frameReader reads and checks the frames of one direction of a link.
type frameReader struct {
	r        *bufio.Reader
	mac      *frameMAC
	maxFrame int
	buf      []byte
	head     [4]byte
}

// buffered reports whether a whole frame is waiting in the read buffer,
// so that next returns without reading the connection.
func (fr *frameReader) buffered() bool {
	n := fr.r.Buffered()
	if n < 4 {
		return false
	}
	head, err := fr.r.Peek(4)
	return err == nil && int(binary.BigEndian.Uint32(head)) <= n-4
}

// next returns the body of the next frame as a string of its own (the
// decoded values keep pointing into it).
func (fr *frameReader) next() (string, error) {
	if _, err := io.ReadFull(fr.r, fr.head[:]); err != nil {
		return "", err
	}
	size := int(binary.BigEndian.Uint32(fr.head[:]))
	tail := 0
	if fr.mac != nil {
		tail = macSize
	}
	if size < tail || size-tail > fr.maxFrame {
		return "", errFrameSize
	}
	if cap(fr.buf) < size {
		fr.buf = make([]byte, size)
	}
	buf := fr.buf[:size]
	if _, err := io.ReadFull(fr.r, buf); err != nil {
		return "", err
	}
	body := buf[:size-tail]
	if fr.mac != nil && !hmac.Equal(fr.mac.next(body), buf[size-tail:]) {
		return "", errFrameMAC
	}
	return string(body), nil
}
