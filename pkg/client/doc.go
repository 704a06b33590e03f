// Package client calls pushd's server API from Go backends: send events to
// users, tokens, tenants, channels, connections or everyone, list online
// users and connections, disconnect, and read the QoS backlog.
//
// A Client is safe for concurrent use.
package client
