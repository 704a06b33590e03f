package hub

import (
	"net"
	"slices"
	"sync"
	"time"
)

// ConnectRequest describes a connection to register with Hub.Connect.
type ConnectRequest struct {
	// User is the authenticated identity.
	User User
	// Info is the client's telemetry.
	Info ClientInfo
	// Channels are the channels the connection joins at once: at most
	// Config.MaxChannels valid names. The caller has authorized them.
	Channels []string
	// Listeners are the event names the client listens to initially: at
	// most Config.MaxListeners valid names (see Hub.Connect). A client that
	// names none is taken to handle every event.
	Listeners []string
	// Keepalive is the lifetime the client asked for: 0 means not given
	// (15 min), negative means unlimited. Config.Keepalive overrides it.
	Keepalive time.Duration
	// SessionDuration is the client's accumulated online seconds.
	SessionDuration int64
	// CanAck is set for clients that acknowledge QoS messages.
	CanAck bool
	// LastEventID is the last QoS message id the client saw, if any.
	LastEventID string
}

// defaultClientKeepalive is the lifetime of a connection whose client did
// not say (the seed client's default).
const defaultClientKeepalive = 15 * time.Minute

// Conn is one open SSE stream. Its identity and telemetry never change; its
// listeners, session duration and counters do, under its own lock.
type Conn struct {
	// One per open connection, so fields are ordered for the small ones
	// to share words, times are integers, the client's parameters
	// one string, the cap group keys are made when needed and what only
	// some connections need sits behind pointers: the struct and its
	// 8-byte allocation header fit the 640-byte size class
	// (TestConnRecordSize).
	hub       *Hub
	id        string
	user      User
	info      ClientInfo // Params is nil: see params
	params    string     // ClientInfo.Params, encoded (packParams)
	created   int64      // Unix nanoseconds
	expires   int64      // Unix milliseconds (any year a token may say); 0: never
	lastEvent string

	expiry DisconnectReason // why it ends at expires
	canAck bool
	gone   bool // unregistered: channels no longer change (under chanMu)

	// chanMu orders changes of channels with registration: held across
	// the index updates (before any index lock, never with mu).
	chanMu sync.Mutex
	// mu guards what follows up to nc (and the flags right after it).
	mu        sync.Mutex
	closed    bool
	reason    DisconnectReason
	scheduled bool // the writer was told and has not yet found the queue empty
	named     bool // the client named listeners (at connect or since): QoS filtering applies

	channels []string // sorted, no repeats; under chanMu

	queue       []*frame
	out         outlet
	listeners   []string // sorted, no repeats: a few names need no map
	session     int64
	sent        uint64
	requests    uint64
	uploads     uint64
	lastRequest int64                // Unix milliseconds of the last CountRequest, 0 before
	unacked     map[string]time.Time // QoS id → last written, acknowledging clients only

	nc net.Conn // the hijacked socket, for pool-written connections

	resume *resumeState // positions in resumable streams; nil without Config.History
	// replayed is, after a resume, the floor its replay covered
	// (history.go): a live event at or below it is a duplicate. Under mu.
	// A pointer: most connections never have one (in resumeState it
	// would take that to the next size class).
	replayed *[]StreamPos

	// Only the writer touches these (spare under mu in take, too).
	counter uint64        // frame id counter
	spare   []*frame      // a written queue's slice, cleared, to reuse
	stalled *pendingWrite // what a pool worker could not write yet
	raw     *rawSocket    // the hijacked socket for non-blocking writes, or nil
}

// ID returns the connection's opaque, unguessable id.
func (c *Conn) ID() string { return c.id }

// User returns the connection's identity.
func (c *Conn) User() User { return c.user }

// Info returns the client's telemetry.
func (c *Conn) Info() ClientInfo {
	info := c.info
	info.Params = unpackParams(c.params)
	return info
}

// Channels returns the channels the connection is in, sorted.
func (c *Conn) Channels() []string {
	c.chanMu.Lock()
	defer c.chanMu.Unlock()
	return slices.Clone(c.channels)
}

// CreatedAt returns when the connection was registered.
func (c *Conn) CreatedAt() time.Time { return time.Unix(0, c.created) }

// CanAck reports whether the client acknowledges QoS messages.
func (c *Conn) CanAck() bool { return c.canAck }

// Listeners returns the event names the connection listens to, sorted.
func (c *Conn) Listeners() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.listenersLocked()
}

func (c *Conn) listenersLocked() []string {
	return append(make([]string, 0, len(c.listeners)), c.listeners...)
}

// listensLocked reports whether the client named event as a listener.
func (c *Conn) listensLocked(event string) bool {
	_, ok := slices.BinarySearch(c.listeners, event)
	return ok
}

// addListenersLocked adds names to the listeners and returns those that
// were not among them, in the order given.
func (c *Conn) addListenersLocked(names []string) []string {
	var added []string
	for _, n := range names {
		if !c.listensLocked(n) && !slices.Contains(added, n) {
			added = append(added, n)
		}
	}
	if len(added) > 0 {
		c.listeners = append(c.listeners, added...)
		slices.Sort(c.listeners)
	}
	return added
}

// removeListenersLocked takes names out of the listeners.
func (c *Conn) removeListenersLocked(names []string) {
	c.listeners = slices.DeleteFunc(c.listeners, func(n string) bool { return slices.Contains(names, n) })
}

// SessionDuration returns the client's accumulated online seconds.
func (c *Conn) SessionDuration() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session
}

// Closed reports whether the connection is closed or closing.
func (c *Conn) Closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Reason returns why the connection closed, or 0 while it is open.
func (c *Conn) Reason() DisconnectReason {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

// CountRequest counts a message.do or upload.do made over this connection.
func (c *Conn) CountRequest(upload bool) {
	c.mu.Lock()
	if upload {
		c.uploads++
	} else {
		c.requests++
	}
	c.lastRequest = time.Now().UnixMilli()
	c.mu.Unlock()
}

// enqueue appends f unless the connection is closed, or (with listening)
// does not listen to f's event. A full queue closes the connection as slow
// and drops what it held. It never blocks on I/O.
func (c *Conn) enqueue(f *frame, listening bool) bool {
	ok, out := c.offer(f, listening)
	if out != nil {
		out.schedule(c)
	}
	return ok
}

// offer is enqueue without waking the writer: it returns the outlet to
// wake, if any, so that a fan-out can wake many writers at once.
func (c *Conn) offer(f *frame, listening bool) (bool, outlet) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false, nil
	}
	if listening && !c.listensLocked(f.event) {
		c.mu.Unlock()
		return false, nil
	}
	if c.replayed != nil && len(f.streams) > 0 && coveredBy(*c.replayed, f) {
		c.mu.Unlock()
		return true, nil // the client has it from the replay
	}
	if f.qosID != "" && !c.canAck && !c.receivesLocked(f.event) {
		// Writing it would count as delivered and drop it from the
		// inbox, though the client never sees it: it stays stored.
		c.mu.Unlock()
		return false, nil
	}
	if len(c.queue) >= c.hub.cfg.QueueSize {
		c.closed, c.reason, c.queue = true, ReasonSlow, nil
		out := c.wakeLocked()
		c.mu.Unlock()
		c.hub.counts.slow.Add(1)
		c.hub.log.Warn().Str("conn", c.id).Str("user", c.user.ID).Msg("slow consumer disconnected")
		return false, out
	}
	c.queue = append(c.queue, f)
	c.sent++
	out := c.wakeLocked()
	c.mu.Unlock()
	return true, out
}

// receivesLocked reports whether the client handles event, as far as the
// hub knows: a client that named its listeners handles those; one that
// never named any (a plain EventSource, curl) is taken to handle all.
func (c *Conn) receivesLocked(event string) bool {
	return !c.named || c.listensLocked(event)
}

// wakeLocked returns the outlet to tell about new work, or nil when the
// writer is already on its way (or not attached yet).
func (c *Conn) wakeLocked() outlet {
	if c.out == nil || c.scheduled {
		return nil
	}
	c.scheduled = true
	return c.out
}

// close stops the connection with reason. Deliberate closes queue a
// connect-close frame first. The writer ends the stream and unregisters.
func (c *Conn) close(reason DisconnectReason) bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	c.closed, c.reason = true, reason
	if reason.tellsClient() {
		c.queue = append(c.queue, encodeConnectClose(c, reason))
	}
	out := c.wakeLocked()
	c.mu.Unlock()
	if out != nil {
		out.schedule(c)
	}
	return true
}
