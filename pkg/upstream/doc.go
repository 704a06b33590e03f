// Package upstream owns the forwarding of browser calls to an app's
// backend in daemon mode: POST {base}/connect/message/{path}.do (JSON) and
// {base}/connect/upload/{path}.do (multipart) are forwarded to
// {URL}/message/{path} and {URL}/upload/{path}, with the verified identity
// of the caller in headers and a signature over the whole call, and the
// backend's answer is copied back.
//
// # What the backend receives
//
// The request body unchanged, with the browser's Content-Type and query
// string; the query's connectionId is replaced by the verified one (or
// removed when there is none). The body is read whole before it is sent,
// because its hash is signed: up to 64 KiB in memory, larger bodies (up to
// MaxBody) in a temporary file in SpoolDir, removed when the call is
// answered, so memory per call stays bounded. These headers carry the
// identity the authenticator established and the signature:
//
//	X-Pushd-App             app name
//	X-Pushd-User-Id         user id (may be empty)
//	X-Pushd-Tenant-Id       tenant id (may be empty)
//	X-Pushd-Connection-Id   the caller's SSE connection id (may be empty)
//	X-Pushd-Timestamp       Unix seconds when pushd sent the request
//	X-Pushd-Content-Sha256  hex SHA-256 of the body
//	X-Pushd-Nonce           random, once per request (with a Secret)
//	X-Pushd-Signature       v2=hex(HMAC-SHA256(secret, canonical)) (with a Secret)
//
// The signature is the scheme of package signature, whose documentation
// gives the canonical string and a recipe for other languages; its extra
// lines are the values of X-Pushd-App, X-Pushd-User-Id, X-Pushd-Tenant-Id
// and X-Pushd-Connection-Id, in this order. It covers the method (POST),
// the path, the query, the body, the time and the nonce besides the
// identity, so captured headers are worth nothing on another call, after
// the window (60 s by default) or, with a replay cache, a second time. Go
// backends call Verify with one signature.ReplayCache; others follow the
// recipe. Browser-sent headers named X-Pushd-* never reach the backend.
// Also passed on: Accept, Accept-Language, User-Agent, and X-Forwarded-For
// with the browser's address appended.
//
// # What the browser receives
//
// The backend's status code, Content-Type and body. Failures of pushd's own
// are JSON {"error":"…"}: 400 for an unsafe path or an unreadable body, 413
// for a body over MaxBody, 500 when the body cannot be spooled, 502 when the
// backend is unreachable, 504 when it does not answer within Timeout.
//
// # Concurrency
//
// A Forwarder is safe for concurrent use.
package upstream
