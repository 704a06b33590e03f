package redis

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/pushd/pushd/internal/hubwire"
	"github.com/pushd/pushd/pkg/hub"
)

// Request kinds carried by an envelope.
const (
	kindDeliver = "deliver"
	kindSurvey  = "survey"
)

// Message formats. A message starts with its format byte; the JSON of the
// versions before the binary format (and of Config.LegacyWire) starts
// with '{'. A node reads every format and answers a request in the format
// it came in: a JSON request gets one JSON reply, a binary request a
// binary reply, batched with the other replies ready for the same sender.
const (
	formatRequest byte = 0x02 // one binary envelope
	formatReplies byte = 0x03 // a batch of binary replies to one sender
)

// Flags of a binary envelope.
const (
	flagDeliver   = 1 << iota // a deliver request (else a survey)
	flagMulti                 // envelope.Multi
	flagAll                   // Target.All
	flagListening             // Target.Listening
	flagStreams               // the event carries stream positions (hub.Event.Streams)
)

// flagDup marks a binary reply as replyEnvelope.Dup.
const flagDup = 1

// errMalformed is returned for a message that cannot be decoded.
var errMalformed = errors.New("redis: malformed message")

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
	// legacy marks a request that arrived as JSON: its reply goes out as
	// JSON, alone.
	legacy bool
}

// replyEnvelope is a node's answer, published to the request's ReplyTo.
type replyEnvelope struct {
	ID string `json:"id"`
	hub.Reply
	// Dup marks the answer to a repeated arrival of a request already
	// served: it only completes the sender's count of expected replies.
	Dup bool `json:"dup,omitempty"`
}

// encode renders env in the binary format, or as JSON when legacy.
func (env *envelope) encode(legacy bool) ([]byte, error) {
	if legacy {
		b, err := json.Marshal(env)
		if err != nil {
			return nil, fmt.Errorf("redis: encode request: %w", err)
		}
		return b, nil
	}
	t := &env.Target
	flags := byte(0)
	if env.Kind == kindDeliver {
		flags |= flagDeliver
	}
	if env.Multi {
		flags |= flagMulti
	}
	if t.All {
		flags |= flagAll
	}
	if t.Listening {
		flags |= flagListening
	}
	if env.Event != nil && len(env.Event.Streams) > 0 {
		flags |= flagStreams
	}
	size := 96 + len(env.ID) + len(env.ReplyTo)
	if env.Event != nil {
		size += hubwire.EventSize(env.Event)
	}
	b := make([]byte, 0, size)
	b = append(b, formatRequest, flags)
	b = hubwire.AppendString(b, env.ID)
	b = hubwire.AppendString(b, env.Origin)
	b = hubwire.AppendString(b, env.ReplyTo)
	b = hubwire.AppendString(b, env.App)
	b = binary.AppendUvarint(b, uint64(max(env.TimeoutMS, 0)))
	b = hubwire.AppendIDs(b, t)
	switch {
	case env.Kind == kindDeliver && env.Event != nil:
		b = hubwire.AppendEvent(b, env.Event, flags&flagStreams != 0)
	case env.Kind == kindSurvey && env.Request != nil:
		b = hubwire.AppendString(b, env.Request.Op)
		b = hubwire.AppendString(b, string(env.Request.Args))
	default:
		return nil, fmt.Errorf("redis: encode request: kind %q without its body", env.Kind)
	}
	return b, nil
}

// decodeEnvelope parses a request in either format. The strings of a
// binary request share payload's memory.
func decodeEnvelope(payload string) (envelope, error) {
	var env envelope
	if len(payload) > 0 && payload[0] == '{' {
		if err := json.Unmarshal([]byte(payload), &env); err != nil {
			return env, fmt.Errorf("%w: %w", errMalformed, err)
		}
		env.legacy = true
		return env, nil
	}
	r := hubwire.NewReader(payload)
	if r.Byte() != formatRequest {
		return env, errMalformed
	}
	flags := r.Byte()
	env.ID, env.Origin, env.ReplyTo, env.App = r.String(), r.String(), r.String(), r.String()
	env.TimeoutMS = int64(min(r.Uvarint(), 1<<40))
	env.Multi = flags&flagMulti != 0
	t := &env.Target
	t.All, t.Listening = flags&flagAll != 0, flags&flagListening != 0
	r.IDs(t)
	if r.Bad {
		return env, errMalformed
	}
	if flags&flagDeliver != 0 {
		env.Kind = kindDeliver
		ev := r.Event(flags&flagStreams != 0)
		env.Event = &ev
	} else {
		env.Kind = kindSurvey
		env.Request = &hub.Request{Op: r.String(), Target: env.Target}
		if args := r.String(); args != "" {
			env.Request.Args = json.RawMessage(args)
		}
	}
	if r.Bad || r.Len() > 0 {
		return env, errMalformed
	}
	return env, nil
}

// appendReply adds one reply to a binary batch (started by
// startReplies).
func appendReply(b []byte, rep *replyEnvelope) []byte {
	flags := byte(0)
	if rep.Dup {
		flags |= flagDup
	}
	b = hubwire.AppendString(b, rep.ID)
	b = append(b, flags)
	b = binary.AppendVarint(b, int64(rep.Count))
	b = hubwire.AppendString(b, string(rep.Data))
	return hubwire.AppendString(b, rep.Error)
}

// startReplies begins a binary batch of replies from nodeID.
func startReplies(b []byte, nodeID string) []byte {
	return hubwire.AppendString(append(b, formatReplies), nodeID)
}

// decodeReplies parses a reply message in either format and calls f for
// each reply it holds.
func decodeReplies(payload string, f func(*replyEnvelope)) error {
	if len(payload) > 0 && payload[0] == '{' {
		var r replyEnvelope
		if err := json.Unmarshal([]byte(payload), &r); err != nil {
			return fmt.Errorf("%w: %w", errMalformed, err)
		}
		f(&r)
		return nil
	}
	r := hubwire.NewReader(payload)
	if r.Byte() != formatReplies {
		return errMalformed
	}
	node := r.String()
	for r.Len() > 0 && !r.Bad {
		rep := replyEnvelope{ID: r.String()}
		rep.Dup = r.Byte()&flagDup != 0
		rep.NodeID = node
		rep.Count = int(r.Varint())
		if data := r.String(); data != "" {
			rep.Data = json.RawMessage(data)
		}
		rep.Error = r.String()
		if r.Bad {
			break
		}
		f(&rep)
	}
	if r.Bad {
		return errMalformed
	}
	return nil
}
