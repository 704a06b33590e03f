package redis

import (
	"sync"
)

// interestSet is the set of channels the hub wants subscribed, the
// channels changed since the last flush, and the channels Redis confirmed
// subscribed on the current session, with whoever waits for one.
type interestSet struct {
	mu      sync.Mutex
	want    map[string]struct{}
	dirty   map[string]struct{}
	live    map[string]struct{}
	waiters map[string][]chan struct{}
	wake    chan struct{}
}

func (s *interestSet) init() {
	s.want = make(map[string]struct{})
	s.dirty = make(map[string]struct{})
	s.live = make(map[string]struct{})
	s.waiters = make(map[string][]chan struct{})
	s.wake = make(chan struct{}, 1)
}

// set records a change and returns the number of pending changes. A
// channel no longer wanted releases its waiters: there is nothing to wait
// for.
func (s *interestSet) set(ch string, on bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.want[ch] = struct{}{}
	} else {
		delete(s.want, ch)
		s.releaseLocked(ch)
	}
	s.dirty[ch] = struct{}{}
	return len(s.dirty)
}

// confirmed records Redis's confirmation that ch was subscribed (on) or
// unsubscribed on the current session.
func (s *interestSet) confirmed(ch string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !on {
		delete(s.live, ch)
		return
	}
	s.live[ch] = struct{}{}
	s.releaseLocked(ch)
}

// lost forgets every confirmation: the session carrying them ended.
func (s *interestSet) lost() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.live)
}

func (s *interestSet) releaseLocked(ch string) {
	for _, w := range s.waiters[ch] {
		close(w)
	}
	delete(s.waiters, ch)
}

// await returns a channel closed once ch is confirmed subscribed (or no
// longer wanted), or nil when it already is.
func (s *interestSet) await(ch string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, live := s.live[ch]
	_, want := s.want[ch]
	if live || !want {
		return nil
	}
	w := make(chan struct{})
	s.waiters[ch] = append(s.waiters[ch], w)
	return w
}

// pending returns the number of changes not flushed yet.
func (s *interestSet) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.dirty)
}

// snapshot returns every wanted channel and forgets pending changes (a new
// subscription starts from the whole set).
func (s *interestSet) snapshot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	all := make([]string, 0, len(s.want))
	for ch := range s.want {
		all = append(all, ch)
	}
	clear(s.dirty)
	return all
}

// diff returns the channels to subscribe and unsubscribe to bring applied
// to the wanted set, and forgets the pending changes.
func (s *interestSet) diff(applied map[string]struct{}) (sub, unsub []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.dirty {
		_, want := s.want[ch]
		_, have := applied[ch]
		switch {
		case want && !have:
			sub = append(sub, ch)
		case !want && have:
			unsub = append(unsub, ch)
		}
	}
	clear(s.dirty)
	return sub, unsub
}
