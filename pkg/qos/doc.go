// Package qos owns pushd's at-least-once contract: the Message, the
// Repository that keeps messages until their recipients acknowledge them,
// and its in-memory implementation, Memory. The Redis one is package
// qos/redisqos, apart so that importing the contract does not link
// go-redis; qos/qostest is the conformance suite both pass.
//
// The package imports nothing else of pushd. The hub stores a QoS message
// before delivering it, and deletes it (Ack) only once a recipient confirmed
// it or, for clients that cannot confirm, once it was written to them.
//
// # Inboxes
//
// A message is put in one inbox per address, per app: one per user id, per
// access token, per tenant id and per channel in the message, and "all".
// What a recipient's acknowledgement does depends on the inbox:
//
//   - an access token's inbox is direct: the message leaves it when the
//     token's holder acknowledges it (a token is one credential, whatever
//     the tenant of the connection that shows it);
//   - a user id's inbox is direct for a user without tenant in an app that
//     has no tenants (the user id names one user) and shared otherwise;
//   - the inboxes of tenants, channels and "all" are shared.
//
// A message stays in a shared inbox until it expires, and the repository
// records who acknowledged it, by identity: the tenant and the user id (or,
// for a recipient without user id, the tenant and the access token). It is
// thus pending once for every such identity.
//
// A message is deleted when no inbox holds it any more (the holders of its
// direct inboxes acknowledged it and it has no shared one), when it expires
// (ExpiresAt; DefaultTTL after CreatedAt if unset), or when a bound is
// reached: every inbox holds at most MaxPerRecipient messages (the oldest
// is dropped), the memory repository at most MaxMessages and MaxBytes in
// all (the oldest are dropped; a message larger than MaxBytes is refused).
// Expiries and evictions are counted (Stats) and logged, evictions as
// warnings; nothing disappears silently.
//
// # Tenants
//
// A user's identity is its tenant and its user id: dup3 of tenant A and
// dup3 of tenant B are two users, and one's acknowledgement never takes a
// message away from the other. Addressing by user id does not change: a
// message to the user id dup3 is for dup3 of every tenant (as live sends of
// the hub reach that user id in every tenant), so it is pending for each of
// them until that one acknowledges it, and it stays stored until it
// expires (the repository cannot know which tenants have a dup3). A user
// without tenant is the user of its id in tenant "": in an app with
// tenants its acknowledgement is its own too and never takes the message
// away from dup3 of tenant A. In an app without tenants nothing changes:
// the user's acknowledgement deletes the message. A repository counts an
// app as having tenants from the first call that shows one on (a
// recipient with a TenantID, a message to TenantIDs), for good (the Redis
// store keeps the mark in Redis; Memory for the life of the process, as
// its messages); see Recipient.TenantlessUser. What is left: a tenant-less
// user's acknowledgement made before the app's first such call deletes
// the message, as in an app without tenants.
//
// # Recipients
//
// A message is pending for a Recipient if it is in one of the recipient's
// direct inboxes, or in one of its shared inboxes (its user id's if it has
// a tenant, its tenant's, its channel's, "all") and not yet acknowledged by
// its identity; and, for a message with Listening, if the recipient's
// Listeners hold its Event. A recipient with neither user id nor access
// token has no inbox and cannot be told apart from others: nothing is
// pending for it and its acks count for nothing. Ack only touches messages
// pending for the acknowledging recipient (its listeners aside: they may
// have changed since delivery), so nobody can delete or acknowledge
// somebody else's messages. One Ack takes at most MaxAckIDs ids
// (ErrTooManyIDs otherwise) and costs time linear in their number.
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
// # Writing a repository
//
// The rules above are shared code, not only prose: an implementation
// starts Save with Prepare and Ack with PrepareAck, files a message under
// Message.Inboxes, reads a recipient's Recipient.DirectInboxes and
// Recipient.SharedInboxes (a tenant-less user's own inbox, the last direct
// one, is shared once Recipient.ShowsTenants or Message.ShowsTenants held
// for a call of the app: Recipient.TenantlessUser), records acknowledgements in shared inboxes
// under Recipient.AckKey, orders by IDTime, and selects with
// Filter.Matches. The inbox and ack key strings are stable: stores persist
// them. An implementation passes qostest.Run and reports qostest.Benchmark.
//
// # Concurrency
//
// Repositories are safe for concurrent use, and one app's calls do not
// wait for another app's work. Memory holds a mutex per app for the work of
// a call and a store-wide one only for the few steps per stored or deleted
// message that the bounds and expiries need (see Memory); redisqos
// describes its own. Stats counters are read without locking.
//
// # Files
//
// repository.go the contract (Message, Recipient, Filter, Repository),
// message.go the shared rules (Prepare, inboxes, ack keys, matching),
// ids.go message ids, errors.go and stats.go what calls return and count. Memory lives in
// memory.go (the store and its calls), memory_inbox.go (an inbox, ordered
// by id), memory_bounds.go (size accounting, the age and expiry indices,
// eviction) and memory_retire.go (how a message expired or evicted by
// another app's call leaves its app).
package qos
