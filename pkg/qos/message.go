package qos

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// DefaultTTL is how long a message saved without ExpiresAt is kept when the
// repository's Config does not say otherwise.
const DefaultTTL = 24 * time.Hour

// maxIDLen bounds message ids (NewID makes 24 characters).
const maxIDLen = 256

// Inbox keys. A message lives in one inbox per addressed user, access
// token, tenant and channel, plus the "all" inbox; the first two are
// direct inboxes (left on ack), the others broadcast inboxes (kept until
// the message expires, acks recorded per recipient).
const (
	inboxUser    = "u:"
	inboxToken   = "k:"
	inboxTenant  = "t:"
	inboxChannel = "c:"
	inboxAll     = "all"
)

// prepare validates m and returns the copy a repository stores: empty and
// repeated addresses dropped, CreatedAt and ExpiresAt filled in (now and
// now+ttl when zero), times in UTC.
func prepare(m Message, now time.Time, ttl time.Duration) (Message, error) {
	switch {
	case m.ID == "":
		return Message{}, fmt.Errorf("%w: empty id", ErrInvalidMessage)
	case len(m.ID) > maxIDLen:
		return Message{}, fmt.Errorf("%w: id longer than %d bytes", ErrInvalidMessage, maxIDLen)
	case strings.ContainsAny(m.ID, "\r\n\x00"):
		return Message{}, fmt.Errorf("%w: id contains CR, LF or NUL", ErrInvalidMessage)
	case m.Event == "":
		return Message{}, fmt.Errorf("%w: empty event name", ErrInvalidMessage)
	case strings.ContainsAny(m.Event, "\r\n\x00"):
		return Message{}, fmt.Errorf("%w: event name contains CR, LF or NUL", ErrInvalidMessage)
	}
	m.UserIDs = cleanList(m.UserIDs)
	m.AccessTokens = cleanList(m.AccessTokens)
	m.TenantIDs = cleanList(m.TenantIDs)
	m.Channels = cleanList(m.Channels)
	if !m.All && len(m.UserIDs)+len(m.AccessTokens)+len(m.TenantIDs)+len(m.Channels) == 0 {
		return Message{}, fmt.Errorf("%w: message %s addresses nobody", ErrInvalidMessage, m.ID)
	}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = now
	}
	if m.ExpiresAt.IsZero() {
		m.ExpiresAt = m.CreatedAt.Add(ttl)
	}
	m.CreatedAt = m.CreatedAt.UTC()
	m.ExpiresAt = m.ExpiresAt.UTC()
	return m, nil
}

// cleanList returns a copy of l without empty and repeated entries, nil if
// nothing is left.
func cleanList(l []string) []string {
	var out []string
	for _, v := range l {
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// cloneMessage returns m with its own copies of the address slices, so a
// caller cannot change what a repository holds.
func cloneMessage(m Message) Message {
	m.UserIDs = slices.Clone(m.UserIDs)
	m.AccessTokens = slices.Clone(m.AccessTokens)
	m.TenantIDs = slices.Clone(m.TenantIDs)
	m.Channels = slices.Clone(m.Channels)
	return m
}

// broadcast reports whether m is (also) addressed to tenants, channels or
// everybody, that is, kept until it expires.
func (m Message) broadcast() bool {
	return m.All || len(m.TenantIDs) > 0 || len(m.Channels) > 0
}

// directInboxes are the inboxes m leaves when their owner acknowledges it.
func (m Message) directInboxes() []string {
	keys := make([]string, 0, len(m.UserIDs)+len(m.AccessTokens))
	for _, u := range m.UserIDs {
		keys = append(keys, inboxUser+u)
	}
	for _, k := range m.AccessTokens {
		keys = append(keys, inboxToken+k)
	}
	return keys
}

// broadcastInboxes are the inboxes m stays in until it expires.
func (m Message) broadcastInboxes() []string {
	keys := make([]string, 0, len(m.TenantIDs)+len(m.Channels)+1)
	for _, t := range m.TenantIDs {
		keys = append(keys, inboxTenant+t)
	}
	for _, c := range m.Channels {
		keys = append(keys, inboxChannel+c)
	}
	if m.All {
		keys = append(keys, inboxAll)
	}
	return keys
}

// ackKey names r in the ack records of broadcast messages: its user id, or
// its access token when it has no user id. A recipient with neither cannot
// be told apart from others, so broadcast messages are never pending for it.
func (r Recipient) ackKey() string {
	switch {
	case r.UserID != "":
		return inboxUser + r.UserID
	case r.AccessToken != "":
		return inboxToken + r.AccessToken
	}
	return ""
}

// directInboxes are the inboxes r owns.
func (r Recipient) directInboxes() []string {
	var keys []string
	if r.UserID != "" {
		keys = append(keys, inboxUser+r.UserID)
	}
	if r.AccessToken != "" {
		keys = append(keys, inboxToken+r.AccessToken)
	}
	return keys
}

// broadcastInboxes are the broadcast inboxes r reads: its tenant's, its
// channel's and "all" — none if r has no ack key.
func (r Recipient) broadcastInboxes() []string {
	if r.ackKey() == "" {
		return nil
	}
	keys := make([]string, 0, 3)
	if r.TenantID != "" {
		keys = append(keys, inboxTenant+r.TenantID)
	}
	if r.Channel != "" {
		keys = append(keys, inboxChannel+r.Channel)
	}
	return append(keys, inboxAll)
}

// listens reports whether r listens to event.
func (r Recipient) listens(event string) bool {
	return slices.Contains(r.Listeners, event)
}

// matches reports whether m passes f.
func (f Filter) matches(m *Message) bool {
	return (f.UserID == "" || slices.Contains(m.UserIDs, f.UserID)) &&
		(f.AccessToken == "" || slices.Contains(m.AccessTokens, f.AccessToken)) &&
		(f.TenantID == "" || slices.Contains(m.TenantIDs, f.TenantID)) &&
		(f.Channel == "" || slices.Contains(m.Channels, f.Channel)) &&
		(f.Event == "" || m.Event == f.Event)
}

// isZero reports whether f matches everything.
func (f Filter) isZero() bool {
	return f == Filter{}
}

// uniqueIDs returns ids without empty and repeated entries.
func uniqueIDs(ids []string) []string {
	return cleanList(ids)
}
