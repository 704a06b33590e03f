package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// checkChannels refuses more than Config.MaxChannels channels and names
// checkName refuses, and returns the names sorted without repeats.
func (h *Hub) checkChannels(names []string) ([]string, error) {
	var out []string
	for _, n := range names {
		if err := h.checkName(n); err != nil {
			return nil, fmt.Errorf("channel: %w", err)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if limit := h.cfg.MaxChannels; limit > 0 && len(out) > limit {
		return nil, fmt.Errorf("%w: %d channels, at most %d", ErrTooManyChannels, len(out), limit)
	}
	return out, nil
}

// ChannelArgs are the arguments of OpChannelChange.
type ChannelArgs struct {
	Join     bool     `json:"join"` // false: leave
	Channels []string `json:"channels"`
	// Owner, when set, restricts the change to that user's connection (a
	// browser's own call); the server API leaves it nil.
	Owner *User `json:"owner,omitempty"`
}

// Subscribe makes the connections matching t, on every node, join (join
// set) or leave channels, and returns how many connections' channel sets
// changed. A connection that would be in more than Config.MaxChannels
// channels is left unchanged. Who may be in a channel is the caller's
// policy: Subscribe checks only names and bounds.
func (h *Hub) Subscribe(ctx context.Context, t Target, channels []string, join bool) (int, error) {
	if t.IsZero() {
		return 0, ErrNoTarget
	}
	names, err := h.checkChannels(channels)
	if err != nil {
		return 0, err
	}
	if len(names) == 0 {
		return 0, fmt.Errorf("%w: no channel", ErrInvalidName)
	}
	args := ChannelArgs{Join: join, Channels: names}
	n := 0
	for _, c := range h.matchingLocal(t) {
		if changed, _ := h.changeChannelsLocal(ctx, c, args); changed {
			n++
		}
	}
	if len(t.ConnectionIDs) > 0 && len(RoutingKeys(t)) == len(t.ConnectionIDs) && h.allLocal(t.ConnectionIDs) {
		return n, nil
	}
	replies, err := h.survey(ctx, OpChannelChange, t, args)
	for _, r := range replies {
		n += r.Count
	}
	return n, err
}

// allLocal reports whether every connection id is held by this node.
func (h *Hub) allLocal(ids []string) bool {
	for _, id := range ids {
		if h.conns.get(id) == nil {
			return false
		}
	}
	return true
}

// ChangeChannels makes connection connID, on whichever node holds it,
// join or leave channels for its owner only, and returns the
// connection's channels afterwards. Another user's connection is reported
// as unknown; joining beyond Config.MaxChannels fails with
// ErrTooManyChannels and changes nothing. The caller has authorized the
// channels for owner.
func (h *Hub) ChangeChannels(ctx context.Context, connID string, owner User, join bool, channels []string) ([]string, error) {
	names, err := h.checkChannels(channels)
	if err != nil {
		return nil, err
	}
	args := ChannelArgs{Join: join, Channels: names, Owner: &owner}
	if c := h.conns.get(connID); c != nil {
		if !owns(owner, c) {
			return nil, ErrUnknownConnection
		}
		if _, err := h.changeChannelsLocal(ctx, c, args); err != nil {
			return nil, err
		}
		return c.Channels(), nil
	}
	replies, err := h.survey(ctx, OpChannelChange, Target{ConnectionIDs: []string{connID}}, args)
	for _, r := range replies {
		if r.Error == "" && len(r.Data) > 0 {
			var list []string
			if jerr := json.Unmarshal(r.Data, &list); jerr == nil {
				return list, nil
			}
		}
		if strings.HasPrefix(r.Error, ErrTooManyChannels.Error()) {
			return nil, fmt.Errorf("%w (on node %s)", ErrTooManyChannels, r.NodeID)
		}
	}
	if err != nil {
		return nil, err
	}
	return nil, ErrUnknownConnection
}

// changeChannelsLocal applies args to c: the indices and the transport's
// interest follow, and for new channels it waits (bounded by RouteTimeout)
// until the transport routes them here, so a send right after the change
// reaches c. It reports whether c's set changed.
func (h *Hub) changeChannelsLocal(ctx context.Context, c *Conn, args ChannelArgs) (bool, error) {
	if args.Owner != nil && !owns(*args.Owner, c) {
		return false, ErrUnknownConnection
	}
	var added, removed []string
	c.chanMu.Lock()
	if c.gone {
		c.chanMu.Unlock()
		return false, nil
	}
	next := slices.Clone(c.channels)
	for _, ch := range args.Channels {
		i, found := slices.BinarySearch(next, ch)
		switch {
		case args.Join && !found:
			next = slices.Insert(next, i, ch)
			added = append(added, ch)
		case !args.Join && found:
			next = slices.Delete(next, i, i+1)
		}
	}
	if limit := h.cfg.MaxChannels; args.Join && limit > 0 && len(next) > limit {
		c.chanMu.Unlock()
		return false, fmt.Errorf("%w: the connection would be in %d channels, at most %d", ErrTooManyChannels, len(next), limit)
	}
	for _, ch := range c.channels {
		if _, keep := slices.BinarySearch(next, ch); !keep {
			removed = append(removed, ch)
			if h.byChannel.remove(ch, c) && h.interest != nil {
				h.interest.SetInterest(h.cfg.App, KeyChanPrefix+ch, false)
			}
		}
	}
	changed := len(removed) > 0 || len(added) > 0
	for _, ch := range added {
		if h.byChannel.add(ch, c) && h.interest != nil {
			h.interest.SetInterest(h.cfg.App, KeyChanPrefix+ch, true)
		}
	}
	c.channels = next
	c.chanMu.Unlock()
	h.trackStreams(ctx, c, added, removed)
	h.channelChanged(c, added, removed)
	if len(added) > 0 {
		keys := make([]string, len(added))
		for i, ch := range added {
			keys[i] = KeyChanPrefix + ch
		}
		h.awaitRoutes(ctx, c, keys)
	}
	return changed, nil
}

// handleChannelChange serves OpChannelChange for another node.
func (h *Hub) handleChannelChange(ctx context.Context, req Request, rep Reply) (Reply, error) {
	var a ChannelArgs
	if err := unmarshalArgs(req.Args, &a); err != nil {
		return rep, err
	}
	names, err := h.checkChannels(a.Channels)
	if err != nil || req.Target.IsZero() {
		return rep, err
	}
	a.Channels = names
	if a.Owner != nil { // a browser's call for one connection
		c := h.oneConn(req.Target)
		if c == nil || !owns(*a.Owner, c) {
			return rep, nil
		}
		if _, err := h.changeChannelsLocal(ctx, c, a); err != nil {
			return rep, err
		}
		rep.Count = 1
		rep.Data, err = json.Marshal(c.Channels())
		return rep, err
	}
	for _, c := range h.matchingLocal(req.Target) {
		if changed, _ := h.changeChannelsLocal(ctx, c, a); changed {
			rep.Count++
		}
	}
	return rep, nil
}

// ChannelsQuery selects channels in Channels.
type ChannelsQuery struct {
	// Prefix keeps the channels whose name starts with it.
	Prefix string `json:"prefix,omitempty"`
}

// ChannelInfo is one channel's presence: its connections and distinct
// users, cluster-wide (users without id count by access token).
type ChannelInfo struct {
	Name        string `json:"name"`
	Connections int    `json:"connections"`
	Users       int    `json:"users"`
}

// channelNode is one node's view of a channel in an OpChannels reply.
type channelNode struct {
	Name        string   `json:"name"`
	Connections int      `json:"connections"`
	Owners      []string `json:"owners"` // distinct owner keys
}

// Channels lists the channels with connections matching q, cluster-wide,
// sorted by name.
func (h *Hub) Channels(ctx context.Context, q ChannelsQuery) ([]ChannelInfo, error) {
	type acc struct {
		conns  int
		owners map[string]struct{}
	}
	merged := map[string]*acc{}
	add := func(list []channelNode) {
		for _, cn := range list {
			a := merged[cn.Name]
			if a == nil {
				a = &acc{owners: map[string]struct{}{}}
				merged[cn.Name] = a
			}
			a.conns += cn.Connections
			for _, o := range cn.Owners {
				a.owners[o] = struct{}{}
			}
		}
	}
	add(h.localChannels(q))
	replies, err := h.survey(ctx, OpChannels, Target{}, q)
	decodeReplies(h, replies, add)
	out := make([]ChannelInfo, 0, len(merged))
	for name, a := range merged {
		out = append(out, ChannelInfo{Name: name, Connections: a.conns, Users: len(a.owners)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// localChannels lists this node's channels matching q with their
// connections and distinct owners.
func (h *Hub) localChannels(q ChannelsQuery) []channelNode {
	var out []channelNode
	h.byChannel.eachKey(func(name string, conns []*Conn) {
		if !strings.HasPrefix(name, q.Prefix) {
			return
		}
		owners := make([]string, 0, len(conns))
		for _, c := range conns {
			owners = append(owners, c.ownerKey())
		}
		slices.Sort(owners)
		out = append(out, channelNode{Name: name, Connections: len(conns), Owners: slices.Compact(owners)})
	})
	return out
}

// trackStreams keeps c's positions in step with its channels: a joined
// channel with history starts at the stream's current position, a left
// one is forgotten.
func (h *Hub) trackStreams(ctx context.Context, c *Conn, joined, left []string) {
	if c.resume == nil {
		return
	}
	for _, ch := range left {
		c.resume.track(StreamPos{Stream: StreamChannelPrefix + ch}, false)
	}
	for _, ch := range joined {
		s := StreamChannelPrefix + ch
		opts, ok := h.streamOptions(s)
		if !ok {
			continue
		}
		top, err := h.cfg.History.Top(ctx, h.cfg.App, s, opts)
		if err != nil {
			h.log.Warn().Err(err).Str("stream", s).Msg("history unavailable at join: the channel will not resume")
			continue
		}
		c.resume.track(StreamPos{Stream: s, Offset: top.Offset, Epoch: top.Epoch}, true)
	}
}
