package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// ConnectionQuery filters connections. The first non-empty of ID, ClientID
// and Name decides, as in the seed's connections.json; UserID and
// AccessToken further restrict.
type ConnectionQuery struct {
	ID          string `json:"id,omitempty"`
	UserID      string `json:"userId,omitempty"`
	AccessToken string `json:"accessToken,omitempty"`
	ClientID    string `json:"clientId,omitempty"`
	// Name matches user names containing it, case-insensitively.
	Name string `json:"name,omitempty"`
	// Limit, when positive, keeps the first Limit connections of the
	// order (each node sends no more).
	Limit int `json:"limit,omitempty"`
}

func (q ConnectionQuery) match(c *Conn) bool {
	if q.UserID != "" && c.user.ID != q.UserID {
		return false
	}
	if q.AccessToken != "" && c.user.AccessToken != q.AccessToken {
		return false
	}
	switch {
	case q.ID != "":
		return c.id == q.ID
	case q.ClientID != "":
		return c.info.ClientID == q.ClientID
	case q.Name != "":
		return containsFold(c.user.Name, q.Name)
	}
	return true
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// UsersQuery filters users.
type UsersQuery struct {
	// Name matches user names containing it, case-insensitively; users
	// without a name never match a non-empty Name.
	Name string `json:"name,omitempty"`
	// Limit, when positive, keeps the first Limit users by id (each node
	// sends no more).
	Limit int `json:"limit,omitempty"`
}

// UserInfo is one online user.
type UserInfo struct {
	ID          string         `json:"id"`
	Name        string         `json:"name,omitempty"`
	TenantID    string         `json:"tenantId,omitempty"`
	Claims      map[string]any `json:"claims,omitempty"`
	Connections int            `json:"connections"`
}

// Stats counts what is online.
type Stats struct {
	Connections  int `json:"connections"`
	Users        int `json:"users"`
	AccessTokens int `json:"accessTokens"`
	Tenants      int `json:"tenants"`
}

// DisconnectArgs are the arguments of OpDisconnect.
type DisconnectArgs struct {
	Reason DisconnectReason `json:"reason"`
	// Duration and SessionDuration, when set, give the client's final
	// online seconds (their sum) before it closes (disconnect.do).
	Duration        *int64 `json:"duration,omitempty"`
	SessionDuration *int64 `json:"sessionDuration,omitempty"`
}

// DurationArgs are the arguments of OpSetDuration.
type DurationArgs struct {
	Seconds int64 `json:"seconds"`
}

// ListenerArgs are the arguments of OpListeners.
type ListenerArgs struct {
	Add   bool     `json:"add"`
	Names []string `json:"names"`
	Owner User     `json:"owner"`
}

// AckArgs are the arguments of OpAck.
type AckArgs struct {
	IDs   []string `json:"ids"`
	Owner User     `json:"owner"`
}

// owns reports whether u may act on c.
func owns(u User, c *Conn) bool { return u.MayActFor(c.user) }

// Conn returns the local connection with id, or nil.
func (h *Hub) Conn(id string) *Conn { return h.conns.get(id) }

// LocalConnections lists this node's connections matching q, sorted by
// user name, then creation time, then id.
func (h *Hub) LocalConnections(q ConnectionQuery) []ConnectionInfo {
	list, _ := h.localConnections(q)
	return list
}

// localConnections is LocalConnections plus the number of connections that
// matched before q.Limit.
func (h *Hub) localConnections(q ConnectionQuery) ([]ConnectionInfo, int) {
	var out []ConnectionInfo
	if q.ID != "" {
		if c := h.conns.get(q.ID); c != nil && q.match(c) {
			out = append(out, c.Snapshot())
		}
		return out, len(out)
	}
	var all []*Conn
	switch {
	case q.UserID != "":
		all = h.byUser.list(q.UserID)
	case q.AccessToken != "":
		all = h.byToken.list(q.AccessToken)
	default:
		h.conns.each(func(c *Conn) { all = append(all, c) })
	}
	conns := all[:0]
	for _, c := range all {
		if q.match(c) {
			conns = append(conns, c)
		}
	}
	order := func(c *Conn) connOrder { return connOrder{c.user.Name, c.created.UnixMilli(), c.id} }
	sort.Slice(conns, func(i, j int) bool { return order(conns[i]).before(order(conns[j])) })
	matched := len(conns)
	conns = limited(conns, q.Limit)
	out = make([]ConnectionInfo, len(conns))
	for i, c := range conns {
		out[i] = c.Snapshot()
	}
	return out, matched
}

// connOrder is the sort key of connection lists: user name, creation time
// in milliseconds, id.
type connOrder struct {
	name    string
	created int64
	id      string
}

func (a connOrder) before(b connOrder) bool {
	if a.name != b.name {
		return a.name < b.name
	}
	if a.created != b.created {
		return a.created < b.created
	}
	return a.id < b.id
}

func sortConnections(list []ConnectionInfo) {
	order := func(ci ConnectionInfo) connOrder { return connOrder{ci.AccessUserName, ci.CreateTime, ci.ID} }
	sort.Slice(list, func(i, j int) bool { return order(list[i]).before(order(list[j])) })
}

// limited returns the first n items of list, or list when n ≤ 0.
func limited[T any](list []T, n int) []T {
	if n > 0 && len(list) > n {
		return list[:n]
	}
	return list
}

// LocalUserConnections counts this node's connections of user id.
func (h *Hub) LocalUserConnections(userID string) int { return h.byUser.size(userID) }

// LocalUsers lists this node's online users matching q.
func (h *Hub) LocalUsers(q UsersQuery) []UserInfo {
	byID := make(map[string]*UserInfo)
	h.conns.each(func(c *Conn) {
		if c.user.ID == "" || (q.Name != "" && !containsFold(c.user.Name, q.Name)) {
			return
		}
		u := byID[c.user.ID]
		if u == nil {
			u = &UserInfo{ID: c.user.ID, Name: c.user.Name, TenantID: c.user.TenantID, Claims: c.user.Claims}
			byID[c.user.ID] = u
		}
		u.Connections++
	})
	out := make([]UserInfo, 0, len(byID))
	for _, u := range byID {
		out = append(out, *u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return limited(out, q.Limit)
}

func mergeUsers(lists ...[]UserInfo) []UserInfo {
	byID := make(map[string]int)
	var out []UserInfo
	for _, list := range lists {
		for _, u := range list {
			if i, ok := byID[u.ID]; ok {
				out[i].Connections += u.Connections
				continue
			}
			byID[u.ID] = len(out)
			out = append(out, u)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// LocalStats counts this node's connections, users, tokens and tenants.
func (h *Hub) LocalStats() Stats {
	return Stats{
		Connections:  h.conns.count(),
		Users:        h.byUser.keys(),
		AccessTokens: h.byToken.keys(),
		Tenants:      h.byTenant.keys(),
	}
}

// survey asks the other nodes, bounded by Config.SurveyTimeout; a hub
// without transport gets no replies.
func (h *Hub) survey(ctx context.Context, op string, t Target, args any) ([]Reply, error) {
	if h.cfg.Transport == nil {
		return nil, nil
	}
	req := Request{Op: op, Target: t}
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return nil, fmt.Errorf("hub: encode %s: %w", op, err)
		}
		req.Args = b
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.SurveyTimeout)
	defer cancel()
	start := time.Now()
	replies, err := h.cfg.Transport.Survey(ctx, h.cfg.App, req)
	h.observeCluster(op, start, err)
	if err != nil {
		return replies, fmt.Errorf("hub: survey %s: %w", op, err)
	}
	return replies, nil
}

// observeCluster reports one Transport call to Config.ObserveCluster.
func (h *Hub) observeCluster(op string, start time.Time, err error) {
	if h.cfg.ObserveCluster != nil {
		h.cfg.ObserveCluster(op, time.Since(start), err)
	}
}

// decodeReplies decodes each reply's Data into a T and passes it on.
func decodeReplies[T any](h *Hub, replies []Reply, fn func(T)) {
	for _, r := range replies {
		if r.Error != "" || len(r.Data) == 0 {
			continue
		}
		var v T
		if err := json.Unmarshal(r.Data, &v); err != nil {
			h.log.Warn().Err(err).Str("peer", r.NodeID).Msg("bad survey reply")
			continue
		}
		fn(v)
	}
}

// Connections lists the connections matching q on every node (the first
// q.Limit of them when set).
func (h *Hub) Connections(ctx context.Context, q ConnectionQuery) ([]ConnectionInfo, error) {
	list, _, err := h.CountConnections(ctx, q)
	return list, err
}

// CountConnections is Connections plus how many connections matched on
// the nodes that answered, before q.Limit: with a limit, each node sends
// only its first q.Limit, so a page costs no more than the page.
func (h *Hub) CountConnections(ctx context.Context, q ConnectionQuery) ([]ConnectionInfo, int, error) {
	out, total := h.localConnections(q)
	if q.ID != "" && len(out) > 0 {
		return out, total, nil
	}
	// Ask only the nodes that may hold what q looks for.
	var t Target
	switch {
	case q.ID != "":
		t.ConnectionIDs = []string{q.ID}
	case q.UserID != "":
		t.UserIDs = []string{q.UserID}
	case q.AccessToken != "":
		t.AccessTokens = []string{q.AccessToken}
	}
	replies, err := h.survey(ctx, OpConnections, t, q)
	for _, r := range replies {
		if r.Error == "" {
			total += r.Count
		}
	}
	decodeReplies(h, replies, func(list []ConnectionInfo) { out = append(out, list...) })
	sortConnections(out)
	return limited(out, q.Limit), total, err
}

// Users lists the online users matching q on every node, each once, with
// their connection count summed.
func (h *Hub) Users(ctx context.Context, q UsersQuery) ([]UserInfo, error) {
	lists := [][]UserInfo{h.LocalUsers(q)}
	replies, err := h.survey(ctx, OpUsers, Target{}, q)
	decodeReplies(h, replies, func(list []UserInfo) { lists = append(lists, list) })
	return limited(mergeUsers(lists...), q.Limit), err
}

// Stats counts what is online on every node. Users are counted once
// however many nodes they are on; access tokens and tenants are summed
// over nodes.
func (h *Hub) Stats(ctx context.Context) (Stats, error) {
	st := h.LocalStats()
	if h.cfg.Transport == nil {
		return st, nil
	}
	replies, err := h.survey(ctx, OpStats, Target{}, nil)
	decodeReplies(h, replies, func(s Stats) {
		st.Connections += s.Connections
		st.AccessTokens += s.AccessTokens
		st.Tenants += s.Tenants
	})
	users, uerr := h.Users(ctx, UsersQuery{})
	if uerr == nil {
		st.Users = len(users)
	}
	return st, err
}

// NodeInfo is one node's share of an app: what is online there and the
// node's counters.
type NodeInfo struct {
	NodeID   string   `json:"nodeId"`
	Stats    Stats    `json:"stats"`
	Counters Counters `json:"counters"`
}

// LocalNode reports this node's NodeInfo.
func (h *Hub) LocalNode() NodeInfo {
	return NodeInfo{NodeID: h.cfg.NodeID, Stats: h.LocalStats(), Counters: h.Counters()}
}

// Nodes reports every node that answers for the app: this one first, then
// the others by node id. A node that fails to answer is left out and the
// error says the list is partial.
func (h *Hub) Nodes(ctx context.Context) ([]NodeInfo, error) {
	out := []NodeInfo{h.LocalNode()}
	replies, err := h.survey(ctx, OpNode, Target{}, nil)
	decodeReplies(h, replies, func(n NodeInfo) { out = append(out, n) })
	sort.Slice(out[1:], func(i, j int) bool { return out[1+i].NodeID < out[1+j].NodeID })
	return out, err
}

// IsOnline reports whether the user has a connection on any node.
func (h *Hub) IsOnline(ctx context.Context, userID string) (bool, error) {
	if userID == "" {
		return false, nil
	}
	if h.byUser.size(userID) > 0 {
		return true, nil
	}
	list, err := h.Connections(ctx, ConnectionQuery{UserID: userID})
	return len(list) > 0, err
}

// Owner returns the identity of the connection id on any node.
func (h *Hub) Owner(ctx context.Context, connID string) (User, error) {
	list, err := h.Connections(ctx, ConnectionQuery{ID: connID})
	if len(list) == 0 {
		if err != nil {
			return User{}, err
		}
		return User{}, ErrUnknownConnection
	}
	return list[0].AccessUser, nil
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
		var added []string
		for _, n := range args.Names {
			if _, ok := c.listeners[n]; !ok {
				c.listeners[n] = struct{}{}
				added = append(added, n)
			}
		}
		if limit := h.cfg.MaxListeners; limit > 0 && len(c.listeners) > limit {
			for _, n := range added {
				delete(c.listeners, n)
			}
			c.mu.Unlock()
			return nil, fmt.Errorf("%w: the connection would listen to %d names, at most %d",
				ErrTooManyListeners, len(before)+len(added), limit)
		}
		c.named = c.named || len(args.Names) > 0
	} else {
		for _, n := range args.Names {
			delete(c.listeners, n)
		}
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

// HandleSurvey implements Handler: it answers another node's request for
// this node's connections.
func (h *Hub) HandleSurvey(ctx context.Context, app string, req Request) (Reply, error) {
	rep := Reply{NodeID: h.cfg.NodeID}
	if app != h.cfg.App {
		return rep, fmt.Errorf("hub: app %q is not %q", app, h.cfg.App)
	}
	h.counts.peer.Add(1)
	var err error
	switch req.Op {
	case OpStats:
		rep.Data, err = json.Marshal(h.LocalStats())
	case OpNode:
		rep.Data, err = json.Marshal(h.LocalNode())
	case OpUsers:
		var q UsersQuery
		if err = unmarshalArgs(req.Args, &q); err == nil {
			rep.Data, err = json.Marshal(h.LocalUsers(q))
		}
	case OpConnections:
		var q ConnectionQuery
		if err = unmarshalArgs(req.Args, &q); err == nil {
			var list []ConnectionInfo
			list, rep.Count = h.localConnections(q)
			rep.Data, err = json.Marshal(list)
		}
	case OpDisconnect:
		var a DisconnectArgs
		if err = unmarshalArgs(req.Args, &a); err == nil && !req.Target.IsZero() {
			rep.Count = h.disconnectLocal(req.Target, a)
		}
	case OpSetDuration:
		var a DurationArgs
		if err = unmarshalArgs(req.Args, &a); err == nil && !req.Target.IsZero() {
			rep.Count = h.setDurationLocal(req.Target, a.Seconds)
		}
	case OpListeners:
		var a ListenerArgs
		if err = unmarshalArgs(req.Args, &a); err == nil {
			if c := h.oneConn(req.Target); c != nil {
				var list []string
				if list, err = h.changeListenersLocal(c, a); err == nil {
					rep.Count = 1
					rep.Data, err = json.Marshal(list)
				}
			}
		}
	case OpAck:
		var a AckArgs
		if err = unmarshalArgs(req.Args, &a); err == nil {
			err = checkAckIDs(a.IDs)
		}
		if err == nil && h.cfg.Repository != nil {
			if c := h.oneConn(req.Target); c != nil && owns(a.Owner, c) {
				rep.Count = h.ackLocal(ctx, c, a.IDs)
				rep.Data = json.RawMessage("true")
			}
		}
	default:
		err = fmt.Errorf("hub: unknown survey op %q", req.Op)
	}
	if err != nil {
		rep.Error = err.Error()
	}
	return rep, err
}

// oneConn returns the local connection named by a single-connection
// target, or nil.
func (h *Hub) oneConn(t Target) *Conn {
	if len(t.ConnectionIDs) != 1 {
		return nil
	}
	return h.conns.get(t.ConnectionIDs[0])
}

func unmarshalArgs(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("hub: bad survey arguments: %w", err)
	}
	return nil
}
