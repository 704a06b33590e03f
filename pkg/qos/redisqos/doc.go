// Package redisqos is the qos.Repository kept in Redis (standalone,
// Sentinel or Redis Cluster, through a go-redis UniversalClient): messages
// survive restarts of pushd and, with AOF, of Redis, and every node of a
// cluster reads the same inboxes. It lives apart from package qos so that
// importing the contract and the memory store does not link go-redis.
//
// The rules (inboxes, tenants, recipients, ids and order, bounds) are the
// contract's, described in package qos; Store keeps them with the building
// blocks qos exports for implementations (qos.Prepare, qos.PrepareAck,
// Message.Inboxes, Recipient.DirectInboxes, Recipient.SharedInboxes,
// Recipient.AckKey, Recipient.TenantlessUser, Filter.Matches) and passes the conformance suite
// qos/qostest.
//
// # Keys
//
// All keys of an app share the hash tag {app}, so the scripts also work on
// a Redis Cluster (an app lives on one shard):
//
//	{prefix}:{app}:m:{id}     hash: d (message JSON), e (event), l (listening),
//	                          n (inboxes holding it); PEXPIREAT ExpiresAt
//	{prefix}:{app}:a:{id}     set of the identities that acknowledged the
//	                          message in a shared inbox: u:{user} or k:{token}
//	                          without tenant, tu:{n}:{tenant}:{user} or
//	                          tk:{n}:{tenant}:{token} with a tenant of n bytes;
//	                          expires with the message
//	{prefix}:{app}:q:u:{user} sorted sets (inboxes), member id, score the
//	{prefix}:{app}:q:k:{token} creation time in ms, for user ids, tokens,
//	{prefix}:{app}:q:t:{tenant} tenants, channels and everybody; each
//	{prefix}:{app}:q:c:{chan}  expires with its last message
//	{prefix}:{app}:q:all
//	{prefix}:{app}:idx        sorted set of all the app's ids, by creation
//	{prefix}:{app}:exp        sorted set of all the app's ids, by ExpiresAt
//	{prefix}:{app}:tenanted   "1" once a call showed that the app has
//	                          tenants (qos.Recipient.TenantlessUser); never
//	                          expires
//
// Inbox members whose message expired are dropped when Pending or Ack meet
// them; idx and exp are swept on Save and List.
//
// The layout is the one from before acknowledgements were told apart by
// tenant (and from before this package left package qos: the keys did not
// change); only the members of a:{id} for users and tokens with a tenant
// are new. An old record (u:{user}, written for a user of any tenant)
// still counts for the user without tenant; a user with a tenant gets such
// a message once more and records its acknowledgement under its own key.
//
// # Concurrency
//
// A Store is safe for concurrent use. Every Save is one Lua script, so a
// failed Save leaves nothing behind; an Ack is Lua scripts of up to 100 ids
// each, so concurrent Acks of one message by one recipient count once and
// other calls (of every app: Redis runs one script at a time) run between
// the steps of a long Ack. Stats counters are read without locking and
// count what this process did.
package redisqos
