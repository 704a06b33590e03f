package redis

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

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
	b := make([]byte, 0, 96+len(env.ID)+len(env.ReplyTo)+eventSize(env.Event))
	b = append(b, formatRequest, flags)
	b = appendString(b, env.ID)
	b = appendString(b, env.Origin)
	b = appendString(b, env.ReplyTo)
	b = appendString(b, env.App)
	b = binary.AppendUvarint(b, uint64(max(env.TimeoutMS, 0)))
	for _, ids := range [...][]string{t.UserIDs, t.AccessTokens, t.TenantIDs, t.Channels, t.ConnectionIDs} {
		b = binary.AppendUvarint(b, uint64(len(ids)))
		for _, id := range ids {
			b = appendString(b, id)
		}
	}
	switch {
	case env.Kind == kindDeliver && env.Event != nil:
		b = appendString(b, env.Event.Name)
		b = appendString(b, env.Event.ID)
		b = appendString(b, env.Event.Data)
		if flags&flagStreams != 0 {
			b = binary.AppendUvarint(b, uint64(len(env.Event.Streams)))
			for _, sp := range env.Event.Streams {
				b = appendString(b, sp.Stream)
				b = binary.AppendUvarint(b, sp.Offset)
				b = appendString(b, sp.Epoch)
			}
		}
	case env.Kind == kindSurvey && env.Request != nil:
		b = appendString(b, env.Request.Op)
		b = appendString(b, string(env.Request.Args))
	default:
		return nil, fmt.Errorf("redis: encode request: kind %q without its body", env.Kind)
	}
	return b, nil
}

func eventSize(ev *hub.Event) int {
	if ev == nil {
		return 0
	}
	return len(ev.Name) + len(ev.ID) + len(ev.Data)
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
	r := wireReader{s: payload}
	if r.byte() != formatRequest {
		return env, errMalformed
	}
	flags := r.byte()
	env.ID, env.Origin, env.ReplyTo, env.App = r.string(), r.string(), r.string(), r.string()
	env.TimeoutMS = int64(min(r.uvarint(), 1<<40))
	env.Multi = flags&flagMulti != 0
	t := &env.Target
	t.All, t.Listening = flags&flagAll != 0, flags&flagListening != 0
	for _, ids := range [...]*[]string{&t.UserIDs, &t.AccessTokens, &t.TenantIDs, &t.Channels, &t.ConnectionIDs} {
		n := r.uvarint()
		if n > uint64(len(r.s)) { // every id takes at least a byte
			return env, errMalformed
		}
		if n > 0 {
			*ids = make([]string, n)
			for i := range *ids {
				(*ids)[i] = r.string()
			}
		}
	}
	if flags&flagDeliver != 0 {
		env.Kind = kindDeliver
		env.Event = &hub.Event{Name: r.string(), ID: r.string(), Data: r.string()}
		if flags&flagStreams != 0 {
			n := r.uvarint()
			if n > uint64(len(r.s)) { // every position takes at least three bytes
				return env, errMalformed
			}
			env.Event.Streams = make([]hub.StreamPos, n)
			for i := range env.Event.Streams {
				env.Event.Streams[i] = hub.StreamPos{Stream: r.string(), Offset: r.uvarint(), Epoch: r.string()}
			}
		}
	} else {
		env.Kind = kindSurvey
		env.Request = &hub.Request{Op: r.string(), Target: env.Target}
		if args := r.string(); args != "" {
			env.Request.Args = json.RawMessage(args)
		}
	}
	if r.bad || len(r.s) > 0 {
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
	b = appendString(b, rep.ID)
	b = append(b, flags)
	b = binary.AppendVarint(b, int64(rep.Count))
	b = appendString(b, string(rep.Data))
	return appendString(b, rep.Error)
}

// startReplies begins a binary batch of replies from nodeID.
func startReplies(b []byte, nodeID string) []byte {
	return appendString(append(b, formatReplies), nodeID)
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
	r := wireReader{s: payload}
	if r.byte() != formatReplies {
		return errMalformed
	}
	node := r.string()
	for len(r.s) > 0 && !r.bad {
		rep := replyEnvelope{ID: r.string()}
		rep.Dup = r.byte()&flagDup != 0
		rep.NodeID = node
		rep.Count = int(r.varint())
		if data := r.string(); data != "" {
			rep.Data = json.RawMessage(data)
		}
		rep.Error = r.string()
		if r.bad {
			break
		}
		f(&rep)
	}
	if r.bad {
		return errMalformed
	}
	return nil
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// wireReader consumes a binary message; after the first error every read
// returns zero values and bad is set.
type wireReader struct {
	s   string
	bad bool
}

func (r *wireReader) byte() byte {
	if len(r.s) == 0 {
		r.bad = true
		return 0
	}
	c := r.s[0]
	r.s = r.s[1:]
	return c
}

func (r *wireReader) uvarint() uint64 {
	var x uint64
	for shift := 0; shift < 64; shift += 7 {
		if len(r.s) == 0 {
			break
		}
		c := r.s[0]
		r.s = r.s[1:]
		x |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return x
		}
	}
	r.bad = true
	return 0
}

func (r *wireReader) varint() int64 {
	u := r.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (r *wireReader) string() string {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.s)) {
		r.bad = true
		return ""
	}
	s := r.s[:n]
	r.s = r.s[n:]
	return s
}
