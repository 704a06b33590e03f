package qos

import (
	"container/heap"
	"time"
)

// Size accounting of MaxBytes: a message costs the lengths of its strings,
// memMessageOverhead, and memEntryOverhead per address (an inbox entry).
const (
	memMessageOverhead = 256
	memEntryOverhead   = 32
)

// messageSize is what m counts against MaxBytes.
func messageSize(m *Message) int64 {
	n := memMessageOverhead + len(m.ID) + len(m.Event) + len(m.Data)
	for _, l := range [][]string{m.UserIDs, m.AccessTokens, m.TenantIDs, m.Channels} {
		for _, v := range l {
			n += memEntryOverhead + len(v)
		}
	}
	if m.All {
		n += memEntryOverhead
	}
	return int64(n)
}

// expireLocked takes the messages whose time is up out of the indices and
// returns them, to be retired. Called with mu held.
func (m *Memory) expireLocked(now time.Time) []*memMessage {
	var out []*memMessage
	for len(m.expiry) > 0 && !m.expiry[0].msg.ExpiresAt.After(now) {
		mm := m.expiry[0]
		m.unindexLocked(mm)
		if mm.state.CompareAndSwap(stateLive, stateExpired) { // else deleted by its app a moment ago
			m.expired.Add(1)
			out = append(out, mm)
		}
	}
	return out
}

// evictLocked takes the oldest messages out of the indices while the store
// is over MaxMessages or MaxBytes and returns them, to be retired. Called
// with mu held.
func (m *Memory) evictLocked() []*memMessage {
	var out []*memMessage
	for m.count > m.maxMessages || (m.maxBytes > 0 && m.bytes > m.maxBytes) {
		mm := m.byAge.Front().Value.(*memMessage)
		m.unindexLocked(mm)
		if mm.state.CompareAndSwap(stateLive, stateEvicted) { // else deleted by its app a moment ago
			m.evicted.Add(1)
			out = append(out, mm)
		}
	}
	return out
}

// indexLocked puts mm in the age and expiry indices and counts it against
// the bounds. Called with mu held.
func (m *Memory) indexLocked(mm *memMessage) {
	mm.age = m.byAge.PushBack(mm)
	heap.Push(&m.expiry, mm)
	m.count++
	m.bytes += mm.size
}

// unindexLocked takes mm out of the indices, if it is still there. Called
// with mu held.
func (m *Memory) unindexLocked(mm *memMessage) {
	if mm.age == nil {
		return
	}
	m.byAge.Remove(mm.age)
	mm.age = nil
	heap.Remove(&m.expiry, mm.heapIdx)
	m.count--
	m.bytes -= mm.size
}

// expiryHeap orders messages by ExpiresAt, soonest first.
type expiryHeap []*memMessage

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].msg.ExpiresAt.Before(h[j].msg.ExpiresAt) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}
func (h *expiryHeap) Push(x any) {
	mm := x.(*memMessage)
	mm.heapIdx = len(*h)
	*h = append(*h, mm)
}
func (h *expiryHeap) Pop() any {
	old := *h
	mm := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	mm.heapIdx = -1
	return mm
}
