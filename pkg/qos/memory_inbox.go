package qos

import (
	"slices"
	"strings"
	"time"
)

// memInbox holds messages ordered by id.
type memInbox struct {
	items []*memMessage
}

// pending appends to found up to limit messages of the inbox (which may be
// nil) with an id greater than after that are pending for r: not expired,
// not acknowledged under ackKey (unless ackKey is empty: the inbox is one
// of r's direct inboxes), and listened to if they ask for it.
func (in *memInbox) pending(found []*memMessage, now time.Time, r Recipient, ackKey, after string, limit int) []*memMessage {
	if in == nil {
		return found
	}
	n := 0
	for _, mm := range in.items[in.after(after):] {
		if limit > 0 && n == limit {
			break
		}
		if mm.state.Load() != stateLive || !mm.msg.ExpiresAt.After(now) {
			continue
		}
		if ackKey != "" {
			if _, acked := mm.acks[ackKey]; acked {
				continue
			}
		}
		if mm.msg.Listening && !r.listens(mm.msg.Event) {
			continue
		}
		found = append(found, mm)
		n++
	}
	return found
}

func (in *memInbox) len() int { return len(in.items) }

// search returns the position of mm's id in the inbox and whether it is there.
func (in *memInbox) search(id string) (int, bool) {
	return slices.BinarySearchFunc(in.items, id, func(x *memMessage, id string) int {
		return strings.Compare(x.msg.ID, id)
	})
}

// after returns the position of the first message with an id greater than id.
func (in *memInbox) after(id string) int {
	if id == "" {
		return 0
	}
	i, found := in.search(id)
	if found {
		i++
	}
	return i
}

func (in *memInbox) insert(mm *memMessage) {
	if n := len(in.items); n == 0 || in.items[n-1].msg.ID < mm.msg.ID {
		in.items = append(in.items, mm) // the usual case: ids grow
		return
	}
	i, _ := in.search(mm.msg.ID)
	in.items = slices.Insert(in.items, i, mm)
}

func (in *memInbox) contains(mm *memMessage) bool {
	i, found := in.search(mm.msg.ID)
	return found && in.items[i] == mm
}

func (in *memInbox) remove(mm *memMessage) bool {
	i, found := in.search(mm.msg.ID)
	if !found || in.items[i] != mm {
		return false
	}
	in.removeAt(i)
	return true
}

func (in *memInbox) removeAt(i int) {
	if i == 0 {
		// The usual case (acks and evictions go oldest first): no shifting.
		in.items[0] = nil
		in.items = in.items[1:]
		return
	}
	in.items[i] = nil
	in.items = slices.Delete(in.items, i, i+1)
}
