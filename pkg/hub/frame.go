package hub

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// frame is one encoded SSE frame, shared by every connection it is sent
// to. When counted is set the frame carries the connection's own id
// counter: the writer emits head, the counter, then tail. Otherwise head is
// the whole frame.
type frame struct {
	head    []byte
	tail    []byte
	counted bool
	// qosID is set for QoS messages: a client that cannot acknowledge has
	// it acknowledged once the frame was written.
	qosID string
	// event names the event, for listener filtering; empty for control
	// frames.
	event string
	// streams are the event's positions in resumable streams, which the
	// writer advances the connection's positions by (resume.go).
	streams []StreamPos
}

var heartbeatFrame = &frame{head: []byte(":\n")}

// appendData appends data as data: lines, one per line of data (CRLF, CR
// and LF all end a line, as the SSE parser sees it).
func appendData(b []byte, data string) []byte {
	for {
		i := strings.IndexAny(data, "\r\n")
		if i < 0 {
			break
		}
		b = append(b, "data:"...)
		b = append(b, data[:i]...)
		b = append(b, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	b = append(b, "data:"...)
	b = append(b, data...)
	return append(b, '\n', '\n')
}

// encodeEvent frames a validated event once for all its recipients:
// "event:<name>\nid:<id or counter>\ndata:...\n\n".
func encodeEvent(ev Event) *frame {
	if ev.ID == "" || len(ev.Streams) > 0 {
		// Head and tail share one allocation; the head is capped, so
		// nothing appended to the tail runs into it.
		headLen := len("event:\nid:") + len(ev.Name)
		b := make([]byte, 0, headLen+len(ev.Data)+16)
		b = append(b, "event:"...)
		b = append(b, ev.Name...)
		b = append(b, "\nid:"...)
		head, tail := b[:headLen:headLen], b[headLen:]
		tail = append(tail, '\n')
		return &frame{head: head, tail: appendData(tail, ev.Data), counted: true, event: ev.Name, streams: ev.Streams}
	}
	b := make([]byte, 0, len(ev.Name)+len(ev.ID)+len(ev.Data)+32)
	b = append(b, "event:"...)
	b = append(b, ev.Name...)
	b = append(b, "\nid:"...)
	b = append(b, ev.ID...)
	b = append(b, '\n')
	return &frame{head: appendData(b, ev.Data), event: ev.Name}
}

// encodeResend frames a QoS message sent again, in the seed's layout:
// "id:<id>\nevent:<name>\n:resend\ndata:...\n\n".
func encodeResend(ev Event) *frame {
	b := make([]byte, 0, len(ev.Name)+len(ev.ID)+len(ev.Data)+40)
	b = append(b, "id:"...)
	b = append(b, ev.ID...)
	b = append(b, "\nevent:"...)
	b = append(b, ev.Name...)
	b = append(b, "\n:resend\n"...)
	return &frame{head: appendData(b, ev.Data), event: ev.Name, qosID: ev.ID}
}

// encodeConnectFinish frames the first event of every stream.
func encodeConnectFinish(c *Conn, h *Hub) *frame {
	return encodeConnectFinishResumed(c, h, nil, "")
}

// encodeConnectFinishResumed is encodeConnectFinish with, when resumed is
// set, "resumed": whether every stream named by Last-Event-ID was resumed
// without a gap, and, when position is set, "position": the id that
// resumes the connection's streams from here (what a client sends as
// lastEventId until an event brings a newer one).
func encodeConnectFinishResumed(c *Conn, h *Hub, resumed *bool, position string) *frame {
	retry := strconv.FormatInt(h.cfg.ReconnectTime.Milliseconds(), 10)
	b := make([]byte, 0, 256)
	b = append(b, "id:"...)
	b = append(b, c.id...)
	b = append(b, "\nretry:"...)
	// A browser's own reconnect waits retry: — spread over [1, 1.5)
	// times the app's reconnect time, so that the EventSources of a node
	// that died do not all come back in the same millisecond.
	b = strconv.AppendInt(b, spreadRetry(h.cfg.ReconnectTime).Milliseconds(), 10)
	b = append(b, "\nevent:connect-finish\ndata:{\"connectionId\":"...)
	b = strconv.AppendQuote(b, c.id)
	b = append(b, ",\"serverTime\":"...)
	b = strconv.AppendInt(b, c.created/int64(time.Millisecond), 10)
	b = append(b, ",\"reconnectTime\":"...)
	b = append(b, retry...)
	b = append(b, ",\"name\":"...)
	b = strconv.AppendQuote(b, h.cfg.App)
	b = append(b, ",\"enableCluster\":"...)
	b = strconv.AppendBool(b, h.cfg.Transport != nil)
	if resumed != nil {
		b = append(b, ",\"resumed\":"...)
		b = strconv.AppendBool(b, *resumed)
	}
	if position != "" {
		b = append(b, ",\"position\":"...)
		b = strconv.AppendQuote(b, position)
	}
	b = append(b, ",\"version\":\""+Version+"\"}\n\n"...)
	return &frame{head: b}
}

// encodeConnectClose frames connect-close; the seed client JSON-parses it.
func encodeConnectClose(c *Conn, reason DisconnectReason) *frame {
	tail := make([]byte, 0, 96)
	tail = append(tail, "\ndata:{\"connectionId\": "...)
	tail = strconv.AppendQuote(tail, c.id)
	tail = append(tail, ",\"reason\":\""...)
	tail = append(tail, reason.String()...)
	tail = append(tail, "\"}\n\n"...)
	return &frame{head: []byte("event:connect-close\nid:"), tail: tail, counted: true}
}

// encodeSetDuration frames sse-set-duration; duration is a string of
// seconds, as the seed client expects.
func encodeSetDuration(seconds int64) *frame {
	tail := make([]byte, 0, 48)
	tail = append(tail, "\ndata:{\"duration\":\""...)
	tail = strconv.AppendInt(tail, seconds, 10)
	tail = append(tail, "\"}\n\n"...)
	return &frame{head: []byte("event:sse-set-duration\nid:"), tail: tail, counted: true}
}

// encodeRetry frames a bare retry: hint, sent before a drain closes a
// stream so the browser reconnects after a spread delay.
func encodeRetry(ms int64) *frame {
	b := append([]byte("retry:"), strconv.FormatInt(ms, 10)...)
	return &frame{head: append(b, '\n', '\n')}
}

// jitter spreads d over [d/2, 3d/2).
// spreadRetry returns d plus up to half of it, at random.
func spreadRetry(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d + rand.N(d/2+1)
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d)
}
