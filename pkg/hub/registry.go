package hub

import (
	"hash/fnv"
	"sync"
	"sync/atomic"
)

// shardCount is the number of shards of the connection map and of each
// index; a power of two.
const shardCount = 32

func shardOf(key string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return h.Sum32() & (shardCount - 1)
}

// connShard holds the connections whose id hashes to it.
type connShard struct {
	mu    sync.RWMutex
	conns map[string]*Conn
}

// connMap is the sharded map of all local connections by id, with their
// number.
type connMap struct {
	shards [shardCount]connShard
	n      atomic.Int64
}

func (m *connMap) init() {
	for i := range m.shards {
		m.shards[i].conns = make(map[string]*Conn)
	}
}

func (m *connMap) add(c *Conn) {
	s := &m.shards[shardOf(c.id)]
	s.mu.Lock()
	if _, dup := s.conns[c.id]; !dup {
		m.n.Add(1)
	}
	s.conns[c.id] = c
	s.mu.Unlock()
}

func (m *connMap) remove(c *Conn) {
	s := &m.shards[shardOf(c.id)]
	s.mu.Lock()
	if s.conns[c.id] == c {
		delete(s.conns, c.id)
		m.n.Add(-1)
	}
	s.mu.Unlock()
}

func (m *connMap) get(id string) *Conn {
	s := &m.shards[shardOf(id)]
	s.mu.RLock()
	c := s.conns[id]
	s.mu.RUnlock()
	return c
}

// each calls fn for every connection, one shard at a time under its read
// lock; fn must not block or take hub locks.
func (m *connMap) each(fn func(*Conn)) {
	m.eachShard(func(_ int, c *Conn) { fn(c) })
}

// eachShard is each, also passing the shard's index.
func (m *connMap) eachShard(fn func(shard int, c *Conn)) {
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.RLock()
		for _, c := range s.conns {
			fn(i, c)
		}
		s.mu.RUnlock()
	}
}

// count returns the number of connections without taking a lock.
func (m *connMap) count() int { return int(m.n.Load()) }

// indexShard holds the keys that hash to it.
type indexShard struct {
	mu   sync.RWMutex
	sets map[string]connSet
}

// connSet is the connections under one key. Most keys of an idle node (a
// user with one tab, a client's cap group, a token) hold one connection,
// which takes no map of its own: one is set, many nil. Past one, many
// holds them all.
type connSet struct {
	one  *Conn
	many map[*Conn]struct{}
}

func (s connSet) len() int {
	if s.many != nil {
		return len(s.many)
	}
	return 1
}

func (s connSet) each(fn func(*Conn)) {
	if s.many == nil {
		fn(s.one)
		return
	}
	for c := range s.many {
		fn(c)
	}
}

// index maps a key (user id, token, ...) to the connections holding it.
type index [shardCount]indexShard

func (ix *index) init() {
	for i := range ix {
		ix[i].sets = make(map[string]connSet)
	}
}

// add puts c under key and reports whether key is new on this node.
func (ix *index) add(key string, c *Conn) (first bool) {
	s := &ix[shardOf(key)]
	s.mu.Lock()
	defer s.mu.Unlock()
	set, ok := s.sets[key]
	switch {
	case !ok:
		s.sets[key] = connSet{one: c}
	case set.many != nil:
		set.many[c] = struct{}{}
	case set.one != c:
		s.sets[key] = connSet{many: map[*Conn]struct{}{set.one: {}, c: {}}}
	}
	return !ok
}

// remove takes c from key and reports whether key is gone from this node.
func (ix *index) remove(key string, c *Conn) (last bool) {
	s := &ix[shardOf(key)]
	s.mu.Lock()
	defer s.mu.Unlock()
	set, ok := s.sets[key]
	if !ok {
		return false
	}
	if set.many == nil {
		if set.one != c {
			return false
		}
		delete(s.sets, key)
		return true
	}
	delete(set.many, c)
	switch len(set.many) {
	case 0:
		delete(s.sets, key)
		return true
	case 1:
		for one := range set.many {
			s.sets[key] = connSet{one: one}
		}
	}
	return false
}

// each calls fn for every connection under key, under the shard's read
// lock; fn must not block or take hub locks.
func (ix *index) each(key string, fn func(*Conn)) {
	s := &ix[shardOf(key)]
	s.mu.RLock()
	if set, ok := s.sets[key]; ok {
		set.each(fn)
	}
	s.mu.RUnlock()
}

// list returns a snapshot of the connections under key.
func (ix *index) list(key string) []*Conn {
	var out []*Conn
	ix.each(key, func(c *Conn) { out = append(out, c) })
	return out
}

// size returns how many connections are under key.
func (ix *index) size(key string) int {
	s := &ix[shardOf(key)]
	s.mu.RLock()
	defer s.mu.RUnlock()
	if set, ok := s.sets[key]; ok {
		return set.len()
	}
	return 0
}

// eachKey calls fn for every key with a snapshot of its connections,
// taken under the key's shard lock and passed after it is released.
func (ix *index) eachKey(fn func(key string, conns []*Conn)) {
	for i := range ix {
		type entry struct {
			key   string
			conns []*Conn
		}
		var entries []entry
		ix[i].mu.RLock()
		for key, set := range ix[i].sets {
			e := entry{key: key, conns: make([]*Conn, 0, set.len())}
			set.each(func(c *Conn) { e.conns = append(e.conns, c) })
			entries = append(entries, e)
		}
		ix[i].mu.RUnlock()
		for _, e := range entries {
			fn(e.key, e.conns)
		}
	}
}

// keys returns the number of distinct keys.
func (ix *index) keys() int {
	n := 0
	for i := range ix {
		ix[i].mu.RLock()
		n += len(ix[i].sets)
		ix[i].mu.RUnlock()
	}
	return n
}

// indexKeys lists the indices and keys c is registered under, with the
// routing key prefix of each. The caller holds c.chanMu.
func (h *Hub) indexKeys(c *Conn, fn func(ix *index, key, prefix string)) {
	if c.user.ID != "" {
		fn(&h.byUser, c.user.ID, KeyUserPrefix)
	}
	if c.user.AccessToken != "" {
		fn(&h.byToken, c.user.AccessToken, KeyTokenPrefix)
	}
	if c.user.TenantID != "" {
		fn(&h.byTenant, c.user.TenantID, KeyTenantPrefix)
	}
	for _, ch := range c.channels {
		fn(&h.byChannel, ch, KeyChanPrefix)
	}
	if key := c.capKey(); key != "" {
		fn(&h.byClient, key, "")
	}
	if owner := c.ownerKey(); owner != "" {
		fn(&h.byOwner, owner, "")
	}
}

// routingKeysOf lists the routing keys of c's connection and indices.
func (h *Hub) routingKeysOf(c *Conn) []string {
	keys := []string{KeyConnPrefix + c.id}
	c.chanMu.Lock()
	defer c.chanMu.Unlock()
	h.indexKeys(c, func(_ *index, key, prefix string) {
		if prefix != "" {
			keys = append(keys, prefix+key)
		}
	})
	return keys
}

func (h *Hub) register(c *Conn) {
	c.chanMu.Lock()
	defer c.chanMu.Unlock()
	h.conns.add(c)
	h.indexKeys(c, func(ix *index, key, prefix string) {
		if ix.add(key, c) && prefix != "" && h.interest != nil {
			h.interest.SetInterest(h.cfg.App, prefix+key, true)
		}
	})
	if h.interest != nil {
		h.interest.SetInterest(h.cfg.App, KeyConnPrefix+c.id, true)
	}
}

// unregister removes an ended connection and runs the disconnect hooks.
func (h *Hub) unregister(c *Conn) {
	if h.conns.get(c.id) != c {
		return
	}
	h.conns.remove(c)
	c.chanMu.Lock()
	c.gone = true
	h.indexKeys(c, func(ix *index, key, prefix string) {
		if ix.remove(key, c) && prefix != "" && h.interest != nil {
			h.interest.SetInterest(h.cfg.App, prefix+key, false)
		}
	})
	left := c.channels
	c.chanMu.Unlock()
	h.channelChanged(c, nil, left)
	if h.interest != nil {
		h.interest.SetInterest(h.cfg.App, KeyConnPrefix+c.id, false)
	}
	reason := c.Reason()
	h.log.Debug().Str("conn", c.id).Str("user", c.user.ID).Str("reason", reason.String()).Msg("disconnected")
	h.hooksMu.RLock()
	hooks := h.onDisconnect
	h.hooksMu.RUnlock()
	for _, fn := range hooks {
		fn(c, reason)
	}
}
