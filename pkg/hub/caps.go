package hub

import (
	"context"
	"sort"
)

// ownerKey groups the connections of one user for MaxConnectionsPerUser:
// the user id and tenant, or the access token of a user without id. It is
// empty for anonymous users, who are not capped per user.
func ownerKey(u User) string {
	switch {
	case u.ID != "":
		return "u\x00" + u.ID + "\x00" + u.TenantID
	case u.AccessToken != "":
		return "k\x00" + u.AccessToken
	}
	return ""
}

// ownerKey is ownerKey of c's user. It and capKey are made when needed,
// not kept in the record: the indices hold them as their keys.
func (c *Conn) ownerKey() string { return ownerKey(c.user) }

// capKey groups the connections of one browser profile for
// MaxConnectionsPerClient: the owner, tenant and client id (and, with
// Config.ClientCapByDomain, the request domain); empty without client id.
func (c *Conn) capKey() string {
	if c.info.ClientID == "" {
		return ""
	}
	key := c.ownerKey() + "\x00" + c.user.TenantID + "\x00" + c.info.ClientID
	if c.hub.cfg.ClientCapByDomain {
		key += "\x00" + c.info.RequestDomain
	}
	return key
}

// connCap is one connection cap as it applies to a new connection: its
// group on this node (the connections under key in ix) and in a listing
// of the owner's connections across the cluster (those same accepts), the
// limit, and the reason the oldest beyond it are closed with.
type connCap struct {
	ix     *index
	key    string
	limit  int
	reason DisconnectReason
	same   func(ConnectionInfo) bool
}

// capsOf lists the caps that apply to c: per client (with a client id),
// then per user (for users with id or access token).
func (h *Hub) capsOf(c *Conn) []connCap {
	var caps []connCap
	if limit, key := h.cfg.MaxConnectionsPerClient, c.capKey(); limit > 0 && key != "" {
		caps = append(caps, connCap{ix: &h.byClient, key: key, limit: limit, reason: ReasonClientLimit,
			same: func(ci ConnectionInfo) bool {
				return ci.ClientID == c.info.ClientID && ci.AccessTenantID == c.user.TenantID &&
					(!h.cfg.ClientCapByDomain || ci.RequestDomain == c.info.RequestDomain)
			}})
	}
	if limit := h.cfg.MaxConnectionsPerUser; limit > 0 && c.ownerKey() != "" {
		caps = append(caps, connCap{ix: &h.byOwner, key: c.ownerKey(), limit: limit, reason: ReasonUserLimit,
			same: func(ConnectionInfo) bool { return true }})
	}
	return caps
}

// enforceCaps closes the oldest connections of c's groups beyond their
// caps, here at once and on other nodes asynchronously.
func (h *Hub) enforceCaps(c *Conn) {
	caps := h.capsOf(c)
	for _, cp := range caps {
		group := cp.ix.list(cp.key)
		open := group[:0]
		for _, g := range group {
			if !g.Closed() {
				open = append(open, g)
			}
		}
		if len(open) <= cp.limit {
			continue
		}
		sort.Slice(open, func(i, j int) bool { return olderThan(open[i], open[j]) })
		for _, old := range open[:len(open)-cp.limit] {
			if old != c {
				old.close(cp.reason)
			}
		}
	}
	if h.cfg.Transport != nil && c.ownerKey() != "" && len(caps) > 0 {
		go h.enforceCapsCluster(c, caps)
	}
}

func olderThan(a, b *Conn) bool {
	if a.created != b.created {
		return a.created < b.created
	}
	return a.id < b.id
}

// enforceCapsCluster applies caps across nodes: it lists the owner's
// connections everywhere and closes the oldest of each group beyond its
// cap. c counts as the newest (creation times cross nodes in
// milliseconds); connections already closing here, or chosen by an
// earlier cap, do not count.
func (h *Hub) enforceCapsCluster(c *Conn, caps []connCap) {
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.SurveyTimeout)
	defer cancel()
	q := ConnectionQuery{UserID: c.user.ID}
	if c.user.ID == "" {
		q.AccessToken = c.user.AccessToken
	}
	all, err := h.Connections(ctx, q)
	if err != nil {
		return
	}
	gone := make(map[string]bool)
	var owned []ConnectionInfo
	for _, ci := range all {
		if ci.ID == c.id || ci.AccessUserID != c.user.ID || (c.user.ID != "" && ci.AccessTenantID != c.user.TenantID) {
			continue
		}
		if local := h.conns.get(ci.ID); local != nil && local.Closed() {
			continue
		}
		owned = append(owned, ci)
	}
	sort.Slice(owned, func(i, j int) bool {
		if owned[i].CreateTime != owned[j].CreateTime {
			return owned[i].CreateTime < owned[j].CreateTime
		}
		return owned[i].ID < owned[j].ID
	})
	for _, cp := range caps {
		var group []ConnectionInfo
		for _, ci := range owned {
			if !gone[ci.ID] && cp.same(ci) {
				group = append(group, ci)
			}
		}
		excess := len(group) + 1 - cp.limit
		if excess <= 0 {
			continue
		}
		victims := make([]string, excess)
		for i, ci := range group[:excess] {
			gone[ci.ID] = true
			victims[i] = ci.ID
		}
		_, _ = h.Disconnect(ctx, Target{ConnectionIDs: victims}, cp.reason)
	}
}
