package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// sseEvent is one dispatched SSE event (WHATWG HTML, "event stream
// interpretation").
type sseEvent struct {
	// Name is the event type; "message" when the block had no event field.
	Name string
	// ID is the last event ID after this block (it persists across events,
	// as the spec says).
	ID string
	// Data is the data buffer without its final line feed.
	Data string
	// Comments holds the comment lines (without the leading colon) seen since
	// the previous dispatch, e.g. "resend" for a pushd QoS redelivery.
	Comments []string
}

// errLineTooLong is returned for a line longer than the parser's limit.
var errLineTooLong = errors.New("pushbench: sse line too long")

// sseParser reads events from an event stream. It accepts CRLF, LF and CR
// line endings, strips a leading UTF-8 BOM and follows the spec's field rules:
// "field:value" with one optional space after the colon, a line without a
// colon is a field with an empty value, lines starting with a colon are
// comments, unknown fields are ignored, an id containing NUL is ignored, a
// retry value that is not all ASCII digits is ignored, and a block with an
// empty data buffer dispatches nothing. It is not safe for concurrent use.
type sseParser struct {
	r       *bufio.Reader
	maxLine int

	line     []byte
	skipLF   bool // the previous line ended with CR: a following LF belongs to it
	started  bool // BOM check done
	lastID   string
	eventID  string // lastID as of the last blank line: the EventSource's lastEventId
	retry    int64  // last valid retry value in ms, -1 if none
	name     []byte
	data     []byte
	hasData  bool
	comments []string
}

// newSSEParser returns a parser reading r with lines bounded to maxLine bytes
// (0 means 1 MiB).
func newSSEParser(r *bufio.Reader, maxLine int) *sseParser {
	if maxLine <= 0 {
		maxLine = 1 << 20
	}
	return &sseParser{r: r, maxLine: maxLine, retry: -1}
}

// LastEventID is what an EventSource would send as Last-Event-ID after
// the events read so far: the id buffer as of the last blank line (an
// id field of a block cut off before its blank line does not count,
// and a block with an id and no data does).
func (p *sseParser) LastEventID() string { return p.eventID }

// Retry reports the last valid retry field in milliseconds, or -1.
func (p *sseParser) Retry() int64 { return p.retry }

// readLine returns the next line without its terminator. The slice is valid
// until the next call. At the end of the stream an unterminated line is
// discarded, as the spec requires, and io.EOF is returned.
func (p *sseParser) readLine() ([]byte, error) {
	p.line = p.line[:0]
	for {
		n := p.r.Buffered()
		if n == 0 {
			if _, err := p.r.Peek(1); err != nil {
				if errors.Is(err, io.EOF) {
					return nil, io.EOF
				}
				return nil, err
			}
			n = p.r.Buffered()
		}
		buf, _ := p.r.Peek(n)
		if p.skipLF {
			p.skipLF = false
			if buf[0] == '\n' {
				_, _ = p.r.Discard(1)
				continue
			}
		}
		if !p.started {
			if len(buf) < 3 && bytes.HasPrefix([]byte("\xEF\xBB\xBF"), buf) {
				// Could be the start of a BOM split across reads: wait for more.
				if _, err := p.r.Peek(3); err == nil {
					continue
				}
			}
			p.started = true
			if bytes.HasPrefix(buf, []byte("\xEF\xBB\xBF")) {
				_, _ = p.r.Discard(3)
				continue
			}
		}
		i := bytes.IndexAny(buf, "\r\n")
		if i < 0 {
			p.line = append(p.line, buf...)
			_, _ = p.r.Discard(n)
			if len(p.line) > p.maxLine {
				return nil, errLineTooLong
			}
			continue
		}
		p.line = append(p.line, buf[:i]...)
		if len(p.line) > p.maxLine {
			return nil, errLineTooLong
		}
		if buf[i] == '\r' {
			if i+1 < n {
				if buf[i+1] == '\n' {
					_, _ = p.r.Discard(i + 2)
				} else {
					_, _ = p.r.Discard(i + 1)
				}
			} else {
				_, _ = p.r.Discard(i + 1)
				p.skipLF = true
			}
		} else {
			_, _ = p.r.Discard(i + 1)
		}
		return p.line, nil
	}
}

// Next returns the next dispatched event. It returns io.EOF at the end of the
// stream (a final block without its blank line is discarded).
func (p *sseParser) Next() (sseEvent, error) {
	for {
		line, err := p.readLine()
		if err != nil {
			return sseEvent{}, err
		}
		if len(line) == 0 {
			p.eventID = p.lastID
			if !p.hasData {
				p.name = p.name[:0]
				continue
			}
			ev := sseEvent{Name: "message", ID: p.lastID, Comments: p.comments}
			if len(p.name) > 0 {
				ev.Name = string(p.name)
			}
			d := p.data
			if len(d) > 0 && d[len(d)-1] == '\n' {
				d = d[:len(d)-1]
			}
			ev.Data = string(d)
			p.name = p.name[:0]
			p.data = p.data[:0]
			p.hasData = false
			p.comments = nil
			return ev, nil
		}
		if line[0] == ':' {
			p.comments = append(p.comments, string(line[1:]))
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "event":
			p.name = append(p.name[:0], value...)
		case "data":
			p.data = append(p.data, value...)
			p.data = append(p.data, '\n')
			p.hasData = true
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				p.lastID = string(value)
			}
		case "retry":
			if isDigits(value) {
				if v, err := strconv.ParseInt(string(value), 10, 64); err == nil {
					p.retry = v
				}
			}
		}
	}
}

func isDigits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// String renders the event for test failure messages.
func (e sseEvent) String() string {
	return fmt.Sprintf("{name:%q id:%q data:%q comments:%q}", e.Name, e.ID, e.Data, e.Comments)
}
