package redis

import "github.com/pushd/pushd/pkg/hub"

// Request kinds carried by an envelope.
const (
	kindDeliver = "deliver"
	kindSurvey  = "survey"
)

// envelope is a request published to routing key channels.
type envelope struct {
	// ID identifies the request; it starts with the sending instance's
	// random prefix, so a node recognises its own requests.
	ID string `json:"id"`
	// Origin is the sender's NodeID (for logs).
	Origin string `json:"origin"`
	// ReplyTo is the channel replies go to.
	ReplyTo string `json:"replyTo"`
	// Multi says the request was published to more than one channel, so a
	// node may receive it several times and must remember its id.
	Multi bool   `json:"multi,omitempty"`
	App   string `json:"app"`
	Kind  string `json:"kind"`
	// TimeoutMS is the time the sender still waited when it published; the
	// serving node gives its handler that long from the arrival.
	TimeoutMS int64        `json:"timeoutMs,omitempty"`
	Target    hub.Target   `json:"target"`
	Event     *hub.Event   `json:"event,omitempty"`
	Request   *hub.Request `json:"request,omitempty"`
}

// replyEnvelope is a node's answer, published to the request's ReplyTo.
type replyEnvelope struct {
	ID string `json:"id"`
	hub.Reply
	// Dup marks the answer to a repeated arrival of a request already
	// served: it only completes the sender's count of expected replies.
	Dup bool `json:"dup,omitempty"`
}
