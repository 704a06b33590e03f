package hub

// DisconnectReason says why a connection ended. It decides whether the
// client is told (connect-close) and is used in logs and metrics.
type DisconnectReason uint8

// Disconnect reasons.
const (
	// ReasonClientGone: the browser went away (request ended, write failed
	// on a closed socket).
	ReasonClientGone DisconnectReason = iota + 1
	// ReasonClientClose: the browser asked to close (disconnect.do).
	ReasonClientClose
	// ReasonKicked: the server closed it (disconnect API, hook).
	ReasonKicked
	// ReasonClientLimit: the per-client connection cap closed the oldest.
	ReasonClientLimit
	// ReasonExpired: its lifetime (keepaliveTime) ended.
	ReasonExpired
	// ReasonSlow: it could not keep up; its queue overflowed.
	ReasonSlow
	// ReasonWriteError: writing to it failed or timed out.
	ReasonWriteError
	// ReasonShutdown: the node is shutting down or draining.
	ReasonShutdown
	// ReasonTokenExpired: the credential the connection was opened with
	// expired (User.ExpiresAt); the client reconnects with a fresh one.
	ReasonTokenExpired
	// ReasonUserLimit: the per-user connection cap closed the oldest.
	ReasonUserLimit
)

var reasonNames = [...]string{
	ReasonClientGone:   "client-gone",
	ReasonClientClose:  "client-close",
	ReasonKicked:       "kicked",
	ReasonClientLimit:  "client-limit",
	ReasonExpired:      "expired",
	ReasonSlow:         "slow",
	ReasonWriteError:   "write-error",
	ReasonShutdown:     "shutdown",
	ReasonTokenExpired: "token-expired",
	ReasonUserLimit:    "user-limit",
}

// String gives the reason's stable name, as used in logs, metrics and the
// connect-close frame.
func (r DisconnectReason) String() string {
	if int(r) < len(reasonNames) && reasonNames[r] != "" {
		return reasonNames[r]
	}
	return "unknown"
}

// Error lets a reason be returned as an error.
func (r DisconnectReason) Error() string { return "hub: disconnected: " + r.String() }

// tellsClient reports whether the client gets a connect-close frame: only
// for deliberate closes. Expiry ends the stream silently as the seed does,
// shutdown leaves the client to reconnect elsewhere, and the rest cannot
// write anymore.
func (r DisconnectReason) tellsClient() bool {
	switch r {
	case ReasonClientClose, ReasonKicked, ReasonClientLimit, ReasonTokenExpired, ReasonUserLimit:
		return true
	}
	return false
}
