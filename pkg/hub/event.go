package hub

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Event is one message pushed to browsers.
//
// Data is the text of the SSE data field exactly as the browser will see it
// in event.data: NewEvent turns strings and byte slices into it verbatim and
// everything else into compact JSON. Multi-line data is split into several
// data: lines on the wire and reassembled by the browser.
type Event struct {
	// Name is the SSE event name (the listener name in sse.js).
	Name string `json:"name"`
	// ID is the SSE id. Empty means "the connection's own counter", as the
	// seed server does; QoS messages carry their message id here.
	ID string `json:"id,omitempty"`
	// Data is the payload text.
	Data string `json:"data"`
	// Streams are the event's positions in the resumable streams of its
	// target, assigned by Config.History when it was published; a
	// connection's event id then carries its positions (see resume.go).
	Streams []StreamPos `json:"streams,omitempty"`
}

// StreamPos is an event's position in one resumable stream: a channel's
// ("c:" + name) or a user's ("u:" + id).
type StreamPos struct {
	Stream string `json:"stream"`
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// NewEvent builds an Event named name whose data is data: a string, []byte or
// json.RawMessage is used as is, nil gives empty data, anything else is
// encoded as JSON. The name is validated.
func NewEvent(name string, data any) (Event, error) {
	ev := Event{Name: name}
	switch d := data.(type) {
	case nil:
	case string:
		ev.Data = d
	case []byte:
		ev.Data = string(d)
	case json.RawMessage:
		ev.Data = string(d)
	default:
		b, err := json.Marshal(d)
		if err != nil {
			return Event{}, fmt.Errorf("hub: encode event data: %w", err)
		}
		ev.Data = string(b)
	}
	return ev, ev.Validate()
}

// Validate rejects names and ids that would break SSE framing (CR, LF or NUL:
// an attacker-controlled name could otherwise inject fields or whole events).
// An empty name is rejected too: the browser would deliver it as "message".
func (e Event) Validate() error {
	if e.Name == "" {
		return fmt.Errorf("%w: empty event name", ErrInvalidEvent)
	}
	if strings.ContainsAny(e.Name, "\r\n\x00") {
		return fmt.Errorf("%w: event name contains CR, LF or NUL", ErrInvalidEvent)
	}
	if strings.ContainsAny(e.ID, "\r\n\x00") {
		return fmt.Errorf("%w: event id contains CR, LF or NUL", ErrInvalidEvent)
	}
	return nil
}
