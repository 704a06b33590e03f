// Package auth owns the authenticators pushd's daemon plugs into an app:
// Demo (trusts the caller), JWT (HS256, RS256, ES256 and EdDSA bearer
// tokens, verified by github.com/golang-jwt/jwt/v5, with a shared secret,
// a PEM public key or the keys of an identity provider's JWKS URL) and
// Webhook (asks the app's backend, with a short cache).
//
// Each implements Authenticator: Authenticate(r) returns the hub.User the
// request belongs to, or an error.
//
// # Identity
//
// A request must prove a user id: a token without one (no user claim, or
// an empty one) and a webhook answer without "id" are refused unless the
// app sets AllowAnonymous; a user claim that is neither a string nor a
// number is refused always. User.ExpiresAt is when the credential ends (a
// token's exp plus Leeway, the webhook's expiresAt), zero for never; the
// hub closes the user's streams then.
//
// # Algorithms and keys
//
// Every key verifies exactly one algorithm, fixed by its type (HS256 for
// the secret, RS256 for RSA, ES256 for EC P-256, EdDSA for Ed25519), and a
// token's "alg" must name it: "none", other algorithms and a public key
// used as an HMAC secret are refused. Keys from a JWKS URL are selected by
// the token's "kid"; the set is fetched lazily by the requests that need
// it (no goroutine), cached, fetched again after JWKSRefresh or for an
// unknown kid (at most once per JWKSRetry), only from the configured URL,
// within JWKSTimeout and 1 MiB.
//
// # Errors
//
// A request that does not prove an identity fails with an error that wraps
// ErrUnauthenticated and carries a human-readable reason ("token expired",
// "signature invalid", …): the web layer answers 401. Reason(err) extracts
// it. A failure of the machinery behind the check (the webhook backend
// timed out, answered 500 or garbage; no JWKS could be fetched yet) wraps
// ErrUnavailable instead: the web layer answers 502 or 503 and the browser
// retries later. Any other error is a programming error (500).
//
// # Concurrency
//
// Every authenticator is safe for concurrent use by many requests once
// constructed; none of them modifies the request.
package auth
