// Package signature owns the HMAC-SHA256 scheme pushd uses to sign the HTTP
// requests it makes to an app's backend: forwarded browser messages and
// uploads (package upstream) and presence notifications (package notify).
//
// # Scheme
//
// A signed request carries two headers:
//
//	X-Pushd-Timestamp: <Unix time in seconds, decimal>
//	X-Pushd-Signature: v1=<lower-case hex HMAC-SHA256>
//
// The HMAC key is the shared secret's bytes. The signed message is the
// timestamp followed by each signed part, every element terminated by a
// line feed:
//
//	<timestamp>\n<part 1>\n<part 2>\n…<part n>\n
//
// Which parts are signed is defined by the caller (see upstream.Verify and
// notify.Verify); a backend in another language recomputes the HMAC over
// the same bytes, compares it in constant time and rejects timestamps
// further than a few minutes from its own clock. Parts taken from HTTP
// header values cannot contain a line feed, so the layout is unambiguous.
//
// # Concurrency
//
// Every function is safe for concurrent use; the package holds no state.
package signature
