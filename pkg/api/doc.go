// Package api serves pushd's server API for backends in any language,
// under /api/v1/apps/{app}/: send (every target kind, listening, QoS,
// async, and batches of sends), online users, connections, stats,
// disconnect, set-duration, channels and the QoS backlog. Every call needs one of
// the app's API keys as a Bearer token, checked before the body is read;
// errors are {"error": "..."} with a proper status.
//
// # Sends
//
// POST …/send takes one send body, a SendRequest:
//
//	{"to": {"userIds": ["42"]}, "event": "bell", "data": {"n": 1}, "qos": false, "ttl": "24h", "async": false}
//
// and answers {"delivered": N, "stored": bool, "id": "…"} (200), or
// {"id": "…"} (202) for an async send. Unknown fields are refused (400),
// field names are spelt exactly as above, and the body is bounded by
// Config.MaxBody (1 MiB; 413 beyond). The body is read into a pooled
// buffer, checked by encoding/json's scanner and taken apart without
// reflection; the answer is written without encoding/json.
//
// # Batches
//
// POST …/send with a JSON array of send bodies makes the sends in order
// and answers a JSON array of their results in the same order (200 once
// the array was read): each is what a single send would have answered,
// or {"error": "...", "status": N} for an item refused or failed with
// status N, or {"id": "…", "status": 202} for an async item:
//
//	[{"to":{"userIds":["42"]},"event":"pay","data":{"n":1}}, {"to":{"userIds":["43"]},"event":"pay\n","data":2}]
//	→ [{"delivered":1,"stored":false}, {"error":"hub: invalid event: event name contains CR, LF or NUL","status":400}]
//
// A malformed array is refused whole (400) and sends nothing, as is one
// of more than Config.MaxBatch items (default 1000; 413); its bytes are
// bounded by Config.MaxBody like any body. Async items are sent in order
// by one background goroutine, while the batch goes on. A batch costs one
// HTTP call: BenchmarkSendBatch measures it at 10 000 connections.
//
// # Streamed batches
//
// With Content-Type application/x-ndjson, POST …/send reads one send
// body a line and answers one result a line (application/x-ndjson, 200),
// in order, as the sends are made: answers are written whenever the next
// line has not arrived yet, so a client can keep sending while it reads.
// A line is bounded by Config.MaxBody (a longer one gets a 413 result
// and is skipped); the number of lines is not, only the server's read
// timeout bounds the call. Empty lines are skipped; a malformed line gets
// a 400 result and the stream goes on.
//
// # Channels
//
// POST …/subscribe and …/unsubscribe take a SubscribeRequest,
//
//	{"to": {"userIds": ["42"]}, "channels": ["room-7"]}
//
// and make the connections the target addresses, on every node, join or
// leave the channels, answering {"changed": N}, the connections whose
// channel set changed. The backend is trusted: no namespace policy
// applies, only the hub's name checks and bound of channels per
// connection (400 otherwise). GET …/channels lists the active channels,
// cluster-wide, by name, with their connection and user counts, paged
// like users (prefix= narrows). GET …/channels/{name}/presence answers a
// Presence: the connection count, the users and one page of the
// connections; it gathers every connection of the channel, so it costs
// in proportion to the channel.
//
// A Handler is safe for concurrent use.
package api
