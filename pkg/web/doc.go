// Package web serves the browser side of one pushd app: the client script,
// the SSE stream and the .do and .json endpoints that the seed's sse.js
// (1.2.8–1.2.22) and pushd's own sse.js call, all relative to the app's
// base path. It authenticates every request through an Authenticator
// before touching the hub, checks that a caller acts only on its own
// connections, and hands message and upload calls to an UpstreamHandler.
//
// A Handler is safe for concurrent use; it holds no state of its own
// beyond its configuration.
//
// # Cross-origin calls
//
// A call that acts — connect, addListener.do, removeListener.do, ack.do,
// disconnect.do, message/{path}.do, upload/{path}.do — is refused with 403
// by net/http's CrossOriginProtection, which trusts Config.CORSOrigins:
// when its Sec-Fetch-Site is neither same-origin nor none, or, from a
// browser that sends no Sec-Fetch-Site, when its Origin names another host
// than the request's Host. Requests with neither header (curl, backends)
// pass. Behind a reverse proxy, pass the browser's Host with its port on
// (nginx: proxy_set_header Host $http_host) for the browsers of the second
// kind, or list the public origin in CORSOrigins. The JSON calls also require a JSON Content-Type, which a
// browser sends cross-origin only after a CORS preflight, answered only for
// CORSOrigins. The script and the .json endpoints, which only read, are
// left to CORS.
//
// # Credentials
//
// The places an authenticator reads secrets from (CredentialSource,
// implemented by auth.JWT and auth.Webhook), Config.Credentials, the
// Authorization and Cookie headers, and every header or parameter whose
// name looks like a credential (token, secret, password, key, session,
// jwt, auth, …) are never stored, shown, logged or forwarded. A connection
// keeps, as ClientInfo.Params and ClientInfo.Headers, only allowlisted
// telemetry — the parameters sse.js sends about itself and headers such
// as User-Agent, Accept-Language and X-Forwarded-For; locationHref and
// Referer lose their query and fragment. Values over 1 KiB are dropped,
// and so is whatever would take the total over 8 KiB. The request handed
// to the UpstreamHandler has the credential parameters removed from its
// URL; error texts that quote a request (a webhook's URL) are redacted.
//
// # Bounds
//
// Authentication comes before any body is read: an unauthenticated call
// is answered without reading its body, and on HTTP/1 its connection is
// closed. disconnect.do stays unauthenticated (sendBeacon carries no
// credentials but cookies; the unguessable connection id is the
// capability), with a body of at most 4 KiB read within 5 s. Every other
// request but the stream gets a read deadline: 10 s for connect bodies
// and the JSON calls, Config.ReadTimeout (30 s) for message and upload; a
// POST /connect body is at most 64 KiB (413 beyond), as are the JSON call
// bodies, and ack.do takes at most hub.MaxAckIDs ids (413). Hub errors
// are answered with the status the API and the admin page give them too
// (internal/httpx/hubhttp): hub.ErrTooManyConnections and hub.ErrClosed
// 503 with Retry-After, hub.ErrTooManyListeners and hub.ErrInvalidName
// 400, hub.ErrTokenExpired 401, an unknown connection 404, a cluster
// failure 500. The {path} of message/{path}.do and upload/{path}.do is
// one segment of 1 to 200 characters from A-Z a-z 0-9 - _ . ~ (400
// otherwise), the rule of upstream.ValidPath.
//
// # Introspection
//
// users.json, connections.json and repositoryMessages.json (off unless
// Config.EnableJSON) are scoped to the caller: the users of its tenant,
// its own connections (connection ids are capabilities), and the QoS
// messages addressed to its tenant — or, for a caller without tenant, to
// its user id (its access token, without user id).
package web
