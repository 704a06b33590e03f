package redis

import "errors"

var (
	// ErrClosed is returned by operations on a Transport after Close.
	ErrClosed = errors.New("redis: transport closed")
	// ErrConfig is wrapped around the reasons New rejects a Config.
	ErrConfig = errors.New("redis: invalid config")
	// ErrNotReady is returned by Deliver, Survey and Ready while the node's
	// subscription is not established (Run not started yet, or Redis
	// unreachable): replies could not reach this node.
	ErrNotReady = errors.New("redis: subscription not established")
	// ErrPartial is wrapped in the error of a Deliver or Survey whose
	// request could be published to the channels of some of its routing
	// keys but not of others (on a Redis Cluster, the master owning their
	// slots is down): the count or the replies returned are those of the
	// nodes reached through the others.
	ErrPartial = errors.New("redis: published to part of the target")
	// ErrRunning is returned by Run when Run is already running.
	ErrRunning = errors.New("redis: already running")
	// ErrProbeTimeout is the reason a subscription is torn down when the
	// node's probe did not come back in time.
	ErrProbeTimeout = errors.New("redis: probe did not come back")
)
