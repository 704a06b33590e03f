// Package auth owns the authenticators pushd's daemon plugs into an app:
// Demo (trusts the caller), JWT (HS256 / RS256 bearer tokens, verified with
// the standard library) and Webhook (asks the app's backend, with a short
// cache).
//
// Each implements Authenticator: Authenticate(r) returns the hub.User the
// request belongs to, or an error.
//
// # Errors
//
// A request that does not prove an identity fails with an error that wraps
// ErrUnauthenticated and carries a human-readable reason ("token expired",
// "signature invalid", …): the web layer answers 401. Reason(err) extracts
// it. A failure of the machinery behind the check (the webhook backend
// timed out, answered 500 or garbage) wraps ErrUnavailable instead: the web
// layer answers 502 or 503 and the browser retries later. Any other error
// is a programming error (500).
//
// # Concurrency
//
// Every authenticator is safe for concurrent use by many requests once
// constructed; none of them modifies the request.
package auth
