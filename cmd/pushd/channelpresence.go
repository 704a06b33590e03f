package main

import (
	"context"
	"encoding/json"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushd/pushd/pkg/channels"
	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/notify"
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

// channelPresence reports the joins and leaves of an app's channels: as
// events to the channels of namespaces with presence, cluster-wide from
// one goroutine, and to the app's hooks for namespaces with hooks.
type channelPresence struct {
	hub      *hub.Hub
	policy   *channels.Policy
	hooked   map[string]bool // namespace names with hooks: true
	notifier *notify.Notifier
	log      zerolog.Logger
	queue    chan presenceNote
}

// newChannelPresence returns nil when no namespace of policy has presence
// or hooks.
func newChannelPresence(a *app, policy *channels.Policy, log zerolog.Logger) *channelPresence {
	if policy == nil {
		return nil
	}
	p := &channelPresence{hub: a.hub, policy: policy, hooked: map[string]bool{}, notifier: a.notifier, log: log,
		queue: make(chan presenceNote, presenceQueue)}
	used := false
	for _, ns := range a.cfg.Channels.Namespaces {
		if ns.Hooks && a.notifier != nil {
			p.hooked[ns.name()] = true
		}
		used = used || ns.Presence || ns.Hooks
	}
	if !used {
		return nil
	}
	a.hub.OnChannelChange(p.observe)
	return p
}

// observe reports a change, without blocking the hub.
func (p *channelPresence) observe(ch hub.ChannelChange) {
	ns, ok := p.policy.Lookup(ch.Channel)
	if !ok {
		return
	}
	u := ch.Conn.User()
	if p.hooked[ns.Name] {
		p.notifier.ChannelChanged(notify.Presence{App: p.hub.App(), UserID: u.ID, TenantID: u.TenantID,
			ConnectionID: ch.Conn.ID(), Channel: ch.Channel}, ch.Joined)
	}
	if !ns.Presence {
		return
	}
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
