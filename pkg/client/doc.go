// Package client calls pushd's server API from Go backends: send events to
// users, tokens, tenants, channels, connections or everyone, list online
// users and connections, ask whether a user is online, disconnect, set
// the online duration, join connections to channels and see who is in
// them, and read the QoS backlog. It covers every endpoint under
// /api/v1/apps/{app}/ and depends on the standard library only.
//
// # Calls
//
// One Client serves one app with one of its API keys:
//
//	c, err := client.New(client.Config{URL: "http://pushd:8080", App: "hr", APIKey: key})
//	n, err := c.SendToUser(ctx, "42", "myHrBell", map[string]int{"count": 100})
//
// Send takes a Message with any Target (SendToUser, SendToToken,
// SendToTenant, SendToChannel and SendToAll are its shorthands);
// SendBatch sends many messages, each with its own target, event, data
// and QoS flag, in one call and answers a BatchResult per message; Users,
// SearchUsers, Connections, SearchConnections and Messages answer a Page
// with Total, PageNum and PageSize; Subscribe and Unsubscribe join
// connections to channels and take them out, Channels lists the active
// channels and Presence who is in one; Stats, Online, Disconnect and
// SetDuration complete the API. Every method takes a context that bounds
// the call, retries included.
//
// # Errors
//
// An answer other than 2xx is an *APIError with the HTTP status and
// pushd's message; match it with errors.As. So is BatchResult.Err, for
// one refused message of a batch. Network failures and undecodable
// answers are other errors, wrapped with %w.
//
// # Retries
//
// Reads (Users, SearchUsers, Connections, SearchConnections, Stats,
// Online, Messages, Channels, Presence) are tried again after a network
// error or a 502, 503 or 504, Config.Retries times (default 2) with a
// doubling wait from Config.RetryWait (default 100 ms). Send, SendBatch,
// Disconnect, SetDuration, Subscribe and Unsubscribe are made once: a
// send is not idempotent, so after a failure the event may or may not
// have gone out; retry it yourself only where a duplicate is harmless (a
// QoS send made twice is stored twice, under two ids). Subscribe and
// Unsubscribe are idempotent and safe to retry.
//
// A Client is safe for concurrent use.
package client
