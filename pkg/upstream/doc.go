// Package upstream owns the forwarding of browser calls to an app's
// backend in daemon mode: POST {base}/connect/message/{path}.do (JSON) and
// {base}/connect/upload/{path}.do (multipart) are streamed to
// {URL}/message/{path} and {URL}/upload/{path}, with the verified identity
// of the caller in signed headers, and the backend's answer is copied back.
//
// # What the backend receives
//
// The request body is streamed unchanged (never buffered whole), with the
// browser's Content-Type and query string; the query's connectionId is
// replaced by the verified one (or removed when there is none). These
// headers carry the identity the authenticator established:
//
//	X-Pushd-App            app name
//	X-Pushd-User-Id        user id (may be empty)
//	X-Pushd-Tenant-Id      tenant id (may be empty)
//	X-Pushd-Connection-Id  the caller's SSE connection id (may be empty)
//	X-Pushd-Timestamp      Unix seconds when pushd sent the request
//	X-Pushd-Signature      v1=hex(HMAC-SHA256(secret, message))
//
// where message is, each line ending in "\n":
//
//	<timestamp>
//	<app>
//	<user id>
//	<tenant id>
//	<connection id>
//
// (the scheme of package signature). The body is not signed: the signature
// binds the identity to a moment, so a backend can trust the identity
// headers of a request that reached it from pushd within the replay window.
// Go backends call Verify; others recompute the HMAC. Browser-sent headers
// named X-Pushd-* never reach the backend. Also passed on: Accept,
// Accept-Language, User-Agent, and X-Forwarded-For with the browser's
// address appended.
//
// # What the browser receives
//
// The backend's status code, Content-Type and body. Failures of pushd's own
// are JSON {"error":"…"}: 400 for an unsafe path, 413 for a body over
// MaxBody, 502 when the backend is unreachable, 504 when it does not answer
// within Timeout.
//
// # Concurrency
//
// A Forwarder is safe for concurrent use.
package upstream
