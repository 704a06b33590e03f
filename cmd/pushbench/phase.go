package main

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

const (
	msgChunkBits = 12
	msgChunkSize = 1 << msgChunkBits
	msgMaxChunks = 1 << 12 // at most 16.7 M messages per phase
)

// msgState is what is known about one published message. Publishers fill
// it before the send; readers count deliveries into it.
type msgState struct {
	expected     atomic.Int32 // connections the message addresses; -1 = send failed
	received     atomic.Int32 // distinct, correctly routed recipients
	apiDelivered atomic.Int32 // the API's "delivered", -1 until answered
	sentAt       atomic.Int64 // unix nanos
	lastAt       atomic.Int64 // unix nanos of the last delivery counted (worker mode)
}

type msgChunk [msgChunkSize]msgState

// phase is one mode's publishing run and its counters.
type phase struct {
	id   int
	mode string
	qos  bool

	nextSeq atomic.Int64 // next sequence number to claim
	sent    atomic.Int64 // sends the API accepted
	sendErr atomic.Int64 // sends that failed
	chunks  [msgMaxChunks]atomic.Pointer[msgChunk]

	expectedTotal atomic.Int64 // sum of expected over accepted sends
	unique        atomic.Int64 // distinct correctly routed deliveries
	duplicated    atomic.Int64
	dupResent     atomic.Int64 // duplicates that were marked as redeliveries
	misrouted     atomic.Int64
	resent        atomic.Int64 // deliveries marked with a ":resend" comment
	firstSend     atomic.Int64 // unix nanos
	lastDelivery  atomic.Int64 // unix nanos

	latency    hist // publish (embedded timestamp) → delivery
	completion hist // publish → last expected recipient
	apiCall    hist // duration of the send API call

	errMu  sync.Mutex
	errors map[string]int
}

func newPhase(id int, mode string, qos bool) *phase {
	return &phase{id: id, mode: mode, qos: qos, errors: map[string]int{}}
}

// slot returns the state of message seq, allocating its chunk if needed, or
// nil when seq is beyond the table.
func (p *phase) slot(seq int64) *msgState {
	ci := seq >> msgChunkBits
	if seq < 0 || ci >= msgMaxChunks {
		return nil
	}
	c := p.chunks[ci].Load()
	if c == nil {
		nc := new(msgChunk)
		for i := range nc {
			nc[i].expected.Store(-1)
			nc[i].apiDelivered.Store(-1)
		}
		if !p.chunks[ci].CompareAndSwap(nil, nc) {
			c = p.chunks[ci].Load()
		} else {
			c = nc
		}
	}
	return &c[seq&(msgChunkSize-1)]
}

// lookup returns the state of message seq if its chunk exists.
func (p *phase) lookup(seq int64) *msgState {
	ci := seq >> msgChunkBits
	if seq < 0 || ci >= msgMaxChunks {
		return nil
	}
	c := p.chunks[ci].Load()
	if c == nil {
		return nil
	}
	return &c[seq&(msgChunkSize-1)]
}

func (p *phase) noteError(what string) {
	p.errMu.Lock()
	if len(p.errors) < 50 || p.errors[what] > 0 {
		p.errors[what]++
	}
	p.errMu.Unlock()
}

func (p *phase) errorList() map[string]int {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	if len(p.errors) == 0 {
		return nil
	}
	out := make(map[string]int, len(p.errors))
	for k, v := range p.errors {
		out[k] = v
	}
	return out
}

func atomicMax(a *atomic.Int64, v int64) {
	for {
		m := a.Load()
		if v <= m || a.CompareAndSwap(m, v) {
			return
		}
	}
}

func atomicMinNonZero(a *atomic.Int64, v int64) {
	for {
		m := a.Load()
		if (m != 0 && m <= v) || a.CompareAndSwap(m, v) {
			return
		}
	}
}

// payload is a parsed message data "pb|run|phase|seq|nanos|key|pad".
type payload struct {
	run   string
	phase int
	seq   int64
	sent  int64
	key   string
}

// formatPayload renders a message's data.
func formatPayload(run string, phase int, seq, sentNanos int64, key string, pad []byte) string {
	b := make([]byte, 0, 64+len(pad))
	b = append(b, "pb|"...)
	b = append(b, run...)
	b = append(b, '|')
	b = strconv.AppendInt(b, int64(phase), 10)
	b = append(b, '|')
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, '|')
	b = strconv.AppendInt(b, sentNanos, 10)
	b = append(b, '|')
	b = append(b, key...)
	b = append(b, '|')
	b = append(b, pad...)
	return string(b)
}

// parsePayload parses data written by formatPayload.
func parsePayload(data string) (payload, bool) {
	var f [7]string
	n := 0
	start := 0
	for i := 0; i < len(data) && n < 6; i++ {
		if data[i] == '|' {
			f[n] = data[start:i]
			n++
			start = i + 1
		}
	}
	if n != 6 || f[0] != "pb" {
		return payload{}, false
	}
	ph, err1 := strconv.Atoi(f[2])
	seq, err2 := strconv.ParseInt(f[3], 10, 64)
	sent, err3 := strconv.ParseInt(f[4], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return payload{}, false
	}
	return payload{run: f[1], phase: ph, seq: seq, sent: sent, key: f[5]}, true
}

// keyMatches reports whether a message with routing key key is meant for a
// connection of user and tenant.
func keyMatches(key, user, tenant string) bool {
	switch {
	case key == "*":
		return true
	case len(key) > 2 && key[:2] == "u:":
		return key[2:] == user
	case len(key) > 2 && key[:2] == "t:":
		return key[2:] == tenant
	}
	return false
}

func sinceNanos(start int64) time.Duration { return time.Duration(time.Now().UnixNano() - start) }
