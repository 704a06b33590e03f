package main

import (
	"bufio"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func parseAll(t *testing.T, r io.Reader, bufSize int) []sseEvent {
	t.Helper()
	p := newSSEParser(bufio.NewReaderSize(r, bufSize), 0)
	var out []sseEvent
	for {
		ev, err := p.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		out = append(out, ev)
	}
}

func TestSSEParser(t *testing.T) {
	ev := func(name, id, data string, comments ...string) sseEvent {
		return sseEvent{Name: name, ID: id, Data: data, Comments: comments}
	}
	tests := []struct {
		name string
		in   string
		want []sseEvent
	}{
		{"connect-finish", "id:abc\nretry:5000\nevent:connect-finish\ndata:{\"connectionId\":\"abc\"}\n\n",
			[]sseEvent{ev("connect-finish", "abc", `{"connectionId":"abc"}`)}},
		{"default name", "data:x\n\n", []sseEvent{ev("message", "", "x")}},
		{"multi data", "event:e\nid:1\ndata:a\ndata:b\n\n", []sseEvent{ev("e", "1", "a\nb")}},
		{"one leading space stripped", "data:  two\n\n", []sseEvent{ev("message", "", " two")}},
		{"crlf", "event:e\r\ndata:x\r\n\r\n", []sseEvent{ev("e", "", "x")}},
		{"cr", "event:e\rdata:x\r\rdata:y\r\r", []sseEvent{ev("e", "", "x"), ev("message", "", "y")}},
		{"mixed endings", "data:a\r\ndata:b\rdata:c\n\r\n", []sseEvent{ev("message", "", "a\nb\nc")}},
		{"bom", "\xEF\xBB\xBFdata:x\n\n", []sseEvent{ev("message", "", "x")}},
		{"comment heartbeat", ":\n\n:\ndata:x\n\n", []sseEvent{ev("message", "", "x", "", "")}},
		{"qos resend", "id:q1\nevent:pb\n:resend\ndata:x\n\n", []sseEvent{ev("pb", "q1", "x", "resend")}},
		{"id persists", "id:7\ndata:a\n\ndata:b\n\n", []sseEvent{ev("message", "7", "a"), ev("message", "7", "b")}},
		{"id reset by empty", "id:7\ndata:a\n\nid\ndata:b\n\n", []sseEvent{ev("message", "7", "a"), ev("message", "", "b")}},
		{"id with NUL ignored", "id:1\ndata:a\n\nid:2\x003\ndata:b\n\n", []sseEvent{ev("message", "1", "a"), ev("message", "1", "b")}},
		{"no data no dispatch", "event:e\n\ndata:x\n\n", []sseEvent{ev("message", "", "x")}},
		{"empty data dispatches", "data\n\n", []sseEvent{ev("message", "", "")}},
		{"field without colon", "event\ndata:x\n\n", []sseEvent{ev("message", "", "x")}},
		{"unknown field", "foo:bar\ndata:x\n\n", []sseEvent{ev("message", "", "x")}},
		{"unterminated block dropped", "data:x\n\ndata:y\n", []sseEvent{ev("message", "", "x")}},
		{"unterminated line dropped", "data:x\n\ndata:y", []sseEvent{ev("message", "", "x")}},
		{"colon in value", "data:a:b\n\n", []sseEvent{ev("message", "", "a:b")}},
		{"connect-close", "event:connect-close\nid:3\ndata:{\"connectionId\": \"c\",\"reason\":\"x\"}\n\n",
			[]sseEvent{ev("connect-close", "3", `{"connectionId": "c","reason":"x"}`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, split := range []bool{false, true} {
				var r io.Reader = strings.NewReader(tt.in)
				size := 4096
				if split {
					r = iotest.OneByteReader(r) // every line split across reads
					size = 16
				}
				got := parseAll(t, r, size)
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("split=%v: got %v, want %v", split, got, tt.want)
				}
			}
		})
	}
}

func TestSSEParserRetry(t *testing.T) {
	p := newSSEParser(bufio.NewReader(strings.NewReader("retry:5000\nretry:12a\ndata:x\n\n")), 0)
	if _, err := p.Next(); err != nil {
		t.Fatal(err)
	}
	if p.Retry() != 5000 {
		t.Fatalf("retry %d, want 5000 (the invalid value is ignored)", p.Retry())
	}
}

func TestSSEParserLongLines(t *testing.T) {
	long := strings.Repeat("y", 10000)
	got := parseAll(t, strings.NewReader("data:"+long+"\n\n"), 16)
	if len(got) != 1 || got[0].Data != long {
		t.Fatalf("long line not reassembled: %d events", len(got))
	}
	p := newSSEParser(bufio.NewReaderSize(strings.NewReader("data:"+long+"\n\n"), 16), 100)
	if _, err := p.Next(); !errors.Is(err, errLineTooLong) {
		t.Fatalf("err %v, want errLineTooLong", err)
	}
}

// A CR at the end of what has arrived so far ends the line at once: the
// parser must not wait for the next byte to see whether it is an LF.
func TestSSEParserCRDoesNotWait(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	p := newSSEParser(bufio.NewReader(pr), 0)
	got := make(chan sseEvent, 1)
	go func() {
		ev, err := p.Next()
		if err == nil {
			got <- ev
		}
		close(got)
	}()
	if _, err := pw.Write([]byte("data:x\r\r")); err != nil {
		t.Fatal(err)
	}
	if ev := <-got; ev.Data != "x" {
		t.Fatalf("got %v", ev)
	}
}
