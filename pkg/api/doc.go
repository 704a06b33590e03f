// Package api serves pushd's server API for backends in any language,
// under /api/v1/apps/{app}/: send (every target kind, listening, QoS,
// async), online users, connections, stats, disconnect, set-duration and
// the QoS backlog. Every call needs one of the app's API keys as a Bearer
// token; errors are {"error": "..."} with a proper status.
//
// A Handler is safe for concurrent use.
package api
