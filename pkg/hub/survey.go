package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Survey operations. Request.Args and Reply.Data carry the JSON documented
// at each one.
const (
	// OpStats: Data = Stats of the node.
	OpStats = "stats"
	// OpNode: Data = NodeInfo of the node.
	OpNode = "node"
	// OpUsers: Args = UsersQuery; Data = []UserInfo.
	OpUsers = "users"
	// OpConnections: Args = ConnectionQuery; Data = []ConnectionInfo (the
	// first Limit); Count = all that matched.
	OpConnections = "connections"
	// OpDisconnect: Target selects; Args = DisconnectArgs; Count = closed.
	OpDisconnect = "disconnect"
	// OpSetDuration: Target selects; Args = DurationArgs; Count = reached.
	OpSetDuration = "set-duration"
	// OpListeners: Target = one connection; Args = ListenerArgs;
	// Data = the connection's listener names after the change.
	OpListeners = "listeners"
	// OpAck: Target = one connection; Args = AckArgs; Count = acked.
	OpAck = "ack"
	// OpChannelChange: Target selects; Args = ChannelArgs; Count = the
	// connections whose channels changed; for a browser's own call (Owner
	// set) Data = the connection's channels afterwards.
	OpChannelChange = "channel-change"
	// OpChannels: Args = ChannelsQuery; Data = the node's channels, each
	// with its connections and distinct owners.
	OpChannels = "channels"
)

// Request is a question to other nodes.
type Request struct {
	Op     string          `json:"op"`
	Target Target          `json:"target,omitempty"`
	Args   json.RawMessage `json:"args,omitempty"`
}

// Reply is one node's answer to a Request.
type Reply struct {
	NodeID string          `json:"nodeId"`
	Count  int             `json:"count,omitempty"`
	Data   json.RawMessage `json:"data,omitempty"`
	Error  string          `json:"error,omitempty"`
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
	case OpChannelChange:
		rep, err = h.handleChannelChange(ctx, req, rep)
	case OpChannels:
		var q ChannelsQuery
		if err = unmarshalArgs(req.Args, &q); err == nil {
			rep.Data, err = json.Marshal(h.localChannels(q))
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
