// Package hubhttp answers hub errors and QoS backlog pages over HTTP, the
// same way in pkg/web, pkg/api and pkg/admin.
//
// # Statuses
//
// Status maps a hub error (matched with errors.Is) to:
//
//	hub.ErrInvalidEvent, ErrNoTarget, ErrInvalidName, ErrTooManyListeners  400
//	hub.ErrTokenExpired                                                     401
//	hub.ErrUnknownConnection                                                404
//	hub.ErrTooManyIDs                                                       413
//	hub.ErrQoSDisabled                                                      501
//	hub.ErrClosed, ErrTooManyConnections, ErrStore                          503
//	context.DeadlineExceeded                                                504
//	anything else                                                           500
//
// WriteError adds Retry-After (RetryAfter seconds) to the 503 of
// hub.ErrTooManyConnections and hub.ErrClosed: the node is full or going
// away, and the client should come back, most likely to another node. A
// store outage gets none, as nobody knows when it ends.
//
// MessagesFilter and MessagesPage list the QoS backlog with the seed's
// filters and paging (httpx.Page).
package hubhttp
