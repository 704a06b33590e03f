package notify

import (
	"crypto/rand"
	"encoding/hex"
)

type userState struct {
	count   int
	online  bool     // an online was queued and no offline yet
	pending *pending // offline waiting for the grace to pass
}

type pending struct {
	timer stopper
	last  Presence
}

// Connected records that a connection opened. It queues online for the
// user's first connection (unless it cancels a pending offline) and, with
// EveryConnection, connect. It does not block.
func (n *Notifier) Connected(p Presence) {
	p = n.stamp(p)
	n.mu.Lock()
	defer n.mu.Unlock()
	if p.UserID != "" {
		key := userKey(p)
		st := n.users[key]
		if st == nil {
			st = &userState{}
			n.users[key] = st
		}
		st.count++
		switch {
		case st.pending != nil: // back within the grace: stays online
			st.pending.timer.Stop()
			st.pending = nil
		case !st.online:
			st.online = true
			n.enqueueLocked(TypeOnline, p)
		}
	}
	if n.cfg.EveryConnection {
		n.enqueueLocked(TypeConnect, p)
	}
}

// Disconnected records that a connection closed. With EveryConnection it
// queues disconnect; when it was the user's last connection, offline
// follows after Grace unless a connection opens meanwhile. It does not
// block.
func (n *Notifier) Disconnected(p Presence) {
	p = n.stamp(p)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cfg.EveryConnection {
		n.enqueueLocked(TypeDisconnect, p)
	}
	if p.UserID == "" {
		return
	}
	key := userKey(p)
	st := n.users[key]
	if st == nil || st.count == 0 {
		return // a connection we never saw open
	}
	st.count--
	if st.count > 0 {
		return
	}
	if n.cfg.Grace < 0 {
		n.goOfflineLocked(key, st, p)
		return
	}
	pd := &pending{last: p}
	pd.timer = n.clock.AfterFunc(n.cfg.Grace, func() { n.graceOver(key, pd) })
	st.pending = pd
}

func (n *Notifier) graceOver(key string, pd *pending) {
	n.mu.Lock()
	defer n.mu.Unlock()
	st := n.users[key]
	if st == nil || st.pending != pd {
		return // cancelled by a reconnect
	}
	n.goOfflineLocked(key, st, pd.last)
}

func (n *Notifier) goOfflineLocked(key string, st *userState, p Presence) {
	if st.online {
		n.enqueueLocked(TypeOffline, p)
	}
	delete(n.users, key)
}

func (n *Notifier) stamp(p Presence) Presence {
	if p.At.IsZero() {
		p.At = n.clock.Now()
	}
	return p
}

// ChannelChanged queues join (joined set) or leave of p.Channel for a
// connection. It does not block.
func (n *Notifier) ChannelChanged(p Presence, joined bool) {
	p = n.stamp(p)
	typ := TypeLeave
	if joined {
		typ = TypeJoin
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.enqueueLocked(typ, p)
}

func userKey(p Presence) string { return p.App + "\x00" + p.UserID }

func (n *Notifier) enqueueLocked(typ string, p Presence) {
	ev := Event{
		ID:              newID(),
		Type:            typ,
		App:             p.App,
		UserID:          p.UserID,
		TenantID:        p.TenantID,
		ConnectionID:    p.ConnectionID,
		Channel:         p.Channel,
		Node:            n.cfg.NodeID,
		Connections:     p.Connections,
		SessionDuration: p.SessionDuration.Seconds(),
		Timestamp:       p.At.UnixMilli(),
	}
	if len(n.queue) == 0 {
		n.drop(ev)
		return
	}
	if n.size == len(n.queue) {
		n.drop(n.queue[n.head])
		n.head = (n.head + 1) % len(n.queue)
		n.size--
	}
	n.queue[(n.head+n.size)%len(n.queue)] = ev
	n.size++
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *Notifier) drop(ev Event) {
	d := n.dropped.Add(1)
	if d&(d-1) == 0 { // 1, 2, 4, 8, …: a full queue must not flood the log
		n.log.Warn().Str("event", ev.Type).Str("app", ev.App).Str("user", ev.UserID).
			Uint64("dropped_total", d).Msg("notification queue full, dropped the oldest event")
	}
}

func (n *Notifier) pop() (Event, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.size == 0 {
		return Event{}, false
	}
	ev := n.queue[n.head]
	n.queue[n.head] = Event{}
	n.head = (n.head + 1) % len(n.queue)
	n.size--
	return ev, true
}

func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
