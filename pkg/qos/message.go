package qos

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultTTL is how long a message saved without ExpiresAt is kept when the
// repository's Config does not say otherwise.
const DefaultTTL = 24 * time.Hour

// maxIDLen bounds message ids (NewID makes 24 characters).
const maxIDLen = 256

// Inbox keys. A message lives in one inbox per addressed user id, access
// token, tenant and channel, plus the "all" inbox. Who reads an inbox, and
// whether an acknowledgement takes the message out of it or is recorded
// beside it, is the recipient's side: see Recipient.DirectInboxes and
// Recipient.SharedInboxes. Stores persist these strings (the Redis store
// in its key names): they never change.
const (
	inboxUser    = "u:"
	inboxToken   = "k:"
	inboxTenant  = "t:"
	inboxChannel = "c:"
	inboxAll     = "all"
)

// Ack keys of recipients with a tenant (those without one use the inbox
// prefixes above, as before tenants were told apart): the tenant, length
// first so that no tenant and id can run into each other.
const (
	ackTenantUser  = "tu:"
	ackTenantToken = "tk:"
)

// Prepare validates m and returns the copy a repository stores: empty and
// repeated addresses dropped, CreatedAt and ExpiresAt filled in (now and
// now+ttl when zero), times in UTC. Every Repository's Save starts with it;
// its errors wrap ErrInvalidMessage.
func Prepare(m Message, now time.Time, ttl time.Duration) (Message, error) {
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

// cleanList returns a copy of l without empty and repeated entries, in
// their first order, nil if nothing is left. It takes linear time: l may be
// the ids of an acknowledgement a browser sent.
func cleanList(l []string) []string {
	var out []string
	var seen map[string]struct{}
	if len(l) > 8 {
		seen = make(map[string]struct{}, len(l))
	}
	for _, v := range l {
		if v == "" {
			continue
		}
		if seen != nil {
			if _, dup := seen[v]; dup {
				continue
			}
			seen[v] = struct{}{}
		} else if slices.Contains(out, v) {
			continue
		}
		out = append(out, v)
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

// recordsAcks reports whether acknowledgements of m are recorded per
// recipient: m is addressed to user ids (which name a user in every
// tenant), tenants, channels or everybody.
func (m Message) recordsAcks() bool {
	return m.All || len(m.UserIDs) > 0 || len(m.TenantIDs) > 0 || len(m.Channels) > 0
}

// Inboxes are the keys of all the inboxes m is put in: its users' ("u:"
// and the id), its access tokens' ("k:"), its tenants' ("t:"), its
// channels' ("c:") and "all", in that order.
func (m Message) Inboxes() []string {
	keys := make([]string, 0, len(m.UserIDs)+len(m.AccessTokens)+len(m.TenantIDs)+len(m.Channels)+1)
	for _, u := range m.UserIDs {
		keys = append(keys, inboxUser+u)
	}
	for _, k := range m.AccessTokens {
		keys = append(keys, inboxToken+k)
	}
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

// ownInboxes are the inboxes of m's users and access tokens: while one
// holds m, somebody m was sent to by name may not have it yet.
func (m Message) ownInboxes() []string {
	return m.Inboxes()[:len(m.UserIDs)+len(m.AccessTokens)]
}

// AckKey names r's identity in the acknowledgements recorded for a
// message of a shared inbox: its tenant and user id, or its tenant and
// access token when it has no user id. A recipient with neither cannot be
// told apart from others: its AckKey is "", and messages of shared inboxes
// are never pending for it.
func (r Recipient) AckKey() string {
	id, plain, scoped := r.UserID, inboxUser, ackTenantUser
	if id == "" {
		id, plain, scoped = r.AccessToken, inboxToken, ackTenantToken
	}
	switch {
	case id == "":
		return ""
	case r.TenantID == "":
		return plain + id
	}
	return scoped + strconv.Itoa(len(r.TenantID)) + ":" + r.TenantID + ":" + id
}

// DirectInboxes are the inboxes a message leaves when r acknowledges it:
// its access token's (a token is one credential, whatever the tenant) and,
// for a user without tenant, its user id's, last (in an app without
// tenants the user id names one user). In an app that has tenants that
// last one is shared instead: see TenantlessUser.
func (r Recipient) DirectInboxes() []string {
	var keys []string
	if r.AccessToken != "" {
		keys = append(keys, inboxToken+r.AccessToken)
	}
	if r.UserID != "" && r.TenantID == "" {
		keys = append(keys, inboxUser+r.UserID)
	}
	return keys
}

// TenantlessUser reports whether r is a user without tenant, whose user
// id's inbox (the last of DirectInboxes) is direct only while its app has
// no tenants. The user id dup3 names dup3 of every tenant, so in an app
// that has tenants the tenant-less dup3 is one user of that id among
// others, of tenant "": its acknowledgement is recorded under its AckKey
// and the message stays for the others, as for a user with a tenant. A
// repository counts an app as having tenants from the first call that shows
// one (a recipient with a TenantID, a message to TenantIDs) on, for good.
func (r Recipient) TenantlessUser() bool {
	return r.UserID != "" && r.TenantID == ""
}

// ShowsTenants reports whether a call of r shows that its app has
// tenants.
func (r Recipient) ShowsTenants() bool { return r.TenantID != "" }

// ShowsTenants reports whether saving m shows that its app has tenants.
func (m Message) ShowsTenants() bool { return len(m.TenantIDs) > 0 }

// SharedInboxes are the inboxes r reads that keep a message after r's
// acknowledgement, which is recorded under r's AckKey instead: its user
// id's if r has a tenant (users of other tenants may share the id), its
// tenant's, its channels' and "all" — none if r has no AckKey.
func (r Recipient) SharedInboxes() []string {
	if r.AckKey() == "" {
		return nil
	}
	keys := make([]string, 0, 3+len(r.Channels))
	if r.UserID != "" && r.TenantID != "" {
		keys = append(keys, inboxUser+r.UserID)
	}
	if r.TenantID != "" {
		keys = append(keys, inboxTenant+r.TenantID)
	}
	for _, ch := range r.Channels {
		keys = append(keys, inboxChannel+ch)
	}
	return append(keys, inboxAll)
}

// listens reports whether r listens to event.
func (r Recipient) listens(event string) bool {
	return slices.Contains(r.Listeners, event)
}

// Matches reports whether m passes f: every non-empty field of f is in
// m's address list of that kind (or, for Event, is m's event).
func (f Filter) Matches(m *Message) bool {
	return (f.UserID == "" || slices.Contains(m.UserIDs, f.UserID)) &&
		(f.AccessToken == "" || slices.Contains(m.AccessTokens, f.AccessToken)) &&
		(f.TenantID == "" || slices.Contains(m.TenantIDs, f.TenantID)) &&
		(f.Channel == "" || slices.Contains(m.Channels, f.Channel)) &&
		(f.Event == "" || m.Event == f.Event)
}

// PrepareAck refuses an acknowledgement of more than MaxAckIDs ids (with
// ErrTooManyIDs) and returns its ids without empty and repeated entries.
// Every Repository's Ack starts with it.
func PrepareAck(ids []string) ([]string, error) {
	if len(ids) > MaxAckIDs {
		return nil, fmt.Errorf("%w: %d ids, at most %d", ErrTooManyIDs, len(ids), MaxAckIDs)
	}
	return cleanList(ids), nil
}
