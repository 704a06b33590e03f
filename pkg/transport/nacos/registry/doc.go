// Package registry is the nacos.Discovery backed by a Nacos 2.x server:
// each app is the Nacos service ServicePrefix+app ("pushd-{app}"), every
// node registers its peer address there as an ephemeral instance and
// subscribes to the service's instance list. It lives apart from package
// nacos so that a static peer list does not link the SDK.
//
// New wraps nacos-sdk-go v2.3.2: instances are registered with
// Ephemeral=true (the SDK's default false would register a persistent
// instance over HTTP that outlives the process), the SDK's log and cache
// directories go to Config.Dir (a temp dir by default, never the working
// directory), NotLoadCacheAtStart avoids starting from a stale peer list
// and the SDK's log lines are forwarded to the zerolog Logger. Nothing but
// node id, version and protocol version goes into instance metadata.
// Importing this package links the SDK (about +17 MB of binary) and
// registers the SDK's Prometheus collectors in the default registry.
//
// Configuration errors of New wrap nacos.ErrConfig. Ready (which the
// Transport's Ready reports) returns ErrNotConnected while the SDK has no
// healthy connection; registrations and subscriptions made meanwhile are
// replayed by the SDK when it connects.
//
// # Concurrency
//
// A Nacos is safe for concurrent use. Calls into the SDK are serialised
// (two concurrent requests while it is disconnected race inside it); once
// an app is subscribed, Peers answers from the last list the server pushed
// and never waits for the SDK. The SDK keeps
// package-global state (its logger, a client registry): create one Nacos
// per process.
//
// # Testing
//
// Package nacostest is an in-process fake of the Nacos 2.x gRPC naming
// service; the tests run the real SDK against it. The tests that make the
// SDK reconnect (server restart, server down at start) are built only
// without -race: the SDK has a data race on its reconnect path that the
// race detector reports in most runs. Run them with
// `go test ./pkg/transport/nacos/registry/` (everything else also passes
// with -race).
package registry
