package client

import "time"

// Target addresses the recipients of a send or of a duration change. The
// sets add up: a connection matching any of them is addressed.
type Target struct {
	// All addresses every connection of the app.
	All bool `json:"all,omitempty"`
	// UserIDs addresses the connections of these users.
	UserIDs []string `json:"userIds,omitempty"`
	// AccessTokens addresses the connections made with these tokens.
	AccessTokens []string `json:"accessTokens,omitempty"`
	// TenantIDs addresses the connections of these tenants' users.
	TenantIDs []string `json:"tenantIds,omitempty"`
	// Channels addresses the connections that joined these channels.
	Channels []string `json:"channels,omitempty"`
	// ConnectionIDs addresses these connections.
	ConnectionIDs []string `json:"connectionIds,omitempty"`
	// Listening keeps, of the addressed connections, those that listen to
	// the event's name (the seed's "…Listening" sends).
	Listening bool `json:"listening,omitempty"`
}

// Message is one event to send.
type Message struct {
	// To addresses the recipients.
	To Target `json:"to"`
	// Event is the event name.
	Event string `json:"event"`
	// Data is the payload: a string is sent as is, a json.RawMessage as
	// that JSON, anything else as its JSON encoding.
	Data any `json:"data"`
	// QoS stores the event until the recipients acknowledge it.
	QoS bool `json:"qos,omitempty"`
	// TTL bounds how long a QoS event waits, as time.ParseDuration reads
	// it, e.g. "24h". Empty: the server's default.
	TTL string `json:"ttl,omitempty"`
	// Async asks pushd to answer at once (202) and send in the background.
	Async bool `json:"async,omitempty"`
}

// SendResult is pushd's answer to a send.
type SendResult struct {
	// Delivered counts the connections, cluster-wide, the event was
	// queued to.
	Delivered int `json:"delivered"`
	// Stored reports that the event was stored for at-least-once delivery.
	Stored bool `json:"stored"`
	// ID is the QoS message id, or for an async send the id pushd logs the
	// send under; empty otherwise.
	ID string `json:"id,omitempty"`
	// Accepted reports an async send that pushd took on (202): only ID is
	// set then, the outcome is not known.
	Accepted bool `json:"-"`
	// Positions are the event's positions in the resumable streams of its
	// target; empty when none keeps history.
	Positions []StreamPosition `json:"positions,omitempty"`
}

// StreamPosition is an event's position in one resumable stream.
type StreamPosition struct {
	// Stream is "c:" + a channel, or "u:" + a user id.
	Stream string `json:"stream"`
	// Offset counts the stream's events: 1, 2, 3, … in its epoch.
	Offset uint64 `json:"offset"`
	// Epoch changes when the stream's history was lost.
	Epoch string `json:"epoch"`
}

// BatchResult is pushd's answer for one message of a SendBatch.
type BatchResult struct {
	// SendResult is the send's outcome, as Send returns it.
	SendResult
	// Err is why the message was not sent: an *APIError with the status
	// and message Send would have got (400 bad input, 501 QoS not
	// configured, 503 store unavailable, …); nil for a message sent.
	Err error
}

// Page is one page of a list.
type Page[T any] struct {
	// Total counts the items of every page.
	Total int `json:"total"`
	// PageNum is the page's number, from 1.
	PageNum int `json:"pageNum"`
	// PageSize is the number of items a page holds at most.
	PageSize int `json:"pageSize"`
	// List holds the page's items.
	List []T `json:"list"`
}

// User is one online user.
type User struct {
	ID       string `json:"id"`
	Name     string `json:"name,omitempty"`
	TenantID string `json:"tenantId,omitempty"`
	// Claims are the user's extra attributes (JWT claims, a webhook's
	// answer).
	Claims map[string]any `json:"claims,omitempty"`
	// Connections counts the user's connections, cluster-wide.
	Connections int `json:"connections"`
}

// Identity is who opened a connection, as authentication established it.
type Identity struct {
	ID          string `json:"id,omitempty"`
	Name        string `json:"name,omitempty"`
	TenantID    string `json:"tenantId,omitempty"`
	AccessToken string `json:"accessToken,omitempty"`
	// Channels are the channels the identity grants: names and patterns.
	Channels []string       `json:"channels,omitempty"`
	Claims   map[string]any `json:"claims,omitempty"`
	// ExpiresAt is when the identity's credential expires; zero: never.
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}

// ClientInfo is the telemetry a browser client sent on connect. Times are
// Unix milliseconds.
type ClientInfo struct {
	ClientID               string            `json:"clientId,omitempty"`
	ClientVersion          string            `json:"clientVersion,omitempty"`
	ClientInstanceID       string            `json:"clientInstanceId,omitempty"`
	ClientInstanceTime     int64             `json:"clientInstanceTime,omitempty"`
	ClientImportModuleTime int64             `json:"clientImportModuleTime,omitempty"`
	AccessTime             int64             `json:"accessTime,omitempty"`
	Screen                 string            `json:"screen,omitempty"`
	LocationHref           string            `json:"locationHref,omitempty"`
	JSHeapSizeLimit        int64             `json:"jsHeapSizeLimit,omitempty"`
	TotalJSHeapSize        int64             `json:"totalJSHeapSize,omitempty"`
	UsedJSHeapSize         int64             `json:"usedJSHeapSize,omitempty"`
	RequestIP              string            `json:"requestIp,omitempty"`
	RequestDomain          string            `json:"requestDomain,omitempty"`
	UserAgent              string            `json:"userAgent,omitempty"`
	Headers                map[string]string `json:"httpHeaders,omitempty"`
	Params                 map[string]string `json:"httpParameters,omitempty"`
}

// Connection is one open connection. Times are Unix milliseconds,
// durations milliseconds except SessionDuration (seconds).
type Connection struct {
	ID string `json:"id"`
	// NodeID is the pushd node holding the connection.
	NodeID     string `json:"serverId"`
	CreateTime int64  `json:"createTime"`
	// ExpireTime is when pushd closes the connection; 0: never.
	ExpireTime int64 `json:"expireTime,omitempty"`
	// Timeout is the connection's lifetime; 0: unbounded.
	Timeout int64 `json:"timeout"`
	// Channel is the first of Channels, the Java sse-server's single
	// channel.
	Channel string `json:"channel,omitempty"`
	// Channels are the channels the connection is in, sorted.
	Channels []string `json:"channels,omitempty"`
	// MessageCount counts the events sent to the connection.
	MessageCount uint64 `json:"messageCount"`
	// SessionDuration is the client's online seconds.
	SessionDuration     int64    `json:"sessionDuration"`
	LastRequestTime     int64    `json:"lastRequestTime,omitempty"`
	RequestMessageCount uint64   `json:"requestMessageCount"`
	RequestUploadCount  uint64   `json:"requestUploadCount"`
	Listeners           []string `json:"listeners"`
	AccessUserID        string   `json:"accessUserId,omitempty"`
	AccessUserName      string   `json:"accessUserName,omitempty"`
	AccessTenantID      string   `json:"accessTenantId,omitempty"`
	AccessToken         string   `json:"accessToken,omitempty"`
	AccessUser          Identity `json:"accessUser"`
	// CanAck reports a client that acknowledges QoS events.
	CanAck bool `json:"canAck"`
	ClientInfo
}

// Stats counts what is online, cluster-wide.
type Stats struct {
	Connections  int `json:"connections"`
	Users        int `json:"users"`
	AccessTokens int `json:"accessTokens"`
	Tenants      int `json:"tenants"`
	// Channels counts the channels with a connection: the count of the
	// node with the most, a lower bound (Channels lists them exactly).
	Channels int `json:"channels"`
}

// Channel is one active channel, cluster-wide.
type Channel struct {
	Name string `json:"name"`
	// Connections counts the channel's connections.
	Connections int `json:"connections"`
	// Users counts the distinct users among them (by access token for
	// connections without a user id).
	Users int `json:"users"`
}

// Presence is who is in a channel, cluster-wide: the count of its
// connections, the users among them and one page of the connections.
type Presence struct {
	Channel string `json:"channel"`
	// Connections counts the channel's connections (Total, too).
	Connections int `json:"connections"`
	// Users are the users with a user id among the connections, by id;
	// each one's Connections counts its connections in the channel.
	Users []User `json:"users"`
	// Page holds one page of the connections, ordered as Connections
	// orders them.
	Page[Connection]
}

// StoredMessage is a QoS event waiting in the backlog for acknowledgements.
type StoredMessage struct {
	ID    string `json:"id"`
	Event string `json:"event"`
	// Data is the SSE data text as sent.
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

// UsersQuery selects online users. Zero fields select everything; a zero
// PageNum is page 1 and a zero PageSize the server's default (100).
type UsersQuery struct {
	// Name matches user names containing it, case-insensitively.
	Name     string
	PageNum  int
	PageSize int
}

// ConnectionsQuery selects connections. Zero fields select everything;
// paging as in UsersQuery.
type ConnectionsQuery struct {
	ID       string
	UserID   string
	ClientID string
	// Name matches user names containing it, case-insensitively.
	Name     string
	PageNum  int
	PageSize int
}

// ChannelsQuery selects active channels. Paging as in UsersQuery.
type ChannelsQuery struct {
	// Prefix keeps the channels whose name starts with it.
	Prefix   string
	PageNum  int
	PageSize int
}

// MessagesQuery selects QoS messages of the backlog. Each non-empty field
// narrows the list: to messages addressed by name to that user, token,
// tenant or channel (a message sent to All names none), or of that event.
// Paging as in UsersQuery.
type MessagesQuery struct {
	UserID      string
	AccessToken string
	TenantID    string
	Channel     string
	Event       string
	PageNum     int
	PageSize    int
}

// HistoryPage is a page of a channel's history, oldest first.
type HistoryPage struct {
	Channel string `json:"channel"`
	// Epoch and Top are the stream's current epoch and last offset.
	Epoch string `json:"epoch"`
	Top   uint64 `json:"top"`
	// More says events follow the last one: ask again after its offset.
	More bool `json:"more"`
	// Gap says why the page does not start right after the offset asked
	// for: "trimmed", "expired" or "epoch"; empty when it does.
	Gap  string         `json:"gap,omitempty"`
	List []HistoryEntry `json:"list"`
}

// HistoryEntry is one event of a stream's history.
type HistoryEntry struct {
	Offset uint64 `json:"offset"`
	Event  string `json:"event"`
	Data   string `json:"data"`
	// Time is when it was published, in Unix milliseconds.
	Time int64 `json:"time"`
}
