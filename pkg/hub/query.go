package hub

import (
	"context"
	"slices"
	"sort"
	"strings"
	"time"
)

// ConnectionQuery filters connections. The first non-empty of ID, ClientID
// and Name decides, as in the seed's connections.json; UserID, AccessToken
// and Channel further restrict.
type ConnectionQuery struct {
	ID          string `json:"id,omitempty"`
	UserID      string `json:"userId,omitempty"`
	AccessToken string `json:"accessToken,omitempty"`
	// Channel keeps the connections in that channel.
	Channel  string `json:"channel,omitempty"`
	ClientID string `json:"clientId,omitempty"`
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
	if q.Channel != "" && !slices.Contains(c.Channels(), q.Channel) {
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
	// Channels counts the channels with a connection: on this node in
	// LocalStats; Stats gives the largest node's count, a lower bound
	// (Hub.Channels counts exactly).
	Channels int `json:"channels"`
}

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
	case q.Channel != "":
		all = h.byChannel.list(q.Channel)
	default:
		h.conns.each(func(c *Conn) { all = append(all, c) })
	}
	conns := all[:0]
	for _, c := range all {
		if q.match(c) {
			conns = append(conns, c)
		}
	}
	order := func(c *Conn) connOrder { return connOrder{c.user.Name, c.created / int64(time.Millisecond), c.id} }
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
		Channels:     h.byChannel.keys(),
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
	case q.Channel != "":
		t.Channels = []string{q.Channel}
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
		st.Channels = max(st.Channels, s.Channels)
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
