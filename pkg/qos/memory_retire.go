package qos

// retire hands messages taken out of the indices to their apps, to be
// unlinked now if the app is free or by the call that holds it, and logs
// the evictions among them. Called without any mutex of m held by the
// caller other than, possibly, one app's.
func (m *Memory) retire(ms []*memMessage) {
	for _, mm := range ms {
		if mm.state.Load() == stateEvicted {
			m.log.Warn().Str("app", mm.app.name).Str("id", mm.msg.ID).Int("max", m.maxMessages).
				Int64("maxBytes", m.maxBytes).Msg("qos store full: oldest message dropped")
		}
		a := mm.app
		a.retiredMu.Lock()
		a.retired = append(a.retired, mm)
		a.retiredMu.Unlock()
	}
	for _, mm := range ms {
		if mm.app.mu.TryLock() {
			m.unlockApp(mm.app)
		}
	}
}

// lockApp takes a's mutex and unlinks what was retired meanwhile.
func (m *Memory) lockApp(a *memApp) {
	a.mu.Lock()
	m.unlinkRetired(a)
}

// unlockApp unlinks what was retired while a was held and releases it.
// Whoever retires a message while a is held either finds a free (TryLock)
// or has appended before this release, so nothing retired stays linked
// once a is free.
func (m *Memory) unlockApp(a *memApp) {
	for {
		m.unlinkRetired(a)
		a.mu.Unlock()
		a.retiredMu.Lock()
		more := len(a.retired) > 0
		a.retiredMu.Unlock()
		if !more || !a.mu.TryLock() {
			return
		}
	}
}

// unlinkRetired unlinks the messages retired in a, logging the expiries.
// Called with a.mu held.
func (m *Memory) unlinkRetired(a *memApp) {
	a.retiredMu.Lock()
	ms := a.retired
	a.retired = nil
	a.retiredMu.Unlock()
	for _, mm := range ms {
		if mm.state.Load() == stateExpired && mm.linked {
			ev := m.log.Debug()
			if a.undelivered(mm) {
				// Somebody never got it: worth a line at info.
				ev = m.log.Info()
			}
			ev.Str("app", a.name).Str("id", mm.msg.ID).Str("event", mm.msg.Event).Msg("qos message expired")
		}
		a.unlink(mm)
	}
}

// unlink takes mm out of a's inboxes and messages, if it is still there.
// Called with a.mu held.
func (a *memApp) unlink(mm *memMessage) {
	if !mm.linked {
		return
	}
	for _, key := range mm.msg.Inboxes() {
		if in := a.inboxes[key]; in != nil && in.remove(mm) && in.len() == 0 {
			delete(a.inboxes, key)
		}
	}
	if a.msgs[mm.msg.ID] == mm {
		delete(a.msgs, mm.msg.ID)
	}
	mm.linked = false
	mm.inboxes = 0
}

// undelivered reports whether mm is still in an inbox of a user or access
// token it was sent to and nobody acknowledged it. Called with a.mu held.
func (a *memApp) undelivered(mm *memMessage) bool {
	if len(mm.acks) > 0 {
		return false
	}
	for _, key := range mm.msg.ownInboxes() {
		if in := a.inboxes[key]; in != nil && in.contains(mm) {
			return true
		}
	}
	return false
}
