// Package qos owns pushd's at-least-once contract: the Message, the
// Repository that keeps messages until their recipients acknowledge them,
// and its in-memory and Redis implementations.
//
// The package imports nothing else of pushd. The hub stores a QoS message
// before delivering it, and deletes it (Ack) only once a recipient confirmed
// it or, for clients that cannot confirm, once it was written to them.
//
// # Inboxes
//
// A message is put in one inbox per address, per app:
//
//   - direct inboxes, one per user id and per access token in the message:
//     the message leaves such an inbox when its owner acknowledges it;
//   - broadcast inboxes, one per tenant id and per channel, and "all": the
//     message stays there until it expires, and the repository records who
//     acknowledged it, by user id (or by access token for a recipient
//     without user id). It is thus pending once for every such user.
//
// A message is deleted when no inbox holds it any more (all its direct
// recipients acknowledged it and it has no broadcast address), when it
// expires (ExpiresAt; DefaultTTL after CreatedAt if unset), or when a bound
// is reached: every inbox holds at most MaxPerRecipient messages (the oldest
// is dropped), the memory repository at most MaxMessages in all. Expiries
// and evictions are counted (Stats) and logged, evictions as warnings;
// nothing disappears silently.
//
// # Recipients
//
// A message is pending for a Recipient if it is in the inbox of the
// recipient's user id or access token, or in the inbox of its tenant, its
// channel or "all" and not yet acknowledged by that user; and, for a message
// with Listening, if the recipient's Listeners hold its Event. A recipient
// with neither user id nor access token has no inbox and cannot be told
// apart from others: nothing is pending for it and its acks count for
// nothing. Ack only touches messages pending for the acknowledging
// recipient (its listeners aside: they may have changed since delivery), so
// nobody can delete somebody else's messages.
//
// # Ids and order
//
// NewID makes the message ids: fixed width, unique across nodes, and
// ordered by creation time, so "oldest first" and the after argument of
// Pending both follow the id order. Ids of different nodes order by their
// clocks; a message saved with a smaller id than one already delivered can
// be skipped by a Pending with that later id as after, so after is only a
// hint for clients that cannot acknowledge.
//
// # Reading
//
// Pending and List return the oldest messages first; a limit of zero or less
// means no limit. The fields of a Filter match the message's own address
// lists (Filter.UserID matches messages whose UserIDs hold it, not
// broadcasts that would reach that user) and its Event; they are combined
// with AND.
//
// # Concurrency
//
// Both repositories are safe for concurrent use. Memory serialises all calls
// on one mutex; Redis runs every change as one Lua script, so concurrent
// Acks of one message by one recipient count once and a failed Save leaves
// nothing behind. Stats counters are read without locking.
package qos
