package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"sync"

	"github.com/pushd/pushd/internal/httpx"
	"github.com/pushd/pushd/internal/httpx/hubhttp"
	"github.com/pushd/pushd/pkg/hub"
)

// batch makes the items of a batch in order and appends their answers to
// out; async items go to one background goroutine, started for the first
// of them, which sends them in order.
type batch struct {
	h     *Handler
	hb    *hub.Hub
	ctx   context.Context
	out   []byte
	later chan<- asyncSend
}

// item makes the send of one item, a checked JSON value, and appends its
// answer.
func (b *batch) item(raw []byte) {
	p, fail := prepare(b.hb, raw)
	switch {
	case fail == nil && p.async:
		id := p.logID()
		if b.later == nil {
			b.later = b.h.asyncSends(b.hb, asyncPending)
		}
		b.later <- asyncSend{p, id}
		b.out = appendAccepted(b.out, id, true)
		return
	case fail == nil:
		res, err := p.publish(b.ctx, b.hb)
		if err == nil {
			b.out = appendResult(b.out, res)
			return
		}
		fail = &failure{hubhttp.Status(err), err.Error()}
	}
	b.out = appendFailure(b.out, fail)
}

// asyncPending is how many async items of a batch wait at most for the
// background goroutine before the batch waits for it.
const asyncPending = 64

// done ends the batch's background goroutine once it has sent what it
// got.
func (b *batch) done() {
	if b.later != nil {
		close(b.later)
	}
}

// sendBatch makes the sends of a JSON array in order and answers the
// array of their results. Async items are sent after the others, in
// order, in the background, as they come.
func (h *Handler) sendBatch(w http.ResponseWriter, r *http.Request, hb *hub.Hub, body []byte, bp *[]byte) {
	// One walk over the array finds the items; they are sent only if
	// there are not too many.
	ip := itemLists.Get().(*[][]byte)
	defer putItems(ip)
	items := (*ip)[:0]
	for it := newMembers(body); it.next(); {
		if len(items) == h.cfg.MaxBatch {
			*ip = items
			httpx.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("batch of more than %d sends", h.cfg.MaxBatch))
			return
		}
		items = append(items, it.val)
	}
	*ip = items
	// The answer goes after the body, in the same buffer.
	b := batch{h: h, hb: hb, ctx: r.Context(), out: slices.Grow((*bp)[len(*bp):], len(items)*48+2)}
	b.out = append(b.out, '[')
	for i, raw := range items {
		if i > 0 {
			b.out = append(b.out, ',')
		}
		b.item(raw)
	}
	b.done()
	b.out = append(b.out, ']', '\n')
	writeAnswer(w, http.StatusOK, b.out)
	if len(*bp)+cap(b.out) > cap(*bp) {
		// The answer did not fit after the body: the pooled buffer is
		// made big enough for both, so that the next batch of this size
		// allocates neither.
		*bp = make([]byte, 0, len(*bp)+cap(b.out))
	}
}

// itemLists are reusable lists of a batch's items (spans of its body).
var itemLists = sync.Pool{New: func() any { l := make([][]byte, 0, 128); return &l }}

// maxPooledItems is the longest item list kept for reuse.
const maxPooledItems = 4096

func putItems(ip *[][]byte) {
	if cap(*ip) <= maxPooledItems {
		clear(*ip) // drop the references to the body
		*ip = (*ip)[:0]
		itemLists.Put(ip)
	}
}

// ndjsonType is the media type of a streamed batch.
const ndjsonType = "application/x-ndjson"

var ndjsonHeader = []string{ndjsonType}

func isNDJSON(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "" || ct == "application/json" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == ndjsonType
}

// flushAt is how many answer bytes a streamed batch gathers at most
// before writing them.
const flushAt = 32 << 10

// sendStream serves a streamed batch: send bodies one a line in, their
// results one a line out, in order, as they are made. Answers are
// written whenever the next line has not arrived yet, so a client may
// send on while it reads. A line is bounded by Config.MaxBody; the
// number of lines is not.
func (h *Handler) sendStream(w http.ResponseWriter, r *http.Request, hb *hub.Hub) {
	rc := http.NewResponseController(w)
	_ = rc.EnableFullDuplex() // HTTP/1.x reads the body on after the first answers; HTTP/2 always does
	br := bufio.NewReaderSize(r.Body, 16<<10)
	bp := bodies.Get().(*[]byte)
	defer putBody(bp)
	line := (*bp)[:0]
	b := batch{h: h, hb: hb, ctx: r.Context(), out: make([]byte, 0, 4<<10)}
	w.Header()["Content-Type"] = ndjsonHeader
	w.WriteHeader(http.StatusOK)
	defer b.done()
	flush := func() bool {
		if len(b.out) == 0 {
			return true
		}
		_, err := w.Write(b.out)
		if err == nil {
			err = rc.Flush()
		}
		b.out = b.out[:0]
		return err == nil
	}
	for {
		var over bool
		var err error
		line, over, err = readLine(br, line[:0], h.cfg.MaxBody)
		switch text := bytes.TrimSpace(line); {
		case over:
			b.out = appendFailure(b.out, &failure{http.StatusRequestEntityTooLarge, fmt.Sprintf("line over %d bytes", h.cfg.MaxBody)})
			b.out = append(b.out, '\n')
		case len(text) == 0:
		case !json.Valid(text):
			b.out = appendFailure(b.out, &failure{http.StatusBadRequest, "malformed JSON: " + syntaxError(text).Error()})
			b.out = append(b.out, '\n')
		default:
			b.item(text)
			b.out = append(b.out, '\n')
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				b.out = appendFailure(b.out, &failure{http.StatusBadRequest, "reading the body: " + err.Error()})
				b.out = append(b.out, '\n')
			}
			flush()
			*bp = line
			return
		}
		if (br.Buffered() == 0 || len(b.out) >= flushAt) && !flush() {
			*bp = line
			return
		}
	}
}

// readLine reads the next line into buf, keeping at most limit bytes of
// it; over reports a longer line, whose rest is skipped. err is io.EOF
// after the last line.
func readLine(br *bufio.Reader, buf []byte, limit int64) (line []byte, over bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if int64(len(buf)+len(chunk)) <= limit+1 { // +1: the newline
			buf = append(buf, chunk...)
		} else {
			over = true
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return buf, over, err
		}
	}
}
