package nacos

import (
	"context"
	"encoding/binary"
	"sync"
	"time"

	"github.com/pushd/pushd/internal/hubwire"
	"github.com/pushd/pushd/pkg/hub"
)

// Routing by interest. Every node tells its peers, over its links to them,
// which routing keys (hub.RoutingKeys) its hubs hold: the whole set when a
// link opens, then the changes. A sender skips a peer whose whole set it
// has and that holds none of a target's keys; a peer it knows nothing of
// (no link from it yet, a version without links, a link that broke) gets
// every request, as before. A change takes effect at a peer when the peer
// has answered the entry that carries it; AwaitInterest waits for that on
// every link, so a send made after a connection's connect-finish reaches
// it from any node.

// interest is this node's routing keys and its peers' sets.
type interest struct {
	mu       sync.Mutex
	keys     map[string]map[string]struct{} // app → keys this node holds
	reported bool                           // SetInterest was called: a handler that routes by key
	version  uint64                         // of the last change
	changes  []keyChange                    // not yet sent to the links
	links    map[*clientLink]*linkInterest  // links that have the set
	moved    chan struct{}                  // closed (and replaced) when an ack or a link end may end a wait
	wake     chan struct{}                  // changes to send

	peersMu sync.RWMutex
	peers   map[string]*peerKeys // by node id: what the peer holds
}

// keyChange is one SetInterest.
type keyChange struct {
	app, key string
	on       bool
}

// linkInterest is how far a link's peer has confirmed this node's set.
type linkInterest struct {
	snapshotSent bool // else the pusher sends the whole set first
	acked        uint64
}

// peerKeys is what one peer said it holds, on the link it opened to this
// node.
type peerKeys struct {
	link     *serverLink
	complete bool // its whole set arrived
	keys     map[string]map[string]struct{}
}

func newInterest() *interest {
	return &interest{keys: make(map[string]map[string]struct{}), links: make(map[*clientLink]*linkInterest),
		moved: make(chan struct{}), wake: make(chan struct{}, 1), peers: make(map[string]*peerKeys)}
}

// SetInterest records that this node's hub for app starts (on) or stops
// holding key; the peers learn it shortly. It never blocks.
func (t *Transport) SetInterest(app, key string, on bool) {
	if t.cfg.PerRequestHTTP { // no links to tell: peers send this node everything
		return
	}
	in := t.interest
	in.mu.Lock()
	in.reported = true
	set := in.keys[app]
	if set == nil {
		set = make(map[string]struct{})
		in.keys[app] = set
	}
	if on {
		set[key] = struct{}{}
	} else {
		delete(set, key)
	}
	in.version++
	in.changes = append(in.changes, keyChange{app: app, key: key, on: on})
	in.mu.Unlock()
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

// AwaitInterest returns once every peer this node has a link to has
// confirmed the keys set so far, or with ctx's error. Peers without a link
// from this node send it every request, so they need no confirmation.
func (t *Transport) AwaitInterest(ctx context.Context, _ string, _ []string) error {
	in := t.interest
	in.mu.Lock()
	want := in.version
	for {
		done := true
		for l, li := range in.links {
			if li.acked < want && !l.isClosed() {
				done = false
				break
			}
		}
		if done {
			in.mu.Unlock()
			return nil
		}
		moved := in.moved
		in.mu.Unlock()
		select {
		case <-moved:
		case <-ctx.Done():
			return ctx.Err()
		}
		in.mu.Lock()
	}
}

// signalLocked wakes the waits of AwaitInterest; in.mu is held.
func (in *interest) signalLocked() {
	close(in.moved)
	in.moved = make(chan struct{})
}

// linkOpened has the pusher send this node's whole set over a new link,
// ahead of any change, and the changes from then on.
func (t *Transport) linkOpened(l *clientLink) {
	if t.cfg.PerRequestHTTP {
		return
	}
	in := t.interest
	in.mu.Lock()
	in.links[l] = &linkInterest{}
	in.mu.Unlock()
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

// snapshotLocked returns this node's whole set as the entries of a
// snapshot, one or more per app and an empty last one; in.mu is held.
func (in *interest) snapshotLocked() []*linkRequest {
	var out []*linkRequest
	for app, set := range in.keys {
		entry := &linkRequest{app: app, interest: make([]keyChange, 0, len(set))}
		for key := range set {
			entry.interest = append(entry.interest, keyChange{app: app, key: key, on: true})
		}
		out = append(out, entry)
	}
	out = append(out, &linkRequest{snapshotEnd: true})
	out[0].snapshotStart = true
	return out
}

// sentInterest is an interest entry waiting for its answer.
type sentInterest struct {
	call *linkCall
	id   uint64
}

// sendInterest queues entry on l, split so that every part fits a frame.
func (t *Transport) sendInterest(l *clientLink, entry *linkRequest) []sentInterest {
	var out []sentInterest
	limit := max(int(t.cfg.MaxBodyBytes)/2, 1024)
	for {
		part := *entry
		part.isInterest = true
		size := 0
		n := 0
		for n < len(entry.interest) && (n == 0 || size+len(entry.interest[n].key)+16 <= limit) {
			size += len(entry.interest[n].key) + 16
			n++
		}
		part.interest = entry.interest[:n]
		rest := entry.interest[n:]
		if len(rest) > 0 {
			part.snapshotEnd = false
		}
		c, err := l.send(&part)
		if err != nil {
			return out // the link broke: its end resets the peer's view
		}
		out = append(out, sentInterest{call: c, id: part.id})
		if len(rest) == 0 {
			return out
		}
		entry = &linkRequest{app: entry.app, interest: rest, snapshotEnd: entry.snapshotEnd}
	}
}

// awaitAcks waits for the answers to calls and then records that l's peer
// has confirmed version; a call that is not answered (or ctx ending)
// closes the link, whose next one starts with the whole set.
func (t *Transport) awaitAcks(ctx context.Context, l *clientLink, li *linkInterest, calls []sentInterest, version uint64) {
	for i, c := range calls {
		wctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
		_, err := l.wait(wctx, c.call, c.id, time.Time{})
		cancel()
		if err != nil {
			for _, rest := range calls[i+1:] {
				l.abandon(rest.call, rest.id)
			}
			l.close(errLinkClosed) // the peer's view of this node is unknown: start over
			break
		}
	}
	in := t.interest
	in.mu.Lock()
	if l.isClosed() {
		delete(in.links, l)
	} else if version > li.acked {
		li.acked = version
	}
	in.signalLocked()
	in.mu.Unlock()
}

// pushInterest sends the changes to every link as they come, until ctx
// ends: to a new link the whole set first. It is the only sender of
// interest entries, so they reach each peer in order; it takes what to
// send under in.mu and sends it without the lock, so SetInterest never
// waits for a peer.
func (t *Transport) pushInterest(ctx context.Context) {
	in := t.interest
	type work struct {
		l       *clientLink
		li      *linkInterest
		entries []*linkRequest
	}
	for {
		select {
		case <-in.wake:
		case <-ctx.Done():
			return
		}
		in.mu.Lock()
		changes, version := in.changes, in.version
		in.changes = nil
		if !in.reported { // a handler that does not route by key: peers send it everything
			in.mu.Unlock()
			continue
		}
		var deltas, snapshot []*linkRequest
		for _, byApp := range groupByApp(changes) {
			deltas = append(deltas, &linkRequest{app: byApp[0].app, interest: byApp})
		}
		var todo []work
		for l, li := range in.links {
			switch {
			case l.isClosed():
				delete(in.links, l)
			case !li.snapshotSent:
				li.snapshotSent = true
				if snapshot == nil {
					snapshot = in.snapshotLocked() // the state at version: the changes are in it
				}
				todo = append(todo, work{l, li, snapshot})
			case len(deltas) > 0:
				todo = append(todo, work{l, li, deltas})
			}
		}
		in.signalLocked()
		in.mu.Unlock()
		sent := make([][]sentInterest, len(todo))
		for i, w := range todo {
			for _, e := range w.entries {
				sent[i] = append(sent[i], t.sendInterest(w.l, e)...)
			}
		}
		for i, w := range todo {
			t.awaitAcks(ctx, w.l, w.li, sent[i], version)
		}
	}
}

// groupByApp splits changes into runs of one app, in order.
func groupByApp(changes []keyChange) [][]keyChange {
	var out [][]keyChange
	for i := 0; i < len(changes); {
		j := i + 1
		for j < len(changes) && changes[j].app == changes[i].app {
			j++
		}
		out = append(out, changes[i:j])
		i = j
	}
	return out
}

// mayHold reports whether peer may hold a connection of app matching t
// (whose routing keys are hub.RoutingKeys(t)): false only when the peer's
// whole set is known and has none of them. The keys are looked up without
// being built.
func (in *interest) mayHold(peer, app string, t *hub.Target) bool {
	in.peersMu.RLock()
	defer in.peersMu.RUnlock()
	p := in.peers[peer]
	if p == nil || !p.complete {
		return true
	}
	set := p.keys[app]
	if t.All {
		_, ok := set[hub.KeyAll]
		return ok
	}
	var buf [64]byte
	for _, ids := range [...]struct {
		prefix string
		ids    []string
	}{{hub.KeyUserPrefix, t.UserIDs}, {hub.KeyTokenPrefix, t.AccessTokens}, {hub.KeyTenantPrefix, t.TenantIDs},
		{hub.KeyChanPrefix, t.Channels}, {hub.KeyConnPrefix, t.ConnectionIDs}} {
		for _, id := range ids.ids {
			key := append(append(buf[:0], ids.prefix...), id...)
			if _, ok := set[string(key)]; ok {
				return true
			}
		}
	}
	return false
}

// peerLinked starts a new, empty view of peer for the link it opened; it
// replaces any view of an earlier link.
func (in *interest) peerLinked(peer string, l *serverLink) {
	in.peersMu.Lock()
	in.peers[peer] = &peerKeys{link: l, keys: make(map[string]map[string]struct{})}
	in.peersMu.Unlock()
}

// peerUnlinked drops peer's view when the link it came on ends.
func (in *interest) peerUnlinked(peer string, l *serverLink) {
	in.peersMu.Lock()
	if p := in.peers[peer]; p != nil && p.link == l {
		delete(in.peers, peer)
	}
	in.peersMu.Unlock()
}

// apply records an interest entry that peer sent on link l.
func (in *interest) apply(peer string, l *serverLink, req *linkRequest) {
	in.peersMu.Lock()
	defer in.peersMu.Unlock()
	p := in.peers[peer]
	if p == nil || p.link != l {
		return // a newer link replaced this one
	}
	if req.snapshotStart {
		p.keys = make(map[string]map[string]struct{})
		p.complete = false
	}
	for _, c := range req.interest {
		set := p.keys[req.app]
		if set == nil {
			set = make(map[string]struct{})
			p.keys[req.app] = set
		}
		if c.on {
			set[c.key] = struct{}{}
		} else {
			delete(set, c.key)
		}
	}
	if req.snapshotEnd {
		p.complete = true
	}
}

// appendInterest encodes the key changes of an interest entry.
func appendInterest(b []byte, changes []keyChange) []byte {
	b = binary.AppendUvarint(b, uint64(len(changes)))
	for _, c := range changes {
		on := byte(0)
		if c.on {
			on = 1
		}
		b = append(b, on)
		b = hubwire.AppendString(b, c.key)
	}
	return b
}

// readInterest decodes what appendInterest wrote, for app.
func readInterest(rd *hubwire.Reader, app string) []keyChange {
	n := rd.Uvarint()
	if n > uint64(rd.Len()) { // every change takes at least two bytes
		rd.Bad = true
		return nil
	}
	out := make([]keyChange, n)
	for i := range out {
		out[i] = keyChange{app: app, on: rd.Byte() == 1, key: rd.String()}
	}
	return out
}

var _ hub.Interest = (*Transport)(nil)
var _ hub.InterestWaiter = (*Transport)(nil)
