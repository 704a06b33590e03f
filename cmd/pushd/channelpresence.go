package main

import (
	"context"
	"encoding/json"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushd/pushd/pkg/channels"
	"github.com/pushd/pushd/pkg/hub"
)

// presenceEvent is the event a channel of a namespace with presence: true
// gets when a user's connection joins or leaves it.
const presenceEvent = "sse-presence"

// presenceQueue bounds the presence events waiting to be sent per app;
// beyond it they are dropped: they are a courtesy, not a guarantee.
const presenceQueue = 4096

// presenceNote is the data of a presence event. It never carries the
// connection id: that id is a credential (disconnect.do).
type presenceNote struct {
	Channel string `json:"channel"`
	Action  string `json:"action"` // "join" or "leave"
	UserID  string `json:"userId,omitempty"`
	Name    string `json:"name,omitempty"`
}

// channelPresence sends the join and leave events of an app's channels
// whose namespace has presence, cluster-wide, from one goroutine.
type channelPresence struct {
	hub    *hub.Hub
	policy *channels.Policy
	log    zerolog.Logger
	queue  chan presenceNote
}

// newChannelPresence returns nil when no namespace of policy has presence.
func newChannelPresence(h *hub.Hub, policy *channels.Policy, namespaces []NamespaceConfig, log zerolog.Logger) *channelPresence {
	if policy == nil {
		return nil
	}
	for _, ns := range namespaces {
		if ns.Presence {
			p := &channelPresence{hub: h, policy: policy, log: log, queue: make(chan presenceNote, presenceQueue)}
			h.OnChannelChange(p.observe)
			return p
		}
	}
	return nil
}

// observe queues the event of a change, without blocking the hub.
func (p *channelPresence) observe(ch hub.ChannelChange) {
	ns, ok := p.policy.Lookup(ch.Channel)
	if !ok || !ns.Presence {
		return
	}
	u := ch.Conn.User()
	note := presenceNote{Channel: ch.Channel, Action: "leave", UserID: u.ID, Name: u.Name}
	if ch.Joined {
		note.Action = "join"
	}
	select {
	case p.queue <- note:
	default:
		p.log.Debug().Str("channel", ch.Channel).Msg("presence event dropped: queue full")
	}
}

// Run sends the queued events until ctx ends.
func (p *channelPresence) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case note := <-p.queue:
			data, err := json.Marshal(note)
			if err != nil {
				continue
			}
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err = p.hub.Send(sctx, hub.Target{Channels: []string{note.Channel}}, hub.Event{Name: presenceEvent, Data: string(data)})
			cancel()
			if err != nil {
				p.log.Debug().Err(err).Str("channel", note.Channel).Msg("presence event not sent")
			}
		}
	}
}
