package qos

import (
	"context"
	"time"
)

// Message is one QoS message: an event and the recipients it is promised to.
//
// Messages to AccessTokens go to a per-token inbox and leave it when the
// token's holder acknowledges them. Messages to UserIDs go to a per-user-id
// inbox; in an app without tenants they leave it when the user
// acknowledges them, and they are pending once for that user id in every
// tenant (tenant "" included) otherwise.
// Messages to TenantIDs, Channels or All are kept until ExpiresAt and are
// pending for every matching recipient (by tenant and user id) that has not
// acknowledged them yet. See the package documentation.
type Message struct {
	ID           string    `json:"id"`
	Event        string    `json:"event"`
	Data         string    `json:"data"`
	UserIDs      []string  `json:"userIds,omitempty"`
	AccessTokens []string  `json:"accessTokens,omitempty"`
	TenantIDs    []string  `json:"tenantIds,omitempty"`
	Channels     []string  `json:"channels,omitempty"`
	All          bool      `json:"all,omitempty"`
	Listening    bool      `json:"listening,omitempty"`
	CreatedAt    time.Time `json:"createdAt"`
	ExpiresAt    time.Time `json:"expiresAt"`
}

// Recipient describes who asks for or acknowledges messages: the identity
// of one connection.
type Recipient struct {
	UserID      string
	AccessToken string
	TenantID    string
	// Channels are the channels the connection is in.
	Channels []string
	// Listeners are the event names the connection listens to; a message
	// with Listening set is pending only if its Event is among them.
	Listeners []string
}

// Filter selects messages in List. Empty fields match everything.
type Filter struct {
	UserID      string
	AccessToken string
	TenantID    string
	Channel     string
	Event       string
}

// Repository stores QoS messages per app. Implementations are safe for
// concurrent use.
type Repository interface {
	// Save stores m for app. It is durable (as far as the implementation
	// goes) when Save returns nil; on error nothing is stored.
	Save(ctx context.Context, app string, m Message) error
	// Pending returns up to limit messages r has not acknowledged, oldest
	// first, skipping those with an ID not greater than after (after ""
	// skips none). Expired messages are never returned.
	Pending(ctx context.Context, app string, r Recipient, after string, limit int) ([]Message, error)
	// Ack records that r received the messages ids and returns how many of
	// them were pending for r. Unknown ids and messages addressed to
	// somebody else are ignored. More than MaxAckIDs ids are refused with
	// ErrTooManyIDs.
	Ack(ctx context.Context, app string, r Recipient, ids ...string) (int, error)
	// List returns one page of the app's stored messages matching f, oldest
	// first, and the number of all matching messages.
	List(ctx context.Context, app string, f Filter, offset, limit int) ([]Message, int, error)
	// Close releases the repository's resources.
	Close() error
}
