package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/pushd/pushd/internal/httpx"
	"github.com/pushd/pushd/internal/httpx/hubhttp"
	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/qos"
)

// SendRequest is the body of POST …/send, or one item of a batch.
type SendRequest struct {
	To    hub.Target      `json:"to"`
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
	QoS   bool            `json:"qos,omitempty"`
	// TTL is how long a QoS message waits for its recipients ("24h").
	TTL   string `json:"ttl,omitempty"`
	Async bool   `json:"async,omitempty"`
}

// SendResponse is the answer of POST …/send.
type SendResponse = hub.Result

// BatchItemError is the answer for one refused or failed item of a batch
// send: the status and message a single send would have had.
type BatchItemError struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

// DefaultMaxBatch is the default of Config.MaxBatch.
const DefaultMaxBatch = 1000

// answerRoom is the room left after a body for the answer of one send.
const answerRoom = 96

// maxPooledBody is the largest body buffer kept for reuse.
const maxPooledBody = 64 << 10

var bodies = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// readBody reads the whole body, at most Config.MaxBody bytes, into a
// pooled buffer (give it back with putBody) and checks that it is one
// JSON value. On failure it has answered.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) (*[]byte, bool) {
	limit := h.cfg.MaxBody
	if r.ContentLength > limit {
		httpx.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", limit))
		return nil, false
	}
	bp := bodies.Get().(*[]byte)
	b := (*bp)[:0]
	if r.ContentLength >= 0 {
		// +1: EOF is seen without growing again; and room for the answer.
		b = slices.Grow(b, int(r.ContentLength)+1+answerRoom)
	}
	var err error
	for int64(len(b)) <= limit {
		if len(b) == cap(b) {
			b = slices.Grow(b, int(min(int64(max(len(b), 4<<10)), limit+1-int64(len(b)))))
		}
		var n int
		n, err = r.Body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			break
		}
	}
	*bp = b
	switch {
	case int64(len(b)) > limit:
		httpx.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", limit))
	case err != io.EOF:
		httpx.WriteError(w, http.StatusBadRequest, "reading the body: "+err.Error())
	case len(bytes.TrimSpace(b)) == 0:
		httpx.WriteError(w, http.StatusBadRequest, "empty body: a JSON object is expected")
	case !json.Valid(b):
		httpx.WriteError(w, http.StatusBadRequest, "malformed JSON: "+syntaxError(b).Error())
	default:
		return bp, true
	}
	putBody(bp)
	return nil, false
}

// syntaxError explains why json.Valid refused b.
func syntaxError(b []byte) error {
	var v json.RawMessage
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	return errors.New("invalid JSON")
}

func putBody(bp *[]byte) {
	if cap(*bp) <= maxPooledBody {
		bodies.Put(bp)
	}
}

// eventData turns the request's data into the SSE data text: a JSON string
// is sent raw, anything else as its compact JSON.
func eventData(raw json.RawMessage) (string, error) {
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return "", nil
	case raw[0] == '"':
		return stringOf(raw)
	case bytes.IndexAny(raw, " \t\r\n") < 0:
		return string(raw), nil
	}
	var buf bytes.Buffer
	buf.Grow(len(raw))
	if err := json.Compact(&buf, raw); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// plan is a checked send, ready to publish.
type plan struct {
	to    hub.Target
	ev    hub.Event
	qos   bool
	ttl   time.Duration
	async bool
}

// failure is a refused or failed send: its status and message.
type failure struct {
	status int
	msg    string
}

// prepare decodes and checks one send body, already checked to be JSON.
func prepare(hb *hub.Hub, body []byte) (plan, *failure) {
	var req SendRequest
	if err := decodeSend(body, &req); err != nil {
		return plan{}, &failure{http.StatusBadRequest, "malformed JSON: " + err.Error()}
	}
	data, err := eventData(req.Data)
	if err != nil {
		return plan{}, &failure{http.StatusBadRequest, "data: " + err.Error()}
	}
	p := plan{to: req.To, ev: hub.Event{Name: req.Event, Data: data}, qos: req.QoS, async: req.Async}
	if err := p.ev.Validate(); err != nil {
		return plan{}, &failure{http.StatusBadRequest, err.Error()}
	}
	if req.To.IsZero() {
		return plan{}, &failure{http.StatusBadRequest, "to: the target addresses nobody"}
	}
	switch {
	case req.QoS:
		if req.TTL != "" {
			if p.ttl, err = time.ParseDuration(req.TTL); err != nil || p.ttl <= 0 {
				return plan{}, &failure{http.StatusBadRequest, "ttl: a positive duration like \"24h\" is expected"}
			}
		}
		if !hb.QoSEnabled() {
			return plan{}, &failure{http.StatusNotImplemented, hub.ErrQoSDisabled.Error()}
		}
		p.ev.ID = qos.NewID()
	case req.TTL != "":
		return plan{}, &failure{http.StatusBadRequest, "ttl applies to qos sends only"}
	}
	return p, nil
}

// publish makes the send.
func (p plan) publish(ctx context.Context, hb *hub.Hub) (hub.Result, error) {
	if p.qos {
		return hb.Publish(ctx, p.to, p.ev, hub.WithQoS(p.ttl))
	}
	return hb.Publish(ctx, p.to, p.ev)
}

// logID is the id an async send is logged under and answered with.
func (p plan) logID() string {
	if p.ev.ID != "" {
		return p.ev.ID
	}
	return qos.NewID()
}

// asyncSend is a send made in the background, logged under id.
type asyncSend struct {
	plan
	id string
}

// asyncSends starts a goroutine that makes the sends given to the
// returned channel in order, each bounded by Config.AsyncTimeout, until
// the channel is closed. The channel holds pending sends; once full, it
// holds its sender back.
func (h *Handler) asyncSends(hb *hub.Hub, pending int) chan<- asyncSend {
	ch := make(chan asyncSend, pending)
	go func() {
		for s := range ch {
			ctx, cancel := context.WithTimeout(context.Background(), h.cfg.AsyncTimeout)
			res, err := s.publish(ctx, hb)
			cancel()
			if err != nil {
				h.log.Warn().Err(err).Str("send", s.id).Msg("async send failed")
				continue
			}
			h.log.Debug().Str("send", s.id).Int("delivered", res.Delivered).Msg("async send done")
		}
	}()
	return ch
}

// send serves POST …/send: one send body, a JSON array of them, or an
// NDJSON stream of them.
func (h *Handler) send(w http.ResponseWriter, r *http.Request, hb *hub.Hub) {
	if isNDJSON(r) {
		h.sendStream(w, r, hb)
		return
	}
	bp, ok := h.readBody(w, r)
	if !ok {
		return
	}
	defer putBody(bp)
	body := bytes.TrimLeft(*bp, " \t\r\n")
	if body[0] == '[' {
		h.sendBatch(w, r, hb, body, bp)
		return
	}
	p, fail := prepare(hb, body)
	if fail != nil {
		httpx.WriteError(w, fail.status, fail.msg)
		return
	}
	out := (*bp)[len(*bp):] // the answer goes after the body, in the same buffer
	if p.async {
		id := p.logID()
		later := h.asyncSends(hb, 1)
		later <- asyncSend{p, id}
		close(later)
		out = appendAccepted(out, id, false)
		writeAnswer(w, http.StatusAccepted, append(out, '\n'))
		return
	}
	res, err := p.publish(r.Context(), hb)
	if err != nil {
		hubhttp.WriteError(w, err)
		return
	}
	writeAnswer(w, http.StatusOK, append(appendResult(out, res), '\n'))
}

// jsonType is the Content-Type of every answer, shared to set it without
// allocating.
var jsonType = []string{"application/json"}

// writeAnswer writes a JSON answer.
func writeAnswer(w http.ResponseWriter, status int, b []byte) {
	w.Header()["Content-Type"] = jsonType
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// appendResult appends res as json.Marshal would.
func appendResult(b []byte, res hub.Result) []byte {
	b = append(b, `{"delivered":`...)
	b = strconv.AppendInt(b, int64(res.Delivered), 10)
	b = append(b, `,"stored":`...)
	b = strconv.AppendBool(b, res.Stored)
	if res.ID != "" {
		b = append(b, `,"id":`...)
		b = appendString(b, res.ID)
	}
	if len(res.Positions) > 0 {
		b = append(b, `,"positions":[`...)
		for i, p := range res.Positions {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"stream":`...)
			b = appendString(b, p.Stream)
			b = append(b, `,"offset":`...)
			b = strconv.AppendUint(b, p.Offset, 10)
			b = append(b, `,"epoch":`...)
			b = appendString(b, p.Epoch)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendAccepted appends the answer of an async send: {"id": …}, with
// "status": 202 as an item of a batch.
func appendAccepted(b []byte, id string, item bool) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, id)
	if item {
		b = append(b, `,"status":202`...)
	}
	return append(b, '}')
}

// appendFailure appends a BatchItemError.
func appendFailure(b []byte, f *failure) []byte {
	b = append(b, `{"error":`...)
	b = appendString(b, f.msg)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(f.status), 10)
	return append(b, '}')
}

// appendString appends s as a JSON string, as json.Marshal writes it.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
