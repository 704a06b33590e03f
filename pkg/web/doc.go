// Package web serves the browser side of one pushd app: the client script,
// the SSE stream and the .do and .json endpoints that the seed's sse.js
// (1.2.8–1.2.22) and pushd's own sse.js call, all relative to the app's
// base path. It authenticates every request through an Authenticator
// before touching the hub, checks that a caller acts only on its own
// connections, and hands message and upload calls to an UpstreamHandler.
//
// A Handler is safe for concurrent use; it holds no state of its own
// beyond its configuration.
package web
