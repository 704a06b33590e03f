package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// owns reports whether u may act on c.
func owns(u User, c *Conn) bool { return u.MayActFor(c.user) }

// DisconnectArgs are the arguments of OpDisconnect.
type DisconnectArgs struct {
	Reason DisconnectReason `json:"reason"`
	// Duration and SessionDuration, when set, give the client's final
	// online seconds (their sum) before it closes (disconnect.do).
	Duration        *int64 `json:"duration,omitempty"`
	SessionDuration *int64 `json:"sessionDuration,omitempty"`
}

// Disconnect closes the connections matching t on every node and returns
// how many were closed. Deliberate reasons (ReasonKicked, ...) send
// connect-close first.
func (h *Hub) Disconnect(ctx context.Context, t Target, reason DisconnectReason) (int, error) {
	return h.disconnect(ctx, t, DisconnectArgs{Reason: reason})
}

// DisconnectClient closes a connection at its client's request
// (disconnect.do), recording the client's final online seconds first.
func (h *Hub) DisconnectClient(ctx context.Context, connID string, duration, sessionDuration *int64) (int, error) {
	return h.disconnect(ctx, Target{ConnectionIDs: []string{connID}},
		DisconnectArgs{Reason: ReasonClientClose, Duration: duration, SessionDuration: sessionDuration})
}

func (h *Hub) disconnect(ctx context.Context, t Target, args DisconnectArgs) (int, error) {
	if t.IsZero() {
		return 0, ErrNoTarget
	}
	n := h.disconnectLocal(t, args)
	if len(t.ConnectionIDs) > 0 && n == len(t.ConnectionIDs) && len(RoutingKeys(t)) == n {
		return n, nil
	}
	replies, err := h.survey(ctx, OpDisconnect, t, args)
	for _, r := range replies {
		n += r.Count
	}
	return n, err
}

func (h *Hub) disconnectLocal(t Target, args DisconnectArgs) int {
	n := 0
	for _, c := range h.matchingLocal(t) {
		if args.Duration != nil || args.SessionDuration != nil {
			var total int64
			if args.Duration != nil {
				total += *args.Duration
			}
			if args.SessionDuration != nil {
				total += *args.SessionDuration
			}
			c.mu.Lock()
			c.session = total
			c.mu.Unlock()
		}
		if c.close(args.Reason) {
			n++
		}
	}
	return n
}

// DurationArgs are the arguments of OpSetDuration.
type DurationArgs struct {
	Seconds int64 `json:"seconds"`
}

// SetDuration sets the online seconds of the connections matching t on
// every node and tells their clients (sse-set-duration). When it reaches
// no connection, the value waits here for the next connection of the
// addressed users or tokens.
func (h *Hub) SetDuration(ctx context.Context, t Target, seconds int64) (int, error) {
	if t.IsZero() {
		return 0, ErrNoTarget
	}
	n := h.setDurationLocal(t, seconds)
	replies, err := h.survey(ctx, OpSetDuration, t, DurationArgs{Seconds: seconds})
	for _, r := range replies {
		n += r.Count
	}
	if n == 0 && err == nil {
		h.durMu.Lock()
		for _, u := range t.UserIDs {
			h.pending[KeyUserPrefix+u] = seconds
		}
		for _, k := range t.AccessTokens {
			h.pending[KeyTokenPrefix+k] = seconds
		}
		h.durMu.Unlock()
	}
	return n, err
}

// ClearDuration resets the online seconds of the connections matching t.
func (h *Hub) ClearDuration(ctx context.Context, t Target) (int, error) {
	return h.SetDuration(ctx, t, 0)
}

func (h *Hub) setDurationLocal(t Target, seconds int64) int {
	n := 0
	f := encodeSetDuration(seconds)
	for _, c := range h.matchingLocal(t) {
		c.mu.Lock()
		c.session = seconds
		c.mu.Unlock()
		if c.enqueue(f, false) {
			n++
		}
	}
	return n
}

// deliverPendingDuration sends a waiting sse-set-duration to a new
// connection of its user or token.
func (h *Hub) deliverPendingDuration(c *Conn) {
	h.durMu.Lock()
	if len(h.pending) == 0 {
		h.durMu.Unlock()
		return
	}
	var seconds int64
	found := false
	for _, key := range []string{KeyUserPrefix + c.user.ID, KeyTokenPrefix + c.user.AccessToken} {
		if v, ok := h.pending[key]; ok && len(key) > 2 {
			seconds, found = v, true
			delete(h.pending, key)
		}
	}
	h.durMu.Unlock()
	if found {
		c.mu.Lock()
		c.session = seconds
		c.mu.Unlock()
		c.enqueue(encodeSetDuration(seconds), false)
	}
}

// ListenerArgs are the arguments of OpListeners.
type ListenerArgs struct {
	Add   bool     `json:"add"`
	Names []string `json:"names"`
	Owner User     `json:"owner"`
}

// ChangeListeners adds or removes event names of connection connID, on
// whichever node holds it, for the connection's owner only, and returns
// the connection's listener names afterwards. Another user's connection
// is reported as unknown. More names than Config.MaxListeners, in the call
// or on the connection afterwards, fail with ErrTooManyListeners and
// change nothing; a name checkName refuses fails with ErrInvalidName.
func (h *Hub) ChangeListeners(ctx context.Context, connID string, owner User, add bool, names []string) ([]string, error) {
	if err := h.checkListeners(names); err != nil {
		return nil, err
	}
	args := ListenerArgs{Add: add, Names: names, Owner: owner}
	if c := h.conns.get(connID); c != nil {
		return h.changeListenersLocal(c, args)
	}
	replies, err := h.survey(ctx, OpListeners, Target{ConnectionIDs: []string{connID}}, args)
	for _, r := range replies {
		if r.Error == "" && r.Count > 0 {
			var list []string
			if jerr := json.Unmarshal(r.Data, &list); jerr == nil {
				return list, nil
			}
		}
		if strings.HasPrefix(r.Error, ErrTooManyListeners.Error()) {
			return nil, fmt.Errorf("%w (on node %s)", ErrTooManyListeners, r.NodeID)
		}
	}
	if err != nil {
		return nil, err
	}
	return nil, ErrUnknownConnection
}

func (h *Hub) changeListenersLocal(c *Conn, args ListenerArgs) ([]string, error) {
	if !owns(args.Owner, c) {
		return nil, ErrUnknownConnection
	}
	if err := h.checkListeners(args.Names); err != nil {
		return nil, err
	}
	c.mu.Lock()
	before := c.listenersLocked()
	if args.Add {
		added := c.addListenersLocked(args.Names)
		if limit := h.cfg.MaxListeners; limit > 0 && len(c.listeners) > limit {
			c.removeListenersLocked(added)
			c.mu.Unlock()
			return nil, fmt.Errorf("%w: the connection would listen to %d names, at most %d",
				ErrTooManyListeners, len(before)+len(added), limit)
		}
		c.named = c.named || len(args.Names) > 0
	} else {
		c.removeListenersLocked(args.Names)
	}
	after := c.listenersLocked()
	c.mu.Unlock()
	h.hooksMu.RLock()
	hooks := h.onListenerChange
	h.hooksMu.RUnlock()
	for _, fn := range hooks {
		fn(ListenerChange{Conn: c, Added: args.Add, Before: before, After: after})
	}
	return after, nil
}

// AckArgs are the arguments of OpAck.
type AckArgs struct {
	IDs   []string `json:"ids"`
	Owner User     `json:"owner"`
}

// Ack acknowledges QoS messages received by connection connID, for its
// owner only, on whichever node holds it. It returns how many were
// pending. Unknown ids and other users' messages are ignored, repeated
// ids count once. More than MaxAckIDs ids fail with ErrTooManyIDs before
// anything is done.
func (h *Hub) Ack(ctx context.Context, connID string, owner User, ids []string) (int, error) {
	if err := checkAckIDs(ids); err != nil {
		return 0, err
	}
	if h.cfg.Repository == nil {
		return 0, ErrQoSDisabled
	}
	args := AckArgs{IDs: ids, Owner: owner}
	if c := h.conns.get(connID); c != nil {
		if !owns(owner, c) {
			return 0, ErrUnknownConnection
		}
		return h.ackLocal(ctx, c, ids), nil
	}
	replies, err := h.survey(ctx, OpAck, Target{ConnectionIDs: []string{connID}}, args)
	for _, r := range replies {
		if r.Error == "" && len(r.Data) > 0 {
			return r.Count, nil
		}
	}
	if err != nil {
		return 0, err
	}
	return 0, ErrUnknownConnection
}

// checkAckIDs refuses more than MaxAckIDs ids.
func checkAckIDs(ids []string) error {
	if len(ids) > MaxAckIDs {
		return fmt.Errorf("%w: %d ids, at most %d", ErrTooManyIDs, len(ids), MaxAckIDs)
	}
	return nil
}
