// Package admission bounds how fast a node admits new SSE connections, so
// that a crowd arriving at once — the clients of a node that died, all
// reconnecting — is told to come back later (503 with Retry-After, which
// pushd's sse.js honours) instead of piling up goroutines, memory and
// store reads until the node falls over.
//
// Two bounds, each off when zero: the connects being admitted at once
// (from the request's arrival until its handler writes the response head,
// hijacks the connection or returns), and a rate of admitted connects per
// second (a token bucket). A connect over the first bound waits, within
// bounds of its own, for a place to come free: a burst is served as fast
// as the node can, and refused only beyond what it can hold. A Limiter is
// safe for concurrent use.
package admission
